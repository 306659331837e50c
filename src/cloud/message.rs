//! What a received message holds, parsed just far enough to store it: identity, lane,
//! `seq`, business day; the payload is kept whole.

use super::topic::{Feed, StoreKey};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A message ready for the database.
#[derive(Debug, Clone)]
pub enum Message {
    /// A register event.
    Event(EventRow),
    /// A stock-movement message.
    Inventory(InventoryRow),
    /// A summary revision.
    Summary(SummaryRow),
    /// The agent's status: lanes' high-water marks.
    Status {
        /// Store.
        key: StoreKey,
        /// Lane → last `seq`.
        watermarks: BTreeMap<String, u64>,
        /// The payload as received.
        payload: String,
    },
    /// A command reply.
    Reply {
        /// Request id.
        id: String,
        /// `ok`, `partial`, `refused`.
        outcome: String,
        /// The payload as received.
        payload: String,
    },
    /// Not for the database (audit, unknown feeds).
    Ignored,
    /// Could not be read: kept in `rejected` with the reason.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// One event, as stored.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Store (from the topic).
    pub key: StoreKey,
    /// `event_id`.
    pub event_id: String,
    /// Lane.
    pub source: String,
    /// Lane position.
    pub seq: u64,
    /// Register.
    pub register_id: String,
    /// Type.
    pub event_type: String,
    /// A valid `YYYY-MM-DD`, else `None`.
    pub business_day: Option<String>,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// The payload as received.
    pub payload: String,
}

/// One stock movement.
#[derive(Debug, Clone, Deserialize)]
pub struct Movement {
    /// SKU.
    #[serde(default)]
    pub sku: Option<String>,
    /// GTIN.
    #[serde(default)]
    pub gtin: Option<String>,
    /// Department (items without a SKU).
    #[serde(default)]
    pub department: Option<String>,
    /// Signed exact decimal.
    pub quantity: String,
    /// Unit.
    #[serde(default)]
    pub uom: Option<String>,
    /// `sale`, `return`, `post_void`.
    pub reason: String,
}

/// One inventory message, as stored.
#[derive(Debug, Clone)]
pub struct InventoryRow {
    /// The envelope fields, as for events.
    pub head: EventRow,
    /// The transaction it derives from.
    pub of_idempotency_key: Option<String>,
    /// Its movements.
    pub movements: Vec<Movement>,
}

/// One summary revision.
#[derive(Debug, Clone)]
pub struct SummaryRow {
    /// Store.
    pub key: StoreKey,
    /// `YYYY-MM-DD`.
    pub business_day: String,
    /// Revision.
    pub revision: u64,
    /// Why final, if it is.
    pub closed: Option<String>,
    /// When the agent computed it.
    pub computed_at: String,
    /// Lane → last `seq` of the day.
    pub last_seqs: BTreeMap<String, u64>,
    /// The payload as received.
    pub payload: String,
}

#[derive(Deserialize)]
struct Head {
    schema: String,
    event_id: String,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    of_idempotency_key: Option<String>,
    #[serde(default)]
    store_id: Option<String>,
    #[serde(default)]
    register_id: Option<String>,
    #[serde(default)]
    event_type: Option<String>,
    source: Lane,
    seq: u64,
    #[serde(default)]
    business_day: Option<String>,
    #[serde(default)]
    movements: Vec<Movement>,
}

#[derive(Deserialize)]
struct Lane {
    name: String,
}

#[derive(Deserialize)]
struct SummaryHead {
    schema: String,
    store_id: String,
    business_day: String,
    revision: u64,
    #[serde(default)]
    closed: Option<String>,
    #[serde(default)]
    computed_at: String,
    #[serde(default)]
    sources: BTreeMap<String, Span>,
}

#[derive(Deserialize)]
struct Span {
    last_seq: u64,
}

