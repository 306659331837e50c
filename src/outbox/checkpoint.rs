//! WAL checkpoints off the commit path. SQLite's automatic checkpoint runs inside the
//! commit that crosses the threshold, stalling every ack waiting on that group; a passive
//! checkpoint from its own connection copies pages while the writer keeps committing.
//!
//! A checkpoint that runs beside the writer never catches up with it: the writer appends
//! while the pages are copied, so the WAL is never wholly copied back and SQLite never
//! starts it over. Under a steady stream it grew for as long as the stream lasted (380 MB
//! in a 100,000-event burst), and the first commit after the stream truncated it back to
//! `journal_size_limit`, a 300 ms stall on the ack path. So once the WAL passes
//! [`RESET_AT_FRAMES`] the checkpointer asks the writer to copy the few frames left
//! between two commits ([`finish`]), which lets its next transaction start the WAL over.

use rusqlite::Connection;
use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the WAL is folded back into the database while it is small or idle.
const EVERY: Duration = Duration::from_millis(500);
/// How often while the writer keeps it growing: the more often, the less is left for
/// the writer to copy.
const CATCH_UP: Duration = Duration::from_millis(50);
/// WAL frames (pages; 16 MiB at SQLite's 4 KiB) past which the writer finishes a
/// checkpoint so the WAL starts over. Under `journal_size_limit`, so no reset truncates.
const RESET_AT_FRAMES: i64 = 4096;

/// The checkpointer's request that the writer finish a checkpoint between commits.
#[derive(Debug, Clone, Default)]
pub struct ResetRequest(Arc<AtomicBool>);

impl ResetRequest {
    fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a request was raised since the last call.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// Copies what is left of the WAL on the writer's connection. No commit can land while
/// it runs, so it copies everything a reader does not still need, and the writer's next
/// transaction starts the WAL over. Most frames were copied by the checkpointer already.
pub fn finish(conn: &Connection) {
    if let Err(e) = passive(conn) {
        tracing::warn!(error = %e, "WAL checkpoint between commits failed; retrying later");
    }
}

/// A passive checkpoint: the WAL's frames.
fn passive(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
}

/// Runs until the writer drops the other end of `writer_alive`.
pub fn run(conn: Connection, writer_alive: Weak<()>, reset: ResetRequest) {
    let mut pause = EVERY;
    let mut last_frames = 0;
    while writer_alive.strong_count() > 0 {
        std::thread::sleep(pause);
        // PASSIVE never waits for readers or the writer; what it cannot copy now it
        // copies next time.
        match passive(&conn) {
            Ok(frames) => {
                if frames >= RESET_AT_FRAMES {
                    reset.raise();
                }
                let growing = frames != last_frames;
                last_frames = frames;
                pause = if growing && frames >= RESET_AT_FRAMES / 4 {
                    CATCH_UP
                } else {
                    EVERY
                };
            }
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that never pauses still sees the WAL start over, so it stays bounded.
    #[test]
    fn wal_starts_over_under_a_writer_that_never_pauses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let writer = Connection::open(&path).unwrap();
        // A zero size limit truncates the WAL at every start-over, so its size shows each.
        writer
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0;
                 PRAGMA journal_size_limit=0; CREATE TABLE t (b BLOB);",
            )
            .unwrap();
        let alive = Arc::new(());
        let reset = ResetRequest::default();
        let checkpointer = {
            let (conn, weak, reset) = (
                Connection::open(&path).unwrap(),
                Arc::downgrade(&alive),
                reset.clone(),
            );
            std::thread::spawn(move || run(conn, weak, reset))
        };
        let wal = dir.path().join("w.db-wal");
        let (mut peak, mut starts_over, mut last) = (0, 0, 0);
        let mut written = 0u64;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        // About 0.5 MB per transaction until the WAL has started over a few times.
        while starts_over < 3 && std::time::Instant::now() < deadline {
            writer
                .execute_batch(
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 128)
                     INSERT INTO t (b) SELECT randomblob(3500) FROM c;
                     DELETE FROM t WHERE rowid % 2 = 0;",
                )
                .unwrap();
            written += 128 * 3500;
            if reset.take() {
                finish(&writer);
            }
            let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            starts_over += usize::from(size < last);
            (peak, last) = (peak.max(size), size);
        }
        drop(alive);
        checkpointer.join().unwrap();
        assert!(
            starts_over >= 3,
            "the WAL never started over ({written} bytes written, WAL {last} bytes)"
        );
        // The checkpointer looks at least every EVERY; well under what was written.
        assert!(peak < 128 << 20, "the WAL grew to {peak} bytes");
    }
}
