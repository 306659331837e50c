//! Read-only queries: what the uplink sends next, and the status snapshot.

use crate::clock::now_ms;
use crate::event::{MessageRef, Part, RowId};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// A queued message as the uplink needs it.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    /// What to mark delivered on its PUBACK.
    pub message: MessageRef,
    /// Register (topic level).
    pub register_id: String,
    /// Event type (topic level).
    pub event_type: String,
    /// The serialised event or derived message.
    pub payload: Vec<u8>,
}

/// The messages still waiting in the rows after `after`, oldest row first and a row's
/// event before its derived message; at most `limit` rows. Row order is commit order,
/// so per-register order is kept by sending in this order.
pub fn queued_after(
    conn: &Connection,
    after: RowId,
    limit: usize,
) -> rusqlite::Result<Vec<QueuedMessage>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.id, o.parts, e.register_id, e.event_type, e.payload, e.derived
         FROM outbox o JOIN events e ON e.id = o.id
         WHERE o.id > ?1 ORDER BY o.id LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![after.0, limit as i64])?;
    let mut out = Vec::with_capacity(limit * 2);
    while let Some(r) = rows.next()? {
        let row = RowId(r.get(0)?);
        let parts: i64 = r.get(1)?;
        let register_id: String = r.get(2)?;
        if parts & Part::Event.bit() != 0 {
            out.push(QueuedMessage {
                message: MessageRef {
                    row,
                    part: Part::Event,
                },
                register_id: register_id.clone(),
                event_type: r.get(3)?,
                payload: r.get(4)?,
            });
        }
        if parts & Part::Derived.bit() != 0
            && let Some(payload) = r.get::<_, Option<Vec<u8>>>(5)?
        {
            out.push(QueuedMessage {
                message: MessageRef {
                    row,
                    part: Part::Derived,
                },
                register_id,
                event_type: crate::ingest::DERIVED_EVENT_TYPE.into(),
                payload,
            });
        }
    }
    Ok(out)
}

/// Per-source counters.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SourceCounters {
    /// Source name.
    pub name: String,
    /// Records read.
    pub received: u64,
    /// Events acknowledged to the register.
    pub acked: u64,
    /// Records refused with a nack.
    pub nacked: u64,
    /// Records in the dead letters.
    pub dead_letters: u64,
    /// Card data items masked or removed.
    pub redacted: u64,
    /// Transactions stored with integrity findings.
    pub integrity_flags: u64,
    /// Highest `seq` assigned.
    pub last_seq: u64,
}

/// An active alarm.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Alarm {
    /// Stable name, e.g. `outbox_full`.
    pub name: String,
    /// What is wrong and what to do.
    pub message: String,
    /// Since when (ms since the epoch).
    pub since_ms: i64,
}

/// Outbox figures.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Events waiting for a PUBACK.
    pub pending: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Age of the oldest waiting event in seconds.
    pub oldest_age_s: Option<u64>,
    /// Dead letters stored.
    pub dead_letters: u64,
}

/// Uplink figures.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UplinkStatus {
    /// Connected to the broker now.
    pub connected: bool,
    /// Last state change detail (error text when down).
    pub detail: Option<String>,
    /// Last PUBACK time, RFC 3339.
    pub last_puback_at: Option<String>,
}

/// Agent liveness.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AgentStatus {
    /// True when the writer's heartbeat is recent.
    pub running: bool,
    /// Process id that wrote the heartbeat.
    pub pid: Option<u32>,
    /// Seconds since the last heartbeat.
    pub heartbeat_age_s: Option<u64>,
}

/// Everything `posedge status` shows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    /// Agent liveness.
    pub agent: AgentStatus,
    /// Queue figures.
    pub outbox: OutboxStatus,
    /// Link figures.
    pub uplink: UplinkStatus,
    /// Per-source counters.
    pub sources: Vec<SourceCounters>,
    /// Active alarms.
    pub alarms: Vec<Alarm>,
}

fn state(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM agent_state WHERE key = ?1", [key], |r| {
        r.get(0)
    })
    .optional()
}

fn count(conn: &Connection, sql: &str) -> rusqlite::Result<u64> {
    conn.query_row(sql, [], |r| r.get::<_, i64>(0))
        .map(|n| u64::try_from(n).unwrap_or(0))
}

