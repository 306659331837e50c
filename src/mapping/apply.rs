//! Running one compiled rule over an event. Nothing here fails: what cannot be done is left
//! as it was and said in a finding.

use super::path::{self, FieldPath, Seg};
use super::sku::{self, SkuOptions};
use super::{Action, name};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Applies one action; true when the event changed.
pub(super) fn apply(
    action: &Action,
    event: &mut Map<String, Value>,
    findings: &mut Vec<String>,
) -> bool {
    match action {
        Action::Rename { from, to } => rename(from, to, event, findings),
        Action::Drop { field } => drop_field(field, event),
        Action::Sku { field, options } => sku_field(field, options, event, findings),
        Action::SplitName {
            field,
            first,
            last,
            keep,
        } => split_name(field, first, last, *keep, event, findings),
        Action::JoinName {
            fields,
            to,
            separator,
            keep,
        } => join_name(fields, to, separator, *keep, event, findings),
        Action::MapCode { field, map, flag } => map_code(field, map, *flag, event, findings),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a non-integer number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value quoted for a finding, cut short: findings travel inside every event.
fn quote(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// The integer or string a code or SKU is, as text; `None` for anything else.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// True when every target can take its value without overwriting anything; otherwise a
/// finding says which member is in the way.
fn can_write(
    m: &Map<String, Value>,
    at: &str,
    targets: &[(&[Seg], &Value)],
    label: &dyn Fn() -> String,
    findings: &mut Vec<String>,
) -> bool {
    for (tail, value) in targets {
        if let Some(existing) = path::get_set(m, tail)
            && existing != *value
        {
            findings.push(format!(
                "{}: {} already holds a different value, left unchanged",
                label(),
                path::concrete(at, tail)
            ));
            return false;
        }
        if let Some(n) = path::blocked(m, tail) {
            findings.push(format!(
                "{}: {} is not an object, left unchanged",
                label(),
                path::concrete(at, &tail[..n])
            ));
            return false;
        }
    }
    true
}

/// Writes values [`can_write`] accepted; true when any differed.
fn write_all(m: &mut Map<String, Value>, targets: Vec<(&[Seg], Value)>) -> bool {
    let mut changed = false;
    for (tail, value) in targets {
        if path::get(m, tail) != Some(&value) {
            changed |= path::set(m, tail, value).is_ok();
        }
    }
    changed
}

fn rename(
    from: &FieldPath,
    to: &FieldPath,
    event: &mut Map<String, Value>,
    findings: &mut Vec<String>,
) -> bool {
    let mut changed = false;
    path::for_each_scope(event, from.scope(), &mut |m, at| {
        let label = || {
            format!(
                "rename {} -> {}",
                path::concrete(at, from.tail()),
                path::concrete(at, to.tail())
            )
        };
        let Some(value) = path::get_set(m, from.tail()) else {
            return;
        };
        if !can_write(m, at, &[(to.tail(), value)], &label, findings) {
            return;
        }
        let Some(value) = path::take(m, from.tail()) else {
            return;
        };
        match path::set(m, to.tail(), value) {
            Ok(()) => changed = true,
            // Unreachable after `can_write`; the value goes back rather than being lost.
            Err(value) => {
                let _ = path::set(m, from.tail(), value);
            }
        }
    });
    changed
}

fn drop_field(field: &FieldPath, event: &mut Map<String, Value>) -> bool {
    let mut changed = false;
    path::for_each_scope(event, field.scope(), &mut |m, _| {
        changed |= path::take(m, field.tail()).is_some();
    });
    changed
}

fn sku_field(
    field: &FieldPath,
    options: &SkuOptions,
    event: &mut Map<String, Value>,
    findings: &mut Vec<String>,
) -> bool {
    let mut changed = false;
    path::walk_values(event, field, &mut |v, at| {
        if v.is_null() {
            return;
        }
        let Some(text) = as_text(v) else {
            findings.push(format!(
                "sku {at}: {} is not a string or integer, left unchanged",
                kind(v)
            ));
            return;
        };
        let mut notes = Vec::new();
        let normalised = sku::normalise(&text, options, &mut notes);
        findings.extend(notes.into_iter().map(|n| format!("sku {at}: {n}")));
        if v.as_str() != Some(normalised.as_str()) {
            *v = Value::String(normalised);
            changed = true;
        }
    });
    changed
}

fn split_name(
    field: &FieldPath,
    first: &FieldPath,
    last: &FieldPath,
    keep: bool,
    event: &mut Map<String, Value>,
    findings: &mut Vec<String>,
) -> bool {
    let mut changed = false;
    path::for_each_scope(event, field.scope(), &mut |m, at| {
        let label = || format!("split_name {}", path::concrete(at, field.tail()));
        let (f, l) = match path::get_set(m, field.tail()) {
            None => return,
            Some(Value::String(s)) => name::split(s),
            Some(other) => {
                findings.push(format!(
                    "{}: {} is not a string, left unchanged",
                    label(),
                    kind(other)
                ));
                return;
            }
        };
        let targets: Vec<(&[Seg], Value)> = [(first.tail(), f), (last.tail(), l)]
            .into_iter()
            .filter_map(|(tail, part)| Some((tail, Value::String(part?))))
            .collect();
        if targets.is_empty() {
            return;
        }
        let refs: Vec<(&[Seg], &Value)> = targets.iter().map(|(t, v)| (*t, v)).collect();
        if !can_write(m, at, &refs, &label, findings) {
            return;
        }
        changed |= write_all(m, targets);
        if !keep {
            changed |= path::take(m, field.tail()).is_some();
        }
    });
    changed
}

fn join_name(
    fields: &[FieldPath],
    to: &FieldPath,
    separator: &str,
    keep: bool,
    event: &mut Map<String, Value>,
    findings: &mut Vec<String>,
) -> bool {
    let mut changed = false;
    path::for_each_scope(event, to.scope(), &mut |m, at| {
        let label = || format!("join_name {}", path::concrete(at, to.tail()));
        let mut parts = Vec::new();
        for f in fields {
            match path::get_set(m, f.tail()) {
                None => {}
                Some(Value::String(s)) => {
                    let s = s.trim();
                    if !s.is_empty() {
                        parts.push(s);
                    }
                }
                Some(other) => {
                    findings.push(format!(
                        "{}: {} is {}, not a string, left unchanged",
                        label(),
                        path::concrete(at, f.tail()),
                        kind(other)
                    ));
                    return;
                }
            }
        }
        if parts.is_empty() {
            return;
        }
        let joined = Value::String(parts.join(separator));
        if !can_write(m, at, &[(to.tail(), &joined)], &label, findings) {
            return;
        }
        changed |= write_all(m, vec![(to.tail(), joined)]);
        if !keep {
            for f in fields {
                changed |= path::take(m, f.tail()).is_some();
            }
        }
    });
    changed
}

fn map_code(
    field: &FieldPath,
    map: &BTreeMap<String, String>,
    flag: bool,
    event: &mut Map<String, Value>,
    findings: &mut Vec<String>,
) -> bool {
    let mut changed = false;
    path::walk_values(event, field, &mut |v, at| {
        if v.is_null() {
            return;
        }
        let Some(code) = as_text(v) else {
            findings.push(format!(
                "map_code {at}: {} is not a code (string or integer), left unchanged",
                kind(v)
            ));
            return;
        };
        match map.get(&code) {
            Some(to) => {
                if v.as_str() != Some(to.as_str()) {
                    *v = Value::String(to.clone());
                    changed = true;
                }
            }
            None => {
                if flag && !map.values().any(|t| *t == code) {
                    findings.push(format!("map_code {at}: unmapped code {}", quote(&code)));
                }
            }
        }
    });
    changed
}

#[cfg(test)]
mod tests {
    use super::super::{Applied, RuleSpec, Rules};
    use serde_json::{Map, Value, json};

    /// A transaction as DESIGN §3 describes it, as a POS with its own conventions sent it.
    fn transaction() -> Map<String, Value> {
        let v = json!({
            "schema": "posedge.event/1",
            "event_id": "0190a3c2-7b1e-7cc0-9d55-0c4f1b2a3e4d",
            "idempotency_key": "store-042|reg-1|2024-05-03|1042|transaction",
            "event_type": "transaction",
            "store_id": "store-042",
            "register_id": "reg-1",
            "source": {"name": "lane1", "kind": "tcp", "format": "ndjson", "raw_sha256": "9f2c"},
            "seq": 17,
            "pos_sequence": "1042",
            "business_day": "2024-05-03",
            "operator_id": "op-7",
            "occurred_at": "2024-05-03T10:15:00+02:00",
            "received_at": "2024-05-03T08:15:00.120Z",
            "flags": {"training": false, "offline_payment": false, "reprint": false},
            "body": {
                "status": "completed",
                "kind": "sale",
                "currency": "EUR",
                "lines": [
                    {"kind": "item", "sku": "  0004711 ", "gtin": "4006381333931",
                     "description": "Pencil HB", "quantity": "2.000", "uom": "each",
                     "unit_price": 129, "extended": 258,
                     "taxes": [{"code": "A", "rate": "0.19", "amount": 41}]},
                    {"kind": "item", "sku": 4712, "gtin": 36000291452_u64,
                     "description": "Apples", "quantity": "0.420", "uom": "kg",
                     "unit_price": 399, "extended": 168},
                    {"kind": "item", "sku": "abc-9", "gtin": "4006381333932",
                     "description": "Eraser", "quantity": "1", "unit_price": 100, "extended": 100},
                    {"kind": "tender", "type": "01", "amount": 300},
                    {"kind": "tender", "type": "99", "amount": 226}
                ],
                "totals": {"gross": 526, "discounts": 0, "tax": 84, "grand": 526,
                           "tendered": 526, "change": 0, "item_count": 3},
                "customer": {"loyalty_id": "L-77"}
            },
            "ext": {"cust_no": "C-1001", "internal_note": "call back", "customer_name": "Doe, Jane"}
        });
        v.as_object().cloned().unwrap()
    }

    fn rules(toml_text: &str) -> Rules {
        #[derive(serde::Deserialize)]
        struct File {
            mapping: Vec<RuleSpec>,
        }
        let file: File = toml::from_str(toml_text).unwrap();
        Rules::compile(&file.mapping).unwrap()
    }

    fn run(toml_text: &str, event: &mut Map<String, Value>) -> Applied {
        rules(toml_text).apply("lane1", "ndjson", event)
    }

    #[test]
    fn rename_moves_and_creates_objects() {
        let mut ev = transaction();
        let applied = run(
            "[[mapping]]\naction = \"rename\"\nfrom = \"ext.cust_no\"\nto = \"body.customer.id\"\n\
             [[mapping]]\naction = \"rename\"\nfrom = \"ext.internal_note\"\nto = \"ext.notes.internal.text\"",
            &mut ev,
        );
        assert_eq!(
            applied,
            Applied {
                changed: 2,
                findings: vec![]
            }
        );
        assert_eq!(
            ev["body"]["customer"],
            json!({"loyalty_id": "L-77", "id": "C-1001"})
        );
        assert_eq!(
            ev["ext"]["notes"],
            json!({"internal": {"text": "call back"}})
        );
        assert!(ev["ext"].get("cust_no").is_none());
        assert!(ev["ext"].get("internal_note").is_none());
    }

    #[test]
    fn rename_never_overwrites() {
        let mut ev = transaction();
        let applied = run(
            "[[mapping]]\naction = \"rename\"\nfrom = \"ext.cust_no\"\nto = \"body.customer.loyalty_id\"\n\
             [[mapping]]\naction = \"rename\"\nfrom = \"ext.internal_note\"\nto = \"body.currency.note\"",
            &mut ev,
        );
        assert_eq!(applied.changed, 0);
        assert_eq!(
            applied.findings,
            vec![
                "rename ext.cust_no -> body.customer.loyalty_id: body.customer.loyalty_id already holds a different value, left unchanged",
                "rename ext.internal_note -> body.currency.note: body.currency is not an object, left unchanged",
            ]
        );
        assert_eq!(ev, transaction());
        // The same value already in place: the source goes, nothing is reported.
        ev.insert("ext".into(), json!({"loyalty": "L-77"}));
        let applied = run(
            "[[mapping]]\naction = \"rename\"\nfrom = \"ext.loyalty\"\nto = \"body.customer.loyalty_id\"",
            &mut ev,
        );
        assert_eq!(
            applied,
            Applied {
                changed: 1,
                findings: vec![]
            }
        );
        assert_eq!(ev["ext"], json!({}));
    }

    #[test]
    fn rename_within_every_line() {
        let mut ev = transaction();
        let applied = run(
            "[[mapping]]\naction = \"rename\"\nfrom = \"body.lines[].description\"\nto = \"body.lines[].text.short\"",
            &mut ev,
        );
        assert_eq!(applied.changed, 1);
        let lines = ev["body"]["lines"].as_array().unwrap();
        assert_eq!(lines[0]["text"], json!({"short": "Pencil HB"}));
        assert_eq!(lines[2]["text"], json!({"short": "Eraser"}));
        assert!(lines.iter().all(|l| l.get("description").is_none()));
        assert!(lines[3].get("text").is_none());
    }

    #[test]
    fn absent_paths_are_not_applied() {
        let mut ev = transaction();
        let applied = run(
            "[[mapping]]\naction = \"rename\"\nfrom = \"ext.nothing\"\nto = \"ext.x\"\n\
             [[mapping]]\naction = \"drop\"\nfield = \"body.nothing[].x\"\n\
             [[mapping]]\naction = \"sku\"\nfield = \"body.lines[].nothing\"\nupper = true\n\
             [[mapping]]\naction = \"split_name\"\nfield = \"ext.nobody\"\nfirst = \"ext.f\"\nlast = \"ext.l\"\n\
             [[mapping]]\naction = \"join_name\"\nfields = [\"ext.a\", \"ext.b\"]\nto = \"ext.ab\"\n\
             [[mapping]]\naction = \"map_code\"\nfield = \"body.status.code\"\nmap = { a = \"b\" }\nunmapped = \"flag\"",
            &mut ev,
        );
        assert_eq!(applied, Applied::default());
        assert_eq!(ev, transaction());
    }

    #[test]
    fn drop_removes_members() {
        let mut ev = transaction();
        let applied = run(
            "[[mapping]]\naction = \"drop\"\nfield = \"ext.internal_note\"\n\
             [[mapping]]\naction = \"drop\"\nfield = \"body.lines[].taxes\"",
            &mut ev,
        );
        assert_eq!(applied.changed, 2);
        assert!(ev["ext"].get("internal_note").is_none());
        assert!(
            ev["body"]["lines"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l.get("taxes").is_none())
        );
        assert_eq!(
            run(
                "[[mapping]]\naction = \"drop\"\nfield = \"ext.internal_note\"",
                &mut ev
            )
            .changed,
            0
        );
    }

    #[test]
    fn sku_strip_and_pad() {
        let mut ev = transaction();
        let applied = run(
            "[[mapping]]\naction = \"sku\"\nfield = \"body.lines[].sku\"\ntrim = true\nleading_zeros = \"strip\"\nupper = true",
            &mut ev,
        );
        assert_eq!(
            applied,
            Applied {
                changed: 1,
                findings: vec![]
            }
        );
        let skus: Vec<&Value> = ev["body"]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l.get("sku"))
            .collect();
        assert_eq!(skus, vec![&json!("4711"), &json!("4712"), &json!("ABC-9")]);
        let applied = run(
            "[[mapping]]\naction = \"sku\"\nfield = \"body.lines[].sku\"\nleading_zeros = \"pad\"\nwidth = 8",
            &mut ev,
        );
        assert_eq!(applied.changed, 1);
        let skus: Vec<&Value> = ev["body"]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l.get("sku"))
            .collect();
        assert_eq!(
            skus,
            vec![&json!("00004711"), &json!("00004712"), &json!("000ABC-9")]
        );
    }

    #[test]
    fn sku_gtin_validate_and_complete() {
        let mut ev = transaction();
        let applied = run(
            "[[mapping]]\naction = \"sku\"\nfield = \"body.lines[].gtin\"\ngtin = \"validate\"",
            &mut ev,
        );
        // The integer becomes a string; the 11-digit value is not GTIN-shaped for validate.
        assert_eq!(applied.changed, 1);
        assert_eq!(ev["body"]["lines"][1]["gtin"], json!("36000291452"));
        assert_eq!(
            applied.findings,
            vec!["sku body.lines[2].gtin: GTIN check digit 2 expected 1"]
        );
        let applied = run(
            "[[mapping]]\naction = \"sku\"\nfield = \"body.lines[].gtin\"\ngtin = \"complete\"",
            &mut ev,
        );
        assert_eq!(applied.changed, 1);
        assert_eq!(
            applied.findings,
            vec!["sku body.lines[2].gtin: GTIN check digit 2 expected 1"]
        );
        let gtins: Vec<&Value> = ev["body"]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l.get("gtin"))
            .collect();
        assert_eq!(
            gtins,
            vec![
                &json!("04006381333931"),
                &json!("00036000291452"),
                &json!("04006381333932")
            ]
        );
    }

    #[test]
    fn sku_reports_values_it_cannot_normalise() {
        let mut ev = Map::new();
        ev.insert(
            "body".into(),
            json!({"barcodes": ["96385074", 1.5, true, null, ["x"]]}),
        );
        let applied = run(
            "[[mapping]]\naction = \"sku\"\nfield = \"body.barcodes[]\"\ngtin = \"complete\"",
            &mut ev,
        );
        assert_eq!(applied.changed, 1);
        assert_eq!(
            ev["body"]["barcodes"],
            json!(["00000096385074", 1.5, true, null, ["x"]])
        );
        assert_eq!(
            applied.findings,
            vec![
                "sku body.barcodes[1]: a non-integer number is not a string or integer, left unchanged",
                "sku body.barcodes[2]: a boolean is not a string or integer, left unchanged",
                "sku body.barcodes[4]: an array is not a string or integer, left unchanged",
            ]
        );
    }

    #[test]
    fn split_name_last_first_and_first_middle_last() {
        let mut ev = transaction();
        let applied = run(
            "[[mapping]]\naction = \"split_name\"\nfield = \"ext.customer_name\"\nfirst = \"ext.customer.first_name\"\nlast = \"ext.customer.last_name\"\nkeep = false",
            &mut ev,
        );
        assert_eq!(
            applied,
            Applied {
                changed: 1,
                findings: vec![]
            }
        );
        assert_eq!(
            ev["ext"]["customer"],
            json!({"first_name": "Jane", "last_name": "Doe"})
        );
        assert!(ev["ext"].get("customer_name").is_none());

        let mut ev = Map::new();
        ev.insert(
            "ext".into(),
            json!({"people": [{"name": "Jane Q. Doe"}, {"name": "Cher"}, {"name": 7}]}),
        );
        let applied = run(
            "[[mapping]]\naction = \"split_name\"\nfield = \"ext.people[].name\"\nfirst = \"ext.people[].first\"\nlast = \"ext.people[].last\"",
            &mut ev,
        );
        assert_eq!(applied.changed, 1);
        assert_eq!(
            ev["ext"]["people"],
            json!([
                {"name": "Jane Q. Doe", "first": "Jane Q.", "last": "Doe"},
                {"name": "Cher", "last": "Cher"},
                {"name": 7}
            ])
        );
        assert_eq!(
            applied.findings,
            vec!["split_name ext.people[2].name: a number is not a string, left unchanged"]
        );
        // A second run finds everything in place.
        let again = run(
            "[[mapping]]\naction = \"split_name\"\nfield = \"ext.people[].name\"\nfirst = \"ext.people[].first\"\nlast = \"ext.people[].last\"",
            &mut ev,
        );
        assert_eq!(again.changed, 0);
    }

    #[test]
    fn split_name_does_not_overwrite() {
        let mut ev = Map::new();
        ev.insert("ext".into(), json!({"name": "Doe, Jane", "first": "John"}));
        let applied = run(
            "[[mapping]]\naction = \"split_name\"\nfield = \"ext.name\"\nfirst = \"ext.first\"\nlast = \"ext.last\"\nkeep = false",
            &mut ev,
        );
        assert_eq!(applied.changed, 0);
        assert_eq!(
            applied.findings,
            vec!["split_name ext.name: ext.first already holds a different value, left unchanged"]
        );
        assert_eq!(ev["ext"], json!({"name": "Doe, Jane", "first": "John"}));
    }

    #[test]
    fn join_name_joins_what_is_there() {
        let rule = "[[mapping]]\naction = \"join_name\"\nfields = [\"ext.first\", \"ext.middle\", \"ext.last\"]\nto = \"ext.name\"\n";
        let mut ev = Map::new();
        ev.insert(
            "ext".into(),
            json!({"first": " Jane ", "middle": null, "last": "Doe"}),
        );
        assert_eq!(
            run(rule, &mut ev),
            Applied {
                changed: 1,
                findings: vec![]
            }
        );
        assert_eq!(ev["ext"]["name"], json!("Jane Doe"));
        assert_eq!(ev["ext"]["first"], json!(" Jane "));

        let mut ev = Map::new();
        ev.insert("ext".into(), json!({"first": "Jane", "last": "Doe"}));
        let dropped = format!("{rule}separator = \"|\"\nkeep = false");
        assert_eq!(run(&dropped, &mut ev).changed, 1);
        assert_eq!(ev["ext"], json!({"name": "Jane|Doe"}));

        let mut ev = Map::new();
        ev.insert("ext".into(), json!({"first": "Jane", "last": 42}));
        let applied = run(rule, &mut ev);
        assert_eq!(applied.changed, 0);
        assert_eq!(
            applied.findings,
            vec!["join_name ext.name: ext.last is a number, not a string, left unchanged"]
        );
    }

    #[test]
    fn map_code_keep_and_flag() {
        let keep = "[[mapping]]\naction = \"map_code\"\nfield = \"body.lines[].type\"\nmap = { \"01\" = \"cash\", \"02\" = \"credit\", \"3\" = \"gift_card\" }";
        let mut ev = transaction();
        let applied = run(keep, &mut ev);
        assert_eq!(
            applied,
            Applied {
                changed: 1,
                findings: vec![]
            }
        );
        assert_eq!(ev["body"]["lines"][3]["type"], json!("cash"));
        assert_eq!(ev["body"]["lines"][4]["type"], json!("99"));

        let mut ev = transaction();
        let applied = run(&format!("{keep}\nunmapped = \"flag\""), &mut ev);
        assert_eq!(applied.changed, 1);
        assert_eq!(
            applied.findings,
            vec!["map_code body.lines[4].type: unmapped code \"99\""]
        );
        // Already mapped values are not flagged again; integer codes are looked up as text.
        ev["body"]["lines"][4]["type"] = json!(3);
        let applied = run(&format!("{keep}\nunmapped = \"flag\""), &mut ev);
        assert_eq!(
            applied,
            Applied {
                changed: 1,
                findings: vec![]
            }
        );
        assert_eq!(ev["body"]["lines"][4]["type"], json!("gift_card"));
    }

    #[test]
    fn rules_follow_source_and_format() {
        let r = rules(
            "[[mapping]]\nsource = \"lane2\"\naction = \"drop\"\nfield = \"ext.cust_no\"\n\
             [[mapping]]\nformat = \"poslog\"\naction = \"drop\"\nfield = \"ext.internal_note\"\n\
             [[mapping]]\nsource = \"lane1\"\nformat = \"ndjson\"\naction = \"drop\"\nfield = \"ext.customer_name\"",
        );
        let mut ev = transaction();
        assert_eq!(r.apply("lane1", "ndjson", &mut ev).changed, 1);
        assert!(ev["ext"].get("customer_name").is_none());
        assert!(ev["ext"].get("cust_no").is_some());
        assert_eq!(r.apply("lane2", "poslog", &mut ev).changed, 2);
        assert_eq!(ev["ext"], json!({}));
    }

    #[test]
    fn money_and_quantities_keep_their_types() {
        let mut ev = transaction();
        let applied = run(
            "[[mapping]]\naction = \"rename\"\nfrom = \"body.lines[].unit_price\"\nto = \"body.lines[].price.unit\"\n\
             [[mapping]]\naction = \"sku\"\nfield = \"body.lines[].sku\"\ntrim = true\n\
             [[mapping]]\naction = \"map_code\"\nfield = \"body.lines[].kind\"\nmap = { tender = \"tender\" }",
            &mut ev,
        );
        assert_eq!(applied.changed, 2);
        assert_eq!(ev["body"]["lines"][0]["price"]["unit"], json!(129));
        assert!(ev["body"]["lines"][0]["price"]["unit"].is_u64());
        assert_eq!(ev["body"]["lines"][1]["quantity"], json!("0.420"));
        assert_eq!(ev["body"]["totals"], transaction()["body"]["totals"]);
    }

    #[test]
    fn long_codes_are_cut_in_findings() {
        let mut ev = Map::new();
        ev.insert("code".into(), json!("9".repeat(100)));
        let applied = run(
            "[[mapping]]\naction = \"map_code\"\nfield = \"code\"\nmap = { a = \"b\" }\nunmapped = \"flag\"",
            &mut ev,
        );
        assert_eq!(
            applied.findings,
            vec![format!(
                "map_code code: unmapped code {:?}…",
                "9".repeat(64)
            )]
        );
    }
}
