//! The `receipt` body of `posedge.event/1`: what the printer tap read off the paper.

/// One receipt as decoded from the print stream (the `body` of a `receipt` event).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Receipt {
    /// Printed text lines, trailing spaces trimmed; empty lines only between text.
    pub lines: Vec<String>,
    /// 1-D barcodes (GS k) and 2-D symbols other than QR (GS ( k) in print order.
    pub barcodes: Vec<Barcode>,
    /// Printed QR payloads (GS ( k, cn=49), lossy UTF-8 of the stored data.
    pub qr_codes: Vec<String>,
    /// ESC p or DLE DC4 fn=1 seen.
    pub drawer_kick: bool,
    /// The receipt has images but no text line.
    pub image_only: bool,
    /// Raster/bit images and graphics printed (their data is skipped).
    pub images: u32,
    /// Ended by a paper cut (false for the tail of a stream without a cut).
    pub cut: bool,
    /// Code page in force at the end, e.g. "cp437".
    pub code_page: String,
    /// What the config's mapping rules noticed: set by ingest, never by the decoder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mapping: Vec<String>,
}

/// A barcode or 2-D symbol with its decoded data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Barcode {
    /// Lower-snake symbology name: upc_a, upc_e, ean13, ean8, code39, itf, codabar, code93, code128, pdf417, ...
    pub symbology: String,
    /// Human-readable data (Code128 code-set selectors resolved).
    pub data: String,
}
