use super::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

/// All fixture files (read once), or none (with a note) when the shared directory is absent.
fn all_fixtures() -> &'static [(String, Vec<u8>)] {
    static ALL: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| crate::fixtures::all("escpos"))
}

fn fixture(name: &str) -> Option<Vec<Receipt>> {
    crate::fixtures::one("escpos", name).map(|bytes| decode(&bytes, &Options::default()))
}

fn single(name: &str) -> Option<Receipt> {
    let mut receipts = fixture(name)?;
    assert_eq!(receipts.len(), 1, "{name}: {receipts:#?}");
    receipts.pop()
}

fn bc(symbology: &str, data: &str) -> Barcode {
    Barcode {
        symbology: symbology.into(),
        data: data.into(),
    }
}

fn has_line(r: &Receipt, want: &str) -> bool {
    r.lines.iter().any(|l| l == want)
}

#[test]
fn every_fixture_decodes_and_text_is_readable() {
    // Fixtures that legitimately carry no text: pictures, QR-only streams, a Diebold drawer pulse.
    let textless = [
        "juliogamasso",
        "printid_qrcode",
        "tm-t20_qrcode",
        "tectoy-q4",
        "tsp-143_drawer",
    ];
    for (name, bytes) in all_fixtures() {
        let receipts = decode(bytes, &Options::default());
        if textless.iter().any(|t| name.contains(t)) {
            continue;
        }
        let words = receipts
            .iter()
            .flat_map(|r| &r.lines)
            .filter(|l| {
                l.as_bytes()
                    .windows(3)
                    .any(|w| w.iter().all(u8::is_ascii_alphanumeric))
            })
            .count();
        assert!(words > 0, "{name}: no readable line in {receipts:#?}");
        for line in receipts.iter().flat_map(|r| &r.lines) {
            assert!(
                !line.chars().any(|c| c.is_control()),
                "{name}: control char in {line:?}"
            );
            assert!(!line.ends_with(' '), "{name}: untrimmed {line:?}");
        }
    }
}

#[test]
fn receipt_with_logo() {
    let Some(r) = single("receipt-print-hq-escpos-tools__receipt-with-logo.bin") else {
        return;
    };
    assert_eq!(
        r.lines.first().map(String::as_str),
        Some("ExampleMart Ltd.")
    );
    for want in [
        "Shop No. 42.",
        "SALES INVOICE",
        "Example item #1                             4.00",
        "Another thing                               3.50",
        "A final item                                4.45",
        "Subtotal                                   12.95",
        "A local tax                                 1.30",
        "Total            $ 14.25",
        "Monday 6th of April 2015 02:56:25 PM",
    ] {
        assert!(has_line(&r, want), "missing {want:?}");
    }
    // The drawer kick comes after the cut and is folded into this receipt.
    assert!(r.drawer_kick && r.cut && !r.image_only);
    assert_eq!(r.images, 1);
}

#[test]
fn barcode_fixture() {
    let Some(r) = single("mike42-escpos-php__barcode.bin") else {
        return;
    };
    let mut want = vec![bc("code39", "ABC"); 15];
    want.extend(vec![bc("ean13", "012345678901"); 4]);
    want.extend([
        bc("upc_a", "012345678901"),
        bc("upc_a", "01234567890"),
        bc("upc_e", "123456"),
        bc("upc_e", "0123456"),
        bc("upc_e", "01234567"),
        bc("upc_e", "01234567890"),
        bc("upc_e", "012345678901"),
        bc("ean13", "012345678901"),
        bc("ean13", "0123456789012"),
        bc("ean8", "0123456"),
        bc("ean8", "01234567"),
        bc("code39", "ABC 012"),
        bc("code39", "$%+-./"),
        bc("code39", "*TEXT*"),
        bc("itf", "0123456789"),
        bc("codabar", "A012345A"),
        bc("codabar", "A012$+-./:A"),
        bc("code93", "012abcd"),
        bc("code128", "012ABCD"),
        bc("code128", "012ABCDabcd"),
        bc("code128", "213243"),
    ]);
    assert_eq!(r.barcodes, want);
    assert!(has_line(&r, "Content: {C? +") && r.cut);
}

