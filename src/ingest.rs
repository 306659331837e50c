//! The store-side stage between a source and the outbox: decode, redact, stamp the
//! envelope. Runs on the source's task so decoding never queues behind the SQLite writer.

use crate::config::Format;
use crate::config::is_topic_safe;
use crate::decode;
use crate::derive::summary::DayFigures;
use crate::event::{
    Fields, IdempotencyKey, Origin, PendingEvent, RegisterId, SCHEMA, SourceMember, SourceName,
    TrainingFlag, get_str, raw as raw_member, raw_str,
};
use crate::redact::{self, Redactions};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What a source knows about the records it reads.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// Store id from the config.
    pub store_id: String,
    /// Source name, kind and format.
    pub origin: Origin,
    /// Decoder to use.
    pub format: Format,
    /// Register id used when a record carries none.
    pub default_register: Option<RegisterId>,
    /// Decoder settings.
    pub options: decode::Options,
    /// How records without a register sequence are keyed.
    pub keys: KeyRule,
    /// The config's mapping rules (those matching this source and format apply).
    pub mapping: std::sync::Arc<crate::mapping::Rules>,
}

/// Idempotency keys for records that carry no register sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRule {
    /// From the record's bytes: registers re-send records they got no ack for.
    Content,
    /// Fresh per event: sources that never re-send (the printer tap).
    Unique,
}

/// A record rejected by the decoder, ready for the dead letters.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Why it was rejected.
    pub reason: String,
    /// The raw bytes with card data masked (possibly truncated by the source).
    pub raw: Vec<u8>,
    /// Register, when the source knows it.
    pub register_id: Option<RegisterId>,
}

/// One outcome of preparing a record.
#[derive(Debug)]
pub enum Prepared {
    /// A valid event.
    Event(PendingEvent),
    /// A record, or a part of one, for the dead letters.
    Rejected(DeadLetter),
}

/// Everything one record became, in input order, with what the redactor found in it.
#[derive(Debug)]
pub struct PreparedRecord {
    /// Events and refused parts.
    pub items: Vec<Prepared>,
    /// Card data masked or removed across the record, each occurrence counted once.
    pub redactions: Redactions,
}

/// Decodes, redacts and stamps one raw record. `received_at` is RFC 3339 UTC.
pub fn prepare(ctx: &SourceContext, raw: &[u8], received_at: &str) -> PreparedRecord {
    // The raw bytes are scrubbed too (they feed the dead letters and `raw_sha256`), but
    // only what the stored records hold is counted, so one PAN counts once.
    let (clean_raw, raw_found, scanned) = redact::redact_record(raw);
    let raw_sha = hex(&Sha256::digest(&clean_raw));
    let record = Record {
        received_at,
        raw_sha: &raw_sha,
        clean_raw: &clean_raw,
        scanned,
    };
    let decoded = decode::decode(ctx.format, raw, &ctx.options);
    let whole = decoded.len() == 1;
    let mut redactions = Redactions::default();
    let mut items = Vec::with_capacity(decoded.len());
    for (index, outcome) in decoded.into_iter().enumerate() {
        let item = match outcome {
            Ok(members) => {
                let (item, found) = stamp(ctx, members, &record, index);
                redactions.add(found);
                item
            }
            Err(rejected) if whole && rejected.raw == raw => {
                let (letter, more) = letter_bytes(&clean_raw);
                redactions.add(raw_found);
                redactions.add(more);
                reject(ctx, rejected.reason, letter)
            }
            Err(rejected) => {
                let (part, found) = redact::redact_bytes(&rejected.raw);
                let (letter, more) = letter_bytes(&part);
                redactions.add(found);
                redactions.add(more);
                reject(ctx, rejected.reason, letter)
            }
        };
        items.push(item);
    }
    PreparedRecord { items, redactions }
}

/// What every event of one record shares.
struct Record<'a> {
    /// RFC 3339 UTC.
    received_at: &'a str,
    /// Hex SHA-256 of `clean_raw`.
    raw_sha: &'a str,
    /// The record's bytes with card data masked.
    clean_raw: &'a [u8],
    /// The record as received, when the byte redactor found nothing in it.
    scanned: Option<redact::Scanned<'a>>,
}

