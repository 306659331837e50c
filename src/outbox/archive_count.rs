//! The delivered archive's size at start, summed off the writer thread.
//!
//! Summing the archive reads every page of the events table: 470 ms for a 1 GB store,
//! most of the start with a week's backlog queued, and acks wait for the writer. So a
//! reader sums a snapshot pinned before the writer's first commit, while the writer
//! keeps what its commits moved in and out of the archive since; the two add up to the
//! archive as the writer sees it.

use super::OutboxError;
use super::schema::{self, SchemaError};
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, mpsc};

/// Payload bytes of stored events that are not queued.
#[derive(Debug)]
pub(super) struct ArchiveBytes(State);

#[derive(Debug)]
enum State {
    /// The snapshot is being summed; `changed` is what commits did since it was pinned.
    Counting {
        changed: i64,
        sum: mpsc::Receiver<rusqlite::Result<i64>>,
    },
    Known(u64),
}

/// The archive's bytes in one snapshot of the store.
fn sum(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        concat!(
            "SELECT COALESCE(SUM(",
            row_bytes_sql!(),
            "), 0) FROM events e WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.id = e.id)"
        ),
        [],
        |r| r.get(0),
    )
}

impl ArchiveBytes {
    /// Pins a snapshot of the store now and sums it on its own thread. Call before the
    /// writer commits anything.
    pub(super) fn count(path: &Path) -> Result<ArchiveBytes, OutboxError> {
        let open = |e| OutboxError::Open(Arc::new(e));
        let conn = schema::open_reader(path).map_err(open)?;
        // A read transaction's snapshot is taken at its first read.
        conn.execute_batch("BEGIN; SELECT 1 FROM outbox LIMIT 1;")
            .map_err(|source| {
                open(SchemaError::Sqlite {
                    path: path.display().to_string(),
                    source,
                })
            })?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("outbox-archive-count".into())
            .spawn(move || {
                let result = sum(&conn);
                let _ = conn.execute_batch("COMMIT");
                let _ = tx.send(result);
            })
            .map_err(|e| OutboxError::Write(format!("cannot start the archive count: {e}")))?;
        Ok(ArchiveBytes(State::Counting {
            changed: 0,
            sum: rx,
        }))
    }

    /// Notes bytes a commit moved into the archive (negative: out of it).
    pub(super) fn add(&mut self, bytes: i64) {
        match &mut self.0 {
            State::Counting { changed, .. } => *changed += bytes,
            State::Known(n) => *n = n.saturating_add_signed(bytes),
        }
    }

    /// The archive's bytes, once the snapshot is summed.
    pub(super) fn get(&mut self) -> Option<u64> {
        if let State::Counting { changed, sum } = &self.0 {
            let base = match sum.try_recv() {
                Ok(Ok(n)) => n,
                Err(mpsc::TryRecvError::Empty) => return None,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot size the delivered archive; its byte bound counts only what this run delivers");
                    0
                }
                Err(mpsc::TryRecvError::Disconnected) => 0,
            };
            self.0 = State::Known(u64::try_from(base + *changed).unwrap_or(0));
        }
        match self.0 {
            State::Known(n) => Some(n),
            State::Counting { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits after the pin count once, whether they land before or after the sum.
    #[test]
    fn snapshot_sum_and_later_commits_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let w = schema::open_writer(&path).unwrap();
        for i in 0..200 {
            w.execute(
                "INSERT INTO events (event_id, idempotency_key, source, seq, register_id, event_type, payload, received_at_ms)
                 VALUES (?1, ?1, 'lan', ?2, 'r', 'sale', zeroblob(100 + ?2), 0)",
                rusqlite::params![format!("k{i}"), i],
            )
            .unwrap();
        }
        // Half of them still queued.
        w.execute("INSERT INTO outbox (id, bytes) SELECT id, length(payload) FROM events WHERE seq % 2 = 0", [])
            .unwrap();
        let mut archive = ArchiveBytes::count(&path).unwrap();
        // Deliveries and a prune commit while the snapshot is summed.
        let deliver = |n: i64| -> i64 {
            let mut stmt = w
                .prepare("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox LIMIT ?1) RETURNING bytes")
                .unwrap();
            stmt.query_map([n], |r| r.get::<_, i64>(0))
                .unwrap()
                .map(Result::unwrap)
                .sum()
        };
        archive.add(deliver(30));
        archive.add(deliver(20));
        let pruned: i64 = w
            .query_row(
                "DELETE FROM events WHERE seq = 1 RETURNING length(payload)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        archive.add(-pruned);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let got = loop {
            if let Some(n) = archive.get() {
                break n;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the sum never arrived"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(got as i64, sum(&w).unwrap());
        archive.add(-10);
        assert_eq!(archive.get(), Some(got - 10));
    }
}
