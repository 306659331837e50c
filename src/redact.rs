//! Card-data redaction: masks primary account numbers (PANs) and removes sensitive
//! authentication data in memory, before an event is first stored, logged or sent
//! (DESIGN.md §4, PCI DSS 3.3/3.4).
//!
//! # PAN rule
//!
//! A *run* is a maximal sequence of ASCII digits and `*` in which a single space,
//! `-` or `.` may stand between two such characters. `*` belongs to runs so that a
//! number this module already masked is seen as one unit again (which keeps
//! redaction idempotent); digits are never matched across a `*`.
//!
//! A digit string is *card-like* when it has 13–19 digits, passes the Luhn check
//! and starts with a plausible issuer prefix (IIN). The prefixes, and the lengths
//! cards with that prefix are issued in, are:
//!
//! | prefix                          | brand                                              | lengths    |
//! |---------------------------------|----------------------------------------------------|------------|
//! | `4`                             | Visa                                               | 13, 16, 19 |
//! | `51`–`55`, `2221`–`2720`        | Mastercard                                         | 16         |
//! | `34`, `37`                      | American Express                                   | 15         |
//! | `36`, `38`, `300`–`305`         | Diners Club                                        | 14–19      |
//! | `3528`–`3589`                   | JCB                                                | 16–19      |
//! | `50`, `56`–`59`, all of `6`     | Maestro; Discover `6011`/`64`/`65`; UnionPay `62`  | 13–19      |
//!
//! Nothing else is a PAN: a first digit of 0, 1, 7, 8 or 9 (GTINs, epoch
//! timestamps, most order numbers), `2` outside 2221–2720, or `3` outside the
//! ranges above.
//!
//! 1. **Whole run.** A run without `*` holding 13–19 digits is a PAN when its
//!    digits are card-like (any length 13–19 for a plausible prefix).
//! 2. **Windows.** Otherwise, a window of consecutive digits inside the run is a
//!    PAN when it is card-like *and* its length is one its brand is issued in. In
//!    a run of more than 19 digits every window is checked, so a card number
//!    glued to other digits is still found. In a shorter run only windows that
//!    start and end at a run edge, a separator or a `*` are checked, so
//!    `4111 1111 1111 1111 2` is caught while an ordinary 17-digit identifier is
//!    not searched inside.
//!
//! A PAN is replaced by its first 6 digits, one `*` per hidden digit and its last
//! 4 digits; separators inside it are dropped (`4111-1111-1111-1111` becomes
//! `411111******1111`). When windows overlap, the one that best looks like a
//! formatted card number (aligned to separators, then the commonest length) is
//! masked; any overlapping window that would still show more than 10 of its
//! digits is merged into it, so no card-like digit string ever shows more than
//! the 10 digits PCI DSS allows.
//!
//! # Track data
//!
//! Replaced whole by `[track removed]`:
//! - track 1: `%B` + 12–19 digits + `^` + name (at most 45 printable bytes without
//!   `^ ? % " \`) + `^` + the rest up to and including `?` (when `?` follows
//!   within 79 letters, digits or spaces; otherwise just the digits). Without the
//!   `%` sentinel, `B` + a whole-run PAN + `^`… counts as well;
//! - track 2: `;` + 12–19 digits + `=` + at least 4 digits + optional `?`.
//!   Without the `;` sentinel the digits before `=` must end in a PAN (whole, or
//!   the longest suffix that is a PAN by the window rule), and the EMV tag-57 form
//!   with `D` instead of `=` needs at least 7 digits after it (plus an `F` pad).
//!
//! # Sensitive JSON members
//!
//! A member is removed when its key, lower-cased with `_`, `-`, `.` and spaces
//! dropped, is one of [`SENSITIVE_KEYS`] or contains one of
//! [`SENSITIVE_KEY_PARTS`].

use std::borrow::Cow;
use std::cmp::Reverse;

use serde_json::Value;

/// What a redaction pass found (counts only, never values).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Redactions {
    /// PANs masked.
    pub pans: u32,
    /// Track 1/2 data removed.
    pub tracks: u32,
    /// JSON members removed because their key names sensitive authentication data.
    pub fields: u32,
}

impl Redactions {
    /// All redactions of this pass together (saturating).
    pub fn total(&self) -> u32 {
        self.pans
            .saturating_add(self.tracks)
            .saturating_add(self.fields)
    }

    /// Adds the counts of another pass (saturating).
    pub fn add(&mut self, other: Redactions) {
        self.pans = self.pans.saturating_add(other.pans);
        self.tracks = self.tracks.saturating_add(other.tracks);
        self.fields = self.fields.saturating_add(other.fields);
    }
}

/// Keys (normalised) whose members are removed outright.
pub const SENSITIVE_KEYS: &[&str] = &[
    "cvv",
    "cvv2",
    "cvc",
    "cvc2",
    "cid",
    "csc",
    "pin",
    "pinblock",
    "track",
    "track1",
    "track2",
    "trackdata",
    "magstripe",
    "expiry",
    "expirydate",
    "exp",
    "expdate",
    "cardexpiry",
    "cardexpirydate",
    "expmonth",
    "expyear",
    "expirymonth",
    "expiryyear",
    "expiration",
    "expirationdate",
    "securitycode",
    "cardsecuritycode",
];

/// Key fragments (normalised) whose members are removed outright.
pub const SENSITIVE_KEY_PARTS: &[&str] = &["cvv", "cvc", "pinblock", "track"];

const TRACK_REMOVED: &[u8] = b"[track removed]";
const MIN_PAN: usize = 13;
const MAX_PAN: usize = 19;
/// PCI DSS allows at most the first 6 and last 4 digits to be shown.
const MAX_SHOWN: usize = 10;
const KEEP_FIRST: usize = 6;
const KEEP_LAST: usize = 4;
const MAX_TRACK1_NAME: usize = 45;
const MAX_TRACK1_TAIL: usize = 79;
/// Past this many overlapping candidates the input is pathological (e.g. a long
/// run of one digit); masking the whole cluster keeps memory and time bounded.
const CLUSTER_CAP: usize = 64;