/// Redacts one decoded event and completes its envelope.
fn stamp(
    ctx: &SourceContext,
    members: decode::Members,
    record: &Record<'_>,
    index: usize,
) -> (Prepared, Redactions) {
    let Record {
        received_at,
        raw_sha,
        clean_raw,
        scanned,
    } = *record;
    let decode::Members {
        mut fields,
        mut transaction,
        spans,
    } = members;
    let mapped = map_fields(ctx, &mut fields);
    let verbatim = scanned.map(|s| redact::Verbatim::new(s, &spans));
    let (found, redacted) = redact_fields(&mut fields, verbatim);
    if mapped || redacted {
        // The body is not the text the decoder read any more: the inventory reads it anew.
        transaction = None;
    }
    let register = match get_str(&fields, "register_id") {
        Some(r) if is_topic_safe(&r) => RegisterId::new(r),
        Some(_) => {
            let reason = "register_id must be 1–64 characters of A–Z a–z 0–9 _ - .";
            return (reject(ctx, reason.into(), letter_bytes(clean_raw).0), found);
        }
        None => match &ctx.default_register {
            Some(r) => r.clone(),
            None => {
                let reason = "no register_id in the record and none configured for the source";
                return (reject(ctx, reason.into(), letter_bytes(clean_raw).0), found);
            }
        },
    };
    let event_type = get_str(&fields, "event_type").unwrap_or_else(|| "device_status".into());
    let key = idempotency_key(ctx, &register, &event_type, &fields, raw_sha, index);
    fields.insert("schema".into(), raw_str(SCHEMA));
    fields.insert("idempotency_key".into(), raw_str(key.as_str()));
    fields.insert("store_id".into(), raw_str(&ctx.store_id));
    fields.insert("register_id".into(), raw_str(register.as_str()));
    let source = SourceMember {
        format: ctx.origin.format,
        kind: ctx.origin.kind,
        name: ctx.origin.name.as_str(),
        raw_sha256: Some(raw_sha),
    };
    fields.insert("source".into(), source.raw());
    fields.insert("received_at".into(), raw_str(received_at));
    let integrity_flagged = fields
        .get("body")
        .is_some_and(|b| b.get().contains("\"integrity\":[\""));
    let transaction = match event_type.as_str() {
        "transaction" => {
            transaction.or_else(|| serde_json::from_str(fields.get("body")?.get()).ok())
        }
        _ => None,
    };
    let day_figures = DayFigures::of_members(&fields, transaction.as_deref());
    let derived = transaction
        .as_ref()
        .and_then(|tx| inventory(ctx, &fields, &key, &register, tx))
        .map(Box::new);
    let event = PendingEvent {
        business_day: business_day(&fields),
        day_figures: Some(day_figures),
        integrity_flagged,
        body: fields,
        idempotency_key: key,
        register_id: register,
        event_type,
        source: ctx.origin.name.clone(),
        derived,
    };
    (Prepared::Event(event), found)
}

/// The event's `business_day` when it is a calendar date, the only form that may name a
/// summary topic.
fn business_day(fields: &Fields) -> Option<String> {
    get_str(fields, "business_day").filter(|d| {
        time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).is_ok()
    })
}

/// What a source's name gets to name the `seq` lane of its derived (inventory) messages.
pub const DERIVED_LANE_SUFFIX: &str = ".inventory";

/// The `seq` lane of a source's derived (inventory) messages.
pub fn derived_lane(source: &SourceName) -> SourceName {
    SourceName::new(format!("{}{DERIVED_LANE_SUFFIX}", source.as_str()))
}

/// The `event_type` (and topic level) of the derived messages.
pub const DERIVED_EVENT_TYPE: &str = "inventory";

/// Schema of the inventory messages on `…/{register}/inventory`.
pub const INVENTORY_SCHEMA: &str = "posedge.inventory/1";

