//! The byte scanner: finds digit runs, applies the PAN and track rules, and records edits.

use super::Redactions;
use super::pan::{
    Cand, KEEP_FIRST, KEEP_LAST, MAX_PAN, MIN_PAN, Span, iin_lengths, select, whole_is_pan,
};
use super::track::{TRACK_REMOVED, track_at};

/// Past this many overlapping candidates the input is pathological (e.g. a long
/// run of one digit); masking the whole cluster keeps memory and time bounded.
const CLUSTER_CAP: usize = 64;

fn is_unit(c: u8) -> bool {
    c.is_ascii_digit() || c == b'*'
}

pub(super) fn is_sep(c: u8) -> bool {
    matches!(c, b' ' | b'-' | b'.')
}

/// Branch-free per chunk so the compiler vectorises the common digit-free case.
pub(super) fn has_digit(b: &[u8]) -> bool {
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

pub(super) fn digit_count(b: &[u8], from: usize) -> usize {
    b.get(from..)
        .map_or(0, |t| t.iter().take_while(|c| c.is_ascii_digit()).count())
}

/// One change the scanner decided on, as byte offsets into what it scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Edit {
    /// A PAN: its digits in `start..end` are masked to first 6 + last 4 and the
    /// separators between them dropped.
    Mask { start: usize, end: usize },
    /// `start..end` is replaced by fixed text (track data, blobs).
    Replace {
        start: usize,
        end: usize,
        with: &'static [u8],
    },
}

impl Edit {
    /// The input bytes this edit covers.
    pub(super) fn range(&self) -> (usize, usize) {
        match *self {
            Edit::Mask { start, end } | Edit::Replace { start, end, .. } => (start, end),
        }
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    edits: Vec<Edit>,
    r: Redactions,
    cluster: Vec<Cand>,
    hull: Option<Span>,
    overflow: bool,
}

/// Finds the PANs and track data in `b` (digit runs only: no blobs, no ESC/POS):
/// the edits in input order, not overlapping, and what they redact.
pub(super) fn find(b: &[u8]) -> (Vec<Edit>, Redactions) {
    let mut sc = Scanner {
        b,
        edits: Vec::new(),
        r: Redactions::default(),
        cluster: Vec::new(),
        hull: None,
        overflow: false,
    };
    if !has_digit(b) {
        return (sc.edits, sc.r);
    }
    let mut i = 0;
    while let Some(start) = next_unit(b, i) {
        let (run_end, track) = parse_run(b, start);
        sc.run(start, run_end);
        match track {
            Some((ts, te)) => {
                sc.edits.push(Edit::Replace {
                    start: ts,
                    end: te,
                    with: TRACK_REMOVED,
                });
                sc.r.tracks = sc.r.tracks.saturating_add(1);
                i = te.max(start + 1);
            }
            None => i = run_end.max(start + 1),
        }
    }
    (sc.edits, sc.r)
}

/// The masked form of the digits in `bytes`: first 6 and last 4 kept, the rest `*`.
pub(super) fn masked_digit(j: usize, n: usize, c: u8) -> u8 {
    if j < KEEP_FIRST || j + KEEP_LAST >= n {
        c
    } else {
        b'*'
    }
}

/// Applies `edits` (as [`find`] returns them) to the bytes they were found in.
pub(super) fn apply(b: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut pos = 0;
    for e in edits {
        let (start, end) = e.range();
        // Edits never overlap; clamping only keeps this panic-free if they did.
        let start = start.max(pos);
        let end = end.max(start);
        out.extend_from_slice(b.get(pos..start).unwrap_or_default());
        let covered = b.get(start..end).unwrap_or_default();
        match e {
            Edit::Mask { .. } => {
                let n = covered.iter().filter(|c| c.is_ascii_digit()).count();
                let digits = covered.iter().filter(|c| c.is_ascii_digit());
                out.extend(digits.enumerate().map(|(j, &c)| masked_digit(j, n, c)));
            }
            Edit::Replace { with, .. } => out.extend_from_slice(with),
        }
        pos = end;
    }
    out.extend_from_slice(b.get(pos..).unwrap_or_default());
    out
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

impl Scanner<'_> {
    fn mask(&mut self, sp: Span) {
        self.edits.push(Edit::Mask {
            start: sp.bs,
            end: sp.be,
        });
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
