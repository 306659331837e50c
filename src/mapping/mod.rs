//! Mapping rules: config-driven rewrites of decoded events, because every retail system
//! stores the same thing differently (numeric SKUs in the POS and alphanumeric ones in the
//! ERP, one name string or first and last, vendor tender and tax codes).
//!
//! Each `[[mapping]]` table of the config is one [`RuleSpec`]. [`Rules::compile`] checks
//! them all up front, so a rule that could never apply is a config error with its key
//! path (`mapping[2].to`), not a surprise in the field. [`Rules::apply`] then runs, in
//! config order, every rule whose `source` and `format` match the event; a later rule sees
//! the result of the earlier ones. Applying never fails: a path an event does not have is
//! simply not applied, and anything worth a look (a bad GTIN check digit, an unmapped code,
//! a target that already holds a different value) is returned as a finding for the agent
//! to append to `body.mapping`.
//!
//! ```toml
//! # POS lane 1 keeps the customer number in a vendor field.
//! [[mapping]]
//! source = "lane1"
//! action = "rename"
//! from = "ext.cust_no"
//! to = "body.customer.id"
//!
//! [[mapping]]
//! action = "drop"
//! field = "ext.internal_note"
//!
//! # The POS drops leading zeros; the ERP wants GTIN-14.
//! [[mapping]]
//! format = "kv"
//! action = "sku"
//! field = "body.lines[].gtin"
//! trim = true
//! gtin = "complete"
//!
//! [[mapping]]
//! action = "sku"
//! field = "body.lines[].sku"
//! trim = true
//! leading_zeros = "pad"
//! width = 10
//! upper = true
//!
//! [[mapping]]
//! action = "split_name"
//! field = "ext.customer_name"
//! first = "ext.customer_first_name"
//! last = "ext.customer_last_name"
//! keep = false
//!
//! [[mapping]]
//! action = "join_name"
//! fields = ["ext.first", "ext.last"]
//! to = "ext.name"
//! separator = " "
//!
//! [[mapping]]
//! format = "poslog"
//! action = "map_code"
//! field = "body.lines[].type"
//! map = { "01" = "cash", "02" = "credit", "03" = "debit" }
//! unmapped = "flag"
//! ```
//!
//! # Keys
//!
//! Every rule may have `source` (only events from the source of that name) and `format`
//! (only events decoded from `ndjson`, `poslog`, `naxml`, `kv` or `escpos`); without them
//! it applies to every event. `action` is required; the other keys depend on it, and a key
//! the action does not use is an error.
//!
//! | action | keys (required **bold**) | does |
//! |---|---|---|
//! | `rename` | **`from`**, **`to`** | moves the value, creating objects on the way to `to` |
//! | `drop` | **`field`** | removes the member |
//! | `sku` | **`field`**, `trim`, `leading_zeros`, `width`, `upper`, `gtin` | normalises a SKU or GTIN |
//! | `split_name` | **`field`**, **`first`**, **`last`**, `keep` | one name string into first and last |
//! | `join_name` | **`fields`**, **`to`**, `separator`, `keep` | several strings into one |
//! | `map_code` | **`field`**, **`map`**, `unmapped` | replaces codes through a table |
//!
//! - `sku`: `trim = true` removes surrounding whitespace; `leading_zeros = "strip"` removes
//!   leading zeros (an all-zero value keeps one), `leading_zeros = "pad"` with `width = N`
//!   (1–64) left-pads with zeros to N characters (a longer value is kept and reported);
//!   `upper = true` upper-cases; `gtin = "validate"` checks the check digit of values of
//!   8, 12, 13 or 14 digits, and `gtin = "complete"` pads values of 8–14 digits to GTIN-14
//!   (restoring zeros a POS lost by keeping the code as an integer) and checks the check
//!   digit. A wrong check digit is reported, never corrected. Other values (PLUs, internal
//!   codes) are left to the other options. The steps run in that order: trim, leading
//!   zeros, upper, GTIN; `gtin = "complete"` sets the leading zeros itself, so it cannot
//!   be combined with `leading_zeros`. Strings are normalised and integers become strings
//!   (so a bare `sku` rule turns numeric SKUs into text); other values are reported.
//! - `split_name`: "Last, First Middle" splits at the comma; otherwise the last word is the
//!   last name and the words before it the first name; a single word is a last name only.
//!   `keep` (default `true`) keeps the original field; `keep = false` removes it.
//! - `join_name`: the string values present among `fields`, trimmed, joined with `separator`
//!   (default one space) in the order listed; at least two fields. `keep` (default `true`)
//!   keeps the parts; `keep = false` removes them.
//! - `map_code`: `map` is a non-empty table from code to replacement. A code is a string or
//!   an integer (looked up by its decimal digits). An unmapped code is left alone;
//!   `unmapped = "flag"` (default `"keep"`) also reports it, unless it already equals one of
//!   the replacements.
//!
//! # Paths
//!
//! Dotted member names; `name[]` means every element of that array, as in
//! `body.lines[].tender.type`. Indexes (`[0]`), `[][]`, empty names and whitespace in names
//! are errors. Only `sku` and `map_code` paths may end in `[]` (an array of codes). The
//! paths of one `rename`, `split_name` or `join_name` rule must go through the same arrays
//! (`body.lines[].a` to `body.lines[].b`, never `body.items[].b`) so a value stays in its
//! element, and must not overlap. No rule may write or remove an agent-owned field
//! ([`AGENT_FIELDS`]: `schema`, `event_id`, `seq`, …); reading one (the `field` of a
//! `split_name` that keeps it, the `fields` of a `join_name` that keeps them) is allowed.
//!
//! # Values
//!
//! A `null` member counts as absent. A rule never overwrites a value: when a target already
//! holds something different, or a member on the way to it is not an object, nothing is
//! changed and a finding says so. Rules only move values or write strings, so money (integer
//! minor units) and quantities (decimal strings) are never turned into floats.

