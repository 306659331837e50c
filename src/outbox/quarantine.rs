//! A store that fails its check at start is moved aside, never deleted, and what can be
//! read of it is copied into a fresh store, so corruption never stops trading
//! (DESIGN §2.6).
//!
//! The check is SQLite's `quick_check` when the files are small enough to scan within
//! the start budget (ready ≤ 500 ms with 1M events queued); a larger store is checked
//! by opening it and reading its schema and the ends of its tables, which finds a
//! damaged header, a file that is not a database and damaged roots. Only corruption
//! moves a file: any other failure (permissions, a full disk) is an error for the
//! operator, because moving a healthy store aside would hide its events.
//!
//! Salvage copies, table by table and in blocks of ids, every row that can still be
//! read: events with their ids, `seq`, keys and payloads (pending ones queued again;
//! when the pending set itself is unreadable every salvaged event is queued, since a
//! duplicate is absorbed by the cloud and a loss is not), the seq counters (never
//! lower than the highest salvaged `seq`, so `seq` never repeats), dead letters, the
//! audit trail and the end-of-day summaries.

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use std::path::{Path, PathBuf};

/// Files up to this size (main + WAL) get a full `quick_check` at start.
pub const QUICK_CHECK_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Ids read per block while salvaging; a block that fails is read id by id.
const BLOCK: i64 = 256;

/// What the start check did with a corrupt store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Where the damaged file now is.
    pub moved_to: PathBuf,
    /// What the check found.
    pub reason: String,
    /// What was copied into the fresh store.
    pub salvaged: Salvaged,
}

/// Rows copied out of a quarantined store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Salvaged {
    /// Events copied.
    pub events: u64,
    /// Of those, queued for the uplink again.
    pub requeued: u64,
    /// Dead letters copied.
    pub dead_letters: u64,
    /// Audit entries copied.
    pub audit: u64,
    /// Rows that could not be read (an estimate from the ids around them).
    pub unreadable: u64,
}