#[test]
fn barcodes_function_b_fixture() {
    let Some(r) = single("sparkwglebgorev-escpos-netprinter-xtd__barcodes.bin") else {
        return;
    };
    let want = [
        bc("code128", "012z !.,"),
        bc("code93", "012.ABZ"),
        bc("codabar", "A012$+-./:A"),
        bc("code39", "ABCZ012"),
        bc("ean8", "0123456"),
        bc("ean13", "012345678901"),
        bc("upc_e", "1234567"),
        bc("upc_a", "036000291452"),
        bc("itf", "0123456789"),
    ];
    assert_eq!(r.barcodes, want);
    assert_eq!((r.code_page.as_str(), r.cut), ("cp858", false));
}

#[test]
fn qr_fixtures() {
    if let Some(r) = single("mike42-escpos-php__qr-code.bin") {
        assert_eq!(r.qr_codes.len(), 19);
        assert_eq!(r.qr_codes[0], "Testing 123");
        assert_eq!(r.qr_codes[2], "0123456789012345678901234567890123456789");
        assert_eq!(r.qr_codes[3], "abcdefghijklmnopqrstuvwxyzabcdefghijklmn");
        assert_eq!(r.qr_codes[4], "\0".repeat(40));
        assert!(has_line(&r, "Micro QR code") && r.barcodes.is_empty() && r.cut);
    }
    let url = "https://github.com/grandchef/escpos-buffer";
    for name in [
        "grandchef-escpos-buffer__tm-t20_qrcode.bin",
        "grandchef-escpos-buffer__tectoy-q4_qrcode.bin",
    ] {
        if let Some(r) = single(name) {
            assert_eq!(r.qr_codes, [url]);
            assert!(r.lines.is_empty());
        }
    }
    if let Some(r) = single("sparkwglebgorev-escpos-netprinter-xtd__receipt-with-qrcode.bin") {
        assert_eq!(r.qr_codes, ["You can readme from your smartphone"]);
        assert!(has_line(&r, "Québec, G1G 1G1") && has_line(&r, "L'assiette fiscale"));
        assert_eq!((r.images, r.cut), (1, false));
    }
    if let Some(r) = single("mike42-escpos-php__pdf417-code.bin") {
        assert_eq!(r.barcodes, vec![bc("pdf417", "Testing 123"); 24]);
        assert!(r.qr_codes.is_empty());
    }
}

#[test]
fn character_encodings() {
    let Some(r) = single("mike42-escpos-php__character-encodings.bin") else {
        return;
    };
    for want in [
        "Quizdeltagerne spiste jordbær med fløde, mens cirkusklovnen Wolther spillede på xylofon.",
        "Falsches Üben von Xylophonmusik quält jeden größeren Zwerg.",
        "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία",
        "El pingüino Wenceslao hizo kilómetros bajo exhaustiva lluvia y frío, añoraba a su querido cachorro.",
        "Le cœur déçu mais l'âme plutôt naïve, Louÿs rêva de crapaüter en canoë au delà des îles, près du mälström où brûlent les novæ.",
        "D'fhuascail Íosa, Úrmhac na hÓighe Beannaithe, pór Éava agus Ádhaimh.",
        "Árvíztűrő tükörfúrógép.",
        "Kæmi ný öxi hér ykist þjófum nú bæði víl og ádrepa.",
        "Glāžšķūņa rūķīši dzērumā čiepj Baha koncertflīģeļu vākus.",
        "Pchnąć w tę łódź jeża lub ośm skrzyń fig.",
        "В чащах юга жил бы цитрус? Да, но фальшивый экземпляр!",
        "Pijamalı hasta, yağız şoföre çabucak güvendi.",
        "ｲﾛﾊﾆﾎﾍﾄ ﾁﾘﾇﾙｦ ﾜｶﾖﾀﾚｿ ﾂﾈﾅﾗﾑ",
        "דג סקרן שט בים מאוכזב ולפתע מצא לו חברה איך הקליטה",
    ] {
        assert!(has_line(&r, want), "missing {want:?}");
    }
    assert_eq!(r.code_page, "cp862");
}

#[test]
fn character_tables() {
    let Some(r) = single("mike42-escpos-php__character-tables.bin") else {
        return;
    };
    for want in [
        "8 ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒ",
        "8 ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜø£Ø×ƒ",
        "8 АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ",
        "C ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖ×ØÙÚÛÜÝÞß",
    ] {
        assert!(has_line(&r, want), "missing {want:?}");
    }
}

