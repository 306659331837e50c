//! Missing `seq` ranges: the one computation behind gap tracking and the report.

use serde::Serialize;

/// An inclusive range of `seq` numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SeqRange {
    /// First, inclusive.
    pub from: u64,
    /// Last, inclusive.
    pub to: u64,
}

impl SeqRange {
    /// How many numbers it holds.
    pub fn len(&self) -> u64 {
        self.to - self.from + 1
    }

    /// Never true: a range holds at least one number (for clippy's `len` rule).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Pieces of at most `max` numbers, in order (a resync request spans a bounded range).
    pub fn chunks(self, max: u64) -> impl Iterator<Item = SeqRange> {
        let max = max.max(1);
        (0..self.len().div_ceil(max)).map(move |i| {
            let from = self.from + i * max;
            SeqRange {
                from,
                to: (from + max - 1).min(self.to),
            }
        })
    }
}

/// The ranges of `from..=to` absent from `present` (ascending; duplicates allowed;
/// numbers outside the span ignored).
pub fn holes(present: impl IntoIterator<Item = u64>, from: u64, to: u64) -> Vec<SeqRange> {
    let mut out = Vec::new();
    if to < from {
        return out;
    }
    let mut next = from;
    for seq in present {
        if seq < next {
            continue;
        }
        if seq > to {
            break;
        }
        if seq > next {
            out.push(SeqRange {
                from: next,
                to: seq - 1,
            });
        }
        next = seq + 1;
    }
    if next <= to {
        out.push(SeqRange { from: next, to });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(from: u64, to: u64) -> SeqRange {
        SeqRange { from, to }
    }

    #[test]
    fn holes_are_found_at_the_start_middle_and_end() {
        assert_eq!(
            holes([2, 3, 3, 6, 9], 1, 10),
            vec![r(1, 1), r(4, 5), r(7, 8), r(10, 10)]
        );
        assert_eq!(holes([1, 2, 3], 1, 3), vec![]);
        assert_eq!(holes([], 4, 6), vec![r(4, 6)]);
        assert_eq!(holes([1, 50], 5, 7), vec![r(5, 7)]);
    }

    #[test]
    fn long_ranges_split_into_bounded_requests() {
        let parts: Vec<_> = r(1, 250).chunks(100).collect();
        assert_eq!(parts, vec![r(1, 100), r(101, 200), r(201, 250)]);
        assert_eq!(r(5, 5).chunks(100).count(), 1);
    }
}
