//! Checking a [`RuleSpec`] into a [`Rule`]: every problem is reported, with its key path,
//! so a store's IT team fixes the whole `[[mapping]]` section in one edit.

use super::path::FieldPath;
use super::sku::{Gtin, LeadingZeros, SkuOptions};
use super::{Action, Rule, RuleSpec, agent_owned};
use crate::config::Format;

const ACTIONS: &[&str] = &[
    "rename",
    "drop",
    "sku",
    "split_name",
    "join_name",
    "map_code",
];

/// Largest `width` for `leading_zeros = "pad"`: longer than any product code in use.
const MAX_WIDTH: i64 = 64;

/// The keys each action takes besides `source`, `format` and `action`.
fn keys_of(action: &str) -> &'static [&'static str] {
    match action {
        "rename" => &["from", "to"],
        "drop" => &["field"],
        "sku" => &["field", "trim", "leading_zeros", "width", "upper", "gtin"],
        "split_name" => &["field", "first", "last", "keep"],
        "join_name" => &["fields", "to", "separator", "keep"],
        "map_code" => &["field", "map", "unmapped"],
        _ => &[],
    }
}

/// Collects problems of rule `i`, keyed `mapping[i].key`.
struct Problems<'a> {
    i: usize,
    out: &'a mut Vec<(String, String)>,
    before: usize,
}

impl Problems<'_> {
    fn bad(&mut self, key: &str, message: impl Into<String>) {
        self.out
            .push((format!("mapping[{}].{key}", self.i), message.into()));
    }

    fn any(&self) -> bool {
        self.out.len() > self.before
    }

    /// A required path; `None` (with a problem) when missing or malformed.
    fn path(&mut self, key: &str, value: Option<&String>, action: &str) -> Option<FieldPath> {
        match value {
            None => {
                self.bad(key, format!("{action} needs `{key}`"));
                None
            }
            Some(text) => FieldPath::parse(text).map_err(|e| self.bad(key, e)).ok(),
        }
    }
}

/// How a rule uses one of its paths, for the checks that depend on it.
struct Use<'a> {
    /// The key as reported, e.g. `to` or `fields`.
    key: &'a str,
    /// The key as named in messages, e.g. `fields[1]`.
    label: String,
    path: &'a FieldPath,
    /// The rule writes or removes this path.
    writes: bool,
    /// The path may end in `[]` (a value transform over an array of codes).
    may_end_in_each: bool,
}

