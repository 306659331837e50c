//! The canonical event envelope `posedge.event/1` and the identifiers it carries.

mod ids;

pub use ids::{EventId, IdempotencyKey, MessageRef, Part, RegisterId, RowId, Seq, SourceName};

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

/// A string as a raw member, without building a `serde_json::Value` first.
pub fn raw_str(s: &str) -> Box<RawValue> {
    serde_json::value::to_raw_value(s).unwrap_or_default()
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

/// The one flag the agent itself acts on, read from an event's `flags` member (the
/// others are the register's to report).
#[derive(Debug, Default, serde::Deserialize)]
pub struct TrainingFlag {
    /// Training mode: counted apart, no stock moves.
    #[serde(default)]
    pub training: bool,
}

impl TrainingFlag {
    /// Whether these members mark the event as training.
    pub fn of(fields: &Fields) -> bool {
        fields
            .get("flags")
            .and_then(|f| serde_json::from_str::<TrainingFlag>(f.get()).ok())
            .is_some_and(|f| f.training)
    }
}

/// The `source` member of an event, serialised straight to text (members in the
/// order a JSON object keeps its keys, as when it was built as a `Value`).
#[derive(Debug, serde::Serialize)]
pub struct SourceMember<'a> {
    /// Payload format (or the derived feed's schema).
    pub format: &'a str,
    /// tcp | serial | printer | file | derived.
    pub kind: &'a str,
    /// The source (or derived lane) whose `seq` the event carries.
    pub name: &'a str,
    /// Hex SHA-256 of the redacted record; derived feeds have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_sha256: Option<&'a str>,
}

impl SourceMember<'_> {
    /// As a raw member.
    pub fn raw(&self) -> Box<RawValue> {
        serde_json::value::to_raw_value(self).unwrap_or_default()
    }
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
    /// The message derived from this event (its inventory movements), stored in the
    /// event's row and only when the event itself is new.
    pub derived: Option<Box<PendingEvent>>,
    /// The event's business day when it names a valid one (YYYY-MM-DD).
    pub business_day: Option<String>,
    /// What it adds to that day's summary (`None` for derived messages).
    pub day_figures: Option<crate::derive::summary::DayFigures>,
}

impl PendingEvent {
    /// Completes the event with its stored identity and serialises it.
    pub fn finish(self, event_id: &EventId, seq: Seq) -> Vec<u8> {
        let id = raw_str(&event_id.to_string());
        let seq = seq.get().to_string();
        let ours = [("event_id", id.get()), ("seq", seq.as_str())];
        // The members in key order, as the map would hold them with ours inserted (and
        // put in place of any the body holds under those names), without building one.
        let mut members: Vec<(&str, &str)> = self
            .body
            .iter()
            .map(|(k, v)| (k.as_str(), v.get()))
            .filter(|(k, _)| !ours.iter().any(|(o, _)| o == k))
            .collect();
        for member in ours {
            let at = members.partition_point(|(k, _)| *k < member.0);
            members.insert(at, member);
        }
        let size: usize = members.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
        let mut out = Vec::with_capacity(size + 2);
        out.push(b'{');
        for (i, (key, value)) in members.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // A string always serialises.
            if serde_json::to_writer(&mut out, key).is_err() {
                return Vec::new();
            }
            out.push(b':');
            out.extend_from_slice(value.as_bytes());
        }
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_writes_what_the_map_with_the_ids_would_serialise_to() {
        let mut body = Fields::new();
        for (k, v) in [
            ("a\"quoted", "1"),
            ("body", r#"{"x": [1, 2]}"#),
            ("event_type", r#""sale""#),
            ("seq", "99"),
            ("zeta", "null"),
            ("émoji", r#""✓""#),
        ] {
            body.insert(k.into(), RawValue::from_string(v.into()).unwrap());
        }
        let event = PendingEvent {
            body: body.clone(),
            idempotency_key: IdempotencyKey::new("k"),
            register_id: RegisterId::new("r"),
            event_type: "transaction".into(),
            source: SourceName::new("lane"),
            integrity_flagged: false,
            derived: None,
            business_day: None,
            day_figures: None,
        };
        let id = EventId::new_v7();
        let mut expected = body;
        expected.insert("event_id".into(), raw_str(&id.to_string()));
        expected.insert("seq".into(), RawValue::from_string("7".into()).unwrap());
        assert_eq!(
            event.finish(&id, Seq::new(7)),
            serde_json::to_vec(&expected).unwrap()
        );
    }
}
