//! The cloud's `resync` command: archived events of one source lane and `seq` range are
//! queued again, so the uplink re-publishes them with their original ids.

use crate::event::{MessageRef, Part, RowId};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

/// Most events one request may name.
pub const MAX_SPAN: u64 = 100_000;

/// A request as the cloud sends it on `…/_agent/cmd/resync`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        title = "posedge resync request",
        description = "The cloud asks the agent to queue the archived events of one source lane and seq range again (…/_agent/cmd/resync). Beyond this schema the agent refuses a range where to_seq < from_seq or to_seq - from_seq >= 100000; it answers on …/_agent/reply/{id}."
    )
)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The cloud's request id; names the reply topic.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = crate::model::schema::TOPIC_SAFE)))]
    pub id: String,
    /// Source lane (`lane1`, `lane1.inventory`).
    pub source: String,
    /// First `seq`, inclusive.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub from_seq: u64,
    /// Last `seq`, inclusive.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub to_seq: u64,
}

/// Why a request was refused before anything was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not the JSON of a [`Request`].
    #[error("not a resync request: {0}")]
    Malformed(String),
    /// The id cannot name a topic level.
    #[error("id must be 1–64 characters of A–Z a–z 0–9 _ - .")]
    BadId,
    /// Empty, inverted or too long a range.
    #[error(
        "seq range {from}–{to} must be ascending, start at 1 or later, and span at most {MAX_SPAN}"
    )]
    BadRange {
        /// First.
        from: u64,
        /// Last.
        to: u64,
    },
}

impl Request {
    /// Parses and checks a command payload.
    pub fn parse(payload: &[u8]) -> Result<Request, Refused> {
        let r: Request = serde_json::from_slice(payload)
            .map_err(|e| Refused::Malformed(e.to_string().chars().take(200).collect()))?;
        if !crate::config::is_topic_safe(&r.id) {
            return Err(Refused::BadId);
        }
        if r.from_seq == 0 || r.to_seq < r.from_seq || r.to_seq - r.from_seq >= MAX_SPAN {
            return Err(Refused::BadRange {
                from: r.from_seq,
                to: r.to_seq,
            });
        }
        Ok(r)
    }
}

/// What a request did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Done {
    /// Messages queued again, by ascending row.
    #[serde(skip)]
    pub messages: Vec<MessageRef>,
    /// Their rows' bytes, now pending again.
    #[serde(skip)]
    pub bytes: u64,
    /// Events of the range already queued (they go out anyway).
    pub already_queued: u64,
    /// Sub-ranges not in the archive (pruned, or never stored).
    pub missing: Vec<(u64, u64)>,
}

impl Done {
    /// Messages queued again (the reply's `requeued`).
    pub fn requeued(&self) -> usize {
        self.messages.len()
    }
}

/// Queues the archived events of the request again, inside the caller's transaction.
/// A derived lane's messages live in their events' rows (`derived_seq`), or, when stored
/// before schema v7, in rows of their own on the lane.
pub(super) fn requeue(tx: &Connection, r: &Request) -> rusqlite::Result<Done> {
    let mut done = Done::default();
    let mut next = r.from_seq;
    let base = r.source.strip_suffix(crate::ingest::DERIVED_LANE_SUFFIX);
    let mut stmt = tx.prepare_cached(concat!(
        "SELECT id, seq, 1, bytes, parts FROM (SELECT e.id, e.seq, ",
        row_bytes_sql!(),
        " AS bytes, (SELECT o.parts FROM outbox o WHERE o.id = e.id) AS parts
           FROM events e WHERE e.source = ?1 AND e.seq BETWEEN ?2 AND ?3)
         UNION ALL
         SELECT id, derived_seq, 2, bytes, parts FROM (SELECT e.id, e.derived_seq, ",
        row_bytes_sql!(),
        " AS bytes, (SELECT o.parts FROM outbox o WHERE o.id = e.id) AS parts
           FROM events e WHERE e.source = ?4 AND e.derived_seq BETWEEN ?2 AND ?3)
         ORDER BY 2"
    ))?;
    let found = stmt
        .query_map(
            params![r.source, r.from_seq as i64, r.to_seq as i64, base],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                ))
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    for (id, seq, bit, bytes, parts) in found {
        let seq = u64::try_from(seq).unwrap_or(0);
        if seq > next {
            done.missing.push((next, seq - 1));
        }
        next = seq + 1;
        match parts {
            Some(p) if p & bit != 0 => {
                done.already_queued += 1;
                continue;
            }
            // The row waits for its other message: this one joins it.
            Some(_) => {
                tx.prepare_cached("UPDATE outbox SET parts = parts | ?2 WHERE id = ?1")?
                    .execute([id, bit])?;
            }
            None => {
                tx.prepare_cached("INSERT INTO outbox (id, bytes, parts) VALUES (?1, ?2, ?3)")?
                    .execute([id, bytes, bit])?;
                done.bytes += u64::try_from(bytes).unwrap_or(0);
            }
        }
        done.messages.push(MessageRef {
            row: RowId(id),
            part: Part::of_bit(bit),
        });
    }
    if next <= r.to_seq {
        done.missing.push((next, r.to_seq));
    }
    done.messages.sort_unstable();
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_before_anything_is_queued() {
        let ok = br#"{"id":"r-1","source":"lan","from_seq":3,"to_seq":9}"#;
        assert_eq!(Request::parse(ok).unwrap().to_seq, 9);
        for (bad, want) in [
            (
                &br#"{"id":"r/1","source":"lan","from_seq":3,"to_seq":9}"#[..],
                "id must",
            ),
            (
                br#"{"id":"r","source":"lan","from_seq":9,"to_seq":3}"#,
                "ascending",
            ),
            (
                br#"{"id":"r","source":"lan","from_seq":0,"to_seq":3}"#,
                "ascending",
            ),
            (
                br#"{"id":"r","source":"lan","from_seq":1,"to_seq":100001}"#,
                "at most",
            ),
            (br#"{"id":"r","source":"lan"}"#, "not a resync"),
            (
                br#"{"id":"r","source":"lan","from_seq":1,"to_seq":2,"x":1}"#,
                "not a resync",
            ),
        ] {
            let e = Request::parse(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn archived_rows_are_queued_again_and_holes_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::schema::open_writer(&dir.path().join("o.db")).unwrap();
        for seq in [1i64, 2, 3, 5, 6] {
            conn.execute(
                "INSERT INTO events (event_id, idempotency_key, source, seq, register_id, event_type, payload, received_at_ms)
                 VALUES (?1, ?1, 'lan', ?2, 'r', 'transaction', x'7b7d', 0)",
                params![format!("k{seq}"), seq],
            )
            .unwrap();
        }
        // seq 6 is still queued; the others were delivered.
        conn.execute(
            "INSERT INTO outbox (id, bytes) SELECT id, 2 FROM events WHERE seq = 6",
            [],
        )
        .unwrap();
        let r = Request::parse(br#"{"id":"a","source":"lan","from_seq":2,"to_seq":8}"#).unwrap();
        let done = requeue(&conn, &r).unwrap();
        assert_eq!(done.requeued(), 3);
        assert_eq!((done.bytes, done.already_queued), (6, 1));
        assert_eq!(done.missing, vec![(4, 4), (7, 8)]);
        let queued: i64 = conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
            .unwrap();
        assert_eq!(queued, 4);
        // Asking again queues nothing twice.
        let again = requeue(&conn, &r).unwrap();
        assert_eq!((again.requeued(), again.already_queued), (0, 4));
    }
}
