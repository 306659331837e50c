//! Decoders: the bytes of one record → the register-supplied fields of zero or more
//! events, and the parts refused with their reasons. Every decoder has the same small
//! interface: `decode(raw, options) -> Decoded`, one entry per event or refused part,
//! in input order.

pub mod escpos;
pub mod kv;
pub mod naxml;
pub mod ndjson;
pub mod poslog;

use crate::config::Format;
use crate::event::Fields;
use crate::model::{Body, Currency, Event, EventType, Transaction};

/// A part of the input a decoder refused: the reason and the exact bytes concerned (the
/// whole record, or a fragment such as one `<Transaction>` element). Both go to the dead
/// letters after redaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// One sentence naming what is wrong and where.
    pub reason: String,
    /// The bytes the reason is about.
    pub raw: Vec<u8>,
}

impl Rejected {
    /// A refusal of the whole record.
    pub fn whole(reason: impl Into<String>, raw: &[u8]) -> Self {
        Rejected {
            reason: reason.into(),
            raw: raw.to_vec(),
        }
    }
}

/// What a typed decoder yields for one record.
pub type Decoded = Vec<Result<Event, Rejected>>;

/// Per-source decoder settings from the config.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Currency for formats whose records may not name one (kv, naxml, poslog).
    pub default_currency: Option<Currency>,
    /// The printer's code page at power-on (escpos); CP437 when unset.
    pub code_page: Option<escpos::CodePage>,
}

/// One decoded event: its members, and the transaction body as the decoder already
/// read it from the members' text (ndjson), so ingest need not parse it again for the
/// inventory feed.
#[derive(Debug)]
pub struct Members {
    /// The register-supplied members, as JSON text.
    pub fields: Fields,
    /// The body in the model when it is a transaction the decoder read; `None` otherwise.
    pub transaction: Option<Box<Transaction>>,
    /// Byte ranges of the record where members' texts were read (NDJSON, whose members
    /// are the record's own text; empty for the others). A hint for the redactor, which
    /// compares the bytes before it leans on one.
    pub spans: Vec<std::ops::Range<usize>>,
}

/// Decodes one record of `format` into event members, ready for redaction and stamping.
pub fn decode(format: Format, raw: &[u8], options: &Options) -> Vec<Result<Members, Rejected>> {
    let decoded = match format {
        Format::Ndjson => {
            return vec![ndjson::decode_parsed(raw).map_err(|r| Rejected::whole(r, raw))];
        }
        Format::Poslog => poslog::decode(
            raw,
            &poslog::Options {
                default_currency: options.default_currency,
                ..Default::default()
            },
        ),
        Format::Naxml => naxml::decode(
            raw,
            &naxml::NaxmlOptions {
                default_currency: options.default_currency,
                ..Default::default()
            },
        ),
        Format::Kv => kv::decode(
            raw,
            &kv::KvOptions {
                default_currency: options.default_currency,
            },
        ),
        Format::Escpos => receipts(raw, options),
    };
    decoded
        .into_iter()
        // Their bodies go through the model once already; the text is what ingest reads.
        .map(|r| {
            r.map(|e| Members {
                fields: checked(e).into_fields(),
                transaction: None,
                spans: Vec::new(),
            })
        })
        .collect()
}

/// DESIGN §3: a transaction whose lines and totals disagree is kept as the register sent
/// it and flagged in `body.integrity`.
fn checked(mut event: Event) -> Event {
    if let Body::Transaction(t) = &mut event.body {
        t.integrity = t.check_integrity();
    }
    event
}

/// Receipts of a print stream. A paper cut ends a receipt; a drawer kick printed after
/// the cut, alone in its chunk of a live stream, is a drawer opening, not a receipt.
fn receipts(raw: &[u8], options: &Options) -> Decoded {
    let opts = escpos::Options {
        default_code_page: options.code_page.unwrap_or_default(),
        ..Default::default()
    };
    escpos::decode(raw, &opts)
        .into_iter()
        .map(|receipt| {
            let kick_only = receipt.drawer_kick
                && receipt.lines.is_empty()
                && receipt.images == 0
                && receipt.barcodes.is_empty()
                && receipt.qr_codes.is_empty();
            let mut event = if kick_only {
                let mut e = Event::new(EventType::Drawer);
                if let Body::Other(m) = &mut e.body {
                    m.insert("action".into(), "open".into());
                    m.insert("reason".into(), "printer_kick".into());
                }
                e
            } else {
                let mut e = Event::new(EventType::Receipt);
                e.body = Body::Receipt(receipt);
                e
            };
            event.ext.clear();
            Ok(event)
        })
        .collect()
}
