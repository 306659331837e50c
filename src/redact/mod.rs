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
//! and starts with a plausible issuer prefix (IIN), or when it has exactly 12
//! digits, passes the Luhn check and starts with one of the Maestro IINs that issue
//! 12-digit cards (`5018`, `5020`, `5038`, `5893`, `6304`, `6759`, `6761`–`6763`).
//! Twelve digits are common in ordinary numbers (GTIN-12/UPC-A, order numbers), so
//! no other 12-digit number is ever a PAN: a random 12-digit number is card-like
//! about once in 10,000. The prefixes, and the lengths cards with that prefix are
//! issued in, are:
//!
//! | prefix                          | brand                                              | lengths    |
//! |---------------------------------|----------------------------------------------------|------------|
//! | `4`                             | Visa                                               | 13, 16, 19 |
//! | `51`–`55`, `2221`–`2720`        | Mastercard                                         | 16         |
//! | `34`, `37`                      | American Express                                   | 15         |
//! | `36`, `38`, `300`–`305`         | Diners Club                                        | 14–19      |
//! | `3528`–`3589`                   | JCB                                                | 16–19      |
//! | `50`, `56`–`59`, all of `6`     | Maestro; Discover `6011`/`64`/`65`; UnionPay `62`  | 13–19      |
//! | the Maestro 12-digit IINs above | Maestro                                            | 12–19      |
//!
//! Nothing else is a PAN, however good its check digit: a first digit of 0, 1, 7,
//! 8 or 9 (GTINs of every length with those leading digits, epoch timestamps in
//! seconds to nanoseconds, most order numbers), `2` outside 2221–2720, or `3`
//! outside the ranges above. (A GTIN-13 starting 4, 5 or 6 that also passes Luhn
//! is masked: its digits cannot be told from a card's.)
//!
//! 1. **Whole run.** A run without `*` holding 12–19 digits is a PAN when its
//!    digits are card-like (any length 13–19 for a plausible prefix; 12 for a
//!    Maestro 12-digit IIN).
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
//! # Receipts and XML
//!
//! The digit rules also run over two readings of the input, and what they find
//! there is masked in the input:
//! - **ESC/POS.** Formatting commands a receipt printer takes between two printed
//!   characters (bold `ESC E n`, underline `ESC - n`, print mode `ESC ! n`, double
//!   strike `ESC G n`, font `ESC M n`, size `GS ! n`, reverse `GS B n`, position
//!   `ESC $ nL nH`, and the like) are taken out, so `4111 ESC E 1 1111…` is one
//!   run. They are read twice: first Epson's way (every command takes its
//!   parameter bytes, even an ASCII digit), then Star's (`ESC E` and `ESC F` take
//!   none; a digit after a command is printed text). Commands inside a masked PAN
//!   stay where they were, so the printer's state does not change. Line feeds and
//!   commands that print, feed or cut end a run, as on paper.
//! - **XML character references.** `&#52;` and `&#x34;` that stand for a digit, a
//!   space, `-` or `.` are read as that character (POSLog attributes such as
//!   `<Card Number="4111111111111111"/>` are ordinary runs already). A masked PAN
//!   keeps the references of the digits it shows; the hidden ones become `*`.
//!
//! # Blobs
//!
//! A *token* is a maximal sequence of letters, digits, `+`, `/`, `-` and `_` (the
//! base64 alphabets, which contain hex), with up to two `=` of padding after it.
//! A token is a blob holding card data, and is replaced whole by
//! `[blob redacted]` (counted with what it held), when:
//! - it has only hex digits, at least one letter, and at least 12 of them, and
//!   holds a PAN as packed BCD: a window of decimal nibbles starting on a byte
//!   boundary (an even offset in the token) that is card-like with a length its
//!   brand is issued in (the digit rules on the token's own text come first, so an
//!   EMV tag 57 track or a letter-delimited PAN is masked, not blobbed);
//! - it has only hex digits (letters or not), an even length of at least 24, and
//!   its decoding holds a PAN or track data by the rules above (ASCII digits);
//! - it is not all hex digits, has a letter and at least 16 bytes, and its base64
//!   decoding (either alphabet, a trailing partial group dropped) holds a PAN or
//!   track data by the rules above.
//!
//! Decoded blobs are not searched for further blobs. Any other token is kept byte
//! for byte. Random binary data is rarely hit: base64 needs 12 ASCII digits in the
//! decoding; a 64-character hex hash holds a byte-aligned card-like BCD window
//! a few times in a thousand.
//!
//! # Split across members
//!
//! [`redact_json`] also finds a PAN split across the strings of one object or
//! array. A *part* is a string of 1–10 digits, alone or grouped by single spaces
//! or dashes (not dots: `12.99` is a price). A PAN is split when the digits of 2–5
//! parts, joined in order, every part but the last holding at least 4 digits
//! (`3782 8224 6310 005` ends in three), are card-like with a length their brand
//! is issued in:
//! - in an **object**, consecutive parts in key order (the order the agent keeps
//!   members in) whose keys share their first 3 bytes (`pan1`/`pan2`,
//!   `card_a`/`card_b`); members that are not parts are skipped, a masked number
//!   (digits and `*`) or a string of more than 10 digits ends the sequence;
//! - in an **array**, all its elements, when it has 2–5 and every one is a part
//!   (`["4111","1111","1111","1111"]`).
//!
//! The parts' digits are masked together, first 6 and last 4 shown, and handed
//! back part by part with separators dropped (`{"pan1":"4111 1111","pan2":"1111
//! 1111"}` becomes `{"pan1":"411111**","pan2":"****1111"}`). Numbers (JSON
//! numbers, GTINs, epoch times) and members with unrelated keys never join: a
//! price, a quantity and a SKU side by side stay as they are. Only
//! an array made of nothing but 2–5 short digit strings can be masked by chance
//! (when its digits happen to be card-like: about one such array in ten with a
//! card prefix and an issued length).
//!
//! # Rounds
//!
//! Blobs are looked for first, then the digit rules (the input as it is, its
//! ESC/POS readings, its character references). One rule's edit can expose work
//! for another (removed track data leaves a blob standing alone), so the rules run
//! again over their own output until it no longer changes; this keeps redaction
//! idempotent. Clean input takes one round.
//!
//! # Sensitive JSON members
//!
//! A member is removed when its key, lower-cased with `_`, `-`, `.` and spaces
//! dropped, is one of [`SENSITIVE_KEYS`] or contains one of
//! [`SENSITIVE_KEY_PARTS`].