/// Masks PANs and removes track data in one string; returns the new string (Cow to avoid allocation when nothing found) and counts.
pub fn redact_str(s: &str) -> (Cow<'_, str>, Redactions) {
    match scan(s.as_bytes()) {
        None => (Cow::Borrowed(s), Redactions::default()),
        Some((out, r)) => {
            // Every cut and insertion is at an ASCII byte, so `out` is UTF-8; the lossy
            // fallback only keeps this panic-free should that ever stop being true.
            let text = String::from_utf8(out)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            (Cow::Owned(text), r)
        }
    }
}

/// Same over raw bytes (dead letters keep raw input; it may not be UTF-8). ASCII digits/separators are matched; other bytes copied unchanged.
pub fn redact_bytes(b: &[u8]) -> (Cow<'_, [u8]>, Redactions) {
    match scan(b) {
        None => (Cow::Borrowed(b), Redactions::default()),
        Some((out, r)) => (Cow::Owned(out), r),
    }
}

/// Walks a JSON value: redacts every string (values AND object keys), and removes entirely any object member whose key names sensitive authentication data.
///
/// A number that holds a PAN becomes a string with the masked form: the type
/// changes, but the card number must not survive.
pub fn redact_json(v: &mut Value) -> Redactions {
    let mut r = Redactions::default();
    // An explicit stack: values built in code are not depth-limited like parsed ones,
    // and recursion could overflow the stack on a hostile document.
    let mut stack: Vec<&mut Value> = vec![v];
    while let Some(v) = stack.pop() {
        if let Value::Number(n) = v {
            // An integer below 1e12 has too few digits for a PAN; fractions are rare
            // in this schema ("never floats") and cheap to check in full.
            if n.is_f64() || n.as_f64().is_some_and(|f| f.abs() >= 1e12) {
                let text = n.to_string();
                let (c, found) = redact_str(&text);
                if let Cow::Owned(new) = c {
                    r.add(found);
                    *v = Value::String(new);
                }
            }
            continue;
        }
        match v {
            Value::String(s) => {
                let (c, found) = redact_str(s);
                if let Cow::Owned(new) = c {
                    r.add(found);
                    *s = new;
                }
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(map) => {
                let before = map.len();
                map.retain(|k, _| !is_sensitive_key(k));
                let removed = u32::try_from(before - map.len()).unwrap_or(u32::MAX);
                r.fields = r.fields.saturating_add(removed);

                let renames: Vec<(String, String)> = map
                    .keys()
                    .filter_map(|k| {
                        let (c, found) = redact_str(k);
                        match c {
                            Cow::Owned(new) => {
                                r.add(found);
                                Some((k.clone(), new))
                            }
                            Cow::Borrowed(_) => None,
                        }
                    })
                    .collect();
                for (old, mut new) in renames {
                    if let Some(val) = map.remove(&old) {
                        // Two keys can mask to the same text; never let one silently
                        // overwrite the other.
                        while map.contains_key(&new) {
                            new.push('~');
                        }
                        map.insert(new, val);
                    }
                }
                stack.extend(map.values_mut());
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    r
}

/// True when [`redact_json`] would change nothing in this JSON text: no sensitive key,
/// no card data in any key or string, no number it would inspect. Checks without
/// building a value, so clean events (nearly all) skip the parse-redact-serialise round
/// trip. Unparseable text is not clean.
pub fn json_is_clean(json: &str) -> bool {
    let mut de = serde_json::Deserializer::from_str(json);
    match serde::Deserialize::deserialize(&mut de) {
        Ok(Clean(clean)) => clean && de.end().is_ok(),
        Err(_) => false,
    }
}

fn str_is_clean(s: &str) -> bool {
    scan(s.as_bytes()).is_none()
}

/// Verdict of [`json_is_clean`] for one value.
struct Clean(bool);

/// Verdict for one object key.
struct CleanKey(bool);

impl<'de> serde::Deserialize<'de> for Clean {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CleanVisitor)
    }
}

impl<'de> serde::Deserialize<'de> for CleanKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl serde::de::Visitor<'_> for KeyVisitor {
    type Value = CleanKey;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, key: &str) -> Result<CleanKey, E> {
        Ok(CleanKey(key_is_clean(key)))
    }
}

struct CleanVisitor;

