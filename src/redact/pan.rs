//! The PAN rule: issuer prefixes, lengths, Luhn, and the choice among overlapping windows.

use std::cmp::Reverse;

/// The shortest PAN: 12-digit cards are Maestro only (see [`MAESTRO_12`]).
pub(super) const MIN_PAN: usize = 12;
/// Every other brand issues 13 digits or more.
const MIN_PAN_ANY: usize = 13;
/// The Maestro IINs that issue 12-digit cards. Only these make a 12-digit number a
/// PAN: 12 digits are common in ordinary numbers (GTIN-12/UPC-A, order numbers), so
/// the rule stays as narrow as the issuers are.
const MAESTRO_12: &[u32] = &[5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763];
pub(super) const MAX_PAN: usize = 19;
/// PCI DSS allows at most the first 6 and last 4 digits to be shown.
pub(super) const MAX_SHOWN: usize = 10;
pub(super) const KEEP_FIRST: usize = 6;
pub(super) const KEEP_LAST: usize = 4;

pub(super) fn luhn(d: &[u8]) -> bool {
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
pub(super) fn iin_lengths(d: &[u8]) -> u32 {
    let dig = |i: usize| d.get(i).map_or(0, |c| u32::from(c.wrapping_sub(b'0')));
    let p2 = dig(0) * 10 + dig(1);
    let p3 = p2 * 10 + dig(2);
    let p4 = p3 * 10 + dig(3);
    match dig(0) {
        4 => 1 << 13 | 1 << 16 | 1 << 19,
        5 if (51..=55).contains(&p2) => 1 << 16,
        5 | 6 if MAESTRO_12.contains(&p4) => lengths(12, 19),
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

/// Rule 1: a delimited digit string of 13–19 digits with a card prefix, or of 12
/// digits with a Maestro 12-digit prefix.
pub(super) fn whole_is_pan(d: &[u8]) -> bool {
    let lens = iin_lengths(d);
    let fits = if d.len() < MIN_PAN_ANY {
        lens & (1 << d.len()) != 0
    } else {
        lens != 0
    };
    (MIN_PAN..=MAX_PAN).contains(&d.len()) && fits && luhn(d)
}

/// Rule 2: a window inside a longer digit string.
pub(super) fn window_is_pan(d: &[u8]) -> bool {
    (MIN_PAN..=MAX_PAN).contains(&d.len()) && iin_lengths(d) & (1 << d.len()) != 0 && luhn(d)
}

/// A stretch of digits: `s..e` counts digits within the run, `bs..be` are bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    pub(super) s: usize,
    pub(super) e: usize,
    pub(super) bs: usize,
    pub(super) be: usize,
}

impl Span {
    fn overlaps(&self, o: &Span) -> bool {
        self.s < o.e && o.s < self.e
    }

    pub(super) fn union(self, o: Span) -> Span {
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
pub(super) struct Cand {
    pub(super) span: Span,
    /// Ends that sit on a run edge, separator or `*` (0–2): formatted card
    /// numbers are delimited, chance matches inside longer numbers mostly are not.
    pub(super) aligned: u8,
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
pub(super) fn select(cands: &[Cand]) -> Vec<Span> {
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
