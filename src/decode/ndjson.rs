//! NDJSON: the canonical input, one `posedge.event/1` object per line without the
//! agent-owned fields.

use super::Members;
use crate::event::{AGENT_FIELDS, EVENT_TYPES, Fields, raw as raw_member};
use crate::model::Transaction;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Parses one line and checks the envelope fields a register may supply. Members stay
/// raw JSON text; only the small envelope members are looked at.
pub fn decode(raw: &[u8]) -> Result<Fields, String> {
    decode_parsed(raw).map(|m| m.fields)
}

/// [`decode`], with the transaction body as read into the model for its integrity check
/// (when the event is a transaction whose body reads as one) and where the members'
/// texts were found in `raw`.
pub fn decode_parsed(raw: &[u8]) -> Result<Members, String> {
    let text = std::str::from_utf8(raw)
        .map_err(|e| format!("not UTF-8 (invalid byte at offset {})", e.valid_up_to()))?;
    let text = text.trim_end_matches(['\r', '\n']);
    let mut spans = Vec::new();
    let mut map: Fields = match serde_json::from_str::<BTreeMap<String, &RawValue>>(text) {
        Ok(m) => m
            .into_iter()
            .map(|(k, v)| {
                // Borrowed from `text`, which starts where `raw` does.
                let at = (v.get().as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
                spans.push(at..at.saturating_add(v.get().len()));
                (k, v.to_owned())
            })
            .collect(),
        Err(_) if serde_json::from_str::<IgnoredAny>(text).is_ok() => {
            return Err("a line must be one JSON object".into());
        }
        Err(e) => {
            return Err(format!("invalid JSON at column {}: {e}", e.column()));
        }
    };
    for f in AGENT_FIELDS {
        // A register cannot choose our identifiers; dropping them keeps ids trustworthy.
        map.remove(*f);
    }
    // `null` means "not known": the member is absent, as the schema says.
    map.retain(|_, v| v.get() != "null");
    let member = |key: &str| map.get(key).map(|r| r.get());
    let is_transaction = match member("event_type").map(serde_json::from_str::<Value>) {
        Some(Ok(Value::String(t))) if EVENT_TYPES.contains(&t.as_str()) => t == "transaction",
        Some(Ok(Value::String(t))) => {
            return Err(format!("unknown event_type {t:?}"));
        }
        Some(_) => return Err("event_type must be a string".into()),
        None => return Err("event_type is missing".into()),
    };
    for key in ["register_id", "business_day", "operator_id", "occurred_at"] {
        match member(key).map(serde_json::from_str::<Option<String>>) {
            None | Some(Ok(_)) => {}
            Some(Err(_)) => return Err(format!("{key} must be a string")),
        }
    }
    match member("pos_sequence").map(serde_json::from_str::<Value>) {
        None | Some(Ok(Value::Null)) => {}
        Some(Ok(Value::Number(n))) if n.is_u64() => {}
        Some(Ok(Value::String(s))) if !s.is_empty() && s.len() <= 64 => {}
        Some(_) => {
            return Err("pos_sequence must be a non-negative integer or a short string".into());
        }
    }
    for key in ["body", "ext", "flags"] {
        if member(key).is_some_and(|r| !r.starts_with('{')) {
            return Err(format!("{key} must be an object"));
        }
    }
    if let Some(flags) = member("flags") {
        let flags: serde_json::Map<String, Value> =
            serde_json::from_str(flags).map_err(|_| String::from("flags must be an object"))?;
        if let Some((k, _)) = flags.iter().find(|(_, v)| !v.is_boolean()) {
            return Err(format!("flags.{k} must be true or false"));
        }
        if let Some(k) = flags.keys().find(|k| !FLAGS.contains(&k.as_str())) {
            return Err(format!(
                "flags.{k} is not a flag (known: {}); vendor data goes in ext",
                FLAGS.join(", ")
            ));
        }
    }
    if let Some(at) = member("occurred_at").and_then(|r| serde_json::from_str::<String>(r).ok())
        && time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339).is_err()
    {
        return Err(format!(
            "occurred_at {at:?} is not an RFC 3339 time (e.g. 2026-11-27T10:00:00Z)"
        ));
    }
    if let Some(day) = member("business_day").and_then(|r| serde_json::from_str::<String>(r).ok())
        && time::Date::parse(
            &day,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .is_err()
    {
        return Err(format!("business_day {day:?} is not a date as YYYY-MM-DD"));
    }
    move_unknown_into_ext(&mut map);
    let mut parsed = None;
    if is_transaction && !map.contains_key("body") {
        let flagged = serde_json::json!({"integrity": ["body is not a posedge.event/1 transaction: there is no body"]});
        map.insert("body".into(), raw_member(&flagged));
    } else if is_transaction && let Some(body) = map.get("body") {
        let (transaction, flagged) = integrity(body.get());
        if let Some(findings) = flagged {
            let mut object: serde_json::Map<String, Value> =
                serde_json::from_str(body.get()).unwrap_or_default();
            object.remove("integrity");
            if !findings.is_empty() {
                object.insert("integrity".into(), Value::from(findings));
            }
            map.insert("body".into(), raw_member(&Value::Object(object)));
        }
        parsed = transaction;
    }
    Ok(Members {
        fields: map,
        transaction: parsed,
        spans,
    })
}

/// Envelope members a register may send; the rest are agent-owned or vendor data.
const REGISTER_FIELDS: &[&str] = &[
    "event_type",
    "register_id",
    "pos_sequence",
    "business_day",
    "operator_id",
    "occurred_at",
    "flags",
    "body",
    "ext",
];

/// The flags of DESIGN §3.
const FLAGS: &[&str] = &["training", "offline_payment", "reprint"];

/// Members the envelope does not define are vendor data: they move into `ext` under
/// their own name (kept, never refused), `~` appended when `ext` already uses the name.
/// Runs after `ext` was checked to be an object.
fn move_unknown_into_ext(map: &mut Fields) {
    let unknown: Vec<String> = map
        .keys()
        .filter(|k| !REGISTER_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect();
    if unknown.is_empty() {
        return;
    }
    let mut ext: serde_json::Map<String, Value> = map
        .get("ext")
        .and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or_default();
    for key in unknown {
        if let Some(v) = map.remove(&key) {
            let mut name = key;
            while ext.contains_key(&name) {
                name.push('~');
            }
            ext.insert(name, serde_json::from_str(v.get()).unwrap_or(Value::Null));
        }
    }
    map.insert("ext".into(), raw_member(&Value::Object(ext)));
}

/// The body read into the model, and the integrity findings for it (`None`: nothing to
/// flag and nothing claimed). The checks are the agent's, like for
/// every other format: a register's own `integrity` member is replaced, and a body
/// that is not a transaction is flagged as such, never refused (the sale happened).
fn integrity(body: &str) -> (Option<Box<Transaction>>, Option<Vec<String>>) {
    match serde_json::from_str::<Transaction>(body) {
        Ok(t) => {
            let found = t.check_integrity();
            // Rewritten whenever there is something to say, so the member is always in
            // the agent's own compact form (ingest counts flagged events by it).
            let flagged = (!found.is_empty() || !t.integrity.is_empty()).then_some(found);
            (Some(Box::new(t)), flagged)
        }
        Err(e) => (
            None,
            Some(vec![format!(
                "body is not a posedge.event/1 transaction: {e}"
            )]),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_minimal_event_and_strips_agent_fields() {
        let m = decode(br#"{"event_type":"no_sale","seq":99,"event_id":"x","register_id":"r1"}"#)
            .unwrap();
        assert!(!m.contains_key("seq") && !m.contains_key("event_id"));
        assert_eq!(m["register_id"].get(), "\"r1\"");
    }

    fn generated_transaction() -> Value {
        let mut g = crate::sim::generate::Generator::new(
            5,
            crate::sim::generate::Profile::Retail,
            "reg-1",
            "2026-11-27",
        );
        std::iter::repeat_with(|| g.next_event())
            .find(|e| e["event_type"] == "transaction")
            .unwrap()
    }

    fn body_of(event: &Value) -> Value {
        let m = decode(&serde_json::to_vec(event).unwrap()).unwrap();
        serde_json::from_str(m["body"].get()).unwrap()
    }

    #[test]
    fn spans_are_where_the_members_were_read() {
        let mut line = serde_json::to_vec(&generated_transaction()).unwrap();
        line.extend_from_slice(b"\r\n");
        let m = decode_parsed(&line).unwrap();
        // A consistent transaction: every member is the line's own text.
        for (key, value) in &m.fields {
            let found = m
                .spans
                .iter()
                .any(|r| line.get(r.clone()) == Some(value.get().as_bytes()));
            assert!(found, "{key} is not in the line at a span");
        }
    }

    #[test]
    fn a_consistent_transaction_passes_unchanged() {
        let ev = generated_transaction();
        assert_eq!(body_of(&ev), ev["body"]);
    }

    #[test]
    fn totals_that_do_not_add_up_are_flagged_with_the_figures_never_fixed() {
        let mut ev = generated_transaction();
        let grand = ev["body"]["totals"]["grand"].as_i64().unwrap();
        ev["body"]["totals"]["grand"] = Value::from(grand + 7);
        let body = body_of(&ev);
        assert_eq!(body["totals"]["grand"], grand + 7, "kept as sent");
        let findings = body["integrity"].as_array().unwrap();
        assert!(!findings.is_empty());
        assert!(
            findings
                .iter()
                .any(|f| f.as_str().unwrap().contains(&(grand + 7).to_string())),
            "{findings:?}"
        );
    }

    #[test]
    fn a_register_cannot_claim_or_hide_integrity_findings() {
        let mut ev = generated_transaction();
        ev["body"]["integrity"] = serde_json::json!(["all fine, trust me"]);
        assert!(
            body_of(&ev).get("integrity").is_none(),
            "consistent: claim dropped"
        );
        let ev = serde_json::json!({"event_type": "transaction", "body": {"note": "free text"}});
        let body = body_of(&ev);
        assert!(
            body["integrity"][0]
                .as_str()
                .unwrap()
                .contains("not a posedge.event/1 transaction"),
            "{body}"
        );
        assert_eq!(body["note"], "free text");
    }

    #[test]
    fn nulls_are_absent_and_vendor_members_move_into_ext() {
        let m = decode(
            br#"{"event_type":"no_sale","operator_id":null,"pos_sequence":null,"lane":"4","ext":{"lane":"x"}}"#,
        )
        .unwrap();
        assert!(!m.contains_key("operator_id") && !m.contains_key("pos_sequence"));
        assert!(!m.contains_key("lane"));
        let ext: Value = serde_json::from_str(m["ext"].get()).unwrap();
        assert_eq!(ext, serde_json::json!({"lane": "x", "lane~": "4"}));
        let m = decode(br#"{"event_type":"transaction"}"#).unwrap();
        assert!(m["body"].get().contains("there is no body"));
    }

    #[test]
    fn rejections_say_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"{not json", "invalid JSON"),
            (b"[1,2]", "one JSON object"),
            (b"{}", "event_type is missing"),
            (br#"{"event_type":"sale"}"#, "unknown event_type"),
            (br#"{"event_type":5}"#, "must be a string"),
            (
                br#"{"event_type":"transaction","register_id":7}"#,
                "register_id must be a string",
            ),
            (
                br#"{"event_type":"transaction","pos_sequence":-1}"#,
                "pos_sequence",
            ),
            (
                br#"{"event_type":"transaction","body":[]}"#,
                "body must be an object",
            ),
            (
                br#"{"event_type":"transaction","flags":{"training":"yes"}}"#,
                "flags.training",
            ),
            (b"\xff\xfe{}", "not UTF-8"),
            (
                br#"{"event_type":"no_sale","occurred_at":"2026-11-27 10:00"}"#,
                "not an RFC 3339 time",
            ),
            (
                br#"{"event_type":"no_sale","business_day":"27.11.2026"}"#,
                "YYYY-MM-DD",
            ),
            (
                br#"{"event_type":"no_sale","flags":{"vip":true}}"#,
                "flags.vip is not a flag",
            ),
        ];
        for (raw, want) in cases {
            let err = decode(raw).unwrap_err();
            assert!(
                err.contains(want),
                "{:?} → {err}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
