//! Decoders: the bytes of one record → the register-supplied fields of zero or more
//! events, and the parts refused with their reasons. Every decoder has the same small
//! interface: `decode(raw, options) -> Decoded`, one entry per event or refused part,
//! in input order.

pub mod ndjson;

use crate::config::Format;
use crate::event::Fields;
use crate::model::{Currency, Event};

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
}

/// Decodes one record of `format` into event members, ready for redaction and stamping.
pub fn decode(format: Format, raw: &[u8], _options: &Options) -> Vec<Result<Fields, Rejected>> {
    match format {
        Format::Ndjson => vec![ndjson::decode(raw).map_err(|r| Rejected::whole(r, raw))],
        other => vec![Err(Rejected::whole(
            format!("the {} decoder is not part of this build", other.as_str()),
            raw,
        ))],
    }
}

/// The typed decoders' output as event members.
#[allow(dead_code)]
fn into_fields(decoded: Decoded) -> Vec<Result<Fields, Rejected>> {
    decoded
        .into_iter()
        .map(|r| r.map(Event::into_fields))
        .collect()
}