mod blob;
mod clean;
mod keys;
mod pan;
mod scan;
mod split;
mod track;
mod view;
mod walk;

use std::borrow::Cow;

use serde_json::Value;

use clean::str_is_clean;
use keys::is_sensitive_key;
pub use keys::{SENSITIVE_KEY_PARTS, SENSITIVE_KEYS};

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

/// Bytes [`redact_record`] found nothing to redact in; members of a record decoded from
/// them lean on that scan (see [`members_are_clean`]).
#[derive(Debug, Clone, Copy)]
pub struct Scanned<'a>(&'a [u8]);

/// [`redact_bytes`] over a record about to be decoded, and the record as [`Scanned`]
/// when nothing was found in it.
pub fn redact_record(b: &[u8]) -> (Cow<'_, [u8]>, Redactions, Option<Scanned<'_>>) {
    let (out, r) = redact_bytes(b);
    let scanned = matches!(out, Cow::Borrowed(_)).then_some(Scanned(b));
    (out, r, scanned)
}

/// A record the byte redactor passed and where in it its members may lie.
#[derive(Debug, Clone, Copy)]
pub struct Verbatim<'a> {
    scanned: Scanned<'a>,
    spans: &'a [std::ops::Range<usize>],
}

impl<'a> Verbatim<'a> {
    /// `spans`: byte ranges of `scanned` that may hold members' texts (a wrong one only
    /// costs the shortcut: the bytes are compared).
    pub fn new(scanned: Scanned<'a>, spans: &'a [std::ops::Range<usize>]) -> Verbatim<'a> {
        Verbatim { scanned, spans }
    }

    /// `json` is, byte for byte, one of the spans of the record.
    fn holds(&self, json: &str) -> bool {
        self.spans.iter().any(|r| {
            r.len() == json.len() && self.scanned.0.get(r.clone()) == Some(json.as_bytes())
        })
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
            // An integer below `NUMBER_FLOOR` has too few digits for a PAN; fractions are rare
            // in this schema ("never floats") and cheap to check in full.
            if n.is_f64() || n.as_f64().is_some_and(|f| f.abs() >= NUMBER_FLOOR as f64) {
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
            Value::Array(items) => {
                r.add(split::redact_array(items));
                stack.extend(items.iter_mut());
            }
            Value::Object(map) => {
                let before = map.len();
                map.retain(|k, _| !is_sensitive_key(k));
                let removed = u32::try_from(before - map.len()).unwrap_or(u32::MAX);
                r.fields = r.fields.saturating_add(removed);
                r.add(split::redact_object(map));

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
    clean::judge(json, false).is_some_and(|c| c.clean)
}

/// True when [`redact_json`] would change nothing in an object with these members
/// (key, JSON text of the value), given in key order without duplicates as a
/// `BTreeMap` holds them: every member clean and no PAN split across them.
///
/// `verbatim`, the record the members were decoded from: a member found in it byte for
/// byte has its unescaped strings judged by that record's scan instead of a second one.
pub fn members_are_clean<'a>(
    members: impl IntoIterator<Item = (&'a str, &'a str)>,
    verbatim: Option<Verbatim<'_>>,
) -> bool {
    let mut units = Vec::new();
    for (key, json) in members {
        let prescanned = verbatim.as_ref().is_some_and(|v| v.holds(json));
        match clean::judge(json, prescanned) {
            Some(c) if c.clean && key_is_clean(key) => units.extend(c.unit.map(|u| (key, u))),
            _ => return false,
        }
    }
    split::object_groups(&units).is_empty()
}

/// A key is clean when it names no sensitive field and holds no card data.
pub fn key_is_clean(key: &str) -> bool {
    !is_sensitive_key(key) && str_is_clean(key)
}

/// The smallest 12-digit number: JSON integers below it cannot hold a PAN, so neither
/// `redact_json` nor `json_is_clean` looks at them.
const NUMBER_FLOOR: u64 = 100_000_000_000;

/// Rounds of all rules before giving up on a fixed point (see [`scan`]).
const MAX_ROUNDS: usize = 4;

/// Runs every rule over `b`: `None` when nothing is to be redacted.
///
/// One rule's edit can expose what another must then see: removed track data can
/// leave a base64 blob standing alone, a masked digit can split a hex token. So the
/// rules run again over their own output until it stops changing (in practice one
/// extra round; clean input takes one); this is what keeps redaction idempotent.
fn scan(b: &[u8]) -> Option<(Vec<u8>, Redactions)> {
    let mut r = Redactions::default();
    let mut out: Option<Vec<u8>> = None;
    for _ in 0..MAX_ROUNDS {
        let cur = out.as_deref().unwrap_or(b);
        match round(cur) {
            Some((next, found)) => {
                r.add(found);
                out = Some(next);
            }
            None => break,
        }
    }
    out.map(|o| (o, r))
}

/// One round: blobs, then the digit rules.
fn round(b: &[u8]) -> Option<(Vec<u8>, Redactions)> {
    let mut r = Redactions::default();
    let (edits, found) = blob::find(b, scan_digits);
    let mut cur = Cow::Borrowed(b);
    if !edits.is_empty() {
        cur = Cow::Owned(scan::apply(b, &edits));
        r.add(found);
    }
    match scan_digits(&cur) {
        Some((out, found)) => {
            r.add(found);
            Some((out, r))
        }
        None => owned(cur).map(|out| (out, r)),
    }
}

/// The rules on digits (PANs, track data), in the input as it is and as a printer or
/// an XML reader reads it; everything but blobs.
fn scan_digits(b: &[u8]) -> Option<(Vec<u8>, Redactions)> {
    if !scan::has_digit(b) {
        return None;
    }
    let mut r = Redactions::default();
    let mut cur = Cow::Borrowed(b);
    if view::needed(b) {
        // Epson's reading first, where every command takes its parameters, then
        // Star's, where a digit after a command is text.
        for params in [view::Params::Taken, view::Params::DigitsKept] {
            let Some(v) = view::build(&cur, params) else {
                continue;
            };
            let (edits, found) = scan::find(&v.bytes);
            if !edits.is_empty() {
                cur = Cow::Owned(v.apply(&cur, &edits));
                r.add(found);
            }
        }
    }
    let (edits, found) = scan::find(&cur);
    if !edits.is_empty() {
        cur = Cow::Owned(scan::apply(&cur, &edits));
        r.add(found);
    }
    owned(cur).map(|out| (out, r))
}

/// The bytes when a rule changed them.
fn owned(c: Cow<'_, [u8]>) -> Option<Vec<u8>> {
    match c {
        Cow::Owned(out) => Some(out),
        Cow::Borrowed(_) => None,
    }
}

#[cfg(test)]
mod tests;