#[test]
fn images_and_cuts() {
    if let Some(r) = single("lukevp-ESC-POS-.NET__output-juliogamasso.bin") {
        assert!(r.image_only && r.cut && r.lines.is_empty());
        assert_eq!(r.images, 1);
    }
    if let Some(r) = single("grandchef-escpos-buffer__printid_qrcode.bin") {
        // 24-dot ESC * bands of one picture count once.
        assert!(r.image_only && !r.cut);
        assert_eq!(r.images, 1);
    }
    for name in [
        "mike42-escpos-php__graphics.bin",
        "mike42-escpos-php__bit-image.bin",
    ] {
        if let Some(r) = single(name) {
            assert_eq!((r.images, r.image_only, r.cut), (4, false, true), "{name}");
        }
    }
    if let Some(rs) = fixture("mike42-escpos-php__demo.bin") {
        assert_eq!(rs.len(), 14);
        assert_eq!(rs[0].lines, ["Hello world"]);
        assert!(rs.iter().all(|r| r.cut));
        assert!(rs.iter().any(|r| r.barcodes == [bc("code39", "9876")]));
        assert_eq!(
            rs.iter().filter(|r| r.image_only && r.images == 4).count(),
            2
        );
        let last = &rs[13];
        assert_eq!(last.qr_codes, vec!["Testing 123"; 3]);
        assert!(last.drawer_kick);
        assert!(rs[..13].iter().all(|r| !r.drawer_kick));
    }
}

#[test]
fn text_fixtures() {
    let lines = |name: &str| single(name).map(|r| r.lines);
    if let Some(l) = lines("grandchef-escpos-buffer__tm-t20_text.bin") {
        assert_eq!(l, ["Large Text"]);
    }
    if let Some(l) = lines("grandchef-escpos-buffer__tm-t20_large_text_font.bin") {
        assert_eq!(l.first().map(String::as_str), Some("Large Text"));
    }
    for (name, want) in [
        (
            "grandchef-escpos-buffer__tm-t20_underline_text.bin",
            "Underline Text",
        ),
        (
            "grandchef-escpos-buffer__tm-t20_condensed_text.bin",
            "Condensed Text",
        ),
        (
            "grandchef-escpos-buffer__tsp-143_font_changed.bin",
            "Font Changed",
        ),
        ("grandchef-escpos-buffer__tsp-143_cutter.bin", "Cut below"),
    ] {
        if let Some(l) = lines(name) {
            assert_eq!(l, [want], "{name}");
        }
    }
    if let Some(r) = single("cobyhausrath-esc-pos-preview-tools__receipt.bin") {
        assert!(
            has_line(&r, "TOTAL: $41.49") && has_line(&r, "Item 2 with a long name         $25.50")
        );
        assert!(r.cut && !r.drawer_kick);
    }
    if let Some(l) = lines("cobyhausrath-esc-pos-preview-tools__formatting.bin") {
        assert_eq!(l.first().map(String::as_str), Some("LEFT ALIGNED"));
        assert_eq!(l.last().map(String::as_str), Some("Double"));
    }
    if let Some(l) = lines("mike42-escpos-php__margins-and-spacing.bin") {
        assert_eq!(l.len(), 18);
        assert!(l.contains(&"left margin 512".to_owned()));
    }
    if let Some(l) = lines("mike42-escpos-php__text-size.bin") {
        assert!(l.ends_with(&["Hello".to_owned(), "world!".to_owned()]));
    }
    if let Some(r) = single("grandchef-escpos-buffer__mp-4200_th_qrcode.bin") {
        // Bematech's own QR command is not Epson's: its payload shows up as text.
        assert!(r.lines[0].ends_with("https://github.com/grandchef/escpos-buffer"));
    }
}

#[test]
fn chinese_receipts() {
    if let Some(r) = single("SnailDev-SnailDev.EscPosParser__receipt-text.bin") {
        let totals = r.lines.iter().filter(|l| l.ends_with("68.00")).count();
        assert_eq!(totals, 2);
        assert!(
            r.lines.iter().any(|l| l.ends_with("40.00"))
                && r.lines.iter().any(|l| l.ends_with("28.00"))
        );
        assert!(r.lines.iter().any(|l| l.contains("2016-5-6   21:32:49")));
        // Double-byte text becomes U+FFFD, never code-page lookalikes.
        assert!(
            r.lines
                .iter()
                .flat_map(|l| l.chars())
                .all(|c| c.is_ascii() || c == '\u{fffd}')
        );
        assert!(r.lines[0].starts_with("***\u{fffd}"));
        assert!(r.cut);
    }
    for name in [
        "voonvoon-printer_client-bluetooth-usb__receipt_full.bin",
        "voonvoon-printer_client-bluetooth-usb__receipt_full_no_encode.bin",
    ] {
        if let Some(r) = single(name) {
            assert_eq!(r.qr_codes, ["https://lonely-food-app.vercel.app/"]);
            assert!(has_line(&r, "Total              RM28.09") && has_line(&r, "Lonely Food App"));
            let last = r.lines.last().expect("footer");
            assert!(!last.is_empty() && last.chars().all(|c| c == '\u{fffd}'));
            assert!(r.cut);
        }
    }
}

