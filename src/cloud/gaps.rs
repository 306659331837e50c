//! Gap tracking: per store and lane, the `seq` ranges that have not arrived. A gap older
//! than the grace period is asked for with a `resync` command; the request and its reply
//! are recorded, so a gap is asked for a bounded number of times and a store that no
//! longer has the events (`missing` in the reply) is not asked again.

use super::config::GapSettings;
use super::db::DbError;
use super::ranges::{SeqRange, holes};
use super::topic::StoreKey;
use crate::outbox::resync;
use std::collections::BTreeMap;
use tokio_postgres::{Client, Transaction};

/// One lane's due gaps (ascending) as few requests as the span bound allows: a request
/// from the first gap's start to the last covered gap's end (what lies between arrived
/// already and comes again as duplicates, absorbed), with the gaps each one covers. A gap
/// longer than the bound is split, and counted against its last piece.
fn requests(gaps: &[SeqRange], max: u64) -> Vec<(SeqRange, Vec<SeqRange>)> {
    let mut out: Vec<(SeqRange, Vec<SeqRange>)> = Vec::new();
    for g in gaps {
        if let Some((span, covered)) = out.last_mut()
            && g.to - span.from < max
        {
            span.to = g.to;
            covered.push(*g);
            continue;
        }
        let pieces: Vec<SeqRange> = g.chunks(max).collect();
        let last = pieces.len() - 1;
        for (i, p) in pieces.into_iter().enumerate() {
            out.push((p, if i == last { vec![*g] } else { Vec::new() }));
        }
    }
    out
}

/// Advisory lock key: one instance at a time scans, so two never ask for the same gap.
const SCAN_LOCK: i64 = 0x706f_7365_6467_6502;

/// A resync request to publish to a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// The store.
    pub key: StoreKey,
    /// The command.
    pub request: resync::Request,
}

/// A lane of one store.
struct Lane {
    key: StoreKey,
    source: String,
    contiguous: u64,
    known_high: u64,
}

/// A stored gap.
struct Stored {
    range: SeqRange,
    state: String,
}

/// One pass: updates the gaps from what arrived and returns the requests now due (already
/// recorded: publish them after this returns).
pub async fn scan(client: &mut Client, settings: &GapSettings) -> Result<Vec<Ask>, DbError> {
    let tx = client.transaction().await?;
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SCAN_LOCK])
        .await?
        .get(0);
    if !locked {
        return Ok(Vec::new());
    }
    let lanes: Vec<Lane> = tx
        .query(
            "SELECT tenant_id, store_id, source, contiguous, known_high FROM lanes l
             WHERE known_high > contiguous
                OR EXISTS (SELECT 1 FROM gaps g WHERE g.state <> 'closed' AND g.tenant_id = l.tenant_id
                           AND g.store_id = l.store_id AND g.source = l.source)
             ORDER BY 1, 2, 3",
            &[],
        )
        .await?
        .iter()
        .map(|r| Lane {
            key: StoreKey {
                tenant: r.get(0),
                store: r.get(1),
            },
            source: r.get(2),
            contiguous: u64::try_from(r.get::<_, i64>(3)).unwrap_or(0),
            known_high: u64::try_from(r.get::<_, i64>(4)).unwrap_or(0),
        })
        .collect();
    for lane in &lanes {
        update_lane(&tx, lane).await?;
    }
    // A reply that says the store no longer has the events ends the asking.
    tx.execute(
        "UPDATE gaps g SET state = 'lost' FROM resync_requests r
         WHERE r.id = g.last_request_id AND r.outcome IN ('partial', 'refused') AND g.state = 'open'",
        &[],
    )
    .await?;
    let asks = due(&tx, settings).await?;
    tx.commit().await?;
    Ok(asks)
}