mod apply;
mod compile;
mod name;
mod path;
mod sku;

pub use path::FieldPath;

use crate::event::AGENT_FIELDS;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One `[[mapping]]` table of the config, as written; [`Rules::compile`] checks it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Only events from the source of this name.
    #[serde(default)]
    pub source: Option<String>,
    /// Only events decoded from this format.
    #[serde(default)]
    pub format: Option<String>,
    /// rename | drop | sku | split_name | join_name | map_code.
    pub action: String,
    /// rename: the path to move from.
    #[serde(default)]
    pub from: Option<String>,
    /// rename, join_name: the path to write.
    #[serde(default)]
    pub to: Option<String>,
    /// drop, sku, split_name, map_code: the path the rule works on.
    #[serde(default)]
    pub field: Option<String>,
    /// join_name: the paths to join, in order.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// split_name: where the first name goes.
    #[serde(default)]
    pub first: Option<String>,
    /// split_name: where the last name goes.
    #[serde(default)]
    pub last: Option<String>,
    /// split_name, join_name: keep the original field(s) (default true).
    #[serde(default)]
    pub keep: Option<bool>,
    /// join_name: put between the parts (default one space).
    #[serde(default)]
    pub separator: Option<String>,
    /// sku: remove surrounding whitespace.
    #[serde(default)]
    pub trim: Option<bool>,
    /// sku: "strip" or "pad".
    #[serde(default)]
    pub leading_zeros: Option<String>,
    /// sku: pad width for `leading_zeros = "pad"` (1–64); signed so a negative is reported.
    #[serde(default)]
    pub width: Option<i64>,
    /// sku: upper-case the value.
    #[serde(default)]
    pub upper: Option<bool>,
    /// sku: "validate" or "complete".
    #[serde(default)]
    pub gtin: Option<String>,
    /// map_code: code → replacement.
    #[serde(default)]
    pub map: Option<BTreeMap<String, String>>,
    /// map_code: "keep" (default) or "flag".
    #[serde(default)]
    pub unmapped: Option<String>,
}

