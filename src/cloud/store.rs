//! Writes a batch of messages in one PostgreSQL transaction: events and inventory
//! idempotently on `event_id` (duplicates counted), every `seq` noted for gap tracking,
//! summary revisions kept, replies recorded. Multi-row statements (`unnest` of arrays)
//! keep a batch to a handful of round trips.

use super::db::DbError;
use super::message::{EventRow, InventoryRow, Message, SummaryRow};
use super::topic::StoreKey;
use std::collections::{BTreeMap, HashSet};
use tokio_postgres::Client;

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// New events stored.
    pub events: u64,
    /// New inventory messages stored.
    pub inventory: u64,
    /// Events and inventory messages already stored (absorbed).
    pub duplicates: u64,
    /// Summary revisions, statuses and replies.
    pub other: u64,
    /// Messages kept in `rejected`.
    pub rejected: u64,
}

/// A message and the topic it came on (for `rejected`).
pub struct Received {
    /// Topic.
    pub topic: String,
    /// Raw payload.
    pub payload: bytes::Bytes,
    /// Parsed.
    pub message: Message,
}

/// Columns of event-like rows, as arrays for `unnest`.
#[derive(Default)]
struct Columns {
    event_id: Vec<String>,
    tenant: Vec<String>,
    store: Vec<String>,
    source: Vec<String>,
    seq: Vec<i64>,
    register: Vec<String>,
    event_type: Vec<String>,
    day: Vec<Option<String>>,
    key: Vec<Option<String>>,
    payload: Vec<String>,
}

impl Columns {
    fn push(&mut self, r: &EventRow) {
        self.event_id.push(r.event_id.clone());
        self.tenant.push(r.key.tenant.clone());
        self.store.push(r.key.store.clone());
        self.source.push(r.source.clone());
        self.seq.push(i64::try_from(r.seq).unwrap_or(i64::MAX));
        self.register.push(r.register_id.clone());
        self.event_type.push(r.event_type.clone());
        self.day.push(r.business_day.clone());
        self.key.push(r.idempotency_key.clone());
        self.payload.push(r.payload.clone());
    }
}

