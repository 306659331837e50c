//! Field paths such as `body.lines[].sku`: parsing, and walking them through an event.
//!
//! A path is dotted member names; a member followed by `[]` stands for every element of
//! the array it holds. Everything up to and including the last `[]` is the path's
//! *scope* (the objects it visits one by one); the rest is its *tail*, plain member
//! names inside each of those objects. Rules that touch several paths require one scope
//! for all of them, so a value never travels from one array element to another.

use serde_json::{Map, Value};
use std::fmt::Write as _;

/// One member name, and whether the path goes through every element of its array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Seg {
    pub(super) name: String,
    pub(super) each: bool,
}

/// A parsed field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segs: Vec<Seg>,
    scope_len: usize,
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl FieldPath {
    /// Parses `a.b[].c`; the error says what is wrong in words a config editor can act on.
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        if text.trim().is_empty() {
            return Err("path is empty".into());
        }
        let parts: Vec<&str> = text.split('.').collect();
        let mut segs = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            if part.is_empty() {
                return Err(if i == 0 {
                    format!("`{text}` starts with `.`")
                } else if i == parts.len() - 1 {
                    format!("`{text}` ends with `.`")
                } else {
                    format!("`{text}` has an empty member name (`..`)")
                });
            }
            let (name, rest) = match part.find('[') {
                Some(at) => part.split_at(at),
                None => (*part, ""),
            };
            if name.is_empty() {
                return Err(if i == 0 {
                    format!(
                        "`{text}`: `[]` needs a member name before it; the event itself is an object, not an array"
                    )
                } else {
                    format!(
                        "`{text}`: `[]` must follow a member name, as in `lines[]`, not `lines.[]`"
                    )
                });
            }
            if name.contains(']') {
                return Err(format!("`{text}`: `]` without `[`"));
            }
            if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "`{text}`: member names cannot contain spaces or control characters"
                ));
            }
            let each = match rest {
                "" => false,
                "[]" => true,
                r if r.starts_with("[][]") => {
                    return Err(format!(
                        "`{text}`: arrays of arrays (`[][]`) are not supported"
                    ));
                }
                r if r.starts_with("[]") && !r[2..].contains(['[', ']']) => {
                    return Err(format!(
                        "`{text}`: `[]` must end a member name; write `{name}[].{}`, not `{part}`",
                        &r[2..]
                    ));
                }
                r if r.len() > 2
                    && r.ends_with(']')
                    && r[1..r.len() - 1].bytes().all(|b| b.is_ascii_digit()) =>
                {
                    return Err(format!(
                        "`{text}`: only `[]` (every element) is supported, not an index like `{r}`"
                    ));
                }
                _ => return Err(format!("`{text}`: brackets must be exactly `[]`")),
            };
            segs.push(Seg {
                name: name.to_string(),
                each,
            });
        }
        let scope_len = segs.iter().rposition(|s| s.each).map_or(0, |p| p + 1);
        Ok(FieldPath {
            text: text.to_string(),
            segs,
            scope_len,
        })
    }

    /// The path as written in the config.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(super) fn segs(&self) -> &[Seg] {
        &self.segs
    }

    /// The arrays the path goes through, up to the last `[]`.
    pub(super) fn scope(&self) -> &[Seg] {
        &self.segs[..self.scope_len]
    }

    /// Member names inside each scope object; empty when the path ends in `[]`.
    pub(super) fn tail(&self) -> &[Seg] {
        &self.segs[self.scope_len..]
    }

    /// The top-level member the path starts at.
    pub(super) fn root(&self) -> &str {
        self.segs.first().map_or("", |s| s.name.as_str())
    }

    /// The scope written out (`body.lines[]`), or `None` for a path without `[]`.
    pub(super) fn scope_text(&self) -> Option<String> {
        let scope = self.scope();
        (!scope.is_empty()).then(|| render(scope))
    }

    /// True when one path is the other or lies inside it.
    pub(super) fn overlaps(&self, other: &FieldPath) -> bool {
        self.segs
            .iter()
            .zip(&other.segs)
            .all(|(a, b)| a.name == b.name && a.each == b.each)
    }
}

