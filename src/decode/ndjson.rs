//! NDJSON: the canonical input, one `posedge.event/1` object per line without the
//! agent-owned fields.

use super::Rejection;
use crate::event::{AGENT_FIELDS, EVENT_TYPES};
use serde_json::{Map, Value};

/// Parses one line and checks the envelope fields a register may supply.
pub fn decode(raw: &[u8]) -> Result<Map<String, Value>, Rejection> {
    let text = std::str::from_utf8(raw).map_err(|e| {
        Rejection(format!(
            "not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let value: Value = serde_json::from_str(text.trim_end_matches(['\r', '\n']))
        .map_err(|e| Rejection(format!("invalid JSON at column {}: {e}", e.column())))?;
    let Value::Object(mut map) = value else {
        return Err(Rejection("a line must be one JSON object".into()));
    };
    for f in AGENT_FIELDS {
        // A register cannot choose our identifiers; dropping them keeps ids trustworthy.
        map.remove(*f);
    }
    match map.get("event_type") {
        Some(Value::String(t)) if EVENT_TYPES.contains(&t.as_str()) => {}
        Some(Value::String(t)) => {
            return Err(Rejection(format!("unknown event_type {t:?}")));
        }
        Some(_) => return Err(Rejection("event_type must be a string".into())),
        None => return Err(Rejection("event_type is missing".into())),
    }
    for key in ["register_id", "business_day", "operator_id", "occurred_at"] {
        match map.get(key) {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(_) => return Err(Rejection(format!("{key} must be a string"))),
        }
    }
    if let Some(Value::String(r)) = map.get("register_id")
        && (r.is_empty()
            || r.len() > 64
            || !r
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)))
    {
        return Err(Rejection(
            "register_id must be 1–64 characters of A–Z a–z 0–9 _ - .".into(),
        ));
    }
    match map.get("pos_sequence") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.is_u64() => {}
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 64 => {}
        Some(_) => {
            return Err(Rejection(
                "pos_sequence must be a non-negative integer or a short string".into(),
            ));
        }
    }
    for key in ["body", "ext", "flags"] {
        match map.get(key) {
            None | Some(Value::Object(_)) => {}
            Some(_) => return Err(Rejection(format!("{key} must be an object"))),
        }
    }
    if let Some(Value::Object(flags)) = map.get("flags")
        && let Some((k, _)) = flags.iter().find(|(_, v)| !v.is_boolean())
    {
        return Err(Rejection(format!("flags.{k} must be true or false")));
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
        assert_eq!(m["register_id"], "r1");
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
                err.0.contains(want),
                "{:?} → {err}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