impl<'de> serde::de::Visitor<'de> for CleanVisitor {
    type Value = Clean;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Clean, E> {
        Ok(Clean(true))
    }
    fn visit_unit<E>(self) -> Result<Clean, E> {
        Ok(Clean(true))
    }
    // The same threshold as `redact_json`: smaller integers cannot hold a PAN.
    fn visit_i64<E>(self, v: i64) -> Result<Clean, E> {
        Ok(Clean(v.unsigned_abs() < 1_000_000_000_000))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Clean, E> {
        Ok(Clean(v < 1_000_000_000_000))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Clean, E> {
        Ok(Clean(false))
    }
    fn visit_str<E>(self, s: &str) -> Result<Clean, E> {
        Ok(Clean(str_is_clean(s)))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Clean, A::Error> {
        let mut clean = true;
        while let Some(Clean(c)) = seq.next_element()? {
            clean &= c;
        }
        Ok(Clean(clean))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Clean, A::Error> {
        let mut clean = true;
        while let Some(CleanKey(k)) = map.next_key()? {
            let Clean(v) = map.next_value()?;
            clean &= k && v;
        }
        Ok(Clean(clean))
    }
}

/// A key is clean when it names no sensitive field and holds no card data.
pub fn key_is_clean(key: &str) -> bool {
    !is_sensitive_key(key) && str_is_clean(key)
}

fn is_sensitive_key(key: &str) -> bool {
    let keep = |c: &u8| !matches!(c, b'_' | b'-' | b'.' | b' ');
    let len = key.bytes().filter(keep).count();
    // Keys are checked for every member of every event: avoid a heap copy for the
    // usual short key.
    let mut small = [0u8; 64];
    let large: Vec<u8>;
    let norm: &[u8] = if len <= small.len() {
        for (slot, c) in small.iter_mut().zip(key.bytes().filter(keep)) {
            *slot = c.to_ascii_lowercase();
        }
        small.get(..len).unwrap_or_default()
    } else {
        large = key
            .bytes()
            .filter(keep)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        &large
    };
    SENSITIVE_KEYS.iter().any(|k| k.as_bytes() == norm)
        || SENSITIVE_KEY_PARTS
            .iter()
            .any(|p| norm.windows(p.len()).any(|w| w == p.as_bytes()))
}

fn is_unit(c: u8) -> bool {
    c.is_ascii_digit() || c == b'*'
}

fn is_sep(c: u8) -> bool {
    matches!(c, b' ' | b'-' | b'.')
}

/// Branch-free per chunk so the compiler vectorises the common digit-free case.
fn has_digit(b: &[u8]) -> bool {
    b.chunks(64).any(|chunk| {
        chunk
            .iter()
            .fold(0u8, |acc, &c| acc | u8::from(c.wrapping_sub(b'0') < 10))
            != 0
    })
}

/// Skips ahead a block at a time; most text between numbers has no digits.
// Out of line on purpose: inlined into `scan`, the byte loop kept a dozen spilled
// counters alive and throughput on event JSON halved.
#[inline(never)]
fn next_unit(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(block) = b.get(i..i + 32) {
        if block.iter().fold(0u8, |acc, &c| acc | u8::from(is_unit(c))) != 0 {
            break;
        }
        i += 32;
    }
    b.get(i..)?.iter().position(|&c| is_unit(c)).map(|k| i + k)
}

fn digit_count(b: &[u8], from: usize) -> usize {
    b.get(from..)
        .map_or(0, |t| t.iter().take_while(|c| c.is_ascii_digit()).count())
}

fn luhn(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &c) in d.iter().rev().enumerate() {
        let v = u32::from(c.wrapping_sub(b'0'));
        sum += if i % 2 == 1 {
            let x = v * 2;
            if x > 9 { x - 9 } else { x }
        } else {
            v
        };
    }
    sum.is_multiple_of(10)
}

const fn lengths(lo: u32, hi: u32) -> u32 {
    let mut m = 0;
    let mut n = lo;
    while n <= hi {
        m |= 1 << n;
        n += 1;
    }
    m
}

/// Bit `n` set when a card with this prefix is issued with `n` digits; 0 when the
/// prefix is not a card IIN. See the table in the module docs.
fn iin_lengths(d: &[u8]) -> u32 {
    let dig = |i: usize| d.get(i).map_or(0, |c| u32::from(c.wrapping_sub(b'0')));
    let p2 = dig(0) * 10 + dig(1);
    let p3 = p2 * 10 + dig(2);
    let p4 = p3 * 10 + dig(3);
    match dig(0) {
        4 => 1 << 13 | 1 << 16 | 1 << 19,
        5 if (51..=55).contains(&p2) => 1 << 16,
        5 | 6 => lengths(13, 19),
        2 if (2221..=2720).contains(&p4) => 1 << 16,
        3 => {
            let mut m = 0;
            if p2 == 34 || p2 == 37 {
                m |= 1 << 15;
            }
            if p2 == 36 || p2 == 38 || (300..=305).contains(&p3) {
                m |= lengths(14, 19);
            }
            if (3528..=3589).contains(&p4) {
                m |= lengths(16, 19);
            }
            m
        }
        _ => 0,
    }
}

/// Rule 1: a delimited digit string of 13–19 digits.
fn whole_is_pan(d: &[u8]) -> bool {
    (MIN_PAN..=MAX_PAN).contains(&d.len()) && iin_lengths(d) != 0 && luhn(d)
}

/// Rule 2: a window inside a longer digit string.
fn window_is_pan(d: &[u8]) -> bool {
    (MIN_PAN..=MAX_PAN).contains(&d.len()) && iin_lengths(d) & (1 << d.len()) != 0 && luhn(d)
}

/// A stretch of digits: `s..e` counts digits within the run, `bs..be` are bytes.
#[derive(Debug, Clone, Copy)]
struct Span {
    s: usize,
    e: usize,
    bs: usize,
    be: usize,
}

impl Span {
    fn overlaps(&self, o: &Span) -> bool {
        self.s < o.e && o.s < self.e
    }

    fn union(self, o: Span) -> Span {
        Span {
            s: self.s.min(o.s),
            e: self.e.max(o.e),
            bs: self.bs.min(o.bs),
            be: self.be.max(o.be),
        }
    }

    /// How many digits of `s..e` this span's mask hides.
    fn hides(&self, s: usize, e: usize) -> usize {
        let lo = (self.s + KEEP_FIRST).max(s);
        let hi = self.e.saturating_sub(KEEP_LAST).min(e);
        hi.saturating_sub(lo)
    }
}

#[derive(Debug, Clone, Copy)]
struct Cand {
    span: Span,
    /// Ends that sit on a run edge, separator or `*` (0–2): formatted card
    /// numbers are delimited, chance matches inside longer numbers mostly are not.
    aligned: u8,
}

impl Cand {
    fn rank(&self) -> (Reverse<u8>, usize, usize) {
        // Commonest issued lengths first.
        let len_rank = match self.span.e - self.span.s {
            16 => 0,
            15 => 1,
            14 => 2,
            19 => 3,
            13 => 4,
            17 => 5,
            _ => 6,
        };
        (Reverse(self.aligned), len_rank, self.span.s)
    }
}

/// Chooses what to mask among overlapping candidates: the best-looking ones, then
/// merges in any candidate that would otherwise show more than `MAX_SHOWN` digits.
fn select(cands: &[Cand]) -> Vec<Span> {
    let mut order: Vec<&Cand> = cands.iter().collect();
    order.sort_by_key(|c| c.rank());
    let mut picks: Vec<Span> = Vec::new();
    for c in order {
        if !picks.iter().any(|p| p.overlaps(&c.span)) {
            picks.push(c.span);
        }
    }
    // A merged span hides a superset of what its parts hid, so one sweep settles it.
    for c in cands {
        let (s, e) = (c.span.s, c.span.e);
        let hidden: usize = picks.iter().map(|p| p.hides(s, e)).sum();
        if (e - s).saturating_sub(hidden) > MAX_SHOWN {
            let mut merged = c.span;
            picks.retain(|p| {
                if p.overlaps(&c.span) {
                    merged = merged.union(*p);
                    false
                } else {
                    true
                }
            });
            picks.push(merged);
        }
    }
    picks.sort_by_key(|p| p.s);
    picks
}

struct Scanner<'a> {
    b: &'a [u8],
    out: Vec<u8>,
    /// Input before this offset has been written to `out` (or replaced).
    copied: usize,
    changed: bool,
    r: Redactions,
    cluster: Vec<Cand>,
    hull: Option<Span>,
    overflow: bool,
}

fn scan(b: &[u8]) -> Option<(Vec<u8>, Redactions)> {
    if !has_digit(b) {
        return None;
    }
    let mut sc = Scanner {
        b,
        out: Vec::new(),
        copied: 0,
        changed: false,
        r: Redactions::default(),
        cluster: Vec::new(),
        hull: None,
        overflow: false,
    };
    let mut i = 0;
    while let Some(start) = next_unit(b, i) {
        let (run_end, track) = parse_run(b, start);
        sc.run(start, run_end);
        match track {
            Some((ts, te)) => {
                sc.replace(ts, te, TRACK_REMOVED);
                sc.r.tracks = sc.r.tracks.saturating_add(1);
                i = te.max(start + 1);
            }
            None => i = run_end.max(start + 1),
        }
    }
    if !sc.changed {
        return None;
    }
    sc.out
        .extend_from_slice(b.get(sc.copied..).unwrap_or_default());
    Some((sc.out, sc.r))
}

/// Finds the end of the run starting at `start`, stopping early where track data
/// begins (its digits must not be masked: the whole track goes).
fn parse_run(b: &[u8], start: usize) -> (usize, Option<(usize, usize)>) {
    let n = b.len();
    let mut group = start;
    let mut end = start;
    loop {
        let mut e = group;
        while e < n && is_unit(b[e]) {
            e += 1;
        }
        let last_is_digit = e > group && b[e - 1].is_ascii_digit();
        if last_is_digit && matches!(b.get(e), Some(b'=' | b'^' | b'D')) {
            let mut p = e;
            while p > group && b[p - 1].is_ascii_digit() {
                p -= 1;
            }
            if let Some((ts, te)) = track_at(b, p, e) {
                return (if ts > group { ts } else { end }, Some((ts, te)));
            }
        }
        end = e;
        match (b.get(e), b.get(e + 1)) {
            (Some(&s), Some(&u)) if is_sep(s) && is_unit(u) => group = e + 1,
            _ => return (end, None),
        }
    }
}

fn is_track1_name_byte(c: u8) -> bool {
    (0x20..=0x7e).contains(&c) && !matches!(c, b'^' | b'?' | b'%' | b'"' | b'\\')
}

/// `p..q` is a maximal digit string followed by `=`, `^` or `D`; returns the byte
/// range of the track it belongs to, if any.
fn track_at(b: &[u8], p: usize, q: usize) -> Option<(usize, usize)> {
    let digits = b.get(p..q)?;
    let before = |k: usize| p.checked_sub(k).and_then(|i| b.get(i)).copied();
    match *b.get(q)? {
        b'^' => {
            if before(1) != Some(b'B') || !(12..=MAX_PAN).contains(&digits.len()) {
                return None;
            }
            let sentinel = before(2) == Some(b'%');
            if !sentinel && !whole_is_pan(digits) {
                return None;
            }
            let name_len = b
                .get(q + 1..)?
                .iter()
                .take(MAX_TRACK1_NAME + 1)
                .position(|&c| !is_track1_name_byte(c))?;
            let sep2 = q + 1 + name_len;
            if name_len > MAX_TRACK1_NAME || b.get(sep2) != Some(&b'^') {
                return None;
            }
            let ts = p.checked_sub(if sentinel { 2 } else { 1 })?;
            Some((ts, track1_end(b, sep2 + 1)))
        }
        b'=' => {
            let after = digit_count(b, q + 1);
            if after < 4 {
                return None;
            }
            let mut te = q + 1 + after;
            if b.get(te) == Some(&b'?') {
                te += 1;
            }
            if before(1) == Some(b';') && (12..=MAX_PAN).contains(&digits.len()) {
                return Some((p - 1, te));
            }
            Some((pan_suffix(digits, p, before(1) == Some(b'*'))?, te))
        }
        b'D' => {
            let after = digit_count(b, q + 1);
            if after < 7 {
                return None;
            }
            let mut te = q + 1 + after;
            if b.get(te) == Some(&b'F') {
                te += 1;
            }
            Some((pan_suffix(digits, p, before(1) == Some(b'*'))?, te))
        }
        _ => None,
    }
}

/// Where the PAN ending a digit string starts (offset `p` in the input).
/// Digits right after a `*` are the tail of a masked number, so like any window
/// they need an issued length (as in the run rules, this keeps redaction idempotent).
fn pan_suffix(digits: &[u8], p: usize, after_star: bool) -> Option<usize> {
    if !after_star && whole_is_pan(digits) {
        return Some(p);
    }
    let n = digits.len();
    (MIN_PAN..=MAX_PAN.min(n))
        .rev()
        .find(|&len| digits.get(n - len..).is_some_and(window_is_pan))
        .map(|len| p + n - len)
}

/// End of track 1 after its second `^`: up to the end sentinel when it is close and
/// only track-like bytes come before it, else the expiry/service-code digits.
fn track1_end(b: &[u8], from: usize) -> usize {
    let rest = b.get(from..).unwrap_or_default();
    let body = rest
        .iter()
        .take(MAX_TRACK1_TAIL)
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b' ')
        .count();
    if rest.get(body) == Some(&b'?') {
        from + body + 1
    } else {
        from + digit_count(b, from)
    }
}

impl Scanner<'_> {
    fn emit_upto(&mut self, at: usize) {
        if !self.changed {
            self.changed = true;
            self.out.reserve(self.b.len());
        }
        if let Some(chunk) = self.b.get(self.copied..at) {
            self.out.extend_from_slice(chunk);
        }
    }

