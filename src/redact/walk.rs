//! The clean check for a member the byte redactor already passed (see [`super::clean::judge`]):
//! a walk over its bytes instead of a serde pass, since none of its strings needs a scan.
//! Only for text without escapes; anything it does not expect hands the member back to
//! the serde pass, so it never decides what it did not read.

use std::borrow::Cow;

use super::NUMBER_FLOOR;
use super::clean::{ArrayVerdict, Clean, ObjectVerdict};
use super::keys::is_sensitive_key;
use super::split;

/// Nesting deeper than serde_json's own limit: such text is not a parsed member.
const MAX_DEPTH: usize = 128;

/// Digits of `NUMBER_FLOOR`: an integer with this many digits is not below it.
const FLOOR_DIGITS: usize = 12;
const _: () = assert!(NUMBER_FLOOR == 10u64.pow(FLOOR_DIGITS as u32 - 1));

/// Judges a member's JSON text whose strings the byte redactor already passed. `None`
/// when the text has escapes or is not JSON as the walk expects it.
pub(super) fn judge(json: &str) -> Option<Clean> {
    let b = json.as_bytes();
    if memchr::memchr(b'\\', b).is_some() {
        return None;
    }
    let mut w = Walk { b, i: 0 };
    let verdict = w.value(0)?;
    w.ws();
    (w.i == b.len()).then_some(verdict)
}

struct Walk<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Walk<'a> {
    fn ws(&mut self) {
        while self
            .b
            .get(self.i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    /// Consumes `c` after optional whitespace.
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let hit = self.b.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    fn value(&mut self, depth: usize) -> Option<Clean> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.b.get(self.i)? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => {
                let s = self.string()?;
                Some(Clean {
                    clean: true,
                    unit: split::classify(s),
                })
            }
            b't' => self.word(b"true"),
            b'f' => self.word(b"false"),
            b'n' => self.word(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn word(&mut self, w: &[u8]) -> Option<Clean> {
        let end = self.i + w.len();
        (self.b.get(self.i..end)? == w).then_some(())?;
        self.i = end;
        Some(Clean {
            clean: true,
            unit: None,
        })
    }

    /// The same verdict as `redact_json` on the number serde_json reads: integers below
    /// `NUMBER_FLOOR` are clean; any other number (a fraction, an exponent, `-0`, an
    /// integer of 12 or more digits, which includes those serde_json can only read as
    /// floats) is looked at, so not clean.
    fn number(&mut self) -> Option<Clean> {
        let negative = self.b.get(self.i) == Some(&b'-');
        self.i += usize::from(negative);
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        let digits = self.i - start;
        // serde_json reads `-0` as a float, to keep its sign.
        let minus_zero = negative && self.b.get(start..self.i) == Some(b"0");
        let mut integer = digits > 0 && !minus_zero;
        while self
            .b
            .get(self.i)
            .is_some_and(|c| matches!(c, b'.' | b'e' | b'E' | b'+' | b'-' | b'0'..=b'9'))
        {
            integer = false;
            self.i += 1;
        }
        Some(Clean {
            clean: integer && digits < FLOOR_DIGITS,
            unit: None,
        })
    }

    /// The bytes between this `"` and the next (there are no escapes).
    fn string(&mut self) -> Option<&'a [u8]> {
        let start = self.i + 1;
        let len = memchr::memchr(b'"', self.b.get(start..)?)?;
        self.i = start + len + 1;
        self.b.get(start..start + len)
    }

    fn array(&mut self, depth: usize) -> Option<Clean> {
        self.i += 1;
        let mut verdict = ArrayVerdict::default();
        if self.eat(b']') {
            return Some(verdict.finish());
        }
        loop {
            verdict.add(self.value(depth + 1)?);
            if self.eat(b']') {
                return Some(verdict.finish());
            }
            self.eat(b',').then_some(())?;
        }
    }

    fn object(&mut self, depth: usize) -> Option<Clean> {
        self.i += 1;
        let mut verdict = ObjectVerdict::default();
        if self.eat(b'}') {
            return Some(verdict.finish());
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return None;
            }
            let key = std::str::from_utf8(self.string()?).ok()?;
            self.eat(b':').then_some(())?;
            let v = self.value(depth + 1)?;
            verdict.add(!is_sensitive_key(key), Cow::Borrowed(key), v);
            if self.eat(b'}') {
                return Some(verdict.finish());
            }
            self.eat(b',').then_some(())?;
        }
    }
}