/// Checks one spec; `None` when it has problems (all of them pushed to `out`).
pub(super) fn compile(i: usize, spec: &RuleSpec, out: &mut Vec<(String, String)>) -> Option<Rule> {
    let before = out.len();
    let mut p = Problems { i, out, before };
    if let Some(source) = &spec.source
        && source.trim().is_empty()
    {
        p.bad(
            "source",
            "is empty; leave `source` out to match events from every source",
        );
    }
    if let Some(format) = &spec.format
        && !formats().any(|f| f == format)
    {
        p.bad(
            "format",
            format!(
                "unknown format {format:?} (use {})",
                formats().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    let action = spec.action.as_str();
    if !ACTIONS.contains(&action) {
        p.bad(
            "action",
            format!("unknown action {action:?} (use {})", ACTIONS.join(", ")),
        );
        return None;
    }
    let allowed = keys_of(action);
    for key in present_keys(spec) {
        if !allowed.contains(&key) {
            p.bad(
                key,
                format!(
                    "`{key}` is not used by {action} (it takes {})",
                    allowed.join(", ")
                ),
            );
        }
    }
    let a = match action {
        "rename" => rename(spec, &mut p),
        "drop" => drop_rule(spec, &mut p),
        "sku" => sku(spec, &mut p),
        "split_name" => split_name(spec, &mut p),
        "join_name" => join_name(spec, &mut p),
        _ => map_code(spec, &mut p),
    };
    let action = a.filter(|_| !p.any())?;
    Some(Rule {
        source: spec.source.clone(),
        format: spec.format.clone(),
        action,
    })
}

fn formats() -> impl Iterator<Item = &'static str> {
    <Format as clap::ValueEnum>::value_variants()
        .iter()
        .map(|f| f.as_str())
}

fn present_keys(s: &RuleSpec) -> impl Iterator<Item = &'static str> {
    [
        ("from", s.from.is_some()),
        ("to", s.to.is_some()),
        ("field", s.field.is_some()),
        ("fields", s.fields.is_some()),
        ("first", s.first.is_some()),
        ("last", s.last.is_some()),
        ("keep", s.keep.is_some()),
        ("separator", s.separator.is_some()),
        ("trim", s.trim.is_some()),
        ("leading_zeros", s.leading_zeros.is_some()),
        ("width", s.width.is_some()),
        ("upper", s.upper.is_some()),
        ("gtin", s.gtin.is_some()),
        ("map", s.map.is_some()),
        ("unmapped", s.unmapped.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
}

/// Checks that apply to every path of a rule: agent-owned targets, a trailing `[]`, one
/// scope (the first use is the reference) and no overlap between paths.
fn check_uses(uses: &[Use<'_>], p: &mut Problems<'_>) {
    for u in uses {
        if u.writes && agent_owned(u.path.root()) {
            p.bad(
                u.key,
                format!(
                    "{}: `{}` is agent-owned ({}); no mapping rule may write or remove it",
                    u.label,
                    u.path,
                    super::AGENT_FIELDS.join(", ")
                ),
            );
        }
        if !u.may_end_in_each && u.path.tail().is_empty() {
            p.bad(
                u.key,
                format!(
                    "{}: `{}` must end in a member name, not `[]`",
                    u.label, u.path
                ),
            );
        }
    }
    let Some((reference, others)) = uses.split_first() else {
        return;
    };
    for u in others {
        if u.path.scope() != reference.path.scope() {
            let through = |path: &FieldPath| {
                path.scope_text()
                    .map_or("no array".to_string(), |s| format!("`{s}`"))
            };
            p.bad(
                u.key,
                format!(
                    "{}: `{}` goes through {} but {} goes through {}; both must go through the same arrays so a value stays in its element",
                    u.label,
                    u.path,
                    through(u.path),
                    reference.label,
                    through(reference.path)
                ),
            );
        }
    }
    for (n, a) in uses.iter().enumerate() {
        for b in &uses[n + 1..] {
            if a.path == b.path {
                p.bad(
                    b.key,
                    format!("{}: `{}` is the same path as {}", b.label, b.path, a.label),
                );
            } else if a.path.overlaps(b.path) {
                p.bad(
                    b.key,
                    format!(
                        "{}: `{}` and {} `{}` overlap (one is inside the other)",
                        b.label, b.path, a.label, a.path
                    ),
                );
            }
        }
    }
}

fn path_use<'a>(key: &'a str, path: &'a FieldPath, writes: bool) -> Use<'a> {
    Use {
        key,
        label: format!("`{key}`"),
        path,
        writes,
        may_end_in_each: false,
    }
}

fn rename(s: &RuleSpec, p: &mut Problems<'_>) -> Option<Action> {
    let from = p.path("from", s.from.as_ref(), "rename");
    let to = p.path("to", s.to.as_ref(), "rename");
    let (from, to) = (from?, to?);
    check_uses(
        &[path_use("from", &from, true), path_use("to", &to, true)],
        p,
    );
    Some(Action::Rename { from, to })
}

fn drop_rule(s: &RuleSpec, p: &mut Problems<'_>) -> Option<Action> {
    let field = p.path("field", s.field.as_ref(), "drop")?;
    check_uses(&[path_use("field", &field, true)], p);
    Some(Action::Drop { field })
}

/// A value transform on one path, which may be an array of codes (`barcodes[]`).
fn value_field(s: &RuleSpec, p: &mut Problems<'_>, action: &str) -> Option<FieldPath> {
    let field = p.path("field", s.field.as_ref(), action)?;
    let mut u = path_use("field", &field, true);
    u.may_end_in_each = true;
    check_uses(&[u], p);
    Some(field)
}

fn sku(s: &RuleSpec, p: &mut Problems<'_>) -> Option<Action> {
    let field = value_field(s, p, "sku");
    let gtin = match s.gtin.as_deref() {
        None => Gtin::Off,
        Some("validate") => Gtin::Validate,
        Some("complete") => Gtin::Complete,
        Some(other) => {
            p.bad(
                "gtin",
                format!("{other:?} must be \"validate\" or \"complete\""),
            );
            Gtin::Off
        }
    };
    let leading_zeros = match s.leading_zeros.as_deref() {
        None => {
            if s.width.is_some() {
                p.bad("width", "`width` only applies with leading_zeros = \"pad\"");
            }
            LeadingZeros::Keep
        }
        Some("strip") => {
            if s.width.is_some() {
                p.bad(
                    "width",
                    "`width` only applies with leading_zeros = \"pad\", not \"strip\"",
                );
            }
            LeadingZeros::Strip
        }
        Some("pad") => match s.width {
            None => {
                p.bad(
                    "leading_zeros",
                    "leading_zeros = \"pad\" needs `width` (1–64)",
                );
                LeadingZeros::Keep
            }
            Some(w) if !(1..=MAX_WIDTH).contains(&w) => {
                p.bad("width", format!("{w} must be 1–{MAX_WIDTH}"));
                LeadingZeros::Keep
            }
            Some(w) => LeadingZeros::Pad(usize::try_from(w).unwrap_or(1)),
        },
        Some(other) => {
            p.bad(
                "leading_zeros",
                format!("{other:?} must be \"strip\" or \"pad\""),
            );
            LeadingZeros::Keep
        }
    };
    if gtin == Gtin::Complete && s.leading_zeros.is_some() {
        p.bad(
            "leading_zeros",
            "cannot be combined with gtin = \"complete\", which pads to 14 digits itself",
        );
    }
    Some(Action::Sku {
        field: field?,
        options: SkuOptions {
            trim: s.trim.unwrap_or(false),
            leading_zeros,
            upper: s.upper.unwrap_or(false),
            gtin,
        },
    })
}

fn split_name(s: &RuleSpec, p: &mut Problems<'_>) -> Option<Action> {
    let field = p.path("field", s.field.as_ref(), "split_name");
    let first = p.path("first", s.first.as_ref(), "split_name");
    let last = p.path("last", s.last.as_ref(), "split_name");
    let (field, first, last) = (field?, first?, last?);
    let keep = s.keep.unwrap_or(true);
    check_uses(
        &[
            path_use("field", &field, !keep),
            path_use("first", &first, true),
            path_use("last", &last, true),
        ],
        p,
    );
    Some(Action::SplitName {
        field,
        first,
        last,
        keep,
    })
}

fn join_name(s: &RuleSpec, p: &mut Problems<'_>) -> Option<Action> {
    let to = p.path("to", s.to.as_ref(), "join_name");
    let keep = s.keep.unwrap_or(true);
    let mut fields = Vec::new();
    match &s.fields {
        None => p.bad("fields", "join_name needs `fields`"),
        Some(list) if list.len() < 2 => p.bad(
            "fields",
            "join_name needs at least two fields (use rename to move one)",
        ),
        Some(list) => {
            for (j, text) in list.iter().enumerate() {
                match FieldPath::parse(text) {
                    Ok(path) => fields.push(path),
                    Err(e) => p.bad("fields", format!("fields[{j}]: {e}")),
                }
            }
        }
    }
    let to = to?;
    let mut uses = vec![path_use("to", &to, true)];
    for (j, f) in fields.iter().enumerate() {
        uses.push(Use {
            key: "fields",
            label: format!("fields[{j}]"),
            path: f,
            writes: !keep,
            may_end_in_each: false,
        });
    }
    check_uses(&uses, p);
    Some(Action::JoinName {
        fields,
        to,
        separator: s.separator.clone().unwrap_or_else(|| " ".into()),
        keep,
    })
}

fn map_code(s: &RuleSpec, p: &mut Problems<'_>) -> Option<Action> {
    let field = value_field(s, p, "map_code");
    let map = match &s.map {
        None => {
            p.bad(
                "map",
                "map_code needs `map`, e.g. map = { \"01\" = \"cash\" }",
            );
            None
        }
        Some(m) if m.is_empty() => {
            p.bad(
                "map",
                "map is empty; list at least one code, e.g. map = { \"01\" = \"cash\" }",
            );
            None
        }
        Some(m) => Some(m.clone()),
    };
    let flag = match s.unmapped.as_deref() {
        None | Some("keep") => false,
        Some("flag") => true,
        Some(other) => {
            p.bad(
                "unmapped",
                format!("{other:?} must be \"keep\" or \"flag\""),
            );
            false
        }
    };
    Some(Action::MapCode {
        field: field?,
        map: map?,
        flag,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Rules;
    use super::*;

    /// Problems of one `[[mapping]]` table written as TOML.
    fn problems(toml_text: &str) -> Vec<(String, String)> {
        let spec: RuleSpec = toml::from_str(toml_text).unwrap();
        Rules::compile(&[spec]).unwrap_err()
    }

    fn one(toml_text: &str) -> (String, String) {
        let p = problems(toml_text);
        assert_eq!(p.len(), 1, "{p:?}");
        p.into_iter().next().unwrap()
    }

    fn pair(key: &str, message: &str) -> (String, String) {
        (key.to_string(), message.to_string())
    }

    fn ok(toml_text: &str) {
        let spec: RuleSpec = toml::from_str(toml_text).unwrap();
        if let Err(p) = Rules::compile(&[spec]) {
            panic!("{toml_text}: {p:?}");
        }
    }

    #[test]
    fn valid_rules_of_every_kind_compile() {
        ok("action = \"rename\"\nfrom = \"ext.cust_no\"\nto = \"body.customer.id\"");
        ok("action = \"rename\"\nfrom = \"body.lines[].ext.code\"\nto = \"body.lines[].sku\"");
        ok("action = \"drop\"\nfield = \"ext.internal_note\"\nsource = \"lane1\"\nformat = \"kv\"");
        ok("action = \"sku\"\nfield = \"body.lines[].sku\"");
        ok(
            "action = \"sku\"\nfield = \"body.barcodes[]\"\nleading_zeros = \"pad\"\nwidth = 64\ntrim = true\nupper = true\ngtin = \"validate\"",
        );
        ok("action = \"split_name\"\nfield = \"source.name\"\nfirst = \"ext.a\"\nlast = \"ext.b\"");
        ok(
            "action = \"join_name\"\nfields = [\"ext.a\", \"ext.b\", \"ext.c\"]\nto = \"ext.name\"\nseparator = \"\"\nkeep = false",
        );
        ok(
            "action = \"map_code\"\nfield = \"body.lines[].type\"\nmap = { \"01\" = \"cash\" }\nunmapped = \"flag\"",
        );
    }

    #[test]
    fn unknown_action() {
        assert_eq!(
            one("action = \"copy\"\nfrom = \"a\"\nto = \"b\""),
            pair(
                "mapping[0].action",
                "unknown action \"copy\" (use rename, drop, sku, split_name, join_name, map_code)"
            )
        );
    }

    #[test]
    fn missing_keys() {
        assert_eq!(
            problems("action = \"rename\""),
            vec![
                pair("mapping[0].from", "rename needs `from`"),
                pair("mapping[0].to", "rename needs `to`"),
            ]
        );
        assert_eq!(
            one("action = \"drop\""),
            pair("mapping[0].field", "drop needs `field`")
        );
        assert_eq!(
            problems("action = \"split_name\"\nfield = \"ext.n\""),
            vec![
                pair("mapping[0].first", "split_name needs `first`"),
                pair("mapping[0].last", "split_name needs `last`"),
            ]
        );
        assert_eq!(
            one("action = \"join_name\"\nto = \"ext.n\""),
            pair("mapping[0].fields", "join_name needs `fields`")
        );
        assert_eq!(
            one("action = \"map_code\"\nfield = \"ext.n\""),
            pair(
                "mapping[0].map",
                "map_code needs `map`, e.g. map = { \"01\" = \"cash\" }"
            )
        );
    }

    #[test]
    fn extra_keys() {
        assert_eq!(
            one("action = \"drop\"\nfield = \"ext.x\"\nto = \"ext.y\""),
            pair("mapping[0].to", "`to` is not used by drop (it takes field)")
        );
        assert_eq!(
            one("action = \"rename\"\nfrom = \"a\"\nto = \"b\"\nkeep = false"),
            pair(
                "mapping[0].keep",
                "`keep` is not used by rename (it takes from, to)"
            )
        );
        assert_eq!(
            one("action = \"map_code\"\nfield = \"a\"\nmap = { x = \"y\" }\ntrim = true"),
            pair(
                "mapping[0].trim",
                "`trim` is not used by map_code (it takes field, map, unmapped)"
            )
        );
    }

    #[test]
    fn width_rules() {
        assert_eq!(
            one("action = \"sku\"\nfield = \"a\"\nwidth = 14"),
            pair(
                "mapping[0].width",
                "`width` only applies with leading_zeros = \"pad\""
            )
        );
        assert_eq!(
            one("action = \"sku\"\nfield = \"a\"\nleading_zeros = \"strip\"\nwidth = 14"),
            pair(
                "mapping[0].width",
                "`width` only applies with leading_zeros = \"pad\", not \"strip\""
            )
        );
        assert_eq!(
            one("action = \"sku\"\nfield = \"a\"\nleading_zeros = \"pad\""),
            pair(
                "mapping[0].leading_zeros",
                "leading_zeros = \"pad\" needs `width` (1–64)"
            )
        );
        for (w, msg) in [
            ("0", "0 must be 1–64"),
            ("65", "65 must be 1–64"),
            ("-3", "-3 must be 1–64"),
        ] {
            assert_eq!(
                one(&format!(
                    "action = \"sku\"\nfield = \"a\"\nleading_zeros = \"pad\"\nwidth = {w}"
                )),
                pair("mapping[0].width", msg)
            );
        }
    }

    #[test]
    fn bad_option_values() {
        assert_eq!(
            one("action = \"sku\"\nfield = \"a\"\nleading_zeros = \"trim\""),
            pair(
                "mapping[0].leading_zeros",
                "\"trim\" must be \"strip\" or \"pad\""
            )
        );
        assert_eq!(
            one("action = \"sku\"\nfield = \"a\"\ngtin = \"check\""),
            pair(
                "mapping[0].gtin",
                "\"check\" must be \"validate\" or \"complete\""
            )
        );
        assert_eq!(
            one("action = \"sku\"\nfield = \"a\"\ngtin = \"complete\"\nleading_zeros = \"strip\""),
            pair(
                "mapping[0].leading_zeros",
                "cannot be combined with gtin = \"complete\", which pads to 14 digits itself"
            )
        );
        assert_eq!(
            one("action = \"map_code\"\nfield = \"a\"\nmap = { x = \"y\" }\nunmapped = \"drop\""),
            pair(
                "mapping[0].unmapped",
                "\"drop\" must be \"keep\" or \"flag\""
            )
        );
        assert_eq!(
            one("action = \"map_code\"\nfield = \"a\"\nmap = {}"),
            pair(
                "mapping[0].map",
                "map is empty; list at least one code, e.g. map = { \"01\" = \"cash\" }"
            )
        );
        assert_eq!(
            one("action = \"join_name\"\nfields = [\"a\"]\nto = \"b\""),
            pair(
                "mapping[0].fields",
                "join_name needs at least two fields (use rename to move one)"
            )
        );
    }

    #[test]
    fn source_and_format() {
        assert_eq!(
            one("action = \"drop\"\nfield = \"a\"\nformat = \"xml\""),
            pair(
                "mapping[0].format",
                "unknown format \"xml\" (use ndjson, poslog, naxml, kv, escpos)"
            )
        );
        assert_eq!(
            one("action = \"drop\"\nfield = \"a\"\nsource = \"\""),
            pair(
                "mapping[0].source",
                "is empty; leave `source` out to match events from every source"
            )
        );
    }

    #[test]
    fn empty_and_malformed_paths() {
        assert_eq!(
            one("action = \"drop\"\nfield = \"\""),
            pair("mapping[0].field", "path is empty")
        );
        assert_eq!(
            one("action = \"drop\"\nfield = \"ext..note\""),
            pair(
                "mapping[0].field",
                "`ext..note` has an empty member name (`..`)"
            )
        );
        assert_eq!(
            one("action = \"rename\"\nfrom = \"a[]x\"\nto = \"b\""),
            pair(
                "mapping[0].from",
                "`a[]x`: `[]` must end a member name; write `a[].x`, not `a[]x`"
            )
        );
        assert_eq!(
            one("action = \"sku\"\nfield = \"[].sku\""),
            pair(
                "mapping[0].field",
                "`[].sku`: `[]` needs a member name before it; the event itself is an object, not an array"
            )
        );
        assert_eq!(
            one("action = \"join_name\"\nfields = [\"a\", \"b..c\"]\nto = \"d\""),
            pair(
                "mapping[0].fields",
                "fields[1]: `b..c` has an empty member name (`..`)"
            )
        );
        assert_eq!(
            one("action = \"drop\"\nfield = \"body.lines[]\""),
            pair(
                "mapping[0].field",
                "`field`: `body.lines[]` must end in a member name, not `[]`"
            )
        );
    }

    #[test]
    fn agent_owned_targets() {
        let owned = "schema, event_id, idempotency_key, store_id, source, seq, received_at";
        assert_eq!(
            one("action = \"drop\"\nfield = \"seq\""),
            pair(
                "mapping[0].field",
                &format!(
                    "`field`: `seq` is agent-owned ({owned}); no mapping rule may write or remove it"
                )
            )
        );
        assert_eq!(
            one("action = \"rename\"\nfrom = \"ext.id\"\nto = \"event_id\""),
            pair(
                "mapping[0].to",
                &format!(
                    "`to`: `event_id` is agent-owned ({owned}); no mapping rule may write or remove it"
                )
            )
        );
        assert_eq!(
            one("action = \"map_code\"\nfield = \"source.format\"\nmap = { a = \"b\" }"),
            pair(
                "mapping[0].field",
                &format!(
                    "`field`: `source.format` is agent-owned ({owned}); no mapping rule may write or remove it"
                )
            )
        );
        for key in ["schema", "idempotency_key", "store_id", "received_at"] {
            let p = one(&format!("action = \"sku\"\nfield = \"{key}\""));
            assert!(p.1.contains("agent-owned"), "{p:?}");
        }
        // Reading is fine; removing the original is writing.
        ok("action = \"join_name\"\nfields = [\"store_id\", \"register_id\"]\nto = \"ext.lane\"");
        assert_eq!(
            one(
                "action = \"split_name\"\nfield = \"source.name\"\nfirst = \"ext.a\"\nlast = \"ext.b\"\nkeep = false"
            ),
            pair(
                "mapping[0].field",
                &format!(
                    "`field`: `source.name` is agent-owned ({owned}); no mapping rule may write or remove it"
                )
            )
        );
    }

    #[test]
    fn rename_structure_must_match() {
        assert_eq!(
            one("action = \"rename\"\nfrom = \"body.lines[].code\"\nto = \"body.items[].sku\""),
            pair(
                "mapping[0].to",
                "`to`: `body.items[].sku` goes through `body.items[]` but `from` goes through `body.lines[]`; both must go through the same arrays so a value stays in its element"
            )
        );
        assert_eq!(
            one("action = \"rename\"\nfrom = \"body.lines[].code\"\nto = \"ext.code\""),
            pair(
                "mapping[0].to",
                "`to`: `ext.code` goes through no array but `from` goes through `body.lines[]`; both must go through the same arrays so a value stays in its element"
            )
        );
        assert_eq!(
            one("action = \"rename\"\nfrom = \"a.b\"\nto = \"a.b\""),
            pair("mapping[0].to", "`to`: `a.b` is the same path as `from`")
        );
        assert_eq!(
            one("action = \"rename\"\nfrom = \"a\"\nto = \"a.b\""),
            pair(
                "mapping[0].to",
                "`to`: `a.b` and `from` `a` overlap (one is inside the other)"
            )
        );
    }

    #[test]
    fn split_and_join_structure_must_match() {
        assert_eq!(
            one(
                "action = \"split_name\"\nfield = \"ext.name\"\nfirst = \"ext.name\"\nlast = \"ext.last\""
            ),
            pair(
                "mapping[0].first",
                "`first`: `ext.name` is the same path as `field`"
            )
        );
        assert_eq!(
            one("action = \"split_name\"\nfield = \"a[].n\"\nfirst = \"a[].f\"\nlast = \"b[].l\""),
            pair(
                "mapping[0].last",
                "`last`: `b[].l` goes through `b[]` but `field` goes through `a[]`; both must go through the same arrays so a value stays in its element"
            )
        );
        assert_eq!(
            one(
                "action = \"join_name\"\nfields = [\"ext.first\", \"ext.name.last\"]\nto = \"ext.name\""
            ),
            pair(
                "mapping[0].fields",
                "fields[1]: `ext.name.last` and `to` `ext.name` overlap (one is inside the other)"
            )
        );
    }

    #[test]
    fn problems_of_several_rules_are_all_reported_with_their_index() {
        let specs: Vec<RuleSpec> = [
            "action = \"drop\"\nfield = \"ext.ok\"",
            "action = \"drop\"\nfield = \"seq\"\nfrom = \"x\"",
            "action = \"nope\"",
        ]
        .iter()
        .map(|t| toml::from_str(t).unwrap())
        .collect();
        let p = Rules::compile(&specs).unwrap_err();
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            vec!["mapping[1].from", "mapping[1].field", "mapping[2].action"]
        );
    }
}
