//! Reading newline-terminated records with a length bound enforced while reading.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One read outcome.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line without its `\n`.
    Complete(Vec<u8>),
    /// A line longer than the bound: its first bytes and its full length.
    TooLong {
        /// The first `keep` bytes, for the dead letters.
        prefix: Vec<u8>,
        /// Total length including the discarded part.
        len: u64,
    },
    /// The peer closed the stream in the middle of a line.
    Truncated(Vec<u8>),
    /// Clean end of stream.
    Eof,
}

/// Bytes of an over-long line kept for the dead letters.
pub const KEEP_PREFIX: usize = 4096;

/// Reads the next line, never buffering more than `max` bytes of it.
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut total: u64 = 0;
    let mut over = false;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(match (total, over) {
                (0, _) => Line::Eof,
                (_, true) => Line::TooLong {
                    prefix: cut_clean(line),
                    len: total,
                },
                (_, false) => Line::Truncated(cut_clean(line)),
            });
        }
        let (chunk, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        total += chunk.len() as u64;
        if !over {
            if line.len() + chunk.len() > max {
                over = true;
                let room = KEEP_PREFIX.min(max).saturating_sub(line.len());
                line.extend_from_slice(&chunk[..room.min(chunk.len())]);
                line.truncate(KEEP_PREFIX.min(max));
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = done.unwrap_or(buf.len());
        r.consume(consumed);
        if done.is_some() {
            if line.last() == Some(&b'\r') && !over {
                line.pop();
            }
            return Ok(if over {
                Line::TooLong {
                    prefix: cut_clean(line),
                    len: total,
                }
            } else {
                Line::Complete(line)
            });
        }
    }
}

/// A prefix cut in the middle of a card number would leave too few digits for the
/// redactor to recognise it; drop the trailing digit run (and its separators) instead.
fn cut_clean(mut prefix: Vec<u8>) -> Vec<u8> {
    while prefix
        .last()
        .is_some_and(|b| b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'.'))
    {
        prefix.pop();
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::io::BufReader;

    fn run(input: &[u8], max: usize, cap: usize) -> Vec<Line> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut r = BufReader::with_capacity(cap, input);
            let mut out = Vec::new();
            loop {
                let l = read_line(&mut r, max).await.unwrap();
                let end = l == Line::Eof;
                out.push(l);
                if end {
                    return out;
                }
            }
        })
    }

    #[test]
    fn splits_bounds_and_reports_truncation() {
        let big = vec![b'x'; 10_000];
        let mut input = b"a\r\nbb\n".to_vec();
        input.extend_from_slice(&big);
        input.extend_from_slice(b"\ncc");
        let out = run(&input, 100, 7);
        assert_eq!(out[0], Line::Complete(b"a".to_vec()));
        assert_eq!(out[1], Line::Complete(b"bb".to_vec()));
        assert!(matches!(&out[2], Line::TooLong { prefix, len: 10_000 } if prefix.len() == 100));
        let torn = run(b"card 4111 1111 1111 1111 and more\n", 12, 64);
        assert_eq!(
            torn[0],
            Line::TooLong {
                prefix: b"card".to_vec(),
                len: 33
            }
        );
        assert_eq!(out[3], Line::Truncated(b"cc".to_vec()));
        assert_eq!(out[4], Line::Eof);
    }

    proptest! {
        /// Framing invariant: whatever the buffer size, complete lines come back exactly
        /// and none is longer than the bound.
        #[test]
        fn lines_round_trip(lines in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..300), 0..20),
                            max in 1usize..400, cap in 1usize..64) {
            let lines: Vec<Vec<u8>> = lines.into_iter()
                .map(|l| l.into_iter().filter(|&b| b != b'\n' && b != b'\r').collect()).collect();
            let mut input = Vec::new();
            for l in &lines { input.extend_from_slice(l); input.push(b'\n'); }
            let out = run(&input, max, cap);
            prop_assert_eq!(out.len(), lines.len() + 1);
            for (l, o) in lines.iter().zip(&out) {
                if l.len() <= max {
                    prop_assert_eq!(o, &Line::Complete(l.clone()));
                } else {
                    let ok = matches!(o, Line::TooLong { prefix, len } if *len == l.len() as u64 && prefix.len() <= max && l.starts_with(prefix));
                    prop_assert!(ok);
                }
            }
        }
    }
}