/// The stock movements of a transaction as a message of its own, on the source's
/// `<name>.inventory` lane (its own gapless `seq`, so the events' `seq` stays theirs).
/// `None` when nothing moves.
fn inventory(
    ctx: &SourceContext,
    fields: &Fields,
    key: &IdempotencyKey,
    register: &RegisterId,
    tx: &crate::model::Transaction,
) -> Option<PendingEvent> {
    let movements = crate::derive::inventory::movements(tx, TrainingFlag::of(fields));
    if movements.is_empty() {
        return None;
    }
    let mut body = Fields::new();
    for member in [
        "store_id",
        "register_id",
        "business_day",
        "pos_sequence",
        "occurred_at",
        "received_at",
    ] {
        if let Some(v) = fields.get(member) {
            body.insert(member.into(), v.clone());
        }
    }
    let own_key = IdempotencyKey::new(format!("{}|inventory", key.as_str()));
    let lane = derived_lane(&ctx.origin.name);
    // `source.name` is the lane whose gapless `seq` the message carries, so a consumer
    // tracks gaps per (store, source.name) for events and derived feeds alike.
    let source = SourceMember {
        format: INVENTORY_SCHEMA,
        kind: "derived",
        name: lane.as_str(),
        raw_sha256: None,
    };
    body.insert("source".into(), source.raw());
    body.insert("schema".into(), raw_str(INVENTORY_SCHEMA));
    body.insert("idempotency_key".into(), raw_str(own_key.as_str()));
    body.insert("of_idempotency_key".into(), raw_str(key.as_str()));
    // Straight to text: through a `Value` tree it cost a tenth of the ingest stage.
    body.insert(
        "movements".into(),
        serde_json::value::to_raw_value(&movements).unwrap_or_default(),
    );
    Some(PendingEvent {
        body,
        idempotency_key: own_key,
        register_id: register.clone(),
        event_type: DERIVED_EVENT_TYPE.into(),
        source: lane,
        integrity_flagged: false,
        derived: None,
        business_day: business_day(fields),
        // Derived feeds add nothing to the day but their `seq` span.
        day_figures: None,
    })
}

/// Applies the mapping rules for this source and format. Runs before redaction, so
/// whatever a rule moves or quotes in a finding is scrubbed like the rest. Findings are
/// appended to `body.mapping`; sources without rules pay nothing. True when the members
/// were rewritten.
fn map_fields(ctx: &SourceContext, fields: &mut Fields) -> bool {
    let (source, format) = (ctx.origin.name.as_str(), ctx.origin.format);
    if ctx.mapping.for_origin(source, format).next().is_none() {
        return false;
    }
    let mut event: serde_json::Map<String, Value> = fields
        .iter()
        // Members were parsed once already; re-parsing one cannot fail.
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::from_str(v.get()).unwrap_or(Value::Null),
            )
        })
        .collect();
    let applied = ctx.mapping.apply(source, format, &mut event);
    if applied.changed == 0 && applied.findings.is_empty() {
        return false;
    }
    if !applied.findings.is_empty() {
        let body = event
            .entry("body")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(body) = body {
            let list = body
                .entry("mapping")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = list {
                list.extend(applied.findings.into_iter().map(Value::String));
            }
        }
    }
    *fields = event
        .into_iter()
        .map(|(k, v)| (k, raw_member(&v)))
        .collect();
    true
}

/// Redacts the members in place. Clean records (nearly all) are only scanned; a record
/// with anything to redact, a PAN split across its members included, goes through
/// [`redact::redact_json`] as a whole; the flag says the members were rebuilt that way.
fn redact_fields(
    fields: &mut Fields,
    verbatim: Option<redact::Verbatim<'_>>,
) -> (Redactions, bool) {
    let members = fields.iter().map(|(k, v)| (k.as_str(), v.get()));
    if redact::members_are_clean(members, verbatim) {
        return (Redactions::default(), false);
    }
    let mut value = Value::Object(
        std::mem::take(fields)
            .into_iter()
            .map(|(k, v)| {
                // Members were parsed once already; re-parsing one cannot fail.
                let v = serde_json::from_str(v.get()).unwrap_or(Value::Null);
                (k, v)
            })
            .collect(),
    );
    let found = redact::redact_json(&mut value);
    if let Value::Object(map) = value {
        *fields = map.into_iter().map(|(k, v)| (k, raw_member(&v))).collect();
    }
    (found, true)
}

/// A record for bytes the framing refused before any decoder saw them (over-long,
/// torn, bad checksum); `reason` is told how many bytes were kept.
pub fn refused(
    ctx: &SourceContext,
    bytes: &[u8],
    reason: impl FnOnce(usize) -> String,
) -> PreparedRecord {
    let (raw, redactions) = redact::redact_bytes(bytes);
    let letter = reject(ctx, reason(raw.len()), raw.into_owned());
    PreparedRecord {
        items: vec![letter],
        redactions,
    }
}

