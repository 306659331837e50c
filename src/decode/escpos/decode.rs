//! Interprets the commands found by the scanner and builds receipts.

use super::scan::{DLE, ESC, Event, FS, GS, Scanner};
use super::{Barcode, CodePage, Options, Receipt};

/// Decodes a whole print stream into receipts, split at paper cuts. Never panics, never errors:
/// unknown commands are skipped by their real length; truncated commands at the end are skipped.
///
/// Printer state (code page, Kanji mode, stored 2-D symbols) carries across cuts like on a real
/// printer. Segments with no content are dropped; a segment whose only content is a drawer kick
/// (the usual "cut, then open the drawer" trailer) is folded into the receipt before it.
pub fn decode(bytes: &[u8], opts: &Options) -> Vec<Receipt> {
    let mut dec = Decoder::new(opts.default_code_page);
    let mut scan = Scanner::default();
    let mut rest = bytes;
    loop {
        let (n, event) = scan.next(rest);
        let (cmd, tail) = rest.split_at_checked(n).unwrap_or((rest, &[]));
        rest = tail;
        match event {
            Some(Event::Byte(b)) => dec.byte(b),
            Some(Event::Command { cut }) => dec.command(cmd, cut),
            None => break,
        }
    }
    dec.end_receipt(false);
    dec.out
}

const FN_A: [&str; 7] = [
    "upc_a", "upc_e", "ean13", "ean8", "code39", "itf", "codabar",
];
const FN_B: [&str; 15] = [
    "upc_a",
    "upc_e",
    "ean13",
    "ean8",
    "code39",
    "itf",
    "codabar",
    "code93",
    "code128",
    "gs1_128",
    "gs1_databar_omnidirectional",
    "gs1_databar_truncated",
    "gs1_databar_limited",
    "gs1_databar_expanded",
    "code128_auto",
];
/// `GS ( k` symbol families by `cn - 48`; composite symbols (cn 52) store differently and are skipped.
const SYMBOLS: [Option<&str>; 7] = [
    Some("pdf417"),
    Some("qr"),
    Some("maxicode"),
    Some("gs1_databar_stacked"),
    None,
    Some("aztec"),
    Some("datamatrix"),
];

struct Decoder {
    default_page: CodePage,
    page: CodePage,
    kanji: bool,
    /// A double-byte lead byte is waiting for its trail byte.
    lead: bool,
    /// Inside a run of `ESC *` bands, which together form one picture.
    in_bands: bool,
    line: String,
    lines: Vec<String>,
    barcodes: Vec<Barcode>,
    qr_codes: Vec<String>,
    drawer_kick: bool,
    images: u32,
    symbols: [Vec<u8>; 7],
    out: Vec<Receipt>,
}

impl Decoder {
    fn new(page: CodePage) -> Self {
        Decoder {
            default_page: page,
            page,
            kanji: false,
            lead: false,
            in_bands: false,
            line: String::new(),
            lines: Vec::new(),
            barcodes: Vec::new(),
            qr_codes: Vec::new(),
            drawer_kick: false,
            images: 0,
            symbols: Default::default(),
            out: Vec::new(),
        }
    }

    fn byte(&mut self, b: u8) {
        if self.lead {
            self.lead = false;
            self.push('\u{fffd}');
            // Without a GB2312/GBK table the best we can do is one replacement per double-byte char.
            if (0x40..=0xFE).contains(&b) && b != 0x7F {
                return;
            }
        }
        match b {
            b'\n' | 0x0C => self.end_line(),
            b'\t' => self.push(' '),
            0x20..=0x7E => self.push(char::from(b)),
            0x81..=0xFE if self.kanji => self.lead = true,
            0x80..=0xFF => self.push(self.page.decode(b)),
            _ => {}
        }
    }

    fn push(&mut self, c: char) {
        self.line.push(c);
        self.in_bands = false;
    }

    fn flush_lead(&mut self) {
        if std::mem::take(&mut self.lead) {
            self.push('\u{fffd}');
        }
    }

    fn end_line(&mut self) {
        self.flush_lead();
        let line = self.line.trim_end_matches(' ').to_owned();
        self.lines.push(line);
        self.line.clear();
    }

    fn command(&mut self, cmd: &[u8], cut: bool) {
        self.flush_lead();
        let at = |k: usize| cmd.get(k).copied().unwrap_or(0);
        match (at(0), at(1)) {
            (ESC, b'@') => {
                self.page = self.default_page;
                self.kanji = false;
            }
            (ESC, b't') => {
                // Unknown tables keep the current page: guessing would only produce other garbage.
                if let Some(page) = CodePage::from_epson(at(2)) {
                    self.page = page;
                }
            }
            (ESC, b'd' | b'J' | b'e') => self.end_line(),
            (ESC, b'p') => self.drawer_kick = true,
            (DLE, 0x14) if at(2) == 1 => self.drawer_kick = true,
            // Consecutive ESC * bands (no text between) make up one picture.
            (ESC, b'*') if !self.in_bands => {
                self.images += 1;
                self.in_bands = true;
            }
            (GS, b'v' | b'Q' | b'/') | (FS, b'p') => self.images += 1,
            (GS, b'(') if at(2) == b'L' => self.graphics(at(6)),
            (GS, b'8') if at(2) == b'L' => self.graphics(at(8)),
            (GS, b'(') if at(2) == b'k' => self.symbol(cmd),
            (GS, b'k') => self.barcode(cmd),
            (FS, b'&') => self.kanji = true,
            (FS, b'.') => self.kanji = false,
            _ => {}
        }
        if cut {
            self.end_receipt(true);
        }
    }