    fn replace(&mut self, start: usize, end: usize, with: &[u8]) {
        let start = start.max(self.copied);
        self.emit_upto(start);
        self.out.extend_from_slice(with);
        self.copied = end.max(start);
    }

    fn mask(&mut self, sp: Span) {
        let b = self.b;
        let Some(bytes) = b.get(sp.bs..sp.be) else {
            return;
        };
        let start = sp.bs.max(self.copied);
        self.emit_upto(start);
        let n = bytes.iter().filter(|c| c.is_ascii_digit()).count();
        let mut j = 0;
        for &c in bytes {
            if c.is_ascii_digit() {
                let shown = j < KEEP_FIRST || j + KEEP_LAST >= n;
                self.out.push(if shown { c } else { b'*' });
                j += 1;
            }
        }
        self.copied = sp.be.max(start);
        self.r.pans = self.r.pans.saturating_add(1);
    }

    /// Finds and masks the PANs of the run at `rs..re`.
    fn run(&mut self, rs: usize, re: usize) {
        let b = self.b;
        let Some(bytes) = b.get(rs..re) else {
            return;
        };
        let digits = bytes.iter().filter(|c| c.is_ascii_digit()).count();
        if digits < MIN_PAN {
            return;
        }
        let starred = bytes.contains(&b'*');
        if !starred && digits <= MAX_PAN {
            let mut d = [0u8; MAX_PAN];
            for (slot, &c) in d
                .iter_mut()
                .zip(bytes.iter().filter(|c| c.is_ascii_digit()))
            {
                *slot = c;
            }
            if d.get(..digits).is_some_and(whole_is_pan) {
                self.mask(Span {
                    s: 0,
                    e: digits,
                    bs: rs,
                    be: re,
                });
                return;
            }
        }
        let every = digits > MAX_PAN;
        let mut k = 0;
        for (off, &c) in bytes.iter().enumerate() {
            if !c.is_ascii_digit() {
                continue;
            }
            let left = off == 0 || bytes.get(off - 1).is_some_and(|p| !p.is_ascii_digit());
            if every || left {
                self.windows_at(bytes, rs, off, k, every, left);
            }
            k += 1;
        }
        self.flush_cluster();
    }

