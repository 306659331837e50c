//! What the writer hands the uplink after a commit: a wake-up, and the rows just
//! committed, in memory, so the uplink does not read back from SQLite what the writer
//! has just written.
//!
//! The outbox stays the truth: this is a cache in front of the uplink's read by cursor.
//! SQLite gives a new row the highest id plus one, so a committed group's rows follow
//! each other. When the oldest row held here is the one right after the uplink's cursor,
//! nothing can lie between them; anything else (a reconnect's start from row 0, rows
//! the cache had no room for, a resync's old rows) is read from the store as before.

use super::queue::QueuedMessage;
use crate::event::RowId;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::Notify;

/// Payload bytes held at most; a writer finding the cache full leaves the rows to be
/// read from the store.
const MAX_BYTES: usize = 512 << 10;

/// The cache and the wake-up, shared by the writer (after each commit) and the uplink.
#[derive(Debug, Default)]
pub struct Handoff {
    held: Mutex<Held>,
    committed: Notify,
}

#[derive(Debug, Default)]
struct Held {
    messages: VecDeque<QueuedMessage>,
    bytes: usize,
}

impl Handoff {
    /// Woken after every commit that added events, or that the uplink should act on.
    pub fn committed(&self) -> &Notify {
        &self.committed
    }

    /// The messages of rows one commit stored, in row order. When they do not fit,
    /// everything held is dropped: the uplink then finds nothing here and reads the
    /// store, which holds these rows too.
    pub(super) fn push(&self, messages: Vec<QueuedMessage>) {
        if messages.is_empty() {
            return;
        }
        let bytes: usize = messages.iter().map(|m| m.payload.len()).sum();
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.bytes + bytes > MAX_BYTES {
            *held = Held::default();
            return;
        }
        held.bytes += bytes;
        held.messages.extend(messages);
    }

    /// The messages of at most `rows` rows right after `cursor`, when the cache holds
    /// the row that follows it; `None` when the store must be read instead. Rows at or
    /// before the cursor are dropped: the uplink has read them already.
    pub fn after(&self, cursor: RowId, rows: usize) -> Option<Vec<QueuedMessage>> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        while held
            .messages
            .front()
            .is_some_and(|m| m.message.row <= cursor)
        {
            held.pop();
        }
        let mut out = Vec::new();
        let (mut last, mut taken) = (cursor, 0);
        while let Some(row) = held.messages.front().map(|m| m.message.row) {
            if row != last {
                // A row further on than the next: the ones between were not handed over.
                if taken == rows || row.0 != last.0 + 1 {
                    break;
                }
                (last, taken) = (row, taken + 1);
            }
            out.extend(held.pop());
        }
        (!out.is_empty()).then_some(out)
    }
}

impl Held {
    fn pop(&mut self) -> Option<QueuedMessage> {
        let m = self.messages.pop_front()?;
        self.bytes -= m.payload.len();
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{MessageRef, Part};

    fn message(row: i64, part: Part, bytes: usize) -> QueuedMessage {
        QueuedMessage {
            message: MessageRef {
                row: RowId(row),
                part,
            },
            register_id: "r".into(),
            event_type: "sale".into(),
            payload: vec![b'x'; bytes],
        }
    }

    fn rows(got: Option<Vec<QueuedMessage>>) -> Option<Vec<(i64, Part)>> {
        got.map(|g| {
            g.iter()
                .map(|m| (m.message.row.0, m.message.part))
                .collect()
        })
    }

    #[test]
    fn only_the_rows_right_after_the_cursor_are_handed_over() {
        let h = Handoff::default();
        h.push(vec![
            message(3, Part::Event, 1),
            message(3, Part::Derived, 1),
            message(4, Part::Event, 1),
        ]);
        // Row 2 may be in the store: read it there.
        assert_eq!(rows(h.after(RowId(1), 10)), None);
        assert_eq!(
            rows(h.after(RowId(2), 1)),
            Some(vec![(3, Part::Event), (3, Part::Derived)])
        );
        h.push(vec![message(6, Part::Event, 1)]);
        // Row 5 was never handed over: the cache stops before it.
        assert_eq!(rows(h.after(RowId(3), 10)), Some(vec![(4, Part::Event)]));
        assert_eq!(rows(h.after(RowId(4), 10)), None);
        // The store's read went past row 6: it is dropped, not sent twice.
        assert_eq!(rows(h.after(RowId(6), 10)), None);
        assert_eq!(h.held.lock().unwrap().bytes, 0);
    }

    #[test]
    fn a_commit_that_does_not_fit_empties_the_cache() {
        let h = Handoff::default();
        h.push(vec![message(1, Part::Event, MAX_BYTES - 10)]);
        h.push(vec![message(2, Part::Event, 20)]);
        assert_eq!(rows(h.after(RowId(0), 10)), None);
        h.push(vec![message(3, Part::Event, 20)]);
        assert_eq!(rows(h.after(RowId(2), 10)), Some(vec![(3, Part::Event)]));
    }
}
