//! Identifier newtypes, so a `seq` cannot be passed where a row id is expected.

use std::fmt;

/// `event_id`: a UUIDv7 assigned once at ingest and persisted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventId(String);

impl EventId {
    /// A fresh UUIDv7.
    pub fn new_v7() -> Self {
        EventId(uuid::Uuid::now_v7().to_string())
    }
    /// An id read back from the store.
    pub fn from_stored(s: String) -> Self {
        EventId(s)
    }
    /// The textual form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Per-source gapless sequence number, starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(u64);

impl Seq {
    /// Wraps a stored or computed sequence number.
    pub fn new(n: u64) -> Self {
        Seq(n)
    }
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
    /// The following number.
    pub fn next(self) -> Self {
        Seq(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// SQLite row id of an event in the store (never leaves the box).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowId(pub i64);

/// Which of a row's messages: the event itself, or the message derived from it (its
/// inventory movements, stored in the same row since schema v7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// The event.
    Event,
    /// The derived message.
    Derived,
}

impl Part {
    /// Its bit in `outbox.parts`.
    pub fn bit(self) -> i64 {
        match self {
            Part::Event => 1,
            Part::Derived => 2,
        }
    }

    /// The part whose bit this is (anything but 2 is the event).
    pub fn of_bit(bit: i64) -> Part {
        if bit == Part::Derived.bit() {
            Part::Derived
        } else {
            Part::Event
        }
    }
}

/// One message of the outbox: a row, and which of its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageRef {
    /// The row.
    pub row: RowId,
    /// Which of its messages.
    pub part: Part,
}

macro_rules! text_id {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Wraps a validated value.
            pub fn new(s: impl Into<String>) -> Self {
                $name(s.into())
            }
            /// The textual form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

text_id!(
    /// A configured source name (`lane1`).
    SourceName,
    /// A register identifier (`reg-1`).
    RegisterId,
    /// The de-duplication key of DESIGN §2.4.
    IdempotencyKey,
);