fn render(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&s.name);
        if s.each {
            out.push_str("[]");
        }
    }
    out
}

/// The concrete path of a tail under a scope object at `at` (`body.lines[2]` + `sku`).
pub(super) fn concrete(at: &str, tail: &[Seg]) -> String {
    let mut out = at.to_string();
    for s in tail {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&s.name);
    }
    out
}

/// Calls `f` with every value the whole path reaches and its concrete path.
pub(super) fn walk_values(root: &mut Map<String, Value>, path: &FieldPath, f: Visit<'_>) {
    let mut at = String::new();
    step(root, path.segs(), &mut at, f);
}

/// Calls `f` with every object the scope reaches (the event itself for an empty scope).
pub(super) fn for_each_scope(
    root: &mut Map<String, Value>,
    scope: &[Seg],
    f: &mut dyn FnMut(&mut Map<String, Value>, &str),
) {
    if scope.is_empty() {
        f(root, "");
        return;
    }
    let mut at = String::new();
    step(root, scope, &mut at, &mut |v, at| {
        if let Value::Object(m) = v {
            f(m, at);
        }
    });
}

type Visit<'a> = &'a mut dyn FnMut(&mut Value, &str);

fn step(m: &mut Map<String, Value>, segs: &[Seg], at: &mut String, f: Visit<'_>) {
    let Some((seg, rest)) = segs.split_first() else {
        return;
    };
    let Some(child) = m.get_mut(&seg.name) else {
        return;
    };
    let len = at.len();
    if !at.is_empty() {
        at.push('.');
    }
    at.push_str(&seg.name);
    if seg.each {
        if let Value::Array(items) = child {
            for (i, item) in items.iter_mut().enumerate() {
                let before = at.len();
                let _ = write!(at, "[{i}]");
                descend(item, rest, at, f);
                at.truncate(before);
            }
        }
    } else {
        descend(child, rest, at, f);
    }
    at.truncate(len);
}

fn descend(v: &mut Value, rest: &[Seg], at: &mut String, f: Visit<'_>) {
    if rest.is_empty() {
        f(v, at);
    } else if let Value::Object(m) = v {
        step(m, rest, at, f);
    }
}

/// The value at a tail, if present.
pub(super) fn get<'a>(m: &'a Map<String, Value>, tail: &[Seg]) -> Option<&'a Value> {
    let (last, parents) = tail.split_last()?;
    let mut cur = m;
    for s in parents {
        cur = cur.get(&s.name)?.as_object()?;
    }
    cur.get(&last.name)
}

/// The value at a tail when present and not `null` (null counts as absent).
pub(super) fn get_set<'a>(m: &'a Map<String, Value>, tail: &[Seg]) -> Option<&'a Value> {
    get(m, tail).filter(|v| !v.is_null())
}

/// Removes and returns the value at a tail.
pub(super) fn take(m: &mut Map<String, Value>, tail: &[Seg]) -> Option<Value> {
    let (last, parents) = tail.split_last()?;
    let mut cur = m;
    for s in parents {
        cur = cur.get_mut(&s.name)?.as_object_mut()?;
    }
    cur.remove(&last.name)
}

/// How many leading members of a tail exist as something other than an object or null,
/// so that [`set`] would have to overwrite data: `Some(n)` names the blocking prefix.
pub(super) fn blocked(m: &Map<String, Value>, tail: &[Seg]) -> Option<usize> {
    let parents = tail.split_last()?.1;
    let mut cur = m;
    for (i, s) in parents.iter().enumerate() {
        match cur.get(&s.name) {
            None | Some(Value::Null) => return None,
            Some(Value::Object(next)) => cur = next,
            Some(_) => return Some(i + 1),
        }
    }
    None
}