#[derive(Deserialize)]
struct StatusHead {
    #[serde(default)]
    watermarks: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct ReplyHead {
    id: String,
    #[serde(default)]
    outcome: String,
}

fn valid_day(d: Option<String>) -> Option<String> {
    d.filter(|d| d.len() == 10 && d.parse::<jiff::civil::Date>().is_ok())
}

fn rejected(reason: impl Into<String>) -> Message {
    Message::Rejected {
        reason: reason.into(),
    }
}

/// Reads one message of a store's feed.
pub fn parse(key: StoreKey, feed: Feed, payload: &[u8]) -> Message {
    let Ok(text) = std::str::from_utf8(payload) else {
        return rejected("payload is not UTF-8");
    };
    match feed {
        Feed::Event | Feed::Inventory => parse_lane_message(key, feed, text),
        Feed::Summary => match serde_json::from_str::<SummaryHead>(text) {
            Ok(h) if h.schema != crate::derive::summary::SCHEMA => rejected(format!(
                "summary schema {:?} is not {}",
                h.schema,
                crate::derive::summary::SCHEMA
            )),
            Ok(h) if h.store_id != key.store => rejected(format!(
                "summary names store {:?} on store {:?}'s topic",
                h.store_id, key.store
            )),
            Ok(h) => match valid_day(Some(h.business_day)) {
                Some(day) => Message::Summary(SummaryRow {
                    key,
                    business_day: day,
                    revision: h.revision,
                    closed: h.closed,
                    computed_at: h.computed_at,
                    last_seqs: h
                        .sources
                        .into_iter()
                        .map(|(k, s)| (k, s.last_seq))
                        .collect(),
                    payload: text.to_string(),
                }),
                None => rejected("summary business_day is not YYYY-MM-DD"),
            },
            Err(e) => rejected(format!("not a summary: {e}")),
        },
        Feed::Status => match serde_json::from_str::<StatusHead>(text) {
            Ok(h) => Message::Status {
                key,
                watermarks: h.watermarks,
                payload: text.to_string(),
            },
            Err(e) => rejected(format!("not a status: {e}")),
        },
        Feed::Reply => match serde_json::from_str::<ReplyHead>(text) {
            Ok(h) => Message::Reply {
                id: h.id,
                outcome: h.outcome,
                payload: text.to_string(),
            },
            Err(e) => rejected(format!("not a command reply: {e}")),
        },
        Feed::Other => Message::Ignored,
    }
}

fn parse_lane_message(key: StoreKey, feed: Feed, text: &str) -> Message {
    let h: Head = match serde_json::from_str(text) {
        Ok(h) => h,
        Err(e) => return rejected(format!("not an event: {e}")),
    };
    let want = match feed {
        Feed::Inventory => crate::ingest::INVENTORY_SCHEMA,
        _ => crate::event::SCHEMA,
    };
    if h.schema != want {
        return rejected(format!("schema {:?} is not {want}", h.schema));
    }
    if h.store_id.as_deref() != Some(key.store.as_str()) {
        return rejected(format!(
            "store_id {:?} is not the topic's store {:?}",
            h.store_id, key.store
        ));
    }
    if h.seq == 0 || i64::try_from(h.seq).is_err() {
        return rejected(format!("seq {} is out of range", h.seq));
    }
    if let Some(m) = h
        .movements
        .iter()
        .find(|m| m.quantity.parse::<crate::model::Decimal>().is_err())
    {
        return rejected(format!(
            "movement quantity {:?} is not a decimal",
            m.quantity
        ));
    }
    let head = EventRow {
        key,
        event_id: h.event_id,
        source: h.source.name,
        seq: h.seq,
        register_id: h.register_id.unwrap_or_default(),
        event_type: h.event_type.unwrap_or_else(|| "inventory".into()),
        business_day: valid_day(h.business_day),
        idempotency_key: h.idempotency_key,
        payload: text.to_string(),
    };
    match feed {
        Feed::Inventory => Message::Inventory(InventoryRow {
            head,
            of_idempotency_key: h.of_idempotency_key,
            movements: h.movements,
        }),
        _ => Message::Event(head),
    }
}
