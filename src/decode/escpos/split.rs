//! Streaming receipt splitter for the printer tap.

use super::Options;
use super::scan::{Event, Scanner};

/// Raw bytes of one receipt (or of a fragment of an oversized one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The bytes, up to and including the paper-cut command when there is one.
    pub bytes: Vec<u8>,
    /// The receipt exceeded `max_receipt_bytes`; this is one of its fragments.
    pub truncated: bool,
}

/// Streaming splitter for the printer tap: push chunks as they arrive, get the raw bytes of each
/// completed receipt (everything up to and including a paper-cut command).
///
/// Command-aware (a 0x1D 0x56 inside an image or barcode payload is not a cut) and bounded: it
/// holds at most `max_receipt_bytes` of one receipt. All fragments of an oversized receipt,
/// including the last one that ends at the cut, are flagged `truncated`. Concatenating every
/// emitted chunk gives back the input exactly.
#[derive(Debug, Clone)]
pub struct Splitter {
    scan: Scanner,
    buf: Vec<u8>,
    max: usize,
    truncated: bool,
}

impl Splitter {
    /// Creates a splitter using `opts.max_receipt_bytes` (at least 1).
    pub fn new(opts: &Options) -> Self {
        Splitter {
            scan: Scanner::default(),
            buf: Vec::new(),
            max: opts.max_receipt_bytes.max(1),
            truncated: false,
        }
    }

    /// Feeds the next chunk; returns the receipts completed by it.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Chunk> {
        let mut done = Vec::new();
        let mut rest = chunk;
        while !rest.is_empty() {
            // Never let the scanner run past the size bound, so the split point does not depend
            // on how the input was chunked.
            let room = self.max.saturating_sub(self.buf.len()).max(1);
            let window = rest.get(..room).unwrap_or(rest);
            let (n, event) = self.scan.next(window);
            let (head, tail) = rest.split_at_checked(n).unwrap_or((rest, &[]));
            self.buf.extend_from_slice(head);
            rest = tail;
            if let Some(Event::Command { cut: true }) = event {
                done.push(self.take(false));
            } else if self.buf.len() >= self.max {
                done.push(self.take(true));
            }
        }
        done
    }

    /// Returns the tail (connection closed) if non-empty and resets the splitter.
    pub fn finish(&mut self) -> Option<Chunk> {
        self.scan = Scanner::default();
        if self.buf.is_empty() {
            self.truncated = false;
            return None;
        }
        Some(self.take(false))
    }

    fn take(&mut self, truncated_now: bool) -> Chunk {
        let chunk = Chunk {
            bytes: std::mem::take(&mut self.buf),
            truncated: self.truncated || truncated_now,
        };
        self.truncated = truncated_now;
        chunk
    }
}
