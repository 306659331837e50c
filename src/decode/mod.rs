//! Decoders: bytes of one record → register-supplied event fields, or a rejection.

pub mod ndjson;

use crate::config::Format;
use crate::event::Fields;

/// Why a record could not become an event; goes to the dead letters with the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

/// Decodes one record of `format` into the register-supplied fields of an event.
pub fn decode(format: Format, raw: &[u8]) -> Result<Fields, Rejection> {
    match format {
        Format::Ndjson => ndjson::decode(raw),
        other => Err(Rejection(format!(
            "the {} decoder is not part of this build",
            other.as_str()
        ))),
    }
}
