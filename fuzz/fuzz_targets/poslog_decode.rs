//! `cargo +nightly fuzz run --dev poslog_decode -- -max_total_time=60`
//! Any input: decode must return (events and/or rejections), never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posedge::decode::poslog::{Options, decode};

fuzz_target!(|data: &[u8]| {
    let out = decode(data, &Options::default());
    assert!(!out.is_empty(), "every input yields at least one event or rejection");
});
