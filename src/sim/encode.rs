//! The simulated register's record for a generated event, in each supported format.

use crate::config::Format;
use crate::decode::escpos::{self, Barcode, CodePage, Receipt};
use crate::decode::{kv, poslog};
use serde_json::Value;

/// The bytes a register of `format` sends for `ev` (without line ending or framing), or
/// `None` when the format cannot express the event (a drawer event in POSLog, anything
/// but a sale or no-sale on a receipt printer).
pub fn record(format: Format, ev: &Value, code_page: CodePage) -> Option<Vec<u8>> {
    match format {
        Format::Ndjson => serde_json::to_vec(ev).ok(),
        Format::Kv => kv::encode(ev).ok().map(String::into_bytes),
        // One document per record: line transports carry it on one line (whitespace
        // between elements means nothing to XML).
        Format::Poslog => poslog::encode(ev)
            .ok()
            .map(|x| x.replace(['\r', '\n'], " ").into_bytes()),
        Format::Naxml => None,
        Format::Escpos => receipt(ev, code_page),
    }
}

/// The ESC/POS print job of one receipt, ending with its paper cut.
pub fn receipt(ev: &Value, code_page: CodePage) -> Option<Vec<u8>> {
    let draft = super::receipt::draft(ev)?;
    let receipt = Receipt {
        lines: draft.lines,
        barcodes: draft
            .barcode
            .map(|data| Barcode {
                symbology: "code128".into(),
                data,
            })
            .into_iter()
            .collect(),
        qr_codes: draft.qr.into_iter().collect(),
        drawer_kick: draft.drawer_kick,
        image_only: false,
        images: 0,
        cut: true,
        code_page: code_page.name().into(),
        mapping: Vec::new(),
    };
    Some(escpos::render(&receipt, code_page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Options, decode};

    #[test]
    fn every_format_decodes_what_the_simulator_sends() {
        let events = crate::fixtures::simulated();
        for format in [Format::Ndjson, Format::Kv, Format::Poslog, Format::Escpos] {
            let mut sent = 0;
            for ev in &events {
                let Some(raw) = record(format, ev, CodePage::Cp858) else {
                    continue;
                };
                sent += 1;
                let out = decode(format, &raw, &Options::default());
                assert!(
                    !out.is_empty() && out.iter().all(Result::is_ok),
                    "{format:?}: {:?}",
                    out.iter().find_map(|r| r.as_ref().err())
                );
            }
            assert!(sent > 50, "{format:?} sent only {sent}");
        }
    }
}