/// What a compiled rule does.
#[derive(Debug, Clone)]
enum Action {
    Rename {
        from: FieldPath,
        to: FieldPath,
    },
    Drop {
        field: FieldPath,
    },
    Sku {
        field: FieldPath,
        options: sku::SkuOptions,
    },
    SplitName {
        field: FieldPath,
        first: FieldPath,
        last: FieldPath,
        keep: bool,
    },
    JoinName {
        fields: Vec<FieldPath>,
        to: FieldPath,
        separator: String,
        keep: bool,
    },
    MapCode {
        field: FieldPath,
        map: BTreeMap<String, String>,
        flag: bool,
    },
}

/// One checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    source: Option<String>,
    format: Option<String>,
    action: Action,
}

impl Rule {
    /// True when the rule applies to events of this source name and format.
    pub fn matches(&self, source: &str, format: &str) -> bool {
        self.source.as_deref().is_none_or(|s| s == source)
            && self.format.as_deref().is_none_or(|f| f == format)
    }

    /// Applies this rule alone; true when it changed the event.
    pub fn apply(&self, event: &mut Map<String, Value>, findings: &mut Vec<String>) -> bool {
        apply::apply(&self.action, event, findings)
    }
}

/// The checked `[[mapping]]` rules, in config order.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

/// What applying the rules did to one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// How many rules changed something.
    pub changed: usize,
    /// Things worth a look, e.g. `sku body.lines[2].sku: GTIN check digit 4 expected 7`.
    pub findings: Vec<String>,
}

impl Rules {
    /// Checks every spec; on failure returns every problem as `("mapping[i].key", message)`.
    pub fn compile(specs: &[RuleSpec]) -> Result<Rules, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let rules: Vec<Rule> = specs
            .iter()
            .enumerate()
            .filter_map(|(i, spec)| compile::compile(i, spec, &mut problems))
            .collect();
        if problems.is_empty() {
            Ok(Rules { rules })
        } else {
            Err(problems)
        }
    }

    /// True when there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The rules that apply to events of this source name and format, in order.
    pub fn for_origin<'a>(
        &'a self,
        source: &'a str,
        format: &'a str,
    ) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |r| r.matches(source, format))
    }

    /// Applies every matching rule to an event, in order.
    pub fn apply(&self, source: &str, format: &str, event: &mut Map<String, Value>) -> Applied {
        let mut applied = Applied::default();
        for rule in self.for_origin(source, format) {
            if rule.apply(event, &mut applied.findings) {
                applied.changed += 1;
            }
        }
        applied
    }
}

/// Problems with rule `source` names that are not configured sources, for the config
/// loader, which knows the names.
pub fn unknown_sources(specs: &[RuleSpec], known: &dyn Fn(&str) -> bool) -> Vec<(String, String)> {
    specs
        .iter()
        .enumerate()
        .filter_map(|(i, spec)| {
            let name = spec.source.as_deref()?;
            (!name.is_empty() && !known(name)).then(|| {
                (
                    format!("mapping[{i}].source"),
                    format!("{name:?} is not the name of a configured [[source]]"),
                )
            })
        })
        .collect()
}

