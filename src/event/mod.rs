//! The canonical event envelope `posedge.event/1` and the identifiers it carries.

mod ids;

pub use ids::{EventId, IdempotencyKey, RegisterId, RowId, Seq, SourceName};

use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Top-level members of an event, each kept as its JSON text: most events pass through
/// the agent without their body ever being rebuilt as a tree.
pub type Fields = BTreeMap<String, Box<RawValue>>;

/// A JSON value as a raw member. Serialising a `serde_json::Value` cannot fail; the
/// default would be `null`.
pub fn raw(v: &serde_json::Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).unwrap_or_default()
}

/// A member as a string, when it is one.
pub fn get_str(fields: &Fields, key: &str) -> Option<String> {
    fields
        .get(key)
        .and_then(|r| serde_json::from_str::<String>(r.get()).ok())
}

/// Schema tag every event carries.
pub const SCHEMA: &str = "posedge.event/1";

/// Event types of DESIGN §3.
pub const EVENT_TYPES: &[&str] = &[
    "transaction",
    "no_sale",
    "drawer",
    "till",
    "shift",
    "operator",
    "cash_movement",
    "inventory_adjustment",
    "price_change",
    "customer_update",
    "receipt",
    "device_status",
];

/// Fields only the agent may set; a register that sends them is overruled.
pub const AGENT_FIELDS: &[&str] = &[
    "schema",
    "event_id",
    "idempotency_key",
    "store_id",
    "source",
    "seq",
    "received_at",
];

/// Where an event came from, as stamped into `source`.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Configured source name.
    pub name: SourceName,
    /// tcp | serial | printer | file.
    pub kind: &'static str,
    /// Payload format.
    pub format: &'static str,
}

/// A decoded, redacted event waiting for its `seq` and `event_id` from the outbox.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    /// The event object with every field except `seq` and `event_id`.
    pub body: Fields,
    /// The de-duplication key.
    pub idempotency_key: IdempotencyKey,
    /// Register the event belongs to (topic level and ordering lane).
    pub register_id: RegisterId,
    /// `event_type`, already validated.
    pub event_type: String,
    /// Source that produced it.
    pub source: SourceName,
    /// The body carries integrity findings (totals that do not add up), counted per source.
    pub integrity_flagged: bool,
    /// Messages derived from this event (inventory movements), stored in the same
    /// transaction and only when the event itself is new.
    pub derived: Vec<PendingEvent>,
    /// The event's business day when it names a valid one (YYYY-MM-DD).
    pub business_day: Option<String>,
    /// What it adds to that day's summary (`None` for derived messages).
    pub day_figures: Option<crate::derive::summary::DayFigures>,
}

impl PendingEvent {
    /// Completes the event with its stored identity and serialises it.
    pub fn finish(mut self, event_id: &EventId, seq: Seq) -> Vec<u8> {
        self.body.insert(
            "event_id".into(),
            raw(&serde_json::Value::String(event_id.to_string())),
        );
        self.body
            .insert("seq".into(), raw(&serde_json::Value::from(seq.get())));
        // String keys and raw JSON values always serialise.
        serde_json::to_vec(&self.body).unwrap_or_default()
    }
}
