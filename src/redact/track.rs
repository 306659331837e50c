//! Track 1 and track 2 data (see the module doc of `redact`).

use super::pan::{MAX_PAN, MIN_PAN, whole_is_pan, window_is_pan};
use super::scan::digit_count;

pub(super) const TRACK_REMOVED: &[u8] = b"[track removed]";
const MAX_TRACK1_NAME: usize = 45;
const MAX_TRACK1_TAIL: usize = 79;

fn is_track1_name_byte(c: u8) -> bool {
    (0x20..=0x7e).contains(&c) && !matches!(c, b'^' | b'?' | b'%' | b'"' | b'\\')
}

/// `p..q` is a maximal digit string followed by `=`, `^` or `D`; returns the byte
/// range of the track it belongs to, if any.
pub(super) fn track_at(b: &[u8], p: usize, q: usize) -> Option<(usize, usize)> {
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
