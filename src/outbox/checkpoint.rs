//! WAL checkpoints off the commit path. SQLite's automatic checkpoint runs inside the
//! commit that crosses the threshold, stalling every ack waiting on that group; a passive
//! checkpoint from its own connection copies pages while the writer keeps committing.

use rusqlite::Connection;
use std::sync::Weak;
use std::time::Duration;

/// How often the WAL is folded back into the database.
const EVERY: Duration = Duration::from_millis(500);

/// Runs until the writer drops the other end of `writer_alive`.
pub fn run(conn: Connection, writer_alive: Weak<()>) {
    while writer_alive.strong_count() > 0 {
        std::thread::sleep(EVERY);
        // PASSIVE never waits for readers or the writer; what it cannot copy now it
        // copies next time.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
        }
    }
}
