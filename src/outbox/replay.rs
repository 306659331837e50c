//! Dead-letter replay and purge. An operator asks through the CLI (`posedge queue replay`,
//! `posedge queue purge`); a replay request is a row the running agent's writer picks
//! up, because only the writer may assign `seq`. The writer re-runs the source's decoder,
//! mapping and redactor over the stored (already redacted) bytes, stores what now
//! decodes and removes the letter. Both are audited with the operator as actor.

use crate::ops::audit::{Action, Actor, Entry, Outcome};
use rusqlite::{Connection, OptionalExtension, params};

/// Which dead letters an operator means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These ids.
    Ids(Vec<i64>),
    /// Every dead letter present when the request is handled.
    All,
}

/// Who is at the keyboard, for the audit trail: the invoking user behind sudo, else the
/// process user.
pub fn operator() -> String {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is the process's real user; no libc call needed.
    let uid = std::fs::metadata("/proc/self").map_or_else(|_| "?".into(), |m| m.uid().to_string());
    match std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")) {
        Ok(name) => format!("{name} (uid {uid})"),
        Err(_) => format!("uid {uid}"),
    }
}

/// Queues a replay request for the agent; returns how many letters it names (for `All`,
/// how many exist now).
pub fn request(conn: &Connection, what: &Selection, by: &str) -> rusqlite::Result<usize> {
    let now = crate::clock::now_ms();
    let tx = conn.unchecked_transaction()?;
    let n = match what {
        Selection::All => {
            tx.execute(
                "INSERT INTO replay_requests (dead_letter_id, requested_at_ms, requested_by) VALUES (NULL, ?1, ?2)",
                params![now, by],
            )?;
            tx.query_row("SELECT COUNT(*) FROM dead_letters", [], |r| {
                r.get::<_, i64>(0)
            })? as usize
        }
        Selection::Ids(ids) => {
            for id in ids {
                tx.execute(
                    "INSERT INTO replay_requests (dead_letter_id, requested_at_ms, requested_by) VALUES (?1, ?2, ?3)",
                    params![id, now, by],
                )?;
            }
            ids.len()
        }
    };
    tx.commit()?;
    Ok(n)
}

/// Deletes dead letters for good and audits it in the same transaction; returns how many
/// went.
pub fn purge(conn: &Connection, what: &Selection, by: &str) -> rusqlite::Result<usize> {
    let tx = conn.unchecked_transaction()?;
    let n = match what {
        Selection::All => tx.execute("DELETE FROM dead_letters", [])?,
        Selection::Ids(ids) => {
            let mut n = 0;
            for id in ids {
                n += tx.execute("DELETE FROM dead_letters WHERE id = ?1", [id])?;
            }
            n
        }
    };
    let which = match what {
        Selection::All => "all".to_string(),
        Selection::Ids(ids) => format!("ids {ids:?}"),
    };
    let entry = Entry::new(
        Actor::Operator,
        Action::DeadLettersPurged,
        Outcome::Success,
        &format!("{n} dead letter(s) deleted ({which}) by {by}"),
    );
    super::writer::insert_audit(&tx, &entry, crate::clock::now_ms())?;
    tx.commit()?;
    Ok(n)
}

/// A dead letter to replay, with who asked.
pub(super) struct Pending {
    pub id: i64,
    pub source: String,
    pub raw: Vec<u8>,
    pub by: String,
}

/// Takes the queued requests (removing them) and returns the letters they name that
/// still exist, each once, oldest first. Letters named but gone are audited as failures.
pub(super) fn take_requests(conn: &Connection) -> rusqlite::Result<Vec<Pending>> {
    let tx = conn.unchecked_transaction()?;
    let requests: Vec<(Option<i64>, String)> = tx
        .prepare("SELECT dead_letter_id, requested_by FROM replay_requests ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let mut wanted: Vec<(i64, String)> = Vec::new();
    for (id, by) in requests {
        match id {
            Some(id) => wanted.push((id, by)),
            None => {
                let all: Vec<i64> = tx
                    .prepare("SELECT id FROM dead_letters ORDER BY id")?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                wanted.extend(all.into_iter().map(|id| (id, by.clone())));
            }
        }
    }
    wanted.sort_by_key(|(id, _)| *id);
    wanted.dedup_by_key(|(id, _)| *id);
    let now = crate::clock::now_ms();
    let mut out = Vec::new();
    for (id, by) in wanted {
        let row: Option<(String, Vec<u8>)> = tx
            .query_row(
                "SELECT source, raw FROM dead_letters WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            Some((source, raw)) => out.push(Pending {
                id,
                source,
                raw,
                by,
            }),
            None => {
                let entry = Entry::new(
                    Actor::Operator,
                    Action::DeadLetterReplayed,
                    Outcome::Failure,
                    &format!("dead letter #{id} does not exist (requested by {by})"),
                );
                super::writer::insert_audit(&tx, &entry, now)?;
            }
        }
    }
    tx.execute("DELETE FROM replay_requests", [])?;
    tx.commit()?;
    Ok(out)
}

/// Records how a replay ended: the letter goes when everything in it was stored.
pub(super) fn finish(
    conn: &Connection,
    letter: &Pending,
    outcome: Result<usize, String>,
) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    let (result, detail) = match outcome {
        Ok(events) => {
            tx.execute("DELETE FROM dead_letters WHERE id = ?1", [letter.id])?;
            (
                Outcome::Success,
                format!(
                    "dead letter #{} (source {}) replayed: {events} event(s) stored; requested by {}",
                    letter.id, letter.source, letter.by
                ),
            )
        }
        Err(reason) => (
            Outcome::Failure,
            format!(
                "dead letter #{} (source {}) still refused: {reason}; requested by {}",
                letter.id, letter.source, letter.by
            ),
        ),
    };
    let entry = Entry::new(Actor::Operator, Action::DeadLetterReplayed, result, &detail);
    super::writer::insert_audit(&tx, &entry, crate::clock::now_ms())?;
    tx.commit()
}
