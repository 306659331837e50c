#![no_main]
//! The canonical NDJSON decoder: never a panic, and every accepted line has a type.

use libfuzzer_sys::fuzz_target;
use posedge::config::Format;
use posedge::decode::{Options, decode};

fuzz_target!(|data: &[u8]| {
    for members in decode(Format::Ndjson, data, &Options::default()).into_iter().flatten() {
        assert!(members.fields.contains_key("event_type"));
    }
});