/// Writes the batch and commits; nothing is acknowledged before this returns `Ok`.
pub async fn write(client: &mut Client, batch: &[&Received]) -> Result<Written, DbError> {
    let mut w = Written::default();
    let mut events = Vec::new();
    let mut inventory = Vec::new();
    let mut summaries = Vec::new();
    // Lanes' highest known seq, written once at the end in key order, so that two
    // instances' transactions lock lane rows in the same order.
    let mut highs: BTreeMap<(StoreKey, String), u64> = BTreeMap::new();
    let tx = client.transaction().await?;
    for r in batch {
        match &r.message {
            Message::Event(e) => events.push(e),
            Message::Inventory(i) => inventory.push(i),
            Message::Summary(s) => summaries.push(s),
            Message::Status {
                key,
                watermarks,
                payload,
            } => {
                tx.execute(
                    "INSERT INTO agent_status (tenant_id, store_id, payload) VALUES ($1, $2, $3::text::jsonb)
                     ON CONFLICT (tenant_id, store_id) DO UPDATE SET payload = excluded.payload, received_at = now()",
                    &[&key.tenant, &key.store, payload],
                )
                .await?;
                for (lane, seq) in watermarks {
                    raise(&mut highs, key, lane, *seq);
                }
                w.other += 1;
            }
            Message::Reply {
                id,
                outcome,
                payload,
            } => {
                tx.execute(
                    "UPDATE resync_requests SET outcome = $2, reply = $3::text::jsonb, replied_at = now() WHERE id = $1",
                    &[id, outcome, payload],
                )
                .await?;
                w.other += 1;
            }
            Message::Ignored => {}
            Message::Rejected { reason } => {
                tracing::warn!(topic = %r.topic, %reason, "message rejected; kept in the rejected table");
                tx.execute(
                    "INSERT INTO rejected (topic, reason, payload) VALUES ($1, $2, $3)",
                    &[&r.topic, reason, &r.payload.as_ref()],
                )
                .await?;
                w.rejected += 1;
            }
        }
    }
    let mut dupes: BTreeMap<(StoreKey, Option<String>), i64> = BTreeMap::new();
    if !events.is_empty() {
        let mut c = Columns::default();
        events.iter().for_each(|e| c.push(e));
        let stored: HashSet<String> = tx
            .query(
                "INSERT INTO events (event_id, tenant_id, store_id, source, seq, register_id, event_type,
                                     business_day, idempotency_key, payload)
                 SELECT e, t, s, src, sq, r, ty, d::date, k, p::jsonb
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[],
                             $7::text[], $8::text[], $9::text[], $10::text[])
                      AS u(e, t, s, src, sq, r, ty, d, k, p)
                 ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                &[
                    &c.event_id, &c.tenant, &c.store, &c.source, &c.seq, &c.register,
                    &c.event_type, &c.day, &c.key, &c.payload,
                ],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        w.events = stored.len() as u64;
        count_duplicates(&mut dupes, events.iter().copied(), &stored);
        note_received(&tx, &c).await?;
    }
    if !inventory.is_empty() {
        w.inventory = write_inventory(&tx, &inventory, &mut dupes).await?;
    }
    for r in events
        .iter()
        .copied()
        .chain(inventory.iter().map(|i| &i.head))
    {
        raise(&mut highs, &r.key, &r.source, r.seq);
    }
    for s in &summaries {
        write_summary(&tx, s).await?;
        for (lane, seq) in &s.last_seqs {
            raise(&mut highs, &s.key, lane, *seq);
        }
        w.other += 1;
    }
    raise_known_high(&tx, highs).await?;
    w.duplicates = dupes.values().map(|n| *n as u64).sum();
    if !dupes.is_empty() {
        let (mut t, mut s, mut d, mut n) = (vec![], vec![], vec![], vec![]);
        for ((key, day), count) in dupes {
            t.push(key.tenant);
            s.push(key.store);
            d.push(day);
            n.push(count);
        }
        tx.execute(
            "INSERT INTO duplicates (tenant_id, store_id, business_day, count)
             SELECT t, s, d::date, n FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[]) AS u(t, s, d, n)
             ON CONFLICT (tenant_id, store_id, business_day) DO UPDATE SET count = duplicates.count + excluded.count",
            &[&t, &s, &d, &n],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(w)
}

/// Counts the rows of a batch that were already stored, per store and business day.
fn count_duplicates<'a>(
    dupes: &mut BTreeMap<(StoreKey, Option<String>), i64>,
    rows: impl Iterator<Item = &'a EventRow>,
    stored: &HashSet<String>,
) {
    // A message twice in one batch is stored once: the second copy is a duplicate too.
    let mut first = HashSet::new();
    for r in rows {
        if !(stored.contains(&r.event_id) && first.insert(r.event_id.as_str())) {
            *dupes
                .entry((r.key.clone(), r.business_day.clone()))
                .or_default() += 1;
        }
    }
}

/// Every `seq` that arrived.
async fn note_received(tx: &tokio_postgres::Transaction<'_>, c: &Columns) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO received (tenant_id, store_id, source, seq)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[]) AS u(t, s, src, sq)
         ORDER BY t, s, src, sq
         ON CONFLICT DO NOTHING",
        &[&c.tenant, &c.store, &c.source, &c.seq],
    )
    .await?;
    Ok(())
}

fn raise(highs: &mut BTreeMap<(StoreKey, String), u64>, key: &StoreKey, lane: &str, seq: u64) {
    let e = highs.entry((key.clone(), lane.to_string())).or_default();
    *e = (*e).max(seq);
}

