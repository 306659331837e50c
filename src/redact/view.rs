//! A view of the input with ESC/POS formatting commands taken out and XML character
//! references decoded, so the digit rules see the digits a printer prints or an XML
//! reader reads; edits found in the view are mapped back onto the input (see
//! "Receipts and XML" in the module doc of `redact`).

use super::scan::{Edit, masked_digit};

const ESC: u8 = 0x1b;
const GS: u8 = 0x1d;
/// The longest character reference decoded: `&#x0000039;`.
const MAX_REF: usize = 12;

/// How a command's parameter bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Params {
    /// Every command takes its parameters (Epson ESC/POS: `ESC E n`).
    Taken,
    /// A parameter that is an ASCII digit is printed text (Star line mode, where
    /// `ESC E` takes none; a digit there belongs to the number).
    DigitsKept,
}

/// True when `b` holds anything a view would change.
pub(super) fn needed(b: &[u8]) -> bool {
    let marks = b.chunks(64).any(|chunk| {
        chunk.iter().fold(0u8, |acc, &c| {
            acc | u8::from(c == ESC) | u8::from(c == GS) | u8::from(c == b'&')
        }) != 0
    });
    marks && (b.contains(&ESC) || b.contains(&GS) || b.windows(2).any(|w| w == b"&#"))
}

/// Parameter bytes of a formatting command that sits inside printed text, by its
/// second byte; commands that print, cut or feed paper end a number anyway.
fn command_params(lead: u8, code: u8) -> Option<usize> {
    match (lead, code) {
        // ESC @ initialise, ESC 2 default spacing, Star ESC 4 / ESC 5 highlight,
        // Star ESC F emphasis off.
        (ESC, b'@' | b'2' | b'4' | b'5' | b'F') => Some(0),
        // Bold, underline, print mode, double strike, font, justification, colour,
        // character set, code table, rotation, upside down, character spacing, line
        // spacing, unidirectional mode.
        (
            ESC,
            b'E' | b'-' | b'!' | b'G' | b'M' | b'a' | b'r' | b'R' | b't' | b'V' | b'{' | b' '
            | b'3' | b'U',
        ) => Some(1),
        // Absolute and relative print position.
        (ESC, b'$' | b'\\') => Some(2),
        // Character size, reverse, smoothing, HRI position and font.
        (GS, b'!' | b'B' | b'b' | b'H' | b'f') => Some(1),
        // Left margin, print area width.
        (GS, b'L' | b'W') => Some(2),
        _ => None,
    }
}

/// The length of the formatting command at `b[i..]`, if one starts there.
fn command_len(b: &[u8], i: usize, params: Params) -> Option<usize> {
    let lead = *b.get(i)?;
    if lead != ESC && lead != GS {
        return None;
    }
    let code = *b.get(i + 1)?;
    let mut n = command_params(lead, code)?;
    // Star's `ESC E` (emphasis on) has no parameter; a digit after it is text.
    if params == Params::DigitsKept && b.get(i + 2).is_some_and(u8::is_ascii_digit) {
        n = 0;
    }
    let len = 2 + n;
    (i + len <= b.len()).then_some(len)
}

/// The character a reference like `&#52;` or `&#x34;` at `b[i..]` stands for, when
/// it is a digit or a separator, and its length.
fn char_ref(b: &[u8], i: usize) -> Option<(u8, usize)> {
    let rest = b.get(i..)?.get(..MAX_REF.min(b.len() - i))?;
    if !rest.starts_with(b"&#") {
        return None;
    }
    let semi = rest.iter().position(|&c| c == b';')?;
    let body = rest.get(2..semi)?;
    let (radix, digits) = match body.first() {
        Some(b'x' | b'X') => (16, body.get(1..)?),
        _ => (10, body),
    };
    let text = std::str::from_utf8(digits).ok()?;
    let value = u32::from_str_radix(text, radix).ok()?;
    let c = u8::try_from(value).ok()?;
    (c.is_ascii_digit() || matches!(c, b' ' | b'-' | b'.')).then_some((c, semi + 1))
}

/// The input as the digit rules should see it: each view byte with the input bytes
/// it came from.
pub(super) struct View {
    /// What the rules scan.
    pub(super) bytes: Vec<u8>,
    /// For each view byte, the input range it stands for.
    from: Vec<(usize, usize)>,
}

/// Builds the view; `None` when it would be the input itself.
pub(super) fn build(b: &[u8], params: Params) -> Option<View> {
    let mut v = View {
        bytes: Vec::with_capacity(b.len()),
        from: Vec::with_capacity(b.len()),
    };
    let mut changed = false;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if let Some(len) = command_len(b, i, params) {
            changed = true;
            i += len;
        } else if let Some((ch, len)) = char_ref(b, i) {
            changed = true;
            v.bytes.push(ch);
            v.from.push((i, i + len));
            i += len;
        } else {
            v.bytes.push(c);
            v.from.push((i, i + 1));
            i += 1;
        }
    }
    changed.then_some(v)
}

impl View {
    /// Applies edits found in the view to the input `b`. Commands inside a masked
    /// number stay where they were (the printer's state must not change); a digit
    /// the mask shows keeps its original spelling (a reference stays a reference).
    pub(super) fn apply(&self, b: &[u8], edits: &[Edit]) -> Vec<u8> {
        let mut out = Vec::with_capacity(b.len());
        let mut pos = 0;
        for e in edits {
            let (vs, ve) = e.range();
            let (Some(&(start, _)), Some(&(_, end))) = (
                self.from.get(vs),
                ve.checked_sub(1).and_then(|k| self.from.get(k)),
            ) else {
                continue;
            };
            if start < pos {
                continue;
            }
            out.extend_from_slice(b.get(pos..start).unwrap_or_default());
            match e {
                Edit::Replace { with, .. } => out.extend_from_slice(with),
                Edit::Mask { .. } => self.mask(b, vs, ve, &mut out),
            }
            pos = end;
        }
        out.extend_from_slice(b.get(pos..).unwrap_or_default());
        out
    }

    fn mask(&self, b: &[u8], vs: usize, ve: usize, out: &mut Vec<u8>) {
        let view = self.bytes.get(vs..ve).unwrap_or_default();
        let from = self.from.get(vs..ve).unwrap_or_default();
        let n = view.iter().filter(|c| c.is_ascii_digit()).count();
        let mut j = 0;
        let mut prev_end = None;
        for (&c, &(s, e)) in view.iter().zip(from) {
            // Input bytes between two view bytes are commands: copied as they were.
            if let Some(p) = prev_end {
                out.extend_from_slice(b.get(p..s).unwrap_or_default());
            }
            prev_end = Some(e);
            if c.is_ascii_digit() {
                if masked_digit(j, n, c) == c {
                    out.extend_from_slice(b.get(s..e).unwrap_or_default());
                } else {
                    out.push(b'*');
                }
                j += 1;
            }
        }
    }
}