/// Writes a value at a tail, creating objects on the way (and in place of `null`).
/// Gives the value back when a member on the way holds something else.
pub(super) fn set(m: &mut Map<String, Value>, tail: &[Seg], v: Value) -> Result<(), Value> {
    let Some((last, parents)) = tail.split_last() else {
        return Err(v);
    };
    let mut cur = m;
    for s in parents {
        let slot = cur
            .entry(s.name.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if slot.is_null() {
            *slot = Value::Object(Map::new());
        }
        match slot {
            Value::Object(next) => cur = next,
            _ => return Err(v),
        }
    }
    cur.insert(last.name.clone(), v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> FieldPath {
        FieldPath::parse(s).unwrap()
    }

    fn err(s: &str) -> String {
        FieldPath::parse(s).unwrap_err()
    }

    #[test]
    fn parses_scope_and_tail() {
        let path = p("body.lines[].tender.type");
        assert_eq!(path.scope_text().as_deref(), Some("body.lines[]"));
        assert_eq!(render(path.tail()), "tender.type");
        assert_eq!(path.root(), "body");
        let plain = p("ext.cust_no");
        assert!(plain.scope().is_empty());
        assert_eq!(render(plain.tail()), "ext.cust_no");
        let ends = p("body.barcodes[]");
        assert!(ends.tail().is_empty());
    }

    #[test]
    fn rejects_malformed_paths() {
        assert_eq!(err(""), "path is empty");
        assert_eq!(err("  "), "path is empty");
        assert_eq!(err("a..b"), "`a..b` has an empty member name (`..`)");
        assert_eq!(err(".a"), "`.a` starts with `.`");
        assert_eq!(err("a."), "`a.` ends with `.`");
        assert_eq!(
            err("a[]x"),
            "`a[]x`: `[]` must end a member name; write `a[].x`, not `a[]x`"
        );
        assert!(err("[]").contains("needs a member name before it"));
        assert!(err("[].a").contains("the event itself is an object"));
        assert!(err("a.[].b").contains("must follow a member name"));
        assert!(err("a[0].b").contains("not an index like `[0]`"));
        assert!(err("a[][]").contains("arrays of arrays"));
        assert!(err("a[x]").contains("exactly `[]`"));
        assert!(err("a]").contains("`]` without `[`"));
        assert!(err("a b").contains("spaces"));
    }

    #[test]
    fn walks_every_element_with_concrete_paths() {
        let mut ev = json!({"body": {"lines": [{"sku": "1"}, {"x": 1}, 5, {"sku": "3"}]}});
        let Value::Object(m) = &mut ev else { panic!() };
        let mut seen = Vec::new();
        walk_values(m, &p("body.lines[].sku"), &mut |v, at| {
            seen.push((at.to_string(), v.clone()))
        });
        assert_eq!(
            seen,
            vec![
                ("body.lines[0].sku".to_string(), json!("1")),
                ("body.lines[3].sku".to_string(), json!("3")),
            ]
        );
    }

    #[test]
    fn set_creates_objects_and_refuses_to_overwrite_scalars() {
        let mut m = Map::new();
        m.insert("body".into(), json!({"customer": null, "note": "x"}));
        let tail = p("body.customer.id");
        assert_eq!(blocked(&m, tail.tail()), None);
        set(&mut m, tail.tail(), json!("C1")).unwrap();
        assert_eq!(m["body"]["customer"]["id"], json!("C1"));
        let through = p("body.note.text");
        assert_eq!(blocked(&m, through.tail()), Some(2));
        assert_eq!(set(&mut m, through.tail(), json!(1)), Err(json!(1)));
        assert_eq!(m["body"]["note"], json!("x"));
    }

    #[test]
    fn overlap_is_prefix_in_either_direction() {
        assert!(p("a.b").overlaps(&p("a.b")));
        assert!(p("a").overlaps(&p("a.b")));
        assert!(p("a.b.c").overlaps(&p("a.b")));
        assert!(!p("a.b").overlaps(&p("a.c")));
        assert!(!p("a[].b").overlaps(&p("a.b")));
    }
}