fn reject(ctx: &SourceContext, reason: String, raw: Vec<u8>) -> Prepared {
    Prepared::Rejected(DeadLetter {
        reason,
        raw,
        register_id: ctx.default_register.clone(),
    })
}

/// The bytes a dead letter keeps of a refused record: the raw bytes as the byte
/// redactor left them, unless they are JSON holding card data only the structured
/// rules see (a PAN split across members); then the redacted JSON, and what that
/// found. Refusals are rare, so the extra parse costs nothing that matters.
fn letter_bytes(clean_raw: &[u8]) -> (Vec<u8>, Redactions) {
    if let Ok(mut v) = serde_json::from_slice::<Value>(clean_raw) {
        let found = redact::redact_json(&mut v);
        if found.total() > 0
            && let Ok(text) = serde_json::to_vec(&v)
        {
            return (text, found);
        }
    }
    (clean_raw.to_vec(), Redactions::default())
}

/// DESIGN §2.4. With a register sequence: `store|register|business_day|pos_sequence|type`.
/// Without one, the key is derived from the redacted record bytes and the event's place
/// in the record, so a re-send of the same record (same bytes, including its own
/// timestamp) maps to the same keys, and two records differ whenever any byte differs.
/// Printer receipts are never re-sent (printing has no acks), so each gets a unique key:
/// two identical receipts are two sales.
fn idempotency_key(
    ctx: &SourceContext,
    register: &RegisterId,
    event_type: &str,
    fields: &Fields,
    raw_sha: &str,
    index: usize,
) -> IdempotencyKey {
    let store = &ctx.store_id;
    let day = get_str(fields, "business_day").unwrap_or_default();
    let sequence =
        fields
            .get("pos_sequence")
            .and_then(|r| match serde_json::from_str::<Value>(r.get()) {
                Ok(Value::Number(n)) => Some(n.to_string()),
                Ok(Value::String(s)) => Some(s),
                _ => None,
            });
    match (sequence, ctx.keys) {
        (Some(n), _) => IdempotencyKey::new(format!("{store}|{register}|{day}|{n}|{event_type}")),
        (None, KeyRule::Unique) => IdempotencyKey::new(format!(
            "{store}|{register}|{event_type}|{}",
            crate::event::EventId::new_v7()
        )),
        (None, KeyRule::Content) if index == 0 => {
            IdempotencyKey::new(format!("{store}|{register}|sha256:{raw_sha}"))
        }
        (None, KeyRule::Content) => {
            IdempotencyKey::new(format!("{store}|{register}|sha256:{raw_sha}#{index}"))
        }
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SourceName;
    use serde_json::json;

    fn ctx() -> SourceContext {
        SourceContext {
            store_id: "s1".into(),
            origin: Origin {
                name: SourceName::new("lane1"),
                kind: "tcp",
                format: "ndjson",
            },
            format: Format::Ndjson,
            default_register: Some(RegisterId::new("reg-9")),
            options: decode::Options::default(),
            keys: KeyRule::Content,
            mapping: Default::default(),
        }
    }

    fn one(raw: &[u8]) -> (Prepared, Redactions) {
        let mut r = prepare(&ctx(), raw, "2026-11-27T00:00:00.000Z");
        assert_eq!(r.items.len(), 1);
        (r.items.remove(0), r.redactions)
    }

    #[test]
    fn stamps_envelope_and_key_from_register_sequence() {
        let raw = br#"{"event_type":"transaction","pos_sequence":12,"business_day":"2026-11-27","body":{"note":"card 4111 1111 1111 1111"}}"#;
        let (p, found) = one(raw);
        let Prepared::Event(e) = p else {
            panic!("rejected")
        };
        assert_eq!(
            e.idempotency_key.as_str(),
            "s1|reg-9|2026-11-27|12|transaction"
        );
        assert_eq!(found.pans, 1, "one PAN counts once");
        let id = crate::event::EventId::new_v7();
        let text = e.finish(&id, crate::event::Seq::new(3));
        let v: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v["register_id"], "reg-9");
        assert_eq!(v["source"]["name"], "lane1");
        assert_eq!(v["seq"], 3);
        assert_eq!(v["event_id"], id.as_str());
        assert_eq!(v["body"]["note"], "card 411111******1111");
        assert!(!String::from_utf8_lossy(&text).contains("1111 1111 1111"));
    }

    #[test]
    fn refused_record_with_a_split_pan_keeps_no_part_of_it() {
        let raw = br#"{"event_type":"sale","register_id":"bad register!","ext":{"pan1":"4111 1111","pan2":"1111 1111"}}"#;
        let (p, found) = one(raw);
        let Prepared::Rejected(d) = p else {
            panic!("stored")
        };
        assert_eq!(found.pans, 1, "{}", d.reason);
        let text = String::from_utf8_lossy(&d.raw);
        assert!(!text.contains("1111 1111"), "{text}");
        assert!(text.contains("411111**"), "{text}");
    }

    #[test]
    fn key_without_sequence_follows_the_bytes() {
        let a = br#"{"event_type":"no_sale","occurred_at":"2026-11-27T10:00:00Z"}"#;
        let b = br#"{"event_type":"no_sale","occurred_at":"2026-11-27T10:00:01Z"}"#;
        let key = |raw: &[u8]| match one(raw).0 {
            Prepared::Event(e) => e.idempotency_key,
            Prepared::Rejected(d) => panic!("{}", d.reason),
        };
        assert_eq!(key(a), key(a));
        assert_ne!(key(a), key(b));
    }

    #[test]
    fn rejection_keeps_redacted_raw() {
        let (p, _) = one(b"{broken 4111111111111111");
        let Prepared::Rejected(d) = p else {
            panic!("accepted")
        };
        assert!(d.reason.contains("invalid JSON"));
        assert!(!String::from_utf8_lossy(&d.raw).contains("4111111111111111"));
    }

    /// Every line of the edge-case corpus, as a register sends it.
    fn edge_cases() -> Vec<Value> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/edge_cases");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
            .collect();
        names.sort();
        names
            .iter()
            .flat_map(|p| {
                let text = std::fs::read_to_string(p).unwrap();
                text.lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    use proptest::prelude::*;

    proptest! {
        /// The figures worked out at ingest add up to what reading the stored payload
        /// adds up to, whatever the event's type, flags and body, with or without a
        /// card number that makes the redactor rebuild the body.
        #[test]
        fn day_figures_add_up_as_the_stored_payload_does(
            picks in proptest::collection::vec(
                (0usize..64, 0usize..7, 0usize..6, 0usize..6, any::<bool>()),
                1..12,
            ),
        ) {
            use crate::derive::summary::{DaySummary, StoredEvent};
            let corpus = edge_cases();
            let event_types = [None, Some(json!("transaction")), Some(json!("till")),
                Some(json!("shift")), Some(json!("no_sale")), Some(json!("price_check")), Some(json!(7))];
            let flags = [None, Some(json!({"training": true})), Some(json!({"training": false})),
                Some(json!({"training": "yes"})), Some(json!(null)), Some(json!({"other": 1}))];
            let bodies = [None, Some(json!(null)), Some(json!({"action": "close"})),
                Some(json!({"action": "settle"})), Some(json!("text")), Some(json!({"lines": 3}))];
            let (mut stored, mut from_payload) = (DaySummary::default(), DaySummary::default());
            for (n, (pick, ty, flag, body, pan)) in picks.into_iter().enumerate() {
                let mut v = corpus[pick % corpus.len()].clone();
                if let Some(t) = &event_types[ty] { v["event_type"] = t.clone(); }
                if let Some(f) = &flags[flag] { v["flags"] = f.clone(); }
                if let Some(b) = &bodies[body] { v["body"] = b.clone(); }
                if pan && v["body"].is_object() { v["body"]["note"] = json!("card 4111 1111 1111 1111"); }
                v["pos_sequence"] = json!(n);
                let raw = serde_json::to_vec(&v).unwrap();
                let Prepared::Event(mut e) = one(&raw).0 else { continue };
                let figures = e.day_figures.take();
                let register = e.register_id.as_str().to_string();
                let payload = e.finish(&crate::event::EventId::new_v7(), crate::event::Seq::new(n as u64 + 1));
                let row = StoredEvent {
                    source: "lane1",
                    seq: n as u64 + 1,
                    register: &register,
                    figures: figures.as_ref().map(|f| f.as_bytes()),
                };
                prop_assert!(stored.add_figures(&row), "figures stored for {v}");
                from_payload.add("lane1", n as u64 + 1, &payload);
                prop_assert_eq!(&stored, &from_payload, "after {}", v);
            }
        }
    }
}