    /// Records every PAN window starting at digit `k` (byte `off` of the run).
    fn windows_at(&mut self, run: &[u8], rs: usize, off: usize, k: usize, every: bool, left: bool) {
        let mut d = [0u8; MAX_PAN];
        let mut end = [0usize; MAX_PAN];
        let mut right = [false; MAX_PAN];
        // Luhn sums of every prefix, for either parity of the doubled digits, so
        // each candidate length is checked in O(1).
        let mut even_doubled = [0u32; MAX_PAN + 1];
        let mut odd_doubled = [0u32; MAX_PAN + 1];
        let mut n = 0;
        for (j, &c) in run.iter().enumerate().skip(off) {
            if c == b'*' || n == MAX_PAN {
                break;
            }
            if !c.is_ascii_digit() {
                continue;
            }
            d[n] = c;
            end[n] = j + 1;
            right[n] = !run.get(j + 1).is_some_and(u8::is_ascii_digit);
            let v = u32::from(c - b'0');
            let dv = if v > 4 { 2 * v - 9 } else { 2 * v };
            let (e, o) = if n % 2 == 0 { (dv, v) } else { (v, dv) };
            even_doubled[n + 1] = even_doubled[n] + e;
            odd_doubled[n + 1] = odd_doubled[n] + o;
            n += 1;
            if n == 4 && iin_lengths(&d[..n]) == 0 {
                return;
            }
        }
        if n < MIN_PAN {
            return;
        }
        let lens = iin_lengths(&d[..n]);
        for len in MIN_PAN..=n {
            let r = right[len - 1];
            // Counting from the right, digit j of a `len`-digit window is doubled
            // when j and len have the same parity.
            let sum = if len % 2 == 0 {
                even_doubled[len]
            } else {
                odd_doubled[len]
            };
            if lens & (1 << len) != 0 && (every || r) && sum.is_multiple_of(10) {
                self.push_cand(Cand {
                    span: Span {
                        s: k,
                        e: k + len,
                        bs: rs + off,
                        be: rs + end[len - 1],
                    },
                    aligned: u8::from(left) + u8::from(r),
                });
            }
        }
    }

    /// Candidates arrive in start order; a cluster closes at the first one that
    /// starts past every earlier end, since nothing later can overlap it.
    fn push_cand(&mut self, c: Cand) {
        if self.hull.is_some_and(|h| c.span.s >= h.e) {
            self.flush_cluster();
        }
        self.hull = Some(self.hull.map_or(c.span, |h| h.union(c.span)));
        if !self.overflow {
            if self.cluster.len() < CLUSTER_CAP {
                self.cluster.push(c);
            } else {
                self.overflow = true;
                self.cluster.clear();
            }
        }
    }