/// Reads a consistent snapshot (one read transaction).
pub fn snapshot(conn: &Connection) -> rusqlite::Result<Snapshot> {
    conn.execute_batch("BEGIN")?;
    let result = read_snapshot(conn);
    let _ = conn.execute_batch("COMMIT");
    result
}

fn read_snapshot(conn: &Connection) -> rusqlite::Result<Snapshot> {
    let now = now_ms();
    let oldest: Option<i64> = conn
        .query_row(
            "SELECT e.received_at_ms FROM events e WHERE e.id = (SELECT MIN(id) FROM outbox)",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let ms = |key: &str| -> rusqlite::Result<Option<i64>> {
        Ok(state(conn, key)?.and_then(|v| v.parse().ok()))
    };
    let heartbeat = ms("agent.heartbeat_ms")?;
    let heartbeat_age_s = heartbeat.map(|h| u64::try_from((now - h) / 1000).unwrap_or(0));
    let running = heartbeat_age_s.is_some_and(|a| a <= 10);
    let outbox = OutboxStatus {
        pending: count(conn, "SELECT COUNT(*) FROM outbox")?,
        bytes: count(conn, "SELECT COALESCE(SUM(bytes), 0) FROM outbox")?,
        oldest_age_s: oldest.map(|t| u64::try_from((now - t) / 1000).unwrap_or(0)),
        dead_letters: count(conn, "SELECT COUNT(*) FROM dead_letters")?,
    };
    let uplink = UplinkStatus {
        // A stale row from a dead agent must not claim a live link.
        connected: running && state(conn, "uplink.connected")?.as_deref() == Some("true"),
        detail: state(conn, "uplink.detail")?,
        last_puback_at: ms("uplink.last_puback_ms")?.map(crate::clock::rfc3339_from_ms),
    };
    let mut stmt = conn.prepare(
        "SELECT s.source, s.received, s.acked, s.nacked, s.dead_letters, s.redacted, COALESCE(q.last_seq, 0), s.integrity_flags
         FROM source_stats s LEFT JOIN source_seq q ON q.source = s.source ORDER BY s.source",
    )?;
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    let sources = stmt
        .query_map([], |r| {
            Ok(SourceCounters {
                name: r.get(0)?,
                received: u(r.get(1)?),
                acked: u(r.get(2)?),
                nacked: u(r.get(3)?),
                dead_letters: u(r.get(4)?),
                redacted: u(r.get(5)?),
                last_seq: u(r.get(6)?),
                integrity_flags: u(r.get(7)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare("SELECT name, message, since_ms FROM alarms ORDER BY since_ms")?;
    let alarms = stmt
        .query_map([], |r| {
            Ok(Alarm {
                name: r.get(0)?,
                message: r.get(1)?,
                since_ms: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Snapshot {
        agent: AgentStatus {
            running,
            pid: state(conn, "agent.pid")?.and_then(|p| p.parse().ok()),
            heartbeat_age_s,
        },
        outbox,
        uplink,
        sources,
        alarms,
    })
}

/// One dead letter as operators see it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeadLetterRow {
    /// Row id (the handle for a later replay or purge).
    pub id: i64,
    /// When it was stored, RFC 3339.
    pub at: String,
    /// Source name.
    pub source: String,
    /// Register, when known.
    pub register_id: Option<String>,
    /// Why it was refused.
    pub reason: String,
    /// Size of the kept raw bytes.
    pub raw_bytes: usize,
    /// The kept raw bytes (already redacted), lossily as text, cut at 200 bytes.
    pub raw_preview: String,
}

/// The newest `limit` dead letters, newest first.
pub fn dead_letters(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<DeadLetterRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, received_at_ms, source, register_id, reason, raw FROM dead_letters ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        let raw: Vec<u8> = r.get(5)?;
        let preview = String::from_utf8_lossy(&raw[..raw.len().min(200)]).into_owned();
        Ok(DeadLetterRow {
            id: r.get(0)?,
            at: crate::clock::rfc3339_from_ms(r.get(1)?),
            source: r.get(2)?,
            register_id: r.get(3)?,
            reason: r.get(4)?,
            raw_bytes: raw.len(),
            raw_preview: preview,
        })
    })?;
    rows.collect()
}

/// Events waiting for the uplink, for one register.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QueuedByRegister {
    /// Register id.
    pub register_id: String,
    /// Events waiting.
    pub pending: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Oldest waiting event's receive time, RFC 3339.
    pub oldest_at: String,
}

/// The queue per register, largest first.
pub fn queued_by_register(conn: &Connection) -> rusqlite::Result<Vec<QueuedByRegister>> {
    let mut stmt = conn.prepare(
        "SELECT e.register_id, COUNT(*), SUM(o.bytes), MIN(e.received_at_ms)
         FROM outbox o JOIN events e ON e.id = o.id GROUP BY e.register_id ORDER BY COUNT(*) DESC",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(QueuedByRegister {
            register_id: r.get(0)?,
            pending: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
            bytes: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            oldest_at: crate::clock::rfc3339_from_ms(r.get(3)?),
        })
    })?;
    rows.collect()
}

/// Audit entries after `after` (by id, oldest first); only unpublished ones when
/// `unpublished`. `posedge audit` lists them and the uplink publishes them.
pub fn audit_entries(
    conn: &Connection,
    after: i64,
    limit: usize,
    unpublished: bool,
) -> rusqlite::Result<Vec<crate::ops::audit::Stored>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at_ms, actor, action, outcome, detail, published FROM audit
         WHERE id > ?1 AND (?2 = 0 OR published = 0) ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![after, i64::from(unpublished), limit as i64],
        audit_row,
    )?;
    rows.collect()
}

