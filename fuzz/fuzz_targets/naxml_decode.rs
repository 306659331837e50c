//! Any bytes as a NAXML document: the decoder must answer, never panic, and a refusal
//! always carries a reason.
#![no_main]

use posedge::decode::naxml::{NaxmlOptions, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = NaxmlOptions { default_currency: "USD".parse().ok(), ..NaxmlOptions::default() };
    for r in decode(data, &opts) {
        if let Err(rejected) = r {
            assert!(!rejected.reason.is_empty());
        }
    }
});
