//! Any bytes as a kv record: the decoder must answer (event or rejection), never panic, and
//! whatever it accepts must encode to a line that decodes to the same event.
#![no_main]

use posedge::decode::kv::{KvOptions, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = KvOptions { default_currency: "EUR".parse().ok() };
    let out = decode(data, &opts);
    assert_eq!(out.len(), 1);
    if let Some(Ok(event)) = out.first() {
        let json = serde_json::to_value(event).expect("events serialise");
        // Not every accepted record is encodable (e.g. an empty customer); those that are
        // must come back unchanged.
        if let Ok(line) = encode(&json) {
            let again = decode(line.as_bytes(), &opts);
            let back = again.first().and_then(|r| r.as_ref().ok());
            assert_eq!(back.map(|e| serde_json::to_value(e).ok()), Some(Some(json)), "{line}");
        }
    }
});