/// The newest `limit` audit entries, oldest first.
pub fn recent_audit(
    conn: &Connection,
    limit: usize,
) -> rusqlite::Result<Vec<crate::ops::audit::Stored>> {
    let mut stmt = conn.prepare(
        "SELECT id, at_ms, actor, action, outcome, detail, published FROM audit
         ORDER BY id DESC LIMIT ?1",
    )?;
    let mut rows = stmt
        .query_map([limit as i64], audit_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.reverse();
    Ok(rows)
}

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<crate::ops::audit::Stored> {
    Ok(crate::ops::audit::Stored {
        id: r.get(0)?,
        at: crate::clock::rfc3339_from_ms(r.get(1)?),
        actor: r.get(2)?,
        action: r.get(3)?,
        outcome: r.get(4)?,
        detail: r.get(5)?,
        published: r.get::<_, i64>(6)? != 0,
    })
}

/// The digest of the config the agent last started with.
pub fn config_digest(conn: &Connection) -> rusqlite::Result<Option<String>> {
    state(conn, super::writer::CONFIG_DIGEST)
}

/// A read connection shareable across await points (the uplink holds it in a task).
pub struct Reader(std::sync::Mutex<Connection>);

impl Reader {
    /// Wraps a read-only connection.
    pub fn new(conn: Connection) -> Self {
        Reader(std::sync::Mutex::new(conn))
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        // A panic while holding the lock cannot leave a read connection inconsistent.
        let conn = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }

    /// See [`queued_after`].
    pub fn queued_after(&self, after: RowId, limit: usize) -> rusqlite::Result<Vec<QueuedMessage>> {
        self.with(|c| queued_after(c, after, limit))
    }

    /// See [`snapshot`].
    pub fn snapshot(&self) -> rusqlite::Result<Snapshot> {
        self.with(snapshot)
    }

    /// Unpublished audit entries after `after`, oldest first (see [`audit_entries`]).
    pub fn unpublished_audit(
        &self,
        after: i64,
        limit: usize,
    ) -> rusqlite::Result<Vec<crate::ops::audit::Stored>> {
        self.with(|c| audit_entries(c, after, limit, true))
    }

    /// End-of-day summaries not yet acknowledged by the broker: (day, revision, payload).
    pub fn unpublished_summaries(&self) -> rusqlite::Result<Vec<(String, u64, Vec<u8>)>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT business_day, revision, payload FROM summaries WHERE published = 0 ORDER BY business_day",
            )?
            .query_map([], |r| {
                Ok((r.get(0)?, u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0), r.get(2)?))
            })?
            .collect()
        })
    }

    /// See [`config_digest`].
    pub fn config_digest(&self) -> rusqlite::Result<Option<String>> {
        self.with(config_digest)
    }
}