/// The lanes reach at least these `seq`s (arrived, or named by a status or summary).
async fn raise_known_high(
    tx: &tokio_postgres::Transaction<'_>,
    highs: BTreeMap<(StoreKey, String), u64>,
) -> Result<(), DbError> {
    if highs.is_empty() {
        return Ok(());
    }
    let (mut t, mut s, mut src, mut h) = (vec![], vec![], vec![], vec![]);
    for ((key, lane), seq) in highs {
        t.push(key.tenant);
        s.push(key.store);
        src.push(lane);
        h.push(i64::try_from(seq).unwrap_or(i64::MAX));
    }
    tx.execute(
        "INSERT INTO lanes (tenant_id, store_id, source, known_high)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[])
         ON CONFLICT (tenant_id, store_id, source)
         DO UPDATE SET known_high = GREATEST(lanes.known_high, excluded.known_high)",
        &[&t, &s, &src, &h],
    )
    .await?;
    Ok(())
}

async fn write_inventory(
    tx: &tokio_postgres::Transaction<'_>,
    rows: &[&InventoryRow],
    dupes: &mut BTreeMap<(StoreKey, Option<String>), i64>,
) -> Result<u64, DbError> {
    let mut c = Columns::default();
    let mut of_key = Vec::new();
    rows.iter().for_each(|r| {
        c.push(&r.head);
        of_key.push(r.of_idempotency_key.clone());
    });
    let (mut m_event, mut m_line) = (Vec::<String>::new(), Vec::<i32>::new());
    let (mut m_sku, mut m_gtin, mut m_dept, mut m_uom) = (vec![], vec![], vec![], vec![]);
    let (mut m_qty, mut m_reason) = (Vec::<String>::new(), Vec::<String>::new());
    for r in rows {
        for (i, m) in r.movements.iter().enumerate() {
            m_event.push(r.head.event_id.clone());
            m_line.push(i32::try_from(i).unwrap_or(i32::MAX));
            m_sku.push(m.sku.clone());
            m_gtin.push(m.gtin.clone());
            m_dept.push(m.department.clone());
            m_uom.push(m.uom.clone());
            m_qty.push(m.quantity.clone());
            m_reason.push(m.reason.clone());
        }
    }
    let stored: HashSet<String> = tx
        .query(
            "INSERT INTO inventory_messages (event_id, tenant_id, store_id, source, seq, register_id,
                                             business_day, of_idempotency_key, payload)
             SELECT e, t, s, src, sq, r, d::date, o, p::jsonb
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[],
                         $7::text[], $8::text[], $9::text[]) AS u(e, t, s, src, sq, r, d, o, p)
             ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            &[
                &c.event_id, &c.tenant, &c.store, &c.source, &c.seq, &c.register, &c.day,
                &of_key, &c.payload,
            ],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Movements only of messages stored now: a duplicate moves no stock twice.
    tx.execute(
        "INSERT INTO inventory_movements (event_id, line, tenant_id, store_id, sku, gtin, department,
                                          quantity, uom, reason)
         SELECT m.e, m.l, i.tenant_id, i.store_id, m.sku, m.gtin, m.dept, m.q::numeric, m.uom, m.reason
         FROM unnest($1::text[], $2::int4[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[]) AS m(e, l, sku, gtin, dept, q, uom, reason)
         JOIN inventory_messages i ON i.event_id = m.e
         WHERE m.e = ANY($9::text[])
         ON CONFLICT DO NOTHING",
        &[
            &m_event, &m_line, &m_sku, &m_gtin, &m_dept, &m_qty, &m_uom, &m_reason,
            &stored.iter().collect::<Vec<_>>(),
        ],
    )
    .await?;
    count_duplicates(dupes, rows.iter().map(|r| &r.head), &stored);
    note_received(tx, &c).await?;
    Ok(stored.len() as u64)
}

async fn write_summary(
    tx: &tokio_postgres::Transaction<'_>,
    s: &SummaryRow,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO summaries (tenant_id, store_id, business_day, revision, closed, computed_at, payload)
         VALUES ($1, $2, $3::text::date, $4, $5, $6, $7::text::jsonb)
         ON CONFLICT DO NOTHING",
        &[
            &s.key.tenant,
            &s.key.store,
            &s.business_day,
            &i64::try_from(s.revision).unwrap_or(i64::MAX),
            &s.closed,
            &s.computed_at,
            &s.payload,
        ],
    )
    .await?;
    Ok(())
}
