#![no_main]
//! The LAN line reader: the length bound holds for any input and any bound, and
//! complete lines come back byte-exact.

use libfuzzer_sys::fuzz_target;
use posedge::source::lines::{KEEP_PREFIX, Line, read_line};

fuzz_target!(|data: &[u8]| {
    let Some((&bound, input)) = data.split_first() else {
        return;
    };
    let max = usize::from(bound) + 1;
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let mut r = tokio::io::BufReader::with_capacity(7, input);
        let mut complete = Vec::new();
        loop {
            match read_line(&mut r, max).await.unwrap() {
                Line::Eof => break,
                Line::Complete(l) => {
                    assert!(l.len() <= max);
                    complete.push(l);
                }
                Line::TooLong { prefix, len } => {
                    assert!(prefix.len() <= KEEP_PREFIX.min(max) && len > max as u64);
                }
                Line::Truncated(p) => assert!(p.len() <= max),
            }
        }
        for l in complete {
            assert!(input.windows(l.len().max(1)).any(|w| l.is_empty() || w == &l[..]));
        }
    });
});
