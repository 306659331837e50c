//! NDJSON: the canonical input, one `posedge.event/1` object per line without the
//! agent-owned fields.

use crate::event::{AGENT_FIELDS, EVENT_TYPES, Fields};
use serde::de::IgnoredAny;
use serde_json::Value;

/// Parses one line and checks the envelope fields a register may supply. Members stay
/// raw JSON text; only the small envelope members are looked at.
pub fn decode(raw: &[u8]) -> Result<Fields, String> {
    let text = std::str::from_utf8(raw)
        .map_err(|e| format!("not UTF-8 (invalid byte at offset {})", e.valid_up_to()))?;
    let text = text.trim_end_matches(['\r', '\n']);
    let mut map: Fields = match serde_json::from_str(text) {
        Ok(m) => m,
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
    let member = |key: &str| map.get(key).map(|r| r.get());
    match member("event_type").map(serde_json::from_str::<Value>) {
        Some(Ok(Value::String(t))) if EVENT_TYPES.contains(&t.as_str()) => {}
        Some(Ok(Value::String(t))) => {
            return Err(format!("unknown event_type {t:?}"));
        }
        Some(_) => return Err("event_type must be a string".into()),
        None => return Err("event_type is missing".into()),
    }
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
    }
    Ok(map)
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
