//! PANs split across the strings of one JSON object or array (see "Split across
//! members" in the module doc of `redact`).

use serde_json::Value;

use super::Redactions;
use super::pan::{MAX_PAN, window_is_pan};
use super::scan::masked_digit;

/// The fewest digits of every part but the last: a quantity or a day of the month
/// never starts or continues a join. (The last part may be shorter: a 15- or
/// 19-digit number grouped by fours ends in 3 digits.)
const MIN_PART: usize = 4;
/// The most digits a part holds: longer strings (GTIN-12/13/14, epoch milliseconds)
/// are numbers of their own, and every way cards are split (4-4-4-4, 8-8, 6-10,
/// 4-6-5) fits.
const MAX_PART: usize = 10;
/// At most this many parts make one PAN (19 digits: four of 4 and one of 3).
pub(super) const MAX_PARTS: usize = MAX_PAN / MIN_PART + 1;
/// Object members join only when their keys share this many leading bytes
/// (`pan1`/`pan2`, `card_a`/`card_b`).
const KEY_STEM: usize = 3;

/// What one string is to this rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    /// 1–10 digits, alone or grouped by single spaces or dashes: maybe part of a PAN.
    Part { digits: [u8; MAX_PART], n: u8 },
    /// Digits and `*` (a masked number) or more than 10 digits: parts never join
    /// across it.
    Stop,
}

/// What `s` is to the rule; `None` for strings it ignores (anything but digits,
/// spaces, dashes and `*`).
pub(super) fn classify(s: &[u8]) -> Option<Unit> {
    let (first, last) = (*s.first()?, *s.last()?);
    let unit = |c: u8| c.is_ascii_digit() || c == b'*';
    if !unit(first) || !unit(last) || s.len() > 2 * MAX_PAN {
        return None;
    }
    let mut digits = [0u8; MAX_PART];
    let mut n = 0;
    let mut starred = false;
    let mut prev_sep = false;
    for &c in s {
        if c.is_ascii_digit() {
            if let Some(slot) = digits.get_mut(n) {
                *slot = c;
            }
            n += 1;
        } else if c == b'*' {
            starred = true;
        } else if !is_part_sep(c) || prev_sep {
            return None;
        }
        prev_sep = is_part_sep(c);
    }
    if starred || n > MAX_PART {
        return Some(Unit::Stop);
    }
    let n = u8::try_from(n).ok().filter(|&n| n > 0)?;
    Some(Unit::Part { digits, n })
}

/// Card digits are grouped by spaces or dashes; a dot would make `12.99` a part.
fn is_part_sep(c: u8) -> bool {
    c == b' ' || c == b'-'
}

fn part_digits(u: &Unit) -> Option<&[u8]> {
    match u {
        Unit::Part { digits, n } => digits.get(..usize::from(*n)),
        Unit::Stop => None,
    }
}

/// True when the digits of these parts, joined, are a PAN by the window rule (an
/// issued length for its prefix, valid Luhn).
fn joined_is_pan<'u>(parts: impl Iterator<Item = &'u Unit>) -> bool {
    let mut joined = [0u8; MAX_PAN];
    let mut n = 0;
    let mut short = false;
    for u in parts {
        let Some(d) = part_digits(u) else {
            return false;
        };
        // Only the last part may hold fewer than MIN_PART digits.
        if short {
            return false;
        }
        short = d.len() < MIN_PART;
        let Some(slots) = joined.get_mut(n..n + d.len()) else {
            return false;
        };
        slots.copy_from_slice(d);
        n += d.len();
    }
    joined.get(..n).is_some_and(window_is_pan)
}

fn share_stem(a: &str, b: &str) -> bool {
    a.len() >= KEY_STEM
        && b.len() >= KEY_STEM
        && a.as_bytes().get(..KEY_STEM) == b.as_bytes().get(..KEY_STEM)
}

/// The groups of an object's parts to mask, as index ranges into `units` (the
/// members that take part, in key order): every run of 2–4 consecutive parts whose
/// keys share their first 3 bytes and whose digits joined are a PAN (every part
/// but the last at least 4 digits), overlapping runs merged.
pub(super) fn object_groups<K: AsRef<str>>(units: &[(K, Unit)]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for i in 0..units.len() {
        for j in i + 1..units.len().min(i + MAX_PARTS) {
            let Some(run) = units.get(i..=j) else { break };
            let stem = run
                .windows(2)
                .all(|w| share_stem(w[0].0.as_ref(), w[1].0.as_ref()));
            if !stem {
                break;
            }
            if joined_is_pan(run.iter().map(|(_, u)| u)) {
                match out.last_mut() {
                    Some(last) if last.1 > i => last.1 = last.1.max(j + 1),
                    _ => out.push((i, j + 1)),
                }
            }
        }
    }
    out
}

/// True when an array is a split PAN: 2–5 elements, every one a part (all but
/// the last at least 4 digits), their digits joined a PAN.
pub(super) fn array_is_split(items: &[Option<Unit>]) -> bool {
    (2..=MAX_PARTS).contains(&items.len())
        && items.iter().all(Option::is_some)
        && joined_is_pan(items.iter().flatten())
}

/// The masked text of each part of a group: their digits joined are masked to the
/// first 6 and last 4 and handed back part by part, separators dropped.
fn mask_group(units: &[Unit]) -> Vec<String> {
    let n: usize = units.iter().filter_map(part_digits).map(<[u8]>::len).sum();
    let mut j = 0;
    units
        .iter()
        .filter_map(part_digits)
        .map(|d| {
            d.iter()
                .map(|&c| {
                    let m = masked_digit(j, n, c);
                    j += 1;
                    char::from(m)
                })
                .collect()
        })
        .collect()
}

/// Masks the PAN split across an array's elements, if they are one.
pub(super) fn redact_array(items: &mut [Value]) -> Redactions {
    let mut r = Redactions::default();
    if !(2..=MAX_PARTS).contains(&items.len()) {
        return r;
    }
    let units: Vec<Option<Unit>> = items
        .iter()
        .map(|v| v.as_str().and_then(|s| classify(s.as_bytes())))
        .collect();
    if array_is_split(&units) {
        let parts: Vec<Unit> = units.into_iter().flatten().collect();
        for (v, masked) in items.iter_mut().zip(mask_group(&parts)) {
            *v = Value::String(masked);
        }
        r.pans = 1;
    }
    r
}

/// Masks the PANs split across an object's members (in key order).
pub(super) fn redact_object(map: &mut serde_json::Map<String, Value>) -> Redactions {
    let mut strings: Vec<&mut String> = Vec::new();
    let mut units: Vec<(&str, Unit)> = Vec::new();
    for (k, v) in map.iter_mut() {
        if let Value::String(s) = v
            && let Some(u) = classify(s.as_bytes())
        {
            units.push((k.as_str(), u));
            strings.push(s);
        }
    }
    let mut r = Redactions::default();
    if units.len() < 2 {
        return r;
    }
    for (a, b) in object_groups(&units) {
        let (Some(parts), Some(targets)) = (units.get(a..b), strings.get_mut(a..b)) else {
            continue;
        };
        let parts: Vec<Unit> = parts.iter().map(|(_, u)| *u).collect();
        for (s, masked) in targets.iter_mut().zip(mask_group(&parts)) {
            **s = masked;
        }
        r.pans = r.pans.saturating_add(1);
    }
    r
}