#[test]
fn cut_bytes_inside_payloads_are_not_cuts() {
    // A 2x2 raster whose data is "GS V 0 GS" and a Code128 payload containing "GS V A".
    let mut s = b"\x1b@before\n\x1dv0\x00\x02\x00\x02\x00\x1dV0\x1d".to_vec();
    s.extend_from_slice(b"\x1dkI\x05{B\x1dVA");
    s.extend_from_slice(b"after\n\x1dVA\x03tail\n");
    let rs = decode(&s, &Options::default());
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0].lines, ["before", "after"]);
    assert_eq!(rs[0].barcodes, [bc("code128", "\u{1d}VA")]);
    assert_eq!((rs[0].images, rs[0].cut), (1, true));
    assert_eq!(
        (rs[1].lines.as_slice(), rs[1].cut),
        (&["tail".to_owned()][..], false)
    );
    let chunks = Splitter::new(&Options::default()).push(&s);
    assert_eq!(chunks.len(), 1);
    assert!(chunks[0].bytes.ends_with(b"after\n\x1dVA\x03"));
}

#[test]
fn commands_of_every_shape() {
    let mut s = Vec::new();
    s.extend_from_slice(b"\x1b@\x1bt\x10\xe9\x1bt\x63\xe9\n"); // unknown table 99 keeps CP1252
    s.extend_from_slice(b"\x1b&\x03AB\x02\x01\x02\x03\x04\x05\x06\x01\x07\x08\x09"); // two user chars
    s.extend_from_slice(b"\x1cq\x01\x01\x00\x01\x00"); // one 8x8 NV image
    s.extend_from_slice(&[0xAA; 8]);
    s.extend_from_slice(b"\x1bD\x08\x10\x00\ttab\n\x1dk\x04*AB*\x00\x1dk\x02123\nx\n"); // fn A, soft end
    s.extend_from_slice(b"\x1d8L\x06\x00\x00\x000p\x01\x02\x03\x04\x1d(L\x02\x0002"); // graphics
    s.extend_from_slice(b"\x1d*\x01\x01"); // define 8-byte downloaded image, then print it
    s.extend_from_slice(&[0x1D; 8]);
    s.extend_from_slice(b"\x1d/\x00\x10\x14\x01\x00\x05\x10\x04\x01\x10Z\x1cpx\x01\x00");
    let r = single_of(&s);
    assert_eq!(r.lines, ["éé", " tab", "", "x", "Z"]);
    assert_eq!(r.barcodes, [bc("code39", "*AB*"), bc("ean13", "123")]);
    assert_eq!(
        (r.images, r.drawer_kick, r.code_page.as_str()),
        (3, true, "cp1252")
    );
    // ESC @ resets to the configured default page.
    let opts = Options {
        default_code_page: CodePage::Cp850,
        ..Options::default()
    };
    let rs = decode(b"\x1bt\x11\x80\n\x1b@\x9b\n", &opts);
    assert_eq!(rs[0].lines, ["А", "ø"]);
}

fn single_of(bytes: &[u8]) -> Receipt {
    let mut rs = decode(bytes, &Options::default());
    assert_eq!(rs.len(), 1, "{rs:#?}");
    rs.remove(0)
}

#[test]
fn truncated_and_degenerate_streams() {
    assert!(decode(b"", &Options::default()).is_empty());
    assert!(decode(b"\x1b@\x1dV", &Options::default()).is_empty());
    let r = single_of(b"text\x1dv0\x00\xff\xff\xff\xff\x00\x00");
    assert_eq!(
        (r.lines.as_slice(), r.images, r.cut),
        (&["text".to_owned()][..], 0, false)
    );
    let r = single_of(b"a\x1d(k\x05\x001P0hi\x1d(k\x03\x001Q0\x1d(k\x01\x001");
    assert_eq!(r.qr_codes, ["hi"]);
    // QR print without a stored symbol prints nothing.
    assert!(decode(b"\x1d(k\x03\x000Q0\x1dV0", &Options::default()).is_empty());
    // Kanji lead byte cut short by a command or a control byte.
    let rs = decode(b"\x1c&\xb0\x1b!\x00\xb0\nA\x1c.\xb0\n", &Options::default());
    assert_eq!(rs[0].lines, ["\u{fffd}\u{fffd}", "A░"]);
    // A drawer kick alone is kept as its own receipt when there is nothing to attach it to.
    let rs = decode(b"\x10\x14\x01\x00\x01", &Options::default());
    assert!(rs.len() == 1 && rs[0].drawer_kick && rs[0].lines.is_empty());
}