/// Recomputes one lane's holes above its contiguous mark and reconciles the stored gaps.
async fn update_lane(tx: &Transaction<'_>, lane: &Lane) -> Result<(), DbError> {
    let (t, s, src) = (&lane.key.tenant, &lane.key.store, &lane.source);
    let present: Vec<u64> = tx
        .query(
            "SELECT seq FROM received WHERE tenant_id = $1 AND store_id = $2 AND source = $3
             AND seq > $4 AND seq <= $5 ORDER BY seq",
            &[
                t,
                s,
                src,
                &(lane.contiguous as i64),
                &(lane.known_high as i64),
            ],
        )
        .await?
        .iter()
        .map(|r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0))
        .collect();
    let now_missing = holes(present, lane.contiguous + 1, lane.known_high);
    let contiguous = now_missing.first().map_or(lane.known_high, |h| h.from - 1);
    tx.execute(
        "UPDATE lanes SET contiguous = $4 WHERE tenant_id = $1 AND store_id = $2 AND source = $3",
        &[t, s, src, &(contiguous as i64)],
    )
    .await?;
    let stored: Vec<Stored> = tx
        .query(
            "SELECT from_seq, to_seq, state FROM gaps
             WHERE tenant_id = $1 AND store_id = $2 AND source = $3 AND state <> 'closed'",
            &[t, s, src],
        )
        .await?
        .iter()
        .map(|r| Stored {
            range: SeqRange {
                from: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
                to: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
            },
            state: r.get(2),
        })
        .collect();
    for old in &stored {
        if !now_missing.contains(&old.range) {
            tx.execute(
                "UPDATE gaps SET state = 'closed', closed_at = now()
                 WHERE tenant_id = $1 AND store_id = $2 AND source = $3 AND from_seq = $4 AND to_seq = $5",
                &[t, s, src, &(old.range.from as i64), &(old.range.to as i64)],
            )
            .await?;
        }
    }
    for hole in &now_missing {
        if stored.iter().any(|o| o.range == *hole) {
            continue;
        }
        // A hole that shrank (part of it arrived) keeps the age, the attempts and the
        // verdict of the gap it was part of, so it is not asked for afresh.
        let overlapping: Vec<&Stored> = stored
            .iter()
            .filter(|o| o.range.from <= hole.to && hole.from <= o.range.to)
            .collect();
        let state = if overlapping.iter().any(|o| o.state == "lost") {
            "lost"
        } else {
            "open"
        };
        tx.execute(
            "INSERT INTO gaps (tenant_id, store_id, source, from_seq, to_seq, state, first_seen, attempts,
                               last_request_id, last_request_at)
             SELECT $1, $2, $3, $4, $5, $6,
                    COALESCE(min(first_seen), now()), COALESCE(max(attempts), 0),
                    max(last_request_id), max(last_request_at)
             FROM gaps WHERE tenant_id = $1 AND store_id = $2 AND source = $3
                         AND from_seq <= $5 AND to_seq >= $4 AND closed_at = now()
             ON CONFLICT (tenant_id, store_id, source, from_seq, to_seq)
             DO UPDATE SET state = excluded.state, first_seen = excluded.first_seen, closed_at = NULL",
            &[t, s, src, &(hole.from as i64), &(hole.to as i64), &state],
        )
        .await?;
    }
    Ok(())
}

/// Open gaps past the grace period that may be asked for (again): recorded as requested.
async fn due(tx: &Transaction<'_>, g: &GapSettings) -> Result<Vec<Ask>, DbError> {
    let rows = tx
        .query(
            "SELECT tenant_id, store_id, source, from_seq, to_seq FROM gaps
             WHERE state = 'open' AND attempts < $1
               AND first_seen <= now() - make_interval(secs => $2)
               AND (last_request_at IS NULL OR last_request_at <= now() - make_interval(secs => $3))
             ORDER BY 1, 2, 3, 4",
            &[
                &i32::try_from(g.max_attempts).unwrap_or(i32::MAX),
                &(g.grace_s as f64),
                &(g.retry_after_s as f64),
            ],
        )
        .await?;
    let mut lanes: BTreeMap<(StoreKey, String), Vec<SeqRange>> = BTreeMap::new();
    for r in rows {
        let key = StoreKey {
            tenant: r.get(0),
            store: r.get(1),
        };
        let (from, to): (i64, i64) = (r.get(3), r.get(4));
        lanes.entry((key, r.get(2))).or_default().push(SeqRange {
            from: u64::try_from(from).unwrap_or(1),
            to: u64::try_from(to).unwrap_or(1),
        });
    }
    let mut asks = Vec::new();
    for ((key, source), gaps) in lanes {
        for (span, covered) in requests(&gaps, resync::MAX_SPAN) {
            let id = format!("rs-{}", uuid::Uuid::now_v7().simple());
            tx.execute(
                "INSERT INTO resync_requests (id, tenant_id, store_id, source, from_seq, to_seq)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &id,
                    &key.tenant,
                    &key.store,
                    &source,
                    &(span.from as i64),
                    &(span.to as i64),
                ],
            )
            .await?;
            for g in covered {
                tx.execute(
                    "UPDATE gaps SET attempts = attempts + 1, last_request_id = $6, last_request_at = now()
                     WHERE tenant_id = $1 AND store_id = $2 AND source = $3 AND from_seq = $4 AND to_seq = $5",
                    &[&key.tenant, &key.store, &source, &(g.from as i64), &(g.to as i64), &id],
                )
                .await?;
            }
            tracing::info!(tenant = %key.tenant, store = %key.store, %source, from = span.from, to = span.to,
                "asking the store to resync");
            asks.push(Ask {
                key: key.clone(),
                request: resync::Request {
                    id,
                    source: source.clone(),
                    from_seq: span.from,
                    to_seq: span.to,
                },
            });
        }
    }
    Ok(asks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(from: u64, to: u64) -> SeqRange {
        SeqRange { from, to }
    }

    #[test]
    fn nearby_gaps_share_a_request_and_long_ones_are_split() {
        let got = requests(&[r(3, 4), r(8, 8), r(20, 25)], 10);
        assert_eq!(
            got,
            vec![
                (r(3, 8), vec![r(3, 4), r(8, 8)]),
                (r(20, 25), vec![r(20, 25)])
            ]
        );
        let got = requests(&[r(1, 25)], 10);
        assert_eq!(
            got,
            vec![
                (r(1, 10), vec![]),
                (r(11, 20), vec![]),
                (r(21, 25), vec![r(1, 25)])
            ]
        );
    }
}
