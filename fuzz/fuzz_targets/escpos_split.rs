#![no_main]

use posedge::decode::escpos::{Chunk, Options, Splitter};
use libfuzzer_sys::fuzz_target;

/// Pushes `data` in pieces of the given sizes (cycling) and collects every chunk.
fn split(data: &[u8], sizes: &[usize], opts: &Options) -> Vec<Chunk> {
    let mut sp = Splitter::new(opts);
    let mut out = Vec::new();
    let mut rest = data;
    for &n in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at(n.clamp(1, rest.len()));
        out.extend(sp.push(head));
        rest = tail;
    }
    out.extend(sp.finish());
    out
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the size bound so truncation is exercised too.
    let (max, data) = match data.split_first() {
        Some((&m, rest)) if m < 128 => (usize::from(m) * 16 + 1, rest),
        _ => (1 << 20, data),
    };
    let opts = Options {
        max_receipt_bytes: max,
        ..Options::default()
    };
    let whole = split(data, &[usize::MAX], &opts);
    let joined: Vec<u8> = whole.iter().flat_map(|c| c.bytes.iter().copied()).collect();
    assert_eq!(joined, data);
    assert!(
        whole
            .iter()
            .all(|c| !c.bytes.is_empty() && c.bytes.len() <= max)
    );
    for sizes in [&[1][..], &[2, 3, 5], &[7, 1, 64], &[4096]] {
        assert_eq!(split(data, sizes, &opts), whole);
    }
});