/// The check or the salvage failed for a reason other than corruption.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    /// SQLite failed on the healthy side (the fresh store) or could not open the file.
    #[error("{path}: {source}")]
    Sqlite {
        /// Database file.
        path: String,
        /// The error.
        source: rusqlite::Error,
    },
    /// Moving the files aside failed.
    #[error("cannot move {path} aside: {source}")]
    Move {
        /// Database file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The fresh store could not be created.
    #[error(transparent)]
    Schema(#[from] super::schema::SchemaError),
}

/// Checks the store at `path` before the writer opens it; a corrupt one is quarantined
/// and salvaged into a fresh store at the same path.
pub fn check(path: &Path) -> Result<Option<Quarantined>, QuarantineError> {
    if !path.exists() {
        return Ok(None);
    }
    let Some(reason) = find_corruption(path)? else {
        return Ok(None);
    };
    tracing::error!(path = %path.display(), %reason, "the outbox database is corrupt; moving it aside and salvaging what can be read");
    let moved_to = move_aside(path)?;
    let fresh = super::schema::open_writer(path)?;
    let salvaged = salvage(&moved_to, &fresh).map_err(|source| QuarantineError::Sqlite {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Some(Quarantined {
        moved_to,
        reason,
        salvaged,
    }))
}

/// Quarantined files still next to the store (the operator removes them once read).
pub fn leftovers(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.quarantined-", name.to_string_lossy());
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().map(|n| n.to_string_lossy()).is_some_and(|n| {
                n.starts_with(&prefix) && !n.ends_with("-wal") && !n.ends_with("-shm")
            })
        })
        .collect();
    found.sort();
    found
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// With a suffix appended to the file name (`outbox.db` → `outbox.db-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `Some(what is wrong)` for a corrupt store, `None` for a healthy one.
fn find_corruption(path: &Path) -> Result<Option<String>, QuarantineError> {
    let err = |source| QuarantineError::Sqlite {
        path: path.display().to_string(),
        source,
    };
    let conn = Connection::open(path).map_err(err)?;
    let size = file_len(path) + file_len(&with_suffix(path, "-wal"));
    let probe = if size <= QUICK_CHECK_MAX_BYTES {
        quick_check(&conn)
    } else {
        probe_ends(&conn).map(|()| None)
    };
    match probe {
        Ok(found) => Ok(found),
        Err(e) if is_corruption(&e) => Ok(Some(e.to_string())),
        Err(e) => Err(err(e)),
    }
}

fn quick_check(conn: &Connection) -> rusqlite::Result<Option<String>> {
    let mut stmt = conn.prepare("PRAGMA quick_check(5)")?;
    let lines = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((lines != ["ok"]).then(|| format!("quick_check: {}", lines.join("; "))))
}

/// Reads what a large store cannot do without: its header, schema and the first and
/// last rows of every table (the b-tree roots and edges).
fn probe_ends(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for t in tables {
        for order in ["ASC", "DESC"] {
            conn.query_row(
                &format!("SELECT * FROM \"{t}\" ORDER BY rowid {order} LIMIT 1"),
                [],
                |_| Ok(()),
            )
            .optional()?;
        }
    }
    Ok(())
}

/// Renames the store and its WAL and shared-memory files to
/// `<name>.quarantined-<unix ms>[-wal|-shm]` and makes the renames durable.
fn move_aside(path: &Path) -> Result<PathBuf, QuarantineError> {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let dest = with_suffix(path, &format!(".quarantined-{at}"));
    let moved = |source| QuarantineError::Move {
        path: path.display().to_string(),
        source,
    };
    std::fs::rename(path, &dest).map_err(moved)?;
    for suffix in ["-wal", "-shm"] {
        let from = with_suffix(path, suffix);
        if from.exists() {
            std::fs::rename(&from, with_suffix(&dest, suffix)).map_err(moved)?;
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(moved)?;
    }
    Ok(dest)
}

/// One table's copy: how to read a block of rows by id and how to write one.
struct Copy<'a> {
    /// `SELECT … FROM t WHERE id > ?1 ORDER BY id LIMIT ?2` with `id` first.
    select: &'a str,
    /// `INSERT OR IGNORE INTO t (…) VALUES (…)` taking the selected columns in order.
    insert: &'a str,
    /// Columns selected.
    columns: usize,
    /// Table name, for `max(id)`.
    table: &'a str,
}

/// Copies every readable row; returns (copied, unreadable ids).
fn copy_table(old: &Connection, new: &Connection, c: &Copy) -> rusqlite::Result<(u64, u64)> {
    // An unreadable maximum leaves only what a scan reaches before the first error.
    let max: Option<i64> =
        match old.query_row(&format!("SELECT max(id) FROM {}", c.table), [], |r| {
            r.get::<_, Option<i64>>(0)
        }) {
            Ok(m) => Some(m.unwrap_or(0)),
            Err(e) if is_corruption(&e) => None,
            Err(e) => return Err(e),
        };
    let mut insert = new.prepare(c.insert)?;
    let mut put = |rows: Vec<Vec<rusqlite::types::Value>>| -> rusqlite::Result<u64> {
        let mut n = 0;
        for row in rows {
            n += insert.execute(rusqlite::params_from_iter(row))? as u64;
        }
        Ok(n)
    };
    let (mut copied, mut unreadable) = (0u64, 0u64);
    let mut last = 0i64;
    loop {
        match read_rows(old, c, last, BLOCK) {
            Ok(rows) => {
                let Some(end) = rows.last().and_then(|r| match r.first() {
                    Some(rusqlite::types::Value::Integer(id)) => Some(*id),
                    _ => None,
                }) else {
                    break;
                };
                copied += put(rows)?;
                last = end;
            }
            Err(e) if !is_corruption(&e) => return Err(e),
            Err(_) => {
                let Some(max) = max.filter(|m| *m > last) else {
                    break;
                };
                // Id by id past the damage: a bad page loses its own rows, not the
                // table's tail.
                let upto = last.saturating_add(BLOCK).min(max);
                for id in last + 1..=upto {
                    match read_rows(old, c, id - 1, 1) {
                        Ok(rows) => copied += put(rows)?,
                        Err(_) => unreadable += 1,
                    }
                }
                last = upto;
            }
        }
    }
    Ok((copied, unreadable))
}

fn read_rows(
    old: &Connection,
    c: &Copy,
    after: i64,
    limit: i64,
) -> rusqlite::Result<Vec<Vec<rusqlite::types::Value>>> {
    let mut stmt = old.prepare_cached(c.select)?;
    let rows = stmt.query_map(params![after, limit], |r| {
        (0..c.columns).map(|i| r.get(i)).collect()
    })?;
    rows.collect()
}

/// Copies what can be read of the quarantined store into the fresh one, in one
/// transaction.
fn salvage(old_path: &Path, new: &Connection) -> rusqlite::Result<Salvaged> {
    let old = Connection::open(old_path)?;
    old.execute_batch("PRAGMA query_only = 1;")?;
    let tx = new.unchecked_transaction()?;
    let mut s = Salvaged::default();
    // A store from before schema v7 has no derived columns: its derived messages are
    // rows of their own, copied like the rest.
    let v7 = old
        .prepare("SELECT derived_seq, derived, parts FROM events, outbox LIMIT 0")
        .is_ok();
    let (derived, parts) = if v7 {
        ("derived_seq, derived", "parts")
    } else {
        ("NULL, NULL", "1")
    };
    let select = format!(
        "SELECT id, event_id, idempotency_key, source, seq, register_id, event_type, payload, received_at_ms, {derived}
                 FROM events WHERE id > ?1 ORDER BY id LIMIT ?2"
    );
    let events = Copy {
        select: &select,
        insert: "INSERT OR IGNORE INTO events (id, event_id, idempotency_key, source, seq, register_id, event_type, payload, received_at_ms, derived_seq, derived)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        columns: 11,
        table: "events",
    };
    let (n, bad) = copy_table(&old, &tx, &events)?;
    s.events = n;
    s.unreadable += bad;
    tx.execute_batch(
        "UPDATE events SET business_day = json_extract(CAST(payload AS TEXT), '$.business_day')
             WHERE json_valid(CAST(payload AS TEXT));
         UPDATE events SET business_day = NULL WHERE business_day IS NOT NULL
             AND business_day NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]';",
    )?;

    // The pending set: its ids when they can be read, else every salvaged event.
    let select = format!("SELECT id, {parts} FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2");
    let pending = Copy {
        select: &select,
        insert: concat!(
            "INSERT OR IGNORE INTO outbox (id, bytes, parts) SELECT id, ",
            row_bytes_sql!(),
            ", ?2 FROM events WHERE id = ?1"
        ),
        columns: 2,
        table: "outbox",
    };
    let (n, bad) = copy_table(&old, &tx, &pending)?;
    s.requeued = if bad > 0 {
        tracing::warn!(
            unreadable = bad,
            "the pending set is damaged: every salvaged event is queued again"
        );
        tx.execute(
            concat!(
                "INSERT OR IGNORE INTO outbox (id, bytes, parts) SELECT id, ",
                row_bytes_sql!(),
                ", ",
                row_parts_sql!(),
                " FROM events"
            ),
            [],
        )? as u64
    } else {
        n
    };

    // Counters: what the old table says where readable, never below a salvaged seq.
    let seqs: Vec<(String, i64)> = old
        .prepare("SELECT source, last_seq FROM source_seq")
        .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the seq counters are unreadable; taking them from the salvaged events");
            Vec::new()
        });
    for (source, last) in seqs {
        tx.execute(
            "INSERT INTO source_seq (source, last_seq) VALUES (?1, ?2)
             ON CONFLICT (source) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
            params![source, last],
        )?;
    }
    tx.execute(
        "INSERT INTO source_seq (source, last_seq)
           SELECT source, max(seq) FROM events GROUP BY source
           UNION ALL
           SELECT source || ?1, max(derived_seq) FROM events WHERE derived_seq IS NOT NULL GROUP BY source
         ON CONFLICT (source) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
        [crate::ingest::DERIVED_LANE_SUFFIX],
    )?;

    let dead = Copy {
        select: "SELECT id, source, register_id, reason, raw, received_at_ms
                 FROM dead_letters WHERE id > ?1 ORDER BY id LIMIT ?2",
        insert: "INSERT OR IGNORE INTO dead_letters (id, source, register_id, reason, raw, received_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        columns: 6,
        table: "dead_letters",
    };
    let (n, bad) = copy_table(&old, &tx, &dead).or_else(absent_table)?;
    s.dead_letters = n;
    s.unreadable += bad;
    let audit = Copy {
        select: "SELECT id, at_ms, actor, action, outcome, detail, published
                 FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2",
        insert: "INSERT OR IGNORE INTO audit (id, at_ms, actor, action, outcome, detail, published)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        columns: 7,
        table: "audit",
    };
    let (n, bad) = copy_table(&old, &tx, &audit).or_else(absent_table)?;
    s.audit = n;
    s.unreadable += bad;
    // Revisions carry on from the last one the cloud saw; a lost summary is recomputed.
    let summaries: Vec<Vec<rusqlite::types::Value>> = old
        .prepare("SELECT business_day, revision, closed, payload, through_id, computed_at_ms, published FROM summaries")
        .and_then(|mut st| st.query_map([], |r| (0..7).map(|i| r.get(i)).collect())?.collect())
        .unwrap_or_default();
    for row in summaries {
        tx.execute(
            "INSERT OR IGNORE INTO summaries (business_day, revision, closed, payload, through_id, computed_at_ms, published)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params_from_iter(row),
        )?;
    }
    tx.commit()?;
    Ok(s)
}

