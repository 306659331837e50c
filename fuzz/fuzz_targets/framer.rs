//! Fuzz the serial framers: no panics, bounded memory, and chunking never changes the frames.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posedge::source::serial::framing::{Frame, Framer, Framing};

/// Small on purpose so the over-long and noise-batching paths are hit constantly.
const MAX_FRAME: usize = 16;

fn run(framing: Framing, data: &[u8], chunk: usize) -> (Vec<Frame>, Option<Vec<u8>>) {
    let mut f = Framer::new(framing, MAX_FRAME);
    let mut out = Vec::new();
    for c in data.chunks(chunk) {
        out.extend(f.push(c));
    }
    for fr in &out {
        let len = match fr {
            Frame::Record(r) => r.len(),
            Frame::Bad { raw, .. } => raw.len(),
        };
        // STX + payload + ETX + LRC is the largest thing a Bad may carry.
        assert!(len <= MAX_FRAME + 3, "{framing}: frame of {len} bytes");
    }
    (out, f.torn())
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks an extra chunk size so the fuzzer can explore odd splits.
    let extra = data.first().map_or(1, |b| usize::from(*b % 32) + 1);
    for framing in [Framing::Lf, Framing::StxEtx, Framing::Raw] {
        let whole = run(framing, data, data.len().max(1));
        for chunk in [1, 2, 7, extra] {
            let split = run(framing, data, chunk);
            if framing == Framing::Raw {
                // Raw keeps chunk boundaries by design; only the bytes must survive.
                let bytes = |fs: &[Frame]| -> Vec<u8> {
                    fs.iter()
                        .flat_map(|f| match f {
                            Frame::Record(r) => r.clone(),
                            Frame::Bad { raw, .. } => raw.clone(),
                        })
                        .collect()
                };
                assert_eq!(bytes(&split.0), data);
            } else {
                assert_eq!(
                    split, whole,
                    "{framing}: chunk size {chunk} changed the frames"
                );
            }
        }
    }
});