#[test]
fn splitter_bounds_and_flags() {
    let opts = Options {
        max_receipt_bytes: 10,
        ..Options::default()
    };
    let mut sp = Splitter::new(&opts);
    let mut out = sp.push(b"0123456789abcdefghij\x1dV0short\x1dV0tail");
    out.extend(sp.finish());
    let got: Vec<(&[u8], bool)> = out
        .iter()
        .map(|c| (c.bytes.as_slice(), c.truncated))
        .collect();
    let want: Vec<(&[u8], bool)> = vec![
        (b"0123456789", true),
        (b"abcdefghij", true),
        (b"\x1dV0", true),
        (b"short\x1dV0", false),
        (b"tail", false),
    ];
    assert_eq!(got, want);
    assert_eq!(sp.finish(), None);
}

#[test]
fn code_page_names_and_tables() {
    for page in CodePage::ALL {
        assert_eq!(CodePage::from_name(page.name()), Some(page));
        assert_eq!(CodePage::from_name(&page.name().to_uppercase()), Some(page));
        assert_eq!(CodePage::from_epson(page.epson_number()), Some(page));
        for b in 0x20..=0xFF_u8 {
            let c = page.decode(b);
            if c != '\u{fffd}' && b != 0x7F {
                assert_eq!(
                    page.decode(page.encode(c).expect("encodable")),
                    c,
                    "{page:?} {b:#x}"
                );
            }
        }
    }
    assert_eq!(CodePage::from_name("windows-1252"), Some(CodePage::Cp1252));
    assert_eq!(CodePage::from_name("PC858"), Some(CodePage::Cp858));
    assert_eq!(
        CodePage::from_name("ISO-8859-15"),
        Some(CodePage::Iso8859_15)
    );
    assert_eq!(CodePage::from_name("ebcdic"), None);
    assert_eq!(CodePage::Cp858.decode(0xD5), '€');
    assert_eq!(CodePage::Cp850.decode(0xD5), 'ı');
    assert_eq!(CodePage::Iso8859_15.decode(0xA4), '€');
}

/// Bytes biased towards command prefixes and the argument values that steer lengths.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    const SPECIAL: [u8; 26] = [
        0x1B, 0x1D, 0x1C, 0x10, 0x0A, 0x00, 0x01, 0x03, 0x14, b'(', b'k', b'L', b'V', b'v', b'0',
        b'*', b'&', b'q', b'8', b'D', b'A', b'I', 49, 80, 81, 0xFF,
    ];
    // Remapping plain bytes is much cheaper to generate than a per-byte `prop_oneof!`.
    vec(any::<u8>(), 0..4096).prop_map(|v| {
        v.into_iter()
            .map(|b| {
                if b < 104 {
                    SPECIAL.get(usize::from(b / 4)).copied().unwrap_or(b)
                } else {
                    b
                }
            })
            .collect()
    })
}

/// Splits `bytes` at the given fractions and pushes the pieces.
fn split_with(bytes: &[u8], cuts: &[usize], opts: &Options) -> Vec<Chunk> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut sp = Splitter::new(opts);
    let mut out = Vec::new();
    let mut from = 0;
    for p in points.into_iter().chain([bytes.len()]) {
        out.extend(sp.push(bytes.get(from..p).unwrap_or_default()));
        from = p;
    }
    out.extend(sp.finish());
    out
}

fn check_chunking(bytes: &[u8], cuts: &[usize], max: usize) -> Result<(), TestCaseError> {
    let opts = Options {
        max_receipt_bytes: max,
        ..Options::default()
    };
    let whole = split_with(bytes, &[], &opts);
    prop_assert_eq!(&split_with(bytes, cuts, &opts), &whole);
    prop_assert_eq!(whole.concat_bytes(), bytes.to_vec());
    prop_assert!(
        whole
            .iter()
            .all(|c| !c.bytes.is_empty() && c.bytes.len() <= max.max(1))
    );
    Ok(())
}

trait Concat {
    fn concat_bytes(&self) -> Vec<u8>;
}

