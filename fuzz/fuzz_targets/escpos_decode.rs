#![no_main]

use posedge::decode::escpos::{CodePage, Options, decode, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = Options::default();
    let receipts = decode(data, &opts);
    for r in &receipts {
        assert_eq!(r.image_only, r.images > 0 && r.lines.is_empty());
        assert!(r.lines.first().is_none_or(|l| !l.is_empty()));
        assert!(r.lines.last().is_none_or(|l| !l.is_empty()));
        // Re-rendering whatever was decoded must itself decode without trouble.
        let again = decode(&render(r, CodePage::Cp858), &opts);
        assert!(again.len() <= 1);
    }
    let _ = decode(
        data,
        &Options {
            default_code_page: CodePage::Cp1252,
            max_receipt_bytes: 64,
        },
    );
});