    fn flush_cluster(&mut self) {
        let Some(hull) = self.hull.take() else {
            return;
        };
        if self.overflow {
            // The hull is the union of overlapping windows, so masking it as one
            // still hides the middle of every one of them.
            self.mask(hull);
        } else {
            for sp in select(&self.cluster) {
                self.mask(sp);
            }
        }
        self.cluster.clear();
        self.overflow = false;
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn json_is_clean_agrees_with_redact_json() {
        let cases = [
            (r#"{"a":"plain","n":12,"l":[1,{"b":true,"c":null}]}"#, true),
            (r#"{"note":"card 4111 1111 1111 1111"}"#, false),
            (r#"{"x":{"CVV2":"123"}}"#, false),
            (r#"{"4111111111111111":"key holds a PAN"}"#, false),
            (r#"{"n":4111111111111111}"#, false),
            (r#"{"f":1.5}"#, false),
            (r#"{"esc":"\u0034111111111111111"}"#, false),
            (r#"{"gtin":"4006381333931","amount":-1999}"#, true),
            (r#"{"broken":"#, false),
        ];
        for (json, want) in cases {
            assert_eq!(json_is_clean(json), want, "{json}");
            if want {
                let mut v: Value = serde_json::from_str(json).unwrap();
                assert_eq!(redact_json(&mut v).total(), 0, "{json}");
            }
        }
    }

    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn red(s: &str) -> (String, Redactions) {
        let (c, r) = redact_str(s);
        (c.into_owned(), r)
    }

    fn masked(pan: &str) -> String {
        let n = pan.len();
        format!("{}{}{}", &pan[..6], "*".repeat(n - 10), &pan[n - 4..])
    }

    const TEST_PANS: &[&str] = &[
        "4111111111111111",
        "4012888888881881",
        "5555555555554444",
        "2223003122003222",
        "378282246310005",
        "6011111111111117",
        "3530111333300000",
        "36227206271667",
        "30569309025904",
        "6200000000000005",
        "6759649826438453",
    ];

    #[test]
    fn every_test_pan_is_masked() {
        for pan in TEST_PANS {
            assert!(luhn(pan.as_bytes()), "{pan} should pass Luhn");
            let (out, r) = red(&format!("paid with {pan} today"));
            assert_eq!(out, format!("paid with {} today", masked(pan)), "{pan}");
            assert_eq!(
                r,
                Redactions {
                    pans: 1,
                    ..Default::default()
                }
            );
        }
    }

    #[test]
    fn mask_format() {
        assert_eq!(red("4111111111111111").0, "411111******1111");
        assert_eq!(red("378282246310005").0, "378282*****0005");
        assert_eq!(red("36227206271667").0, "362272****1667");
    }

    #[test]
    fn separators_are_dropped_from_masked_pan() {
        assert_eq!(red("4111 1111 1111 1111").0, "411111******1111");
        assert_eq!(
            red("card: 4111-1111-1111-1111.").0,
            "card: 411111******1111."
        );
        assert_eq!(red("5555.5555.5555.4444").0, "555555******4444");
        assert_eq!(red("3782 822463 10005").0, "378282*****0005");
        assert_eq!(red("4111 1111-1111.1111").0, "411111******1111");
    }

    #[test]
    fn double_separators_split_numbers() {
        // Two spaces is layout, not digit grouping: neither half is a PAN.
        let s = "4111111  111111111";
        assert_eq!(red(s).0, s);
    }

    #[test]
    fn pan_next_to_other_grouped_digits() {
        assert_eq!(red("4111 1111 1111 1111 2").0, "411111******1111 2");
        assert_eq!(
            red("4111 1111 1111 1111 2026-11-27").0,
            "411111******1111 2026-11-27"
        );
        assert_eq!(
            red("order 12 4111111111111111").0,
            "order 12 411111******1111"
        );
    }

    #[test]
    fn pan_adjacent_to_letters() {
        assert_eq!(red("PAN4111111111111111X").0, "PAN411111******1111X");
        assert_eq!(red("x5555555555554444y").0, "x555555******4444y");
    }

    #[test]
    fn pan_embedded_in_longer_digit_runs() {
        assert_eq!(
            red("0000004111111111111111000000").0,
            "000000411111******1111000000"
        );
        assert_eq!(
            red("ref 0000000000003782822463100050000000000 end").0,
            "ref 000000000000378282*****00050000000000 end"
        );
        // Here "5544440000000000" (Luhn-valid, Mastercard-like) overlaps the real
        // PAN; masking only the PAN would leave 14 of its digits readable, so both
        // are masked together.
        let (out, r) = red("ref 0000000000005555555555554444000000000000 end");
        assert_eq!(out, "ref 000000000000555555****************000000 end");
        assert_eq!(r.pans, 1);
        let (out, _) = red("999999999999999999994012888888881881");
        assert_eq!(out, "99999999999999999999401288******1881");
    }

    #[test]
    fn two_pans_back_to_back() {
        let (out, r) = red("41111111111111115555555555554444");
        assert!(!out.contains("4111111111111111"));
        assert!(!out.contains("5555555555554444"));
        assert_eq!(out, "411111******1111555555******4444");
        assert_eq!(r.pans, 2);
    }

    #[test]
    fn overlapping_windows_never_show_more_than_ten_digits() {
        // Every digit here is the same, so many windows pass Luhn; whatever is
        // chosen, no window of the input may be readable beyond 10 digits.
        let input = "6".repeat(200);
        let (out, r) = red(&input);
        assert!(r.pans >= 1);
        let digits_in_a_row = out.split('*').map(str::len).max().unwrap_or_default();
        assert!(digits_in_a_row < 13, "{out}");
        assert_eq!(red(&out).0, out);
    }

    #[test]
    fn huge_digit_run_is_linear() {
        let input: String = (0..2_000_000u32)
            .map(|i| char::from(b'0' + (i.wrapping_mul(7919) % 10) as u8))
            .collect();
        let t = std::time::Instant::now();
        let (out, _) = red(&input);
        assert!(t.elapsed().as_secs() < 20);
        assert_eq!(red(&out).1.total(), 0);
    }

    #[test]
    fn non_card_numbers_are_kept() {
        for s in [
            "4111111111111112",     // fails Luhn
            "5555555555554445",     // fails Luhn
            "378282246310006",      // fails Luhn
            "411111111111",         // 12 digits
            "7612345678900",        // Luhn-valid GTIN-13, IIN 7
            "00012345678905",       // GTIN-14 starting with 0
            "8712345678906",        // IIN 8
            "9780201379624",        // ISBN-13, IIN 9
            "1764237600000",        // epoch milliseconds
            "1764237600000000",     // epoch microseconds
            "1764237600000000000",  // epoch nanoseconds
            "2026-11-27T10:00:00Z", // timestamp
            "2026-11-27T10:00:00.123456789Z",
            "total 1234567.89 EUR", // amount
            "+1 555 123 4567",      // phone number
            "3012345678901234567",  // 30x outside Diners 300-305
            "2012345678901234",     // 2-series outside Mastercard
        ] {
            let (out, r) = redact_str(s);
            assert!(matches!(out, Cow::Borrowed(_)), "{s} -> {out}");
            assert_eq!(r.total(), 0, "{s}");
        }
    }

    #[test]
    fn luhn_valid_thirteen_digits_with_bad_iin_stay() {
        let gtin = luhn_complete("761234567890");
        assert!(luhn(gtin.as_bytes()));
        assert_eq!(red(&format!("gtin {gtin}")).0, format!("gtin {gtin}"));
        let thirteen = luhn_complete("876543210987");
        assert_eq!(red(&thirteen).0, thirteen);
        assert_eq!(red("1234567890128").0, "1234567890128");
    }

    #[test]
    fn no_digits_borrows() {
        let s = "hello, world – ünïcödé";
        assert!(matches!(redact_str(s).0, Cow::Borrowed(_)));
        assert!(matches!(redact_bytes(s.as_bytes()).0, Cow::Borrowed(_)));
        assert!(matches!(redact_str("qty 3 @ 4.99").0, Cow::Borrowed(_)));
    }

    #[test]
    fn track1_removed() {
        let (out, r) = red("swipe %B4111111111111111^DOE/JOHN^25121010000000000000000?; done");
        assert_eq!(out, "swipe [track removed]; done");
        assert_eq!(
            r,
            Redactions {
                tracks: 1,
                ..Default::default()
            }
        );
        let (out, r) = red("B4111111111111111^DOE/JOHN ^2512101123456789 x");
        assert_eq!(out, "[track removed] x");
        assert_eq!(r.tracks, 1);
        assert_eq!(red("%B4111111111111111^^2512101?").0, "[track removed]");
    }

    #[test]
    fn track2_removed() {
        let (out, r) = red("t2=;4111111111111111=25121010000000000000?");
        assert_eq!(out, "t2=[track removed]");
        assert_eq!(
            r,
            Redactions {
                tracks: 1,
                ..Default::default()
            }
        );
        assert_eq!(red("4111111111111111=2512101123").0, "[track removed]");
        assert_eq!(
            red("raw:5555555555554444=2512101?x").0,
            "raw:[track removed]x"
        );
        // EMV tag 57 (track 2 equivalent) with its TLV length in front.
        assert_eq!(
            red("57134761739001010010D15122011143804400000F").0,
            "5713[track removed]"
        );
    }

    #[test]
    fn track_needs_its_shape() {
        // Not enough expiry digits: no track, but the PAN is still masked.
        let (out, r) = red("4111111111111111=25");
        assert_eq!(out, "411111******1111=25");
        assert_eq!(
            r,
            Redactions {
                pans: 1,
                ..Default::default()
            }
        );
        // An ordinary key=value pair is not a track.
        let s = "sku=1234567890123;qty=2";
        assert_eq!(red(s).0, s);
    }

    #[test]
    fn track_and_pan_in_one_string() {
        let (out, r) = red("a 4111111111111111 b ;5555555555554444=2512101? c");
        assert_eq!(out, "a 411111******1111 b [track removed] c");
        assert_eq!(
            r,
            Redactions {
                pans: 1,
                tracks: 1,
                fields: 0
            }
        );
    }

    #[test]
    fn bytes_non_utf8_around_pan() {
        let mut input = vec![0xff, 0xfe, b'x'];
        input.extend_from_slice(b"4111-1111-1111-1111");
        input.extend_from_slice(&[0x80, 0x00]);
        let (out, r) = redact_bytes(&input);
        let mut want = vec![0xff, 0xfe, b'x'];
        want.extend_from_slice(b"411111******1111");
        want.extend_from_slice(&[0x80, 0x00]);
        assert_eq!(out.as_ref(), want.as_slice());
        assert_eq!(r.pans, 1);
    }

    #[test]
    fn json_sensitive_members_removed_everywhere() {
        let mut v = json!({
            "body": {
                "lines": [
                    {"kind": "tender", "card": {"last4": "1111", "CVV2": "123", "exp_date": "12/25",
                        "pinBlock": "ABCD", "card-expiry": "1225", "Track_2": ";4111=1?"}},
                    {"kind": "item", "description": "gift 4111 1111 1111 1111"}
                ],
                "track1Data": "x",
                "magstripe": "y",
                "cardCvc": 1,
                "pin": "1234",
                "cid": "999",
                "csc": "999",
                "exp": "12/25",
                "expiry": "12/25",
                "amount": 1999
            }
        });
        let r = redact_json(&mut v);
        assert_eq!(
            v,
            json!({
                "body": {
                    "lines": [
                        {"kind": "tender", "card": {"last4": "1111"}},
                        {"kind": "item", "description": "gift 411111******1111"}
                    ],
                    "amount": 1999
                }
            })
        );
        assert_eq!(
            r,
            Redactions {
                pans: 1,
                tracks: 0,
                fields: 13
            }
        );
    }

    #[test]
    fn json_keys_and_numbers_redacted() {
        let mut v =
            json!({"note 4111111111111111": [5555555555554444u64, "ok", 12.5, 7612345678900u64]});
        let r = redact_json(&mut v);
        assert_eq!(
            v,
            json!({"note 411111******1111": ["555555******4444", "ok", 12.5, 7612345678900u64]})
        );
        assert_eq!(r.pans, 2);
    }

    #[test]
    fn json_float_holding_pan_digits_is_masked() {
        let mut v = json!([0.4111111111111111, 19.99]);
        let r = redact_json(&mut v);
        assert_eq!(v, json!(["0.411111******1111", 19.99]));
        assert_eq!(r.pans, 1);
    }

    #[test]
    fn json_key_collision_keeps_both() {
        let mut v = json!({"k411111******1111": 1, "k4111111111111111": 2});
        redact_json(&mut v);
        let obj = v.as_object().cloned().unwrap_or_default();
        assert_eq!(obj.len(), 2);
        assert_eq!(obj.get("k411111******1111~"), Some(&json!(2)));
    }

    #[test]
    fn json_non_sensitive_keys_kept() {
        for k in [
            "expected",
            "pinned",
            "cidr",
            "description",
            "experience",
            "pan",
        ] {
            let mut v = json!({ k: "v" });
            assert_eq!(redact_json(&mut v).total(), 0, "{k}");
            assert_eq!(v, json!({ k: "v" }));
        }
    }

    #[test]
    fn deep_json_does_not_overflow() {
        let mut v = json!("4111111111111111");
        for _ in 0..100_000 {
            v = Value::Array(vec![v]);
        }
        assert_eq!(redact_json(&mut v).pans, 1);
        // Dropping a deep value recurses in serde_json itself; unwind it by hand.
        while let Value::Array(mut a) = v {
            v = a.pop().unwrap_or(Value::Null);
        }
    }

    #[test]
    fn redactions_total_and_add() {
        let mut a = Redactions {
            pans: 1,
            tracks: 2,
            fields: 3,
        };
        assert_eq!(a.total(), 6);
        a.add(Redactions {
            pans: u32::MAX,
            tracks: 1,
            fields: 0,
        });
        assert_eq!(
            a,
            Redactions {
                pans: u32::MAX,
                tracks: 3,
                fields: 3
            }
        );
        assert_eq!(a.total(), u32::MAX);
    }

    const PREFIXES: &[&str] = &[
        "4", "51", "52", "53", "54", "55", "2221", "2500", "2720", "34", "37", "6011", "64", "65",
        "3528", "3589", "36", "38", "300", "305", "62", "50", "56", "59", "67", "69",
    ];

    fn luhn_complete(body: &str) -> String {
        (0..10u8)
            .map(|d| format!("{body}{d}"))
            .find(|c| luhn(c.as_bytes()))
            .unwrap_or_default()
    }

    /// Prefix + fill digits, cut to `len - 1` and completed with a Luhn check digit.
    fn build_pan(prefix: &str, fill: &[u8], len: usize) -> String {
        let mut body = prefix.to_string();
        for d in fill.iter().take(len - 1 - prefix.len()) {
            body.push(char::from(b'0' + d));
        }
        luhn_complete(&body)
    }

    /// A Luhn-valid PAN with a card prefix, of any length 13–19.
    fn any_pan() -> impl Strategy<Value = String> {
        (
            prop::sample::select(PREFIXES),
            13usize..=19,
            prop::collection::vec(0u8..10, 18),
        )
            .prop_map(|(prefix, len, fill)| build_pan(prefix, &fill, len))
    }

    /// A PAN with a length its brand is issued in.
    fn issued_pan() -> impl Strategy<Value = String> {
        (
            prop::sample::select(PREFIXES),
            any::<prop::sample::Index>(),
            prop::collection::vec(0u8..10, 18),
        )
            .prop_map(|(prefix, pick, fill)| {
                let probe = build_pan(prefix, &fill, 19);
                let lens = iin_lengths(probe.as_bytes());
                let issued: Vec<usize> = (MIN_PAN..=MAX_PAN)
                    .filter(|n| lens & (1 << n) != 0)
                    .collect();
                build_pan(prefix, &fill, *pick.get(&issued))
            })
    }

    /// Track 1 or track 2 data (with or without sentinels) around a PAN.
    fn any_track() -> impl Strategy<Value = String> {
        (any_pan(), 0usize..5, "[A-Z/ ]{2,26}", "[0-9]{4,30}").prop_map(
            |(pan, kind, name, tail)| match kind {
                0 => format!("%B{pan}^{name}^{tail}?"),
                1 => format!("B{pan}^{name}^{tail}"),
                2 => format!(";{pan}={tail}?"),
                3 => format!("{pan}={tail}"),
                _ => format!("{pan}D{tail}123F"),
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn prop_pan_in_text_is_masked(
            pan in any_pan(),
            pre in "\\PC{0,30}",
            post in "\\PC{0,30}",
            l in "[A-Za-z:,|/(\"]",
            r in "[A-CE-Za-z:,|/)\"]",
        ) {
            let input = format!("{pre}{l}{pan}{r}{post}");
            let (out, _) = redact_str(&input);
            prop_assert!(!out.contains(&pan), "{} -> {}", input, out);
            prop_assert!(out.contains(&masked(&pan)), "{} -> {}", input, out);
        }

        #[test]
        fn prop_grouped_pan_is_masked(pan in any_pan(), sep in "[ .-]", pre in "[a-z ]{0,10}") {
            let grouped: Vec<String> = pan.as_bytes().chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned()).collect();
            let input = format!("{pre}:{}", grouped.join(&sep));
            let (out, r) = redact_str(&input);
            prop_assert_eq!(out.as_ref(), format!("{pre}:{}", masked(&pan)));
            prop_assert_eq!(r.pans, 1);
        }

        #[test]
        fn prop_pan_glued_into_long_digit_run_never_survives(
            pan in issued_pan(),
            pre in "[0-9]{4,20}",
            post in "[0-9]{3,20}",
        ) {
            let input = format!("{pre}{pan}{post}");
            let (out, _) = redact_str(&input);
            prop_assert!(!out.contains(&pan), "{} -> {}", input, out);
        }

        #[test]
        fn prop_idempotent(
            parts in prop::collection::vec(
                prop_oneof![
                    any_pan(),
                    any_track(),
                    "[0-9]{1,25}",
                    "[ .*=^;%?BDF-]{1,3}",
                    "[A-Za-z/]{1,5}",
                    "\\PC{0,5}",
                ],
                0..12,
            )
        ) {
            let input: String = parts.concat();
            let (once, _) = redact_str(&input);
            let (twice, r2) = redact_str(&once);
            prop_assert_eq!(once.as_ref(), twice.as_ref(), "input {}", input);
            prop_assert_eq!(r2.total(), 0);
        }

        #[test]
        fn prop_track_in_text_is_removed(track in any_track(), pre in "[a-z ]{0,10}", post in "[a-z ]{0,10}") {
            let input = format!("{pre}|{track}|{post}");
            let (out, r) = redact_str(&input);
            prop_assert_eq!(out.as_ref(), format!("{pre}|[track removed]|{post}"));
            prop_assert_eq!(r, Redactions { tracks: 1, ..Redactions::default() });
        }

        #[test]
        fn prop_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..512)) {
            let (out, _) = redact_bytes(&b);
            let (again, _) = redact_bytes(&out);
            prop_assert_eq!(out.as_ref(), again.as_ref());
        }

        #[test]
        fn prop_digit_heavy_bytes_never_panic(
            b in prop::collection::vec(prop::sample::select(b"0123456789 .-*=^;%?BDF".to_vec()), 0..400)
        ) {
            let (out, _) = redact_bytes(&b);
            let (again, r) = redact_bytes(&out);
            prop_assert_eq!(out.as_ref(), again.as_ref());
            prop_assert_eq!(r.total(), 0);
        }

        #[test]
        fn prop_str_and_bytes_agree(s in "\\PC{0,60}", pan in any_pan()) {
            let input = format!("{s} {pan} {s}");
            let (a, ra) = redact_str(&input);
            let (b, rb) = redact_bytes(input.as_bytes());
            prop_assert_eq!(a.as_bytes(), b.as_ref());
            prop_assert_eq!(ra, rb);
        }
    }
}

#[cfg(test)]
mod clean_props {
    use super::*;
    use proptest::prelude::*;

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z _-]{0,12}",
            "[0-9 .-]{10,22}",
            Just("4111111111111111".to_string()),
            Just("5555 5555 5555 4444".to_string()),
            Just("CVV".to_string()),
            Just("track_2".to_string()),
        ]
    }

    proptest! {
        /// A "clean" verdict is never wrong: redact_json leaves such a document unchanged.
        #[test]
        fn clean_verdict_is_never_wrong(pairs in proptest::collection::vec((word(), word(), any::<i64>()), 1..8)) {
            let mut inner = serde_json::Map::new();
            for (k, v, n) in &pairs {
                inner.insert(k.clone(), Value::String(v.clone()));
                inner.insert(format!("{k}#n"), Value::from(*n));
            }
            let doc = serde_json::json!({"body": {"lines": [Value::Object(inner)]}});
            let text = doc.to_string();
            if json_is_clean(&text) {
                let mut v = doc.clone();
                prop_assert_eq!(redact_json(&mut v).total(), 0);
                prop_assert_eq!(v, doc);
            }
        }
    }
}