impl Concat for Vec<Chunk> {
    fn concat_bytes(&self) -> Vec<u8> {
        self.iter().flat_map(|c| c.bytes.iter().copied()).collect()
    }
}

/// A random receipt whose text the chosen code page can represent, in decoder-normal form.
fn receipt() -> impl Strategy<Value = (CodePage, Receipt)> {
    select(CodePage::ALL.to_vec()).prop_flat_map(|page| {
        let alphabet: Vec<char> = (0x20..0x7F_u8)
            .chain(0x80..=0xFF)
            .map(|b| page.decode(b))
            .filter(|&c| c != '\u{fffd}')
            .collect();
        let line = vec(select(alphabet), 0..40).prop_map(|cs| cs.into_iter().collect::<String>());
        let printable = "[ -~]{1,40}";
        let barcode = prop_oneof![
            printable.prop_map(|d| bc("code128", &d)),
            "[0-9]{12}".prop_map(|d| bc("ean13", &d)),
            printable.prop_map(|d| bc("pdf417", &d)),
        ];
        let qr = vec(any::<char>(), 1..80).prop_map(|cs| cs.into_iter().collect::<String>());
        (
            vec(line, 0..12),
            vec(barcode, 0..3),
            vec(qr, 0..3),
            any::<bool>(),
        )
            .prop_map(move |(lines, barcodes, qr_codes, drawer_kick)| {
                let mut lines: Vec<String> = lines
                    .iter()
                    .map(|l| l.trim_end_matches(' ').to_owned())
                    .collect();
                super::decode::trim_blank_edges(&mut lines);
                let r = Receipt {
                    lines,
                    barcodes,
                    qr_codes,
                    drawer_kick,
                    image_only: false,
                    images: 0,
                    cut: true,
                    code_page: page.name().to_owned(),
                    mapping: Vec::new(),
                };
                (page, r)
            })
    })
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in stream()) {
        let rs = decode(&bytes, &Options::default());
        for r in &rs {
            prop_assert!(r.lines.first().is_none_or(|l| !l.is_empty()));
            prop_assert!(r.lines.last().is_none_or(|l| !l.is_empty()));
            prop_assert_eq!(r.image_only, r.images > 0 && r.lines.is_empty());
        }
    }

    #[test]
    fn splitter_chunking_invariance_random(bytes in stream(), cuts in vec(any::<usize>(), 0..12), max in 1usize..3000) {
        check_chunking(&bytes, &cuts, max)?;
        check_chunking(&bytes, &cuts, 1 << 20)?;
    }

    #[test]
    fn splitter_chunking_invariance_fixtures(pick in any::<prop::sample::Index>(), cuts in vec(any::<usize>(), 0..24), max in 64usize..20_000) {
        let fixtures = all_fixtures();
        if !fixtures.is_empty() {
            let (_, bytes) = pick.get(fixtures);
            check_chunking(bytes, &cuts, 1 << 20)?;
            check_chunking(bytes, &cuts, max)?;
            // Decoding the split chunks finds the same receipts as decoding the whole stream,
            // up to the printer state that a fresh decoder does not carry over.
            let chunks = split_with(bytes, &cuts, &Options::default());
            let lines: Vec<String> = chunks.iter().flat_map(|c| decode(&c.bytes, &Options::default())).flat_map(|r| r.lines).collect();
            let whole: Vec<String> = decode(bytes, &Options::default()).into_iter().flat_map(|r| r.lines).collect();
            prop_assert_eq!(lines.len(), whole.len());
        }
    }

    #[test]
    fn render_decode_round_trip((page, r) in receipt()) {
        let bytes = render(&r, page);
        let got = decode(&bytes, &Options::default());
        let printed = !r.lines.is_empty() || !r.barcodes.is_empty() || !r.qr_codes.is_empty();
        if printed || r.drawer_kick {
            prop_assert_eq!(got, vec![r]);
        } else {
            prop_assert!(got.is_empty());
        }
    }

    #[test]
    fn splitter_on_rendered_receipts(rs in vec(receipt(), 1..5), cuts in vec(any::<usize>(), 0..16)) {
        let stream: Vec<u8> = rs.iter().flat_map(|(page, r)| render(r, *page)).collect();
        check_chunking(&stream, &cuts, 1 << 20)?;
        let chunks = split_with(&stream, &cuts, &Options::default());
        prop_assert_eq!(chunks.len(), rs.len());
        prop_assert!(chunks.iter().all(|c| !c.truncated && c.bytes.ends_with(b"\x1dVB\x00")));
    }
}