    fn graphics(&mut self, function: u8) {
        // Only the print functions put a picture on paper; 112/67/83 merely store one.
        if matches!(function, 2 | 50 | 69 | 85) {
            self.images += 1;
        }
    }

    fn symbol(&mut self, cmd: &[u8]) {
        let cn = cmd.get(5).copied().unwrap_or(0);
        let function = cmd.get(6).copied().unwrap_or(0);
        let idx = usize::from(cn.wrapping_sub(48));
        let (Some(Some(name)), Some(store)) = (SYMBOLS.get(idx), self.symbols.get_mut(idx)) else {
            return;
        };
        match function {
            80 => *store = cmd.get(8..).unwrap_or_default().to_vec(),
            // A print with nothing stored prints nothing on a real printer either.
            81 if !store.is_empty() => {
                let data = String::from_utf8_lossy(store).into_owned();
                if cn == 49 {
                    self.qr_codes.push(data);
                } else {
                    self.barcodes.push(Barcode {
                        symbology: (*name).to_owned(),
                        data,
                    });
                }
            }
            _ => {}
        }
    }

    fn barcode(&mut self, cmd: &[u8]) {
        let m = cmd.get(2).copied().unwrap_or(0);
        let (name, data) = match m {
            0..=6 => {
                let data = cmd.get(3..).unwrap_or_default();
                (
                    FN_A.get(usize::from(m)),
                    data.strip_suffix(&[0]).unwrap_or(data),
                )
            }
            65..=79 => (
                FN_B.get(usize::from(m - 65)),
                cmd.get(4..).unwrap_or_default(),
            ),
            _ => return,
        };
        let Some(name) = name else { return };
        if data.is_empty() {
            return;
        }
        let data = if m == 73 {
            code128_text(data)
        } else {
            ascii(data)
        };
        self.barcodes.push(Barcode {
            symbology: (*name).to_owned(),
            data,
        });
    }

    fn end_receipt(&mut self, cut: bool) {
        self.flush_lead();
        if !self.line.is_empty() {
            self.end_line();
        }
        self.in_bands = false;
        let mut lines = std::mem::take(&mut self.lines);
        trim_blank_edges(&mut lines);
        let receipt = Receipt {
            image_only: self.images > 0 && lines.is_empty(),
            lines,
            barcodes: std::mem::take(&mut self.barcodes),
            qr_codes: std::mem::take(&mut self.qr_codes),
            drawer_kick: std::mem::take(&mut self.drawer_kick),
            images: std::mem::take(&mut self.images),
            cut,
            code_page: self.page.name().to_owned(),
            mapping: Vec::new(),
        };
        let printed = !receipt.lines.is_empty()
            || !receipt.barcodes.is_empty()
            || !receipt.qr_codes.is_empty()
            || receipt.images > 0;
        if printed {
            self.out.push(receipt);
        } else if receipt.drawer_kick {
            if let Some(prev) = self.out.last_mut() {
                prev.drawer_kick = true;
            } else {
                self.out.push(receipt);
            }
        }
    }
}

/// 1-D barcode data is ASCII; anything else cannot have been encoded and is marked as such.
fn ascii(data: &[u8]) -> String {
    data.iter()
        .map(|&b| {
            if b.is_ascii() {
                char::from(b)
            } else {
                '\u{fffd}'
            }
        })
        .collect()
}

/// Resolves Epson's Code128 escapes: `{A`/`{B`/`{C` select a code set, `{S` shifts, `{1`..`{4`
/// are FNC codes, `{{` is a literal brace; in set C each byte stands for two digits.
fn code128_text(data: &[u8]) -> String {
    let mut out = String::new();
    let mut set = b'B';
    let mut it = data.iter().copied();
    while let Some(b) = it.next() {
        if b == b'{' {
            match it.next() {
                Some(s @ (b'A' | b'B' | b'C')) => set = s,
                Some(b'{') => out.push('{'),
                Some(b'S') => out.extend(it.next().map(|c| ascii(&[c]))),
                Some(b'1'..=b'4') | None => {}
                Some(other) => out.push_str(&ascii(&[b'{', other])),
            }
        } else if set == b'C' {
            if b < 100 {
                out.push_str(&format!("{b:02}"));
            }
        } else {
            out.push_str(&ascii(&[b]));
        }
    }
    out
}

/// Drops the empty lines before the first and after the last printed line: feeds around
/// a receipt are paper, not content.
pub(super) fn trim_blank_edges(lines: &mut Vec<String>) {
    let last = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |i| i + 1);
    lines.truncate(last);
    let first = lines.iter().position(|l| !l.is_empty()).unwrap_or(0);
    lines.drain(..first);
}
