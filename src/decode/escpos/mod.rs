//! ESC/POS print-stream decoding (receipts, barcodes, QR codes) and receipt rendering.
//!
//! Input comes from printers and registers and may be anything, so nothing here panics on input
//! bytes: every access is bounds-checked and unknown commands are skipped by their real length.

mod codepage;
mod decode;
mod render;
mod scan;
mod split;
#[cfg(test)]
mod tests;

pub use codepage::CodePage;
pub use decode::decode;
pub use render::render;
pub use split::{Chunk, Splitter};

pub use crate::model::receipt::{Barcode, Receipt};

/// Decoder options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Code page at power-on and after ESC @.
    pub default_code_page: CodePage,
    /// Largest receipt the splitter buffers before emitting it early as truncated.
    pub max_receipt_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            default_code_page: CodePage::Cp437,
            max_receipt_bytes: 1 << 20,
        }
    }
}
