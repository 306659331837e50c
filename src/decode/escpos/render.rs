//! Receipt rendering for the simulated register.

use super::scan::{ESC, GS};
use super::{CodePage, Receipt};

/// Renders a receipt for the simulated register: the printable lines, barcodes and QR codes,
/// drawer kick, then a cut; uses ESC @, ESC t for the code page, and a few style commands
/// (bold, double size, alignment) so the decoder is exercised.
///
/// Characters the code page lacks print as `?`. 1-D barcode data is cut to what `GS k` can carry
/// (255 bytes); symbologies without an ESC/POS encoding here (e.g. composite) are left out.
pub fn render(receipt: &Receipt, code_page: CodePage) -> Vec<u8> {
    let mut out = vec![ESC, b'@', ESC, b't', code_page.epson_number()];
    for (i, line) in receipt.lines.iter().enumerate() {
        let heading = i == 0 && receipt.lines.len() > 1;
        let total = line.trim_start().to_ascii_uppercase().starts_with("TOTAL");
        if heading {
            out.extend_from_slice(&[ESC, b'a', 1, ESC, b'E', 1, GS, b'!', 0x11]);
        } else if total {
            out.extend_from_slice(&[ESC, b'!', 0x08]);
        }
        out.extend(line.chars().map(|c| encode(code_page, c)));
        out.push(b'\n');
        if heading {
            out.extend_from_slice(&[GS, b'!', 0, ESC, b'E', 0, ESC, b'a', 0]);
        } else if total {
            out.extend_from_slice(&[ESC, b'!', 0]);
        }
    }
    if !receipt.barcodes.is_empty() || !receipt.qr_codes.is_empty() {
        out.extend_from_slice(&[ESC, b'a', 1]);
    }
    for barcode in &receipt.barcodes {
        let data: Vec<u8> = barcode.data.chars().map(ascii_byte).collect();
        if let Some(m) = one_d(&barcode.symbology) {
            // HRI below, 80 dots high.
            out.extend_from_slice(&[GS, b'H', 2, GS, b'h', 80]);
            let mut payload: Vec<u8> = if m == 73 { b"{B".to_vec() } else { Vec::new() };
            for b in data {
                // In Code128 a literal brace is written twice; never split such a pair.
                let piece: &[u8] = if m == 73 && b == b'{' { b"{{" } else { &[b] };
                if payload.len() + piece.len() > 255 {
                    break;
                }
                payload.extend_from_slice(piece);
            }
            out.extend_from_slice(&[GS, b'k', m, payload.len() as u8]);
            out.extend_from_slice(&payload);
        } else if let Some(cn) = two_d(&barcode.symbology) {
            symbol(&mut out, cn, &data);
        }
    }
    for qr in &receipt.qr_codes {
        // Model 2, module size 6, error correction M.
        out.extend_from_slice(&[GS, b'(', b'k', 4, 0, 49, 65, 50, 0]);
        out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 67, 6]);
        out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 69, 49]);
        symbol(&mut out, 49, qr.as_bytes());
    }
    if receipt.drawer_kick {
        out.extend_from_slice(&[ESC, b'p', 0, 25, 250]);
    }
    out.extend_from_slice(&[ESC, b'a', 0, ESC, b'd', 3, GS, b'V', 66, 0]);
    out
}

/// Stores then prints a `GS ( k` symbol; data beyond the 16-bit length field is dropped.
fn symbol(out: &mut Vec<u8>, cn: u8, data: &[u8]) {
    let data = data.get(..usize::from(u16::MAX - 3)).unwrap_or(data);
    let [pl, ph] = (data.len() as u16 + 3).to_le_bytes();
    out.extend_from_slice(&[GS, b'(', b'k', pl, ph, cn, 80, 48]);
    out.extend_from_slice(data);
    out.extend_from_slice(&[GS, b'(', b'k', 3, 0, cn, 81, 48]);
}

fn encode(page: CodePage, c: char) -> u8 {
    match page.encode(c) {
        Some(b) if b >= 0x20 && b != 0x7F => b,
        _ => b'?',
    }
}

fn ascii_byte(c: char) -> u8 {
    if c.is_ascii() { c as u8 } else { b'?' }
}

/// `GS k` function B symbology numbers.
fn one_d(symbology: &str) -> Option<u8> {
    Some(match symbology {
        "upc_a" => 65,
        "upc_e" => 66,
        "ean13" => 67,
        "ean8" => 68,
        "code39" => 69,
        "itf" => 70,
        "codabar" => 71,
        "code93" => 72,
        "code128" => 73,
        "gs1_128" => 74,
        "gs1_databar_omnidirectional" => 75,
        "gs1_databar_truncated" => 76,
        "gs1_databar_limited" => 77,
        "gs1_databar_expanded" => 78,
        "code128_auto" => 79,
        _ => return None,
    })
}

/// `GS ( k` symbol family numbers.
fn two_d(symbology: &str) -> Option<u8> {
    Some(match symbology {
        "pdf417" => 48,
        "qr" => 49,
        "maxicode" => 50,
        "gs1_databar_stacked" => 51,
        "aztec" => 53,
        "datamatrix" => 54,
        _ => return None,
    })
}
