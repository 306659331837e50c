//! Which outbox row each in-flight MQTT packet carries.
//!
//! rumqttc assigns packet ids when it writes a publish, in request order, and reports
//! `Outgoing::Publish(pkid)`; each session uses a fresh event loop, so the n-th such
//! report is the n-th publish handed to it. A PUBACK then names exactly one row.

use crate::event::MessageRef;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// What a publish carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    /// A message of an outbox row.
    Event(MessageRef),
    /// The agent's status message (nothing to delete).
    Status,
    /// An audit entry (marked published on its PUBACK).
    Audit(i64),
    /// A revision of a day's summary (marked published on its PUBACK).
    Summary {
        /// The business day as YYYYMMDD.
        day: u32,
        /// Its revision.
        revision: u64,
    },
    /// A reply to a cloud command (nothing to record).
    Reply,
}

/// Publishes handed to rumqttc and not yet acknowledged.
#[derive(Debug, Default)]
pub struct Inflight {
    handed: VecDeque<Carried>,
    on_wire: HashMap<u16, (Carried, Instant)>,
}

/// A packet id the session never announced: the mapping cannot be trusted any more.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("packet id {0} was not expected; dropping the session to resynchronise")]
pub struct Desync(pub u16);

impl Inflight {
    /// A publish was handed to the client.
    pub fn handed(&mut self, c: Carried) {
        self.handed.push_back(c);
    }

    /// The client wrote the oldest handed publish with this packet id.
    pub fn written(&mut self, pkid: u16) -> Result<(), Desync> {
        let c = self.handed.pop_front().ok_or(Desync(pkid))?;
        if self.on_wire.insert(pkid, (c, Instant::now())).is_some() {
            return Err(Desync(pkid));
        }
        Ok(())
    }

    /// The broker acknowledged this packet id: what it carried and its round trip.
    pub fn acked(&mut self, pkid: u16) -> Result<(Carried, Duration), Desync> {
        self.on_wire
            .remove(&pkid)
            .map(|(c, at)| (c, at.elapsed()))
            .ok_or(Desync(pkid))
    }

    /// Publishes not yet acknowledged.
    pub fn len(&self) -> usize {
        self.handed.len() + self.on_wire.len()
    }

    /// True when nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Part, RowId};

    /// The event message of a row.
    pub(super) fn event(row: i64) -> MessageRef {
        MessageRef {
            row: RowId(row),
            part: Part::Event,
        }
    }

    #[test]
    fn maps_packets_to_rows_in_order() {
        let mut f = Inflight::default();
        f.handed(Carried::Event(event(10)));
        f.handed(Carried::Status);
        f.handed(Carried::Event(event(11)));
        f.written(1).unwrap();
        f.written(2).unwrap();
        assert_eq!(f.acked(2).map(|a| a.0), Ok(Carried::Status));
        f.written(3).unwrap();
        assert_eq!(f.acked(3).map(|a| a.0), Ok(Carried::Event(event(11))));
        assert_eq!(f.acked(1).map(|a| a.0), Ok(Carried::Event(event(10))));
        assert!(f.is_empty());
        assert_eq!(f.acked(1).map(|a| a.0), Err(Desync(1)));
        assert_eq!(f.written(4), Err(Desync(4)));
    }
}

/// Messages acknowledged by the broker whose delete may not have committed yet, most
/// recent last. A reconnect skips them instead of sending them again. Bounded: the writer
/// commits deletes within milliseconds, so only the newest entries ever matter.
#[derive(Debug)]
pub struct RecentAcks {
    order: VecDeque<MessageRef>,
    set: std::collections::HashSet<MessageRef>,
    cap: usize,
}

impl RecentAcks {
    /// Remembers at most `cap` rows.
    pub fn new(cap: usize) -> Self {
        RecentAcks {
            order: VecDeque::with_capacity(cap),
            set: std::collections::HashSet::with_capacity(cap),
            cap,
        }
    }

    /// Remembers acknowledged rows, forgetting the oldest beyond the bound.
    pub fn extend(&mut self, rows: impl IntoIterator<Item = MessageRef>) {
        for row in rows {
            if self.set.insert(row) {
                self.order.push_back(row);
            }
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    /// Forgets rows queued again on purpose (a resync), so they are sent.
    pub fn forget(&mut self, rows: impl IntoIterator<Item = MessageRef>) {
        for row in rows {
            self.set.remove(&row);
        }
    }

    /// True when the row was acknowledged recently.
    pub fn contains(&self, row: MessageRef) -> bool {
        self.set.contains(&row)
    }

    /// Rows remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod recent_tests {
    use super::tests::event;
    use super::*;
    use crate::event::Part;

    #[test]
    fn keeps_only_the_newest_rows() {
        let mut r = RecentAcks::new(3);
        r.extend((1..=5).map(event));
        assert_eq!(r.len(), 3);
        assert!(!r.contains(event(2)));
        assert!(r.contains(event(3)) && r.contains(event(5)));
        r.extend([event(5)]);
        assert_eq!(r.len(), 3);
        r.forget([event(4)]);
        assert!(!r.contains(event(4)) && r.contains(event(5)));
        // A row's two messages are remembered apart.
        let derived = MessageRef {
            part: Part::Derived,
            ..event(5)
        };
        assert!(!r.contains(derived));
    }
}