/// True when no mapping rule may write or remove the top-level member `name`.
fn agent_owned(name: &str) -> bool {
    AGENT_FIELDS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn specs(toml_text: &str) -> Vec<RuleSpec> {
        #[derive(Deserialize)]
        struct File {
            mapping: Vec<RuleSpec>,
        }
        toml::from_str::<File>(toml_text).unwrap().mapping
    }

    #[test]
    fn module_doc_example_compiles() {
        let text = include_str!("mod.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
            .collect::<Vec<_>>()
            .join("\n");
        let rules = Rules::compile(&specs(&text)).unwrap();
        assert_eq!(rules.len(), 7);
        assert_eq!(rules.for_origin("lane1", "ndjson").count(), 5);
        assert_eq!(rules.for_origin("lane2", "poslog").count(), 5);
        assert_eq!(rules.for_origin("lane1", "kv").count(), 6);
    }

    #[test]
    fn unknown_keys_are_rejected_by_serde() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct File {
            mapping: Vec<RuleSpec>,
        }
        let err = toml::from_str::<File>("[[mapping]]\naction = \"drop\"\nfeild = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `feild`"), "{err}");
    }

    #[test]
    fn unknown_sources_are_named() {
        let s = specs(
            "[[mapping]]\nsource = \"lane1\"\naction = \"drop\"\nfield = \"x\"\n\
             [[mapping]]\nsource = \"lane9\"\naction = \"drop\"\nfield = \"x\"\n",
        );
        assert_eq!(
            unknown_sources(&s, &|n| n == "lane1"),
            vec![(
                "mapping[1].source".to_string(),
                "\"lane9\" is not the name of a configured [[source]]".to_string()
            )]
        );
    }

    #[test]
    fn empty_rules_change_nothing() {
        let rules = Rules::compile(&[]).unwrap();
        assert!(rules.is_empty());
        let mut ev = json!({"a": 1}).as_object().cloned().unwrap();
        assert_eq!(rules.apply("s", "ndjson", &mut ev), Applied::default());
        assert_eq!(Value::Object(ev), json!({"a": 1}));
    }

    /// Rules of every kind over the member names the generator below uses.
    fn fuzz_rules() -> Rules {
        Rules::compile(&specs(
            r#"
[[mapping]]
action = "rename"
from = "a[].b"
to = "a[].c.d"
[[mapping]]
action = "rename"
from = "b"
to = "c.a.b"
[[mapping]]
action = "drop"
field = "a[].a[].c"
[[mapping]]
action = "sku"
field = "a[].b"
trim = true
leading_zeros = "strip"
upper = true
gtin = "validate"
[[mapping]]
action = "sku"
field = "c[]"
gtin = "complete"
[[mapping]]
action = "sku"
field = "b.a"
leading_zeros = "pad"
width = 14
[[mapping]]
action = "split_name"
field = "a[].c"
first = "a[].d"
last = "a[].b.c"
keep = false
[[mapping]]
action = "join_name"
fields = ["d", "b.c", "a"]
to = "c.d"
keep = false
[[mapping]]
action = "map_code"
field = "a[].d"
map = { "1" = "cash", "01" = "card", "a" = "x" }
unmapped = "flag"
[[mapping]]
action = "map_code"
field = "d[]"
map = { "0" = "zero" }
"#,
        ))
        .unwrap()
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec!["a", "b", "c", "d", "ext"]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            "[ 0-9a-zA-Z,.]{0,16}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..5).prop_map(|m| {
                    Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }

    fn has_float(v: &Value) -> bool {
        match v {
            Value::Number(n) => n.is_f64(),
            Value::Array(a) => a.iter().any(has_float),
            Value::Object(m) => m.values().any(has_float),
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn apply_never_panics_nor_makes_floats(root in prop::collection::btree_map(
            prop::sample::select(vec!["a", "b", "c", "d", "seq"]), json_value(), 0..5)) {
            let rules = fuzz_rules();
            let mut event: Map<String, Value> =
                root.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            let seq_before = event.get("seq").cloned();
            let applied = rules.apply("s", "ndjson", &mut event);
            prop_assert!(applied.changed <= rules.len());
            prop_assert!(!has_float(&Value::Object(event.clone())));
            prop_assert_eq!(event.get("seq").cloned(), seq_before);
            // A second pass is safe too.
            let _ = rules.apply("s", "ndjson", &mut event);
        }
    }
}
