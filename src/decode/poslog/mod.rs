//! ARTS POSLog XML (versions 2–6, any namespace prefix): `decode` turns a document into one
//! canonical event or one rejection per `<Transaction>`; `encode` writes a simulator event
//! as a POSLog 6 document for the simulated register.
//!
//! Safety: documents over `max_bytes` are refused unread; a DOCTYPE is refused (so no DTD,
//! no external or custom entity can exist); only the five predefined entities and numeric
//! character references are resolved; nesting beyond `max_depth` is refused; only UTF-8.
//! A document that stops being well-formed yields the transactions completed before the
//! error plus one rejection of the whole document naming the error and its byte offset.

mod encode;
mod map;
#[cfg(test)]
mod tests;
mod xml;

// The shared decoder interface (crate root in the scratch crate).
use crate::decode::{Decoded, Rejected};
use crate::model::Currency;

pub use encode::{EncodeError, encode};

/// Decoder limits and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Larger documents are rejected before parsing (default 8 MiB).
    pub max_bytes: usize,
    /// Deepest element nesting accepted (default 64).
    pub max_depth: usize,
    /// Currency of transactions whose document names none; `None` rejects them.
    pub default_currency: Option<Currency>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_bytes: 8 << 20,
            max_depth: 64,
            default_currency: None,
        }
    }
}

/// Decodes one POSLog document (or a bare `<Transaction>`).
pub fn decode(raw: &[u8], opts: &Options) -> Decoded {
    let whole = |reason: String| Rejected {
        reason,
        raw: raw.to_vec(),
    };
    if raw.len() > opts.max_bytes {
        return vec![Err(whole(format!(
            "the document is {} bytes, more than the limit of {}",
            raw.len(),
            opts.max_bytes
        )))];
    }
    let body = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    if body.iter().all(u8::is_ascii_whitespace) {
        return vec![Err(whole("the document is empty".into()))];
    }
    // Parse the valid UTF-8 prefix, so transactions before a bad byte are still decoded.
    let (text, bad_utf8) = match std::str::from_utf8(body) {
        Ok(t) => (t, None),
        Err(e) => {
            let at = e.valid_up_to();
            (
                std::str::from_utf8(&body[..at]).unwrap_or_default(),
                Some(at + raw.len() - body.len()),
            )
        }
    };
    let mut out = Decoded::new();
    let parsed = xml::parse(text, opts.max_depth, |index, tx, bytes| {
        out.push(map::event(&tx, opts).map_err(|e| Rejected {
            reason: format!("Transaction {index} ({}): {e}", map::label(&tx)),
            raw: bytes.to_vec(),
        }));
    });
    match (parsed, bad_utf8) {
        (_, Some(at)) => out.push(Err(whole(format!(
            "the document is not valid UTF-8 at byte {at}"
        )))),
        (Err(e), None) => out.push(Err(whole(format!("unusable POSLog document: {e}")))),
        (Ok(_), None) => {}
    }
    out
}