/// A table an older or damaged schema lacks counts as empty.
fn absent_table(e: rusqlite::Error) -> rusqlite::Result<(u64, u64)> {
    match &e {
        rusqlite::Error::SqliteFailure(_, Some(m)) if m.contains("no such table") => Ok((0, 0)),
        _ if is_corruption(&e) => Ok((0, 0)),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    /// A store with `n` events of ~300 bytes, `pending` of them queued, all in the
    /// main file.
    fn store(path: &Path, n: i64, pending: i64) {
        let c = super::super::schema::open_writer(path).unwrap();
        let tx = c.unchecked_transaction().unwrap();
        for i in 1..=n {
            let payload = format!(
                r#"{{"business_day":"2026-11-27","seq":{i},"pad":"{}"}}"#,
                "x".repeat(300)
            );
            tx.execute(
                "INSERT INTO events (event_id, idempotency_key, source, seq, register_id, event_type, payload, received_at_ms)
                 VALUES (?1, ?2, 'lane1', ?3, 'r1', 'transaction', ?4, 0)",
                params![format!("e{i}"), format!("k{i}"), i, payload.as_bytes()],
            )
            .unwrap();
        }
        tx.execute(
            "INSERT INTO outbox (id, bytes) SELECT id, length(payload) FROM events WHERE id > ?1",
            [n - pending],
        )
        .unwrap();
        tx.execute("INSERT INTO source_seq VALUES ('lane1', ?1)", [n])
            .unwrap();
        tx.execute(
            "INSERT INTO dead_letters (source, reason, raw, received_at_ms) VALUES ('lane1', 'bad', x'00', 0)",
            [],
        )
        .unwrap();
        tx.commit().unwrap();
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    }

    fn smash(path: &Path, page: u64, pages: u64) {
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.seek(SeekFrom::Start(page * 4096)).unwrap();
        f.write_all(&vec![0xA5; (pages * 4096) as usize]).unwrap();
        f.sync_all().unwrap();
    }

    #[test]
    fn a_healthy_store_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        assert_eq!(check(&path).unwrap(), None, "no file yet");
        store(&path, 50, 10);
        assert_eq!(check(&path).unwrap(), None);
        assert!(leftovers(&path).is_empty());
    }

    #[test]
    fn damaged_pages_are_quarantined_and_the_rest_salvaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        store(&path, 2000, 2000);
        let pages = file_len(&path) / 4096;
        smash(&path, pages / 2, 2);

        let q = check(&path).unwrap().expect("corruption found");
        assert!(
            q.reason.contains("quick_check") || q.reason.contains("malformed"),
            "{q:?}"
        );
        assert!(q.moved_to.exists(), "the damaged file is kept");
        assert_eq!(leftovers(&path), vec![q.moved_to.clone()]);
        let s = &q.salvaged;
        assert!(s.events > 1500 && s.events < 2000, "{s:?}");
        assert_eq!(
            s.requeued, s.events,
            "every pending event salvaged is queued"
        );
        assert!(s.unreadable > 0);
        assert_eq!(s.dead_letters, 1);

        let c = Connection::open(&path).unwrap();
        let verdict: String = c.query_row("PRAGMA quick_check", [], |r| r.get(0)).unwrap();
        assert_eq!(verdict, "ok");
        let last: i64 = c
            .query_row(
                "SELECT last_seq FROM source_seq WHERE source = 'lane1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(last, 2000, "seq goes on after the highest ever assigned");
        let (pending, day): (i64, i64) = c
            .query_row(
                "SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM events WHERE business_day = '2026-11-27')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((pending as u64, day as u64), (s.events, s.events));
        drop(c);
        assert_eq!(check(&path).unwrap(), None, "the fresh store passes");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        std::fs::write(&path, vec![0x42; 8192]).unwrap();
        let q = check(&path).unwrap().expect("not a database");
        assert_eq!(q.salvaged, Salvaged::default());
        assert_eq!(std::fs::read(&q.moved_to).unwrap(), vec![0x42; 8192]);
        let c = super::super::schema::open_writer(&path).unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn a_large_store_is_probed_not_scanned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        store(&path, 100, 0);
        let c = Connection::open(&path).unwrap();
        probe_ends(&c).unwrap();
        drop(c);
        smash(&path, 0, 1);
        let c = Connection::open(&path).unwrap();
        assert!(probe_ends(&c).is_err_and(|e| is_corruption(&e)));
    }
}
