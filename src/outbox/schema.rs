//! Opening the database: pragmas and schema migrations versioned in `user_version`.

use rusqlite::Connection;
use std::path::Path;

/// Migrations in order; index + 1 is the schema version they produce. Never edit a
/// released entry: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: events (the outbox rows and the delivered archive; event_id is a UUIDv7 made
    // here, unique by construction, so it carries no index), the pending set, seq
    // counters, dead letters, counters, agent state and alarms.
    r#"
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        seq INTEGER NOT NULL,
        register_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        payload BLOB NOT NULL,
        received_at_ms INTEGER NOT NULL,
        UNIQUE (source, seq)
    );
    CREATE TABLE outbox (id INTEGER PRIMARY KEY, bytes INTEGER NOT NULL);
    CREATE TABLE source_seq (source TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
    CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        register_id TEXT,
        reason TEXT NOT NULL,
        raw BLOB NOT NULL,
        received_at_ms INTEGER NOT NULL
    );
    CREATE TABLE source_stats (
        source TEXT PRIMARY KEY,
        received INTEGER NOT NULL DEFAULT 0,
        acked INTEGER NOT NULL DEFAULT 0,
        nacked INTEGER NOT NULL DEFAULT 0,
        dead_letters INTEGER NOT NULL DEFAULT 0,
        redacted INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE agent_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE alarms (name TEXT PRIMARY KEY, message TEXT NOT NULL, since_ms INTEGER NOT NULL);
    "#,
    // 2: transactions flagged by the integrity checks, counted per source.
    r#"
    ALTER TABLE source_stats ADD COLUMN integrity_flags INTEGER NOT NULL DEFAULT 0;
    "#,
    // 3: the audit trail; `published` flips on the broker's PUBACK.
    r#"
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL,
        published INTEGER NOT NULL DEFAULT 0
    );
    "#,
    // 4: dead-letter replays asked for by an operator (NULL: all), done by the writer.
    r#"
    CREATE TABLE replay_requests (
        id INTEGER PRIMARY KEY,
        dead_letter_id INTEGER,
        requested_at_ms INTEGER NOT NULL,
        requested_by TEXT NOT NULL
    );
    "#,
    // 5: the business day of each event (NULL when the event names none: such events
    // belong to the day their arrival falls in), and the end-of-day summaries.
    r#"
    ALTER TABLE events ADD COLUMN business_day TEXT;
    UPDATE events SET business_day = json_extract(CAST(payload AS TEXT), '$.business_day')
        WHERE json_valid(CAST(payload AS TEXT));
    UPDATE events SET business_day = NULL WHERE business_day IS NOT NULL
        AND business_day NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]';
    CREATE INDEX events_day ON events (business_day) WHERE business_day IS NOT NULL;
    CREATE INDEX events_undated ON events (received_at_ms) WHERE business_day IS NULL;
    CREATE TABLE summaries (
        business_day TEXT PRIMARY KEY,
        revision INTEGER NOT NULL,
        closed TEXT,
        payload BLOB NOT NULL,
        through_id INTEGER NOT NULL,
        computed_at_ms INTEGER NOT NULL,
        published INTEGER NOT NULL DEFAULT 0
    );
    "#,
    // 6: what each event adds to its day's summary, worked out when it is stored
    // (NULL for rows from before, and for derived feeds: the day close reads those rows'
    // payloads as it always did).
    r#"
    ALTER TABLE events ADD COLUMN day_figures BLOB;
    "#,
    // 7: an event's derived message (its inventory movements) lives in the event's own
    // row: its finished payload and its `seq` on the `<source>.inventory` lane, instead
    // of a row of its own with three index entries and an outbox row. `outbox.parts`
    // says which of a row's messages still wait for their PUBACK (1 the event, 2 the
    // derived message). Derived rows stored before stay rows of their own.
    r#"
    ALTER TABLE events ADD COLUMN derived_seq INTEGER;
    ALTER TABLE events ADD COLUMN derived BLOB;
    CREATE UNIQUE INDEX events_derived_seq ON events (source, derived_seq)
        WHERE derived_seq IS NOT NULL;
    ALTER TABLE outbox ADD COLUMN parts INTEGER NOT NULL DEFAULT 1;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Errors opening or migrating the store.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// SQLite refused.
    #[error("{path}: {source}")]
    Sqlite {
        /// Database file.
        path: String,
        /// The error.
        source: rusqlite::Error,
    },
    /// The file was written by a newer posedge.
    #[error(
        "{path} has schema version {found}, newer than this build's {SCHEMA_VERSION}; install the newer posedge or move the file aside"
    )]
    TooNew {
        /// Database file.
        path: String,
        /// Version found.
        found: usize,
    },
}

/// Maps a SQLite error to one that names the database file.
fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> SchemaError + Copy + '_ {
    move |source| SchemaError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

/// Opens the writer connection: WAL, `synchronous=FULL`, schema migrated.
pub fn open_writer(path: &Path) -> Result<Connection, SchemaError> {
    let err = sqlite_err(path);
    let conn = Connection::open(path).map_err(err)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;
         PRAGMA busy_timeout=5000; PRAGMA wal_autocheckpoint=0;
         PRAGMA journal_size_limit=67108864;",
    )
    .map_err(err)?;
    migrate(&conn, path)?;
    Ok(conn)
}

/// Opens the connection of the checkpointer thread (WAL mode is already set).
pub fn open_checkpointer(path: &Path) -> Result<Connection, SchemaError> {
    let err = sqlite_err(path);
    let conn = Connection::open(path).map_err(err)?;
    conn.execute_batch("PRAGMA busy_timeout=5000; PRAGMA synchronous=FULL;")
        .map_err(err)?;
    Ok(conn)
}

/// Opens a reader connection (status, uplink) that never writes.
pub fn open_reader(path: &Path) -> Result<Connection, SchemaError> {
    let err = sqlite_err(path);
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    conn.execute_batch("PRAGMA busy_timeout=5000;")
        .map_err(err)?;
    Ok(conn)
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), SchemaError> {
    let err = sqlite_err(path);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > SCHEMA_VERSION {
        return Err(SchemaError::TooNew {
            path: path.display().to_string(),
            found: version,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        // Each step and its version bump commit together, so a crash mid-migration
        // leaves the previous version intact.
        let batch = format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        );
        if let Err(e) = conn.execute_batch(&batch) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(err(e));
        }
        tracing::info!(version = i + 1, "outbox schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let c = open_writer(&path).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, SCHEMA_VERSION);
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(c);
        open_writer(&path).unwrap();
        let c = Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(c);
        assert!(matches!(
            open_writer(&path),
            Err(SchemaError::TooNew { found: 99, .. })
        ));
    }
}
