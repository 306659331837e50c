//! Base64 and hex blobs that carry card data: found, decoded, checked with the digit
//! rules, and replaced whole (see "Blobs" in the module doc of `redact`).

use super::Redactions;
use super::pan::{MAX_PAN, MIN_PAN, iin_lengths, luhn};
use super::scan::Edit;

/// What replaces a blob that holds card data.
pub(super) const BLOB_REDACTED: &[u8] = b"[blob redacted]";
/// The shortest hex token looked at: a 12-digit PAN in packed BCD.
const MIN_HEX: usize = 12;
/// The shortest hex token decoded as ASCII: 12 digits, two hex characters each.
const MIN_HEX_ASCII: usize = 24;
/// The shortest base64 token decoded: 12 bytes, the shortest PAN in ASCII.
const MIN_BASE64: usize = 16;

/// Bytes of a token: the base64 alphabets (standard and URL-safe), which contain hex.
fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_')
}

fn base64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

fn hex_value(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

/// What the digit rules make of some bytes: `None` when nothing, else the redacted
/// bytes and the counts.
pub(super) type Check = fn(&[u8]) -> Option<(Vec<u8>, Redactions)>;

/// Finds the blobs in `b` that hold card data; `check` runs the other rules over a
/// decoded blob (without this one, so blobs inside blobs are not chased).
pub(super) fn find(b: &[u8], check: Check) -> (Vec<Edit>, Redactions) {
    let mut edits = Vec::new();
    let mut r = Redactions::default();
    let n = b.len();
    let mut i = 0;
    // Tokens shorter than MIN_HEX are never looked at, so when the byte MIN_HEX - 1
    // ahead is not a token byte, no token worth a look starts before it: most text
    // is skipped a dozen bytes at a time. `b[i - 1]` is never a token byte here.
    while i + MIN_HEX <= n {
        let probe = i + MIN_HEX - 1;
        if !b.get(probe).copied().is_some_and(is_token) {
            i = probe + 1;
            continue;
        }
        let mut s = probe;
        while s > i && b.get(s - 1).copied().is_some_and(is_token) {
            s -= 1;
        }
        let mut e = probe + 1;
        while b.get(e).copied().is_some_and(is_token) {
            e += 1;
        }
        let token = b.get(s..e).unwrap_or_default();
        let found = inspect(token, check);
        if found.total() > 0 {
            // Padding belongs to the blob: `=` left behind would only say one was here.
            let mut end = e;
            while end < n && end - e < 2 && b.get(end) == Some(&b'=') {
                end += 1;
            }
            edits.push(Edit::Replace {
                start: s,
                end,
                with: BLOB_REDACTED,
            });
            r.add(found);
            e = end;
        }
        i = e + 1;
    }
    (edits, r)
}

/// What card data one token holds, if it is a blob.
fn inspect(token: &[u8], check: Check) -> Redactions {
    let found = |r: Option<(Vec<u8>, Redactions)>| r.map(|(_, f)| f).unwrap_or_default();
    let count = |set: &[u8]| token.iter().filter(|c| set.contains(c)).count();
    let letters = token.iter().any(u8::is_ascii_alphabetic);
    if token.iter().all(u8::is_ascii_hexdigit) {
        // Cheap refusals first (most hex tokens are ids and hashes): BCD needs 12
        // decimal nibbles, ASCII digits a `3` before each of 12 digits.
        let decimal = token.iter().filter(|c| c.is_ascii_digit()).count();
        if decimal < MIN_PAN {
            return Redactions::default();
        }
        // An all-digit token is a number: the digit rules already read it as BCD.
        if letters {
            // What the digit rules mask in the token (an EMV tag 57 track, a
            // delimited PAN) they handle themselves; a BCD PAN they leave is a blob's.
            let plain = check(token);
            let text = plain.as_ref().map_or(token, |(out, _)| out.as_slice());
            if has_bcd_pan(text) {
                return Redactions {
                    pans: 1,
                    ..Redactions::default()
                };
            }
        }
        if token.len() >= MIN_HEX_ASCII && token.len().is_multiple_of(2) && count(b"3") >= MIN_PAN {
            let bytes: Vec<u8> = token
                .chunks_exact(2)
                .filter_map(|p| Some(hex_value(*p.first()?)? << 4 | hex_value(*p.get(1)?)?))
                .collect();
            return found(check(&bytes));
        }
        return Redactions::default();
    }
    // Twelve ASCII digits span at least three whole 3-byte groups, and a group that
    // starts with a digit (0x30–0x39) encodes to a first character `M`, `N` or `O`.
    if !letters || token.len() < MIN_BASE64 || count(b"MNO") < 3 {
        return Redactions::default();
    }
    found(check(&decode_base64(token)))
}

/// Decodes a token of base64 characters; a trailing partial group is dropped.
fn decode_base64(token: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(token.len() / 4 * 3 + 2);
    let mut acc = 0u32;
    let mut bits = 0;
    for v in token.iter().filter_map(|&c| base64_value(c)) {
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Packed BCD: the hex digits themselves are the PAN's digits, starting on a byte
/// boundary (an even offset in the token), anywhere in a run of decimal nibbles,
/// with a length its brand is issued in and a valid Luhn check digit.
fn has_bcd_pan(token: &[u8]) -> bool {
    let mut k = 0;
    while k < token.len() {
        let run = token
            .get(k..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if run >= MIN_PAN {
            let digits = token.get(k..k + run).unwrap_or_default();
            let hit = (0..=run - MIN_PAN)
                .filter(|off| (k + off) % 2 == 0)
                .any(|off| {
                    let tail = digits.get(off..).unwrap_or_default();
                    let lens = iin_lengths(tail);
                    (MIN_PAN..=MAX_PAN.min(tail.len()))
                        .any(|len| lens & (1 << len) != 0 && tail.get(..len).is_some_and(luhn))
                });
            if hit {
                return true;
            }
        }
        k += run + 1;
    }
    false
}
