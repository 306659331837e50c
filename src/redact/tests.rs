#[test]
fn json_is_clean_agrees_with_redact_json() {
    let cases = [
        (r#"{"a":"plain","n":12,"l":[1,{"b":true,"c":null}]}"#, true),
        (r#"{"note":"card 4111 1111 1111 1111"}"#, false),
        (r#"{"x":{"CVV2":"123"}}"#, false),
        (r#"{"4111111111111111":"key holds a PAN"}"#, false),
        (r#"{"n":4111111111111111}"#, false),
        (r#"{"f":1.5}"#, false),
        (r#"{"esc":"\u0034111111111111111"}"#, false),
        (r#"{"gtin":"4006381333931","amount":-1999}"#, true),
        (r#"{"broken":"#, false),
    ];
    for (json, want) in cases {
        assert_eq!(json_is_clean(json), want, "{json}");
        if want {
            let mut v: Value = serde_json::from_str(json).unwrap();
            assert_eq!(redact_json(&mut v).total(), 0, "{json}");
        }
    }
}

use super::pan::{MAX_PAN, MIN_PAN, iin_lengths, luhn};
use super::*;
use proptest::prelude::*;
use serde_json::json;

fn red(s: &str) -> (String, Redactions) {
    let (c, r) = redact_str(s);
    (c.into_owned(), r)
}

fn masked(pan: &str) -> String {
    let n = pan.len();
    format!("{}{}{}", &pan[..6], "*".repeat(n - 10), &pan[n - 4..])
}

const TEST_PANS: &[&str] = &[
    "4111111111111111",
    "4012888888881881",
    "5555555555554444",
    "2223003122003222",
    "378282246310005",
    "6011111111111117",
    "3530111333300000",
    "36227206271667",
    "30569309025904",
    "6200000000000005",
    "6759649826438453",
];

#[test]
fn every_test_pan_is_masked() {
    for pan in TEST_PANS {
        assert!(luhn(pan.as_bytes()), "{pan} should pass Luhn");
        let (out, r) = red(&format!("paid with {pan} today"));
        assert_eq!(out, format!("paid with {} today", masked(pan)), "{pan}");
        assert_eq!(
            r,
            Redactions {
                pans: 1,
                ..Default::default()
            }
        );
    }
}

#[test]
fn mask_format() {
    assert_eq!(red("4111111111111111").0, "411111******1111");
    assert_eq!(red("378282246310005").0, "378282*****0005");
    assert_eq!(red("36227206271667").0, "362272****1667");
}

#[test]
fn separators_are_dropped_from_masked_pan() {
    assert_eq!(red("4111 1111 1111 1111").0, "411111******1111");
    assert_eq!(
        red("card: 4111-1111-1111-1111.").0,
        "card: 411111******1111."
    );
    assert_eq!(red("5555.5555.5555.4444").0, "555555******4444");
    assert_eq!(red("3782 822463 10005").0, "378282*****0005");
    assert_eq!(red("4111 1111-1111.1111").0, "411111******1111");
}

#[test]
fn double_separators_split_numbers() {
    // Two spaces is layout, not digit grouping: neither half is a PAN.
    let s = "4111111  111111111";
    assert_eq!(red(s).0, s);
}

#[test]
fn pan_next_to_other_grouped_digits() {
    assert_eq!(red("4111 1111 1111 1111 2").0, "411111******1111 2");
    assert_eq!(
        red("4111 1111 1111 1111 2026-11-27").0,
        "411111******1111 2026-11-27"
    );
    assert_eq!(
        red("order 12 4111111111111111").0,
        "order 12 411111******1111"
    );
}

#[test]
fn pan_adjacent_to_letters() {
    assert_eq!(red("PAN4111111111111111X").0, "PAN411111******1111X");
    assert_eq!(red("x5555555555554444y").0, "x555555******4444y");
}

#[test]
fn pan_embedded_in_longer_digit_runs() {
    assert_eq!(
        red("0000004111111111111111000000").0,
        "000000411111******1111000000"
    );
    assert_eq!(
        red("ref 0000000000003782822463100050000000000 end").0,
        "ref 000000000000378282*****00050000000000 end"
    );
    // Here "5544440000000000" (Luhn-valid, Mastercard-like) overlaps the real
    // PAN; masking only the PAN would leave 14 of its digits readable, so both
    // are masked together.
    let (out, r) = red("ref 0000000000005555555555554444000000000000 end");
    assert_eq!(out, "ref 000000000000555555****************000000 end");
    assert_eq!(r.pans, 1);
    let (out, _) = red("999999999999999999994012888888881881");
    assert_eq!(out, "99999999999999999999401288******1881");
}

#[test]
fn two_pans_back_to_back() {
    let (out, r) = red("41111111111111115555555555554444");
    assert!(!out.contains("4111111111111111"));
    assert!(!out.contains("5555555555554444"));
    assert_eq!(out, "411111******1111555555******4444");
    assert_eq!(r.pans, 2);
}

#[test]
fn overlapping_windows_never_show_more_than_ten_digits() {
    // Every digit here is the same, so many windows pass Luhn; whatever is
    // chosen, no window of the input may be readable beyond 10 digits.
    let input = "6".repeat(200);
    let (out, r) = red(&input);
    assert!(r.pans >= 1);
    let digits_in_a_row = out.split('*').map(str::len).max().unwrap_or_default();
    assert!(digits_in_a_row < 13, "{out}");
    assert_eq!(red(&out).0, out);
}

#[test]
fn huge_digit_run_is_linear() {
    let input: String = (0..2_000_000u32)
        .map(|i| char::from(b'0' + (i.wrapping_mul(7919) % 10) as u8))
        .collect();
    let t = std::time::Instant::now();
    let (out, _) = red(&input);
    assert!(t.elapsed().as_secs() < 20);
    assert_eq!(red(&out).1.total(), 0);
}

#[test]
fn non_card_numbers_are_kept() {
    for s in [
        "4111111111111112",     // fails Luhn
        "5555555555554445",     // fails Luhn
        "378282246310006",      // fails Luhn
        "411111111111",         // 12 digits
        "7612345678900",        // Luhn-valid GTIN-13, IIN 7
        "00012345678905",       // GTIN-14 starting with 0
        "8712345678906",        // IIN 8
        "9780201379624",        // ISBN-13, IIN 9
        "1764237600000",        // epoch milliseconds
        "1764237600000000",     // epoch microseconds
        "1764237600000000000",  // epoch nanoseconds
        "2026-11-27T10:00:00Z", // timestamp
        "2026-11-27T10:00:00.123456789Z",
        "total 1234567.89 EUR", // amount
        "+1 555 123 4567",      // phone number
        "3012345678901234567",  // 30x outside Diners 300-305
        "2012345678901234",     // 2-series outside Mastercard
    ] {
        let (out, r) = redact_str(s);
        assert!(matches!(out, Cow::Borrowed(_)), "{s} -> {out}");
        assert_eq!(r.total(), 0, "{s}");
    }
}

#[test]
fn luhn_valid_thirteen_digits_with_bad_iin_stay() {
    let gtin = luhn_complete("761234567890");
    assert!(luhn(gtin.as_bytes()));
    assert_eq!(red(&format!("gtin {gtin}")).0, format!("gtin {gtin}"));
    let thirteen = luhn_complete("876543210987");
    assert_eq!(red(&thirteen).0, thirteen);
    assert_eq!(red("1234567890128").0, "1234567890128");
}

#[test]
fn no_digits_borrows() {
    let s = "hello, world – ünïcödé";
    assert!(matches!(redact_str(s).0, Cow::Borrowed(_)));
    assert!(matches!(redact_bytes(s.as_bytes()).0, Cow::Borrowed(_)));
    assert!(matches!(redact_str("qty 3 @ 4.99").0, Cow::Borrowed(_)));
}

#[test]
fn track1_removed() {
    let (out, r) = red("swipe %B4111111111111111^DOE/JOHN^25121010000000000000000?; done");
    assert_eq!(out, "swipe [track removed]; done");
    assert_eq!(
        r,
        Redactions {
            tracks: 1,
            ..Default::default()
        }
    );
    let (out, r) = red("B4111111111111111^DOE/JOHN ^2512101123456789 x");
    assert_eq!(out, "[track removed] x");
    assert_eq!(r.tracks, 1);
    assert_eq!(red("%B4111111111111111^^2512101?").0, "[track removed]");
}

#[test]
fn track2_removed() {
    let (out, r) = red("t2=;4111111111111111=25121010000000000000?");
    assert_eq!(out, "t2=[track removed]");
    assert_eq!(
        r,
        Redactions {
            tracks: 1,
            ..Default::default()
        }
    );
    assert_eq!(red("4111111111111111=2512101123").0, "[track removed]");
    assert_eq!(
        red("raw:5555555555554444=2512101?x").0,
        "raw:[track removed]x"
    );
    // EMV tag 57 (track 2 equivalent) with its TLV length in front.
    assert_eq!(
        red("57134761739001010010D15122011143804400000F").0,
        "5713[track removed]"
    );
}

#[test]
fn track_needs_its_shape() {
    // Not enough expiry digits: no track, but the PAN is still masked.
    let (out, r) = red("4111111111111111=25");
    assert_eq!(out, "411111******1111=25");
    assert_eq!(
        r,
        Redactions {
            pans: 1,
            ..Default::default()
        }
    );
    // An ordinary key=value pair is not a track.
    let s = "sku=1234567890123;qty=2";
    assert_eq!(red(s).0, s);
}

#[test]
fn track_and_pan_in_one_string() {
    let (out, r) = red("a 4111111111111111 b ;5555555555554444=2512101? c");
    assert_eq!(out, "a 411111******1111 b [track removed] c");
    assert_eq!(
        r,
        Redactions {
            pans: 1,
            tracks: 1,
            fields: 0
        }
    );
}

#[test]
fn bytes_non_utf8_around_pan() {
    let mut input = vec![0xff, 0xfe, b'x'];
    input.extend_from_slice(b"4111-1111-1111-1111");
    input.extend_from_slice(&[0x80, 0x00]);
    let (out, r) = redact_bytes(&input);
    let mut want = vec![0xff, 0xfe, b'x'];
    want.extend_from_slice(b"411111******1111");
    want.extend_from_slice(&[0x80, 0x00]);
    assert_eq!(out.as_ref(), want.as_slice());
    assert_eq!(r.pans, 1);
}

#[test]
fn json_sensitive_members_removed_everywhere() {
    let mut v = json!({
        "body": {
            "lines": [
                {"kind": "tender", "card": {"last4": "1111", "CVV2": "123", "exp_date": "12/25",
                    "pinBlock": "ABCD", "card-expiry": "1225", "Track_2": ";4111=1?"}},
                {"kind": "item", "description": "gift 4111 1111 1111 1111"}
            ],
            "track1Data": "x",
            "magstripe": "y",
            "cardCvc": 1,
            "pin": "1234",
            "cid": "999",
            "csc": "999",
            "exp": "12/25",
            "expiry": "12/25",
            "amount": 1999
        }
    });
    let r = redact_json(&mut v);
    assert_eq!(
        v,
        json!({
            "body": {
                "lines": [
                    {"kind": "tender", "card": {"last4": "1111"}},
                    {"kind": "item", "description": "gift 411111******1111"}
                ],
                "amount": 1999
            }
        })
    );
    assert_eq!(
        r,
        Redactions {
            pans: 1,
            tracks: 0,
            fields: 13
        }
    );
}

#[test]
fn json_keys_and_numbers_redacted() {
    let mut v =
        json!({"note 4111111111111111": [5555555555554444u64, "ok", 12.5, 7612345678900u64]});
    let r = redact_json(&mut v);
    assert_eq!(
        v,
        json!({"note 411111******1111": ["555555******4444", "ok", 12.5, 7612345678900u64]})
    );
    assert_eq!(r.pans, 2);
}

#[test]
fn json_float_holding_pan_digits_is_masked() {
    let mut v = json!([0.4111111111111111, 19.99]);
    let r = redact_json(&mut v);
    assert_eq!(v, json!(["0.411111******1111", 19.99]));
    assert_eq!(r.pans, 1);
}

#[test]
fn json_key_collision_keeps_both() {
    let mut v = json!({"k411111******1111": 1, "k4111111111111111": 2});
    redact_json(&mut v);
    let obj = v.as_object().cloned().unwrap_or_default();
    assert_eq!(obj.len(), 2);
    assert_eq!(obj.get("k411111******1111~"), Some(&json!(2)));
}

#[test]
fn json_non_sensitive_keys_kept() {
    for k in [
        "expected",
        "pinned",
        "cidr",
        "description",
        "experience",
        "pan",
    ] {
        let mut v = json!({ k: "v" });
        assert_eq!(redact_json(&mut v).total(), 0, "{k}");
        assert_eq!(v, json!({ k: "v" }));
    }
}

#[test]
fn deep_json_does_not_overflow() {
    let mut v = json!("4111111111111111");
    for _ in 0..100_000 {
        v = Value::Array(vec![v]);
    }
    assert_eq!(redact_json(&mut v).pans, 1);
    // Dropping a deep value recurses in serde_json itself; unwind it by hand.
    while let Value::Array(mut a) = v {
        v = a.pop().unwrap_or(Value::Null);
    }
}

#[test]
fn redactions_total_and_add() {
    let mut a = Redactions {
        pans: 1,
        tracks: 2,
        fields: 3,
    };
    assert_eq!(a.total(), 6);
    a.add(Redactions {
        pans: u32::MAX,
        tracks: 1,
        fields: 0,
    });
    assert_eq!(
        a,
        Redactions {
            pans: u32::MAX,
            tracks: 3,
            fields: 3
        }
    );
    assert_eq!(a.total(), u32::MAX);
}

const PREFIXES: &[&str] = &[
    "4", "51", "52", "53", "54", "55", "2221", "2500", "2720", "34", "37", "6011", "64", "65",
    "3528", "3589", "36", "38", "300", "305", "62", "50", "56", "59", "67", "69", "5018", "6759",
    "6763",
];

fn luhn_complete(body: &str) -> String {
    (0..10u8)
        .map(|d| format!("{body}{d}"))
        .find(|c| luhn(c.as_bytes()))
        .unwrap_or_default()
}

/// Prefix + fill digits, cut to `len - 1` and completed with a Luhn check digit.
fn build_pan(prefix: &str, fill: &[u8], len: usize) -> String {
    let mut body = prefix.to_string();
    for d in fill.iter().take(len - 1 - prefix.len()) {
        body.push(char::from(b'0' + d));
    }
    luhn_complete(&body)
}

/// A Luhn-valid PAN with a card prefix, of any length 13–19.
fn any_pan() -> impl Strategy<Value = String> {
    (
        prop::sample::select(PREFIXES),
        13usize..=19,
        prop::collection::vec(0u8..10, 18),
    )
        .prop_map(|(prefix, len, fill)| build_pan(prefix, &fill, len))
}

/// A PAN with a length its brand is issued in.
fn issued_pan() -> impl Strategy<Value = String> {
    (
        prop::sample::select(PREFIXES),
        any::<prop::sample::Index>(),
        prop::collection::vec(0u8..10, 18),
    )
        .prop_map(|(prefix, pick, fill)| {
            let probe = build_pan(prefix, &fill, 19);
            let lens = iin_lengths(probe.as_bytes());
            let issued: Vec<usize> = (MIN_PAN..=MAX_PAN)
                .filter(|n| lens & (1 << n) != 0)
                .collect();
            build_pan(prefix, &fill, *pick.get(&issued))
        })
}

/// Track 1 or track 2 data (with or without sentinels) around a PAN.
fn any_track() -> impl Strategy<Value = String> {
    (any_pan(), 0usize..5, "[A-Z/ ]{2,26}", "[0-9]{4,30}").prop_map(|(pan, kind, name, tail)| {
        match kind {
            0 => format!("%B{pan}^{name}^{tail}?"),
            1 => format!("B{pan}^{name}^{tail}"),
            2 => format!(";{pan}={tail}?"),
            3 => format!("{pan}={tail}"),
            _ => format!("{pan}D{tail}123F"),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn prop_pan_in_text_is_masked(
        pan in any_pan(),
        pre in "\\PC{0,30}",
        post in "\\PC{0,30}",
        l in "[A-Za-z:,|/(\"]",
        r in "[A-CE-Za-z:,|/)\"]",
    ) {
        let input = format!("{pre}{l}{pan}{r}{post}");
        let (out, _) = redact_str(&input);
        prop_assert!(!out.contains(&pan), "{} -> {}", input, out);
        prop_assert!(out.contains(&masked(&pan)), "{} -> {}", input, out);
    }

    #[test]
    fn prop_grouped_pan_is_masked(pan in any_pan(), sep in "[ .-]", pre in "[a-z ]{0,10}") {
        let grouped: Vec<String> = pan.as_bytes().chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        let input = format!("{pre}:{}", grouped.join(&sep));
        let (out, r) = redact_str(&input);
        prop_assert_eq!(out.as_ref(), format!("{pre}:{}", masked(&pan)));
        prop_assert_eq!(r.pans, 1);
    }

    #[test]
    fn prop_pan_glued_into_long_digit_run_never_survives(
        pan in issued_pan(),
        pre in "[0-9]{5,20}", // 20+ digits in all: every window of such a run is searched
        post in "[0-9]{3,20}",
    ) {
        let input = format!("{pre}{pan}{post}");
        let (out, _) = redact_str(&input);
        prop_assert!(!out.contains(&pan), "{} -> {}", input, out);
    }

    #[test]
    fn prop_idempotent(
        parts in prop::collection::vec(
            prop_oneof![
                any_pan(),
                any_track(),
                "[0-9]{1,25}",
                "[ .*=^;%?BDF-]{1,3}",
                "[A-Za-z/]{1,5}",
                "\\PC{0,5}",
            ],
            0..12,
        )
    ) {
        let input: String = parts.concat();
        let (once, _) = redact_str(&input);
        let (twice, r2) = redact_str(&once);
        prop_assert_eq!(once.as_ref(), twice.as_ref(), "input {}", input);
        prop_assert_eq!(r2.total(), 0);
    }

    #[test]
    fn prop_track_in_text_is_removed(track in any_track(), pre in "[a-z ]{0,10}", post in "[a-z ]{0,10}") {
        let input = format!("{pre}|{track}|{post}");
        let (out, r) = redact_str(&input);
        prop_assert_eq!(out.as_ref(), format!("{pre}|[track removed]|{post}"));
        prop_assert_eq!(r, Redactions { tracks: 1, ..Redactions::default() });
    }

    #[test]
    fn prop_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..512)) {
        let (out, _) = redact_bytes(&b);
        let (again, _) = redact_bytes(&out);
        prop_assert_eq!(out.as_ref(), again.as_ref());
    }

    #[test]
    fn prop_digit_heavy_bytes_never_panic(
        b in prop::collection::vec(prop::sample::select(b"0123456789 .-*=^;%?BDF".to_vec()), 0..400)
    ) {
        let (out, _) = redact_bytes(&b);
        let (again, r) = redact_bytes(&out);
        prop_assert_eq!(out.as_ref(), again.as_ref());
        prop_assert_eq!(r.total(), 0);
    }

    #[test]
    fn prop_str_and_bytes_agree(s in "\\PC{0,60}", pan in any_pan()) {
        let input = format!("{s} {pan} {s}");
        let (a, ra) = redact_str(&input);
        let (b, rb) = redact_bytes(input.as_bytes());
        prop_assert_eq!(a.as_bytes(), b.as_ref());
        prop_assert_eq!(ra, rb);
    }
}

mod clean_props {
    use super::*;

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z _-]{0,12}",
            "[0-9 .-]{10,22}",
            // Parts of a PAN split across members, and blobs.
            Just("4111 1111".to_string()),
            Just("1111 1111".to_string()),
            Just("5555 5555".to_string()),
            Just("5555 4444".to_string()),
            "[0-9]{4,8}",
            Just("pan_a".to_string()),
            Just("pan_b".to_string()),
            Just("NDExMTExMTExMTExMTExMQ==".to_string()),
            Just("ab4111111111111111ff".to_string()),
            Just("SGVsbG8sIHdvcmxkIQ==".to_string()),
            Just("4111111111111111".to_string()),
            Just("5555 5555 5555 4444".to_string()),
            Just("CVV".to_string()),
            Just("track_2".to_string()),
        ]
    }

    proptest! {
        /// A "clean" verdict is never wrong: redact_json leaves such a document unchanged.
        #[test]
        fn clean_verdict_is_never_wrong(pairs in proptest::collection::vec((word(), word(), any::<i64>()), 1..8)) {
            let list: Vec<Value> = pairs.iter().map(|(_, v, _)| Value::String(v.clone())).collect();
            let arr = Value::Array(list);
            if json_is_clean(&arr.to_string()) {
                let mut v = arr.clone();
                prop_assert_eq!(redact_json(&mut v).total(), 0);
                prop_assert_eq!(v, arr);
            }
            let mut inner = serde_json::Map::new();
            for (k, v, n) in &pairs {
                inner.insert(k.clone(), Value::String(v.clone()));
                inner.insert(format!("{k}#n"), Value::from(*n));
            }
            let doc = serde_json::json!({"body": {"lines": [Value::Object(inner)]}});
            let text = doc.to_string();
            if json_is_clean(&text) {
                let mut v = doc.clone();
                prop_assert_eq!(redact_json(&mut v).total(), 0);
                prop_assert_eq!(v, doc);
            }
        }
    }
}

/// The shortcut of `members_are_clean`: strings of a member found verbatim in a record the
/// byte redactor passed are not scanned again.
mod prescanned {
    use super::*;
    use crate::event::Fields;
    use std::fmt::Write as _;

    /// Text rich in what the byte rules look for, as a string's content or what
    /// surrounds it.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            any_pan(),
            issued_pan(),
            any_track(),
            "[0-9]{1,25}",
            "[ .*=^;%?BDF&#x;\"\\\\-]{1,3}",
            "&#(5[0-7]|x3[0-9]|32|45);",
            "[A-Za-z0-9+/_-]{12,40}={0,2}",
            Just("NDExMTExMTExMTExMTExMQ==".to_string()),
            Just("ab4111111111111111ff".to_string()),
            "\u{1b}[E!G-][0-9]?",
            "\u{1d}!.",
            "[a-z ]{1,8}",
            "\\PC{0,6}",
        ]
    }

    fn changes(s: &str) -> bool {
        matches!(redact_str(s).0, std::borrow::Cow::Owned(_))
    }

    /// A JSON string of `s`, escaping the characters `mask` picks (and those JSON must).
    fn quote(s: &str, mask: u64) -> String {
        let mut out = String::from("\"");
        for (i, c) in s.chars().enumerate() {
            let must = c == '"' || c == '\\' || c < ' ';
            if must || (mask >> (i % 64)) & 1 == 1 && (c as u32) < 0x10000 {
                let _ = write!(out, "\\u{:04x}", c as u32);
            } else {
                out.push(c);
            }
        }
        out.push('"');
        out
    }

    /// A JSON string of pieces, one in four with some characters escaped.
    fn text() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(piece(), 1..4),
            any::<u64>(),
            0u8..4,
        )
            .prop_map(|(p, mask, escapes)| quote(&p.concat(), if escapes == 0 { mask } else { 0 }))
    }

    /// One member value as JSON text: a string, a number, an array or an object of strings.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => text(),
            1 => prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                "-?[1-9][0-9]{0,13}",
                "-?[0-9]\\.[0-9]{1,3}",
                "-?[1-9][eE][+-]?[0-9]",
                Just("0".to_string()),
                Just("-0".to_string()),
                Just("99999999999".to_string()),
                Just("100000000000".to_string()),
                Just("-100000000000".to_string()),
                Just("true".to_string()),
                Just("null".to_string()),
                any_pan(),
                Just("4.111111111111111e15".to_string()),
                Just("41111111111111111111".to_string()),
                Just("12.5".to_string()),
            ],
            1 => proptest::collection::vec(text(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            1 => proptest::collection::vec((piece(), text()), 0..5).prop_map(|m| {
                let members: Vec<String> = m.iter().map(|(k, v)| format!("{}:{v}", quote(k, 0))).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    }

    fn record() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            "[a-z_]{1,8}",
            Just("pan_a".to_string()),
            Just("pan_b".to_string()),
            Just("cvv".to_string()),
            Just("track2".to_string()),
            piece(),
        ];
        proptest::collection::vec((key, value()), 0..8).prop_map(|m| {
            let members: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{v}", quote(k, 0)))
                .collect();
            format!("{{{}}}", members.join(","))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// What the shortcut leans on: no byte rule reaches across a `"`, so a string
        /// with card data makes any input it is quoted in hold card data too.
        #[test]
        fn prop_a_quoted_string_is_no_dirtier_than_its_input(
            inner in proptest::collection::vec(piece(), 0..6),
            pre in proptest::collection::vec(piece(), 0..4),
            post in proptest::collection::vec(piece(), 0..4),
        ) {
            let s = inner.concat().replace('"', "");
            let input = format!("{}\"{s}\"{}", pre.concat(), post.concat());
            prop_assert!(!changes(&s) || changes(&input), "{:?} clean in {:?}", s, input);
        }

        /// With or without the record's scan, the verdict is the same, and a clean one is
        /// right: `redact_json` leaves the members as they are.
        #[test]
        fn prop_the_record_scan_changes_no_verdict(text in record()) {
            let Ok(fields) = serde_json::from_str::<Fields>(&text) else {
                return Ok(());
            };
            let spans = spans_of(&text);
            let (_, _, scanned) = redact_record(text.as_bytes());
            let verbatim = scanned.map(|s| Verbatim::new(s, &spans));
            let members = || fields.iter().map(|(k, v)| (k.as_str(), v.get()));
            let fast = members_are_clean(members(), verbatim);
            prop_assert_eq!(fast, members_are_clean(members(), None), "{}", text);
            if fast {
                let mut v: Value = serde_json::from_str(&text).unwrap();
                let before = v.clone();
                prop_assert_eq!(redact_json(&mut v).total(), 0, "{}", text);
                prop_assert_eq!(v, before);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The walk over a prescanned member judges as the serde pass does, or defers.
        #[test]
        fn prop_the_walk_judges_as_serde_does(text in record(), pad in "[ \t\n]{0,2}") {
            let text = format!("{pad}{text}{pad}");
            if let Some(walked) = super::super::walk::judge(&text) {
                let read = super::super::clean::read(&text, true).map(|c| c.clean);
                prop_assert_eq!(Some(walked.clean), read, "{}", text);
            }
            prop_assert_eq!(text.contains('\\'), super::super::walk::judge(&text).is_none(), "{}", text);
        }
    }

    /// Where the members' texts lie in `text`, as the NDJSON decoder finds them.
    fn spans_of(text: &str) -> Vec<std::ops::Range<usize>> {
        let members: std::collections::BTreeMap<String, &serde_json::value::RawValue> =
            serde_json::from_str(text).unwrap_or_default();
        let base = text.as_ptr() as usize;
        members
            .values()
            .map(|v| {
                v.get().as_ptr() as usize - base..v.get().as_ptr() as usize - base + v.get().len()
            })
            .collect()
    }

    /// Judges `members` leaning on `record` as the ingest does.
    fn judged(record: &str, members: &[(&str, &str)]) -> bool {
        let spans = spans_of(record);
        let (_, _, scanned) = redact_record(record.as_bytes());
        assert!(scanned.is_some(), "the byte redactor passes {record}");
        let verbatim = scanned.map(|s| Verbatim::new(s, &spans));
        members_are_clean(members.iter().copied(), verbatim)
    }

    #[test]
    fn only_strings_found_verbatim_skip_the_scan() {
        let (_, _, scanned) = redact_record(br#"{"note":"4111 1111 1111 1111"}"#);
        assert!(scanned.is_none(), "a record holding a PAN is no proof");
        let pan = r#""4111 1111 1111 1111""#;
        // A span of the same length with other bytes is not the member's.
        assert!(!judged(
            r#"{"note":"no card here at all"}"#,
            &[("note", pan)]
        ));
        assert!(judged(
            r#"{"note":"no card here at all"}"#,
            &[("note", r#""no card here at all""#)]
        ));
        // An escaped digit is not the record's byte: found verbatim, scanned all the same.
        let escaped = r#""\u0034111 1111 1111 1111""#;
        assert!(!judged(
            &format!(r#"{{"note":{escaped}}}"#),
            &[("note", escaped)]
        ));
        // Sensitive keys and split PANs are not the byte redactor's to find.
        let record = r#"{"cvv":"123","pan_a":"4111 1111","pan_b":"1111 1111"}"#;
        assert!(!judged(record, &[("cvv", r#""123""#)]));
        let split = [("pan_a", r#""4111 1111""#), ("pan_b", r#""1111 1111""#)];
        assert!(!judged(record, &split));
        assert!(judged(record, &split[..1]));
    }
}

/// The hardened rules: Maestro 12, split members, blobs, ESC/POS, XML, key spellings,
/// non-card numbers.
mod hardened {
    use super::*;
    use std::fmt::Write as _;

    fn hex(b: &[u8]) -> String {
        b.iter().fold(String::new(), |mut s, c| {
            let _ = write!(s, "{c:02x}");
            s
        })
    }

    fn base64(b: &[u8], url: bool) -> String {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        if url {
            URL_SAFE.encode(b)
        } else {
            STANDARD.encode(b)
        }
    }

    /// GS1 check digit (weights 3, 1 from the right).
    fn gtin_complete(body: &str) -> String {
        let sum: u32 = body
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, c)| u32::from(c - b'0') * if i % 2 == 0 { 3 } else { 1 })
            .sum();
        format!("{body}{}", (10 - sum % 10) % 10)
    }

    fn red_bytes(b: &[u8]) -> (Vec<u8>, Redactions) {
        let (c, r) = redact_bytes(b);
        (c.into_owned(), r)
    }

    #[test]
    fn every_brand_is_masked_first6_last4() {
        let brands = [
            ("visa 13", "4", 13),
            ("visa 16", "4", 16),
            ("visa 19", "4", 19),
            ("mastercard 51", "51", 16),
            ("mastercard 55", "55", 16),
            ("mastercard 2221", "2221", 16),
            ("mastercard 2720", "2720", 16),
            ("amex 34", "34", 15),
            ("amex 37", "37", 15),
            ("discover 6011", "6011", 16),
            ("discover 65", "65", 16),
            ("discover 644", "644", 19),
            ("jcb 3528", "3528", 16),
            ("jcb 3589", "3589", 19),
            ("diners 300", "300", 14),
            ("diners 36", "36", 14),
            ("unionpay 62", "62", 16),
            ("unionpay 62 19", "62", 19),
            ("maestro 5018 12", "5018", 12),
            ("maestro 6759 12", "6759", 12),
            ("maestro 6304 19", "6304", 19),
            ("maestro 50 13", "50", 13),
        ];
        for (brand, prefix, len) in brands {
            let pan = build_pan(
                prefix,
                &[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3],
                len,
            );
            assert_eq!(pan.len(), len);
            let (out, r) = red(&format!("paid {pan}."));
            assert_eq!(out, format!("paid {}.", masked(&pan)), "{brand}");
            assert_eq!(r.pans, 1, "{brand}");
        }
    }

    #[test]
    fn twelve_digits_only_for_maestro_iins() {
        let maestro = luhn_complete("50180000000");
        assert_eq!(red(&maestro).0, "501800**0009");
        assert_eq!(red(&format!("m {maestro} x")).1.pans, 1);
        // Luhn-valid 12-digit numbers outside the Maestro 12-digit IINs stay.
        for body in [
            "41111111111",
            "55555555555",
            "60110000000",
            "50190000000",
            "67640000000",
        ] {
            let n = luhn_complete(body);
            assert_eq!(red(&n).0, n, "{n}");
        }
        // A Maestro prefix without a valid check digit stays.
        let bad = format!(
            "{}{}",
            &maestro[..11],
            (maestro.as_bytes()[11] - b'0' + 1) % 10
        );
        assert_eq!(red(&bad).0, bad);
        // GTIN-12 (UPC-A) and 12-digit order numbers.
        for s in [
            "012345678905",
            "036000291452",
            "100000000007",
            "ORD 700123456789",
        ] {
            assert_eq!(red(s).0, s);
        }
        // As a JSON number too.
        let mut v = json!({"n": maestro.parse::<u64>().unwrap(), "m": 99_999_999_999u64});
        assert!(!json_is_clean(&v.to_string()));
        assert_eq!(redact_json(&mut v).pans, 1);
        assert_eq!(v, json!({"n": "501800**0009", "m": 99_999_999_999u64}));
    }

    #[test]
    fn split_across_object_members() {
        let text = r#"{"pan1":"4111 1111","pan2":"1111 1111"}"#;
        assert!(!json_is_clean(text));
        let mut v: Value = serde_json::from_str(text).unwrap();
        let r = redact_json(&mut v);
        assert_eq!(v, json!({"pan1": "411111**", "pan2": "****1111"}));
        assert_eq!(r.pans, 1);
        // Idempotent, and the result is clean.
        assert!(json_is_clean(&v.to_string()));
        assert_eq!(redact_json(&mut v).total(), 0);
    }

    #[test]
    fn split_across_array_elements_and_groups() {
        let mut v = json!({"groups": ["4111", "1111", "1111", "1111"], "amex": ["3782", "822463", "10005"], "amex4": ["3782", "8224", "6310", "005"]});
        assert!(!json_is_clean(&v.to_string()));
        let r = redact_json(&mut v);
        assert_eq!(
            v,
            json!({"groups": ["4111", "11**", "****", "1111"], "amex": ["3782", "82****", "*0005"], "amex4": ["3782", "82**", "***0", "005"]})
        );
        assert_eq!(r.pans, 3);
    }

    #[test]
    fn split_rule_needs_a_key_stem_or_an_array_of_parts() {
        // Members that are not digit strings do not stand between the parts; keys
        // sharing their first 3 bytes join.
        let mut v = json!({"card_1": "5555 5555", "card_brand": "mc", "card_2": "5555 4444"});
        assert!(!json_is_clean(&v.to_string()));
        assert_eq!(redact_json(&mut v).pans, 1);
        assert_eq!(v["card_1"], json!("555555**"));
        assert_eq!(v["card_brand"], json!("mc"));
        // Unrelated keys do not.
        for doc in [
            json!({"a": "4111 1111", "b": "1111 1111"}),
            // An array holding anything but parts is not a split PAN.
            json!(["4111 1111", "41**", "1111 1111"]),
            json!(["4111 1111", "1111 1111", "x"]),
            // Only the last part may have fewer than 4 digits.
            json!(["411", "1111111", "111111"]),
            // Nor parts of more than 10 (a GTIN, epoch milliseconds).
            json!(["6229", "1677240076656"]),
        ] {
            assert!(json_is_clean(&doc.to_string()), "{doc}");
            let mut v = doc.clone();
            assert_eq!(redact_json(&mut v).total(), 0);
        }
    }

    #[test]
    fn ordinary_neighbouring_numbers_survive() {
        for doc in [
            json!({"price": "12.99", "qty": "3", "sku": "40063813", "line": "0001"}),
            json!({"store": "0042", "register": "0003", "till": "1234", "sku": "9780201379624"}),
            json!(["2026", "11", "27", "1999", "0002"]),
            json!({"a": "1764237600000", "b": "1764237600001"}),
        ] {
            let text = doc.to_string();
            assert!(json_is_clean(&text), "{text}");
            let mut v = doc.clone();
            assert_eq!(redact_json(&mut v).total(), 0);
            assert_eq!(v, doc);
        }
    }

    #[test]
    fn split_across_top_level_members() {
        let members = [("pan_a", r#""4111 1111""#), ("pan_b", r#""1111 1111""#)];
        assert!(!members_are_clean(members, None));
        assert!(
            members
                .iter()
                .all(|(k, v)| key_is_clean(k) && json_is_clean(v))
        );
        assert!(members_are_clean(
            [("a", r#""4111 1111""#), ("b", "7")],
            None
        ));
        assert!(!members_are_clean([("cvv", "1")], None));
    }

    #[test]
    fn duplicate_keys_are_judged_as_serde_json_reads_them() {
        // The last "c" wins and is not a digit string, so a and d are neighbours.
        let text = r#"{"pan_a":"4111 1111","pan_c":"0000","pan_c":"x","pan_d":"1111 1111"}"#;
        assert!(!json_is_clean(text));
        let mut v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(redact_json(&mut v).pans, 1);
    }

    #[test]
    fn base64_blob_with_a_pan_is_replaced() {
        for url in [false, true] {
            let blob = base64(b"{\"pan\":\"4111111111111111\",\"exp\":\"2512\"}", url);
            let (out, r) = red(&format!("ext {blob} end"));
            assert_eq!(out, "ext [blob redacted] end");
            assert_eq!(r.pans, 1);
        }
        let track = base64(b";4111111111111111=25121010000000000000?", false);
        let (out, r) = red(&format!("\"{track}\""));
        assert_eq!(out, "\"[blob redacted]\"");
        assert_eq!(r.tracks, 1);
        let maestro = base64(luhn_complete("67590000000").as_bytes(), false);
        assert_eq!(red(&maestro).0, "[blob redacted]");
    }

    #[test]
    fn hex_blob_with_a_pan_is_replaced() {
        // ASCII digits, hex-encoded: all digits, so no letter marks it as hex.
        let ascii = hex(b"PAN=5555555555554444;");
        assert_eq!(red(&ascii).0, "[blob redacted]");
        let upper = hex(b"4111111111111111").to_uppercase();
        assert_eq!(red(&format!("x:{upper}")).0, "x:[blob redacted]");
        // Packed BCD inside EMV TLV: tag 5A, length 08, the PAN.
        let (out, r) = red("9F1A0208405A0841111111111111115F24032512319F3704");
        assert_eq!(out, "[blob redacted]");
        assert_eq!(r.pans, 1);
        // BCD glued to other digits, on a byte boundary.
        assert_eq!(red("AB1041111111111111111F").0, "[blob redacted]");
    }

    #[test]
    fn blobs_without_card_data_are_kept_byte_exact() {
        for s in [
            base64(b"hello, world: nothing to see here at all", false),
            base64(
                &[0u8, 1, 2, 250, 251, 252, 253, 254, 255, 7, 8, 9, 10, 11, 12],
                true,
            ),
            base64(b"order 1234 qty 2 price 1999", false),
            hex(b"hello, world: nothing here"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_string(),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709".to_string(),
            "123e4567-e89b-12d3-a456-426614174000".to_string(),
            "internationalization_and_localization".to_string(),
        ] {
            let (out, r) = redact_str(&s);
            assert!(matches!(out, Cow::Borrowed(_)), "{s} -> {out}");
            assert_eq!(r.total(), 0);
        }
    }

    #[test]
    fn blob_in_json_ext_is_replaced() {
        let blob = base64(b"track2=;4111111111111111=2512101?", false);
        let doc = json!({"ext": {"emv": blob, "keep": base64(b"nothing here, honestly", false)}});
        assert!(!json_is_clean(&doc.to_string()));
        let mut v = doc.clone();
        assert!(redact_json(&mut v).total() >= 1);
        assert_eq!(v["ext"]["emv"], json!("[blob redacted]"));
        assert_eq!(v["ext"]["keep"], doc["ext"]["keep"]);
    }

    #[test]
    fn escpos_commands_between_digits() {
        // Bold on/off (binary and ASCII parameters), size, underline, print mode.
        let cases: [&[u8]; 6] = [
            b"CARD \x1bE\x014111\x1bE\x00 1111 1111 1111\n",
            b"CARD \x1bE14111 1111\x1bE0 1111 1111\n",
            b"CARD 4111 \x1d!\x111111\x1d!\x00 1111 1111\n",
            b"CARD 4111-1111-\x1b-\x011111\x1b-\x00-1111\n",
            b"CARD \x1b!\x084111111111111111\x1b!\x00\n",
            b"\x1b@\x1ba\x01CARD 4111\x1b$\x10\x001111 1111 1111\n",
        ];
        for input in cases {
            let (out, r) = red_bytes(input);
            assert_eq!(r.pans, 1, "{}", String::from_utf8_lossy(input));
            let digits: String = String::from_utf8_lossy(&strip_commands(&out))
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '*')
                .collect();
            assert!(digits.contains("411111******1111"), "{digits}");
            assert!(!digits.contains("4111111111111111"), "{digits}");
            // Idempotent.
            assert_eq!(red_bytes(&out).1.total(), 0);
        }
        // Commands stay where they were, so the printer's state is unchanged.
        let (out, _) = red_bytes(b"\x1bE\x014111\x1bE\x00111111111111");
        assert_eq!(out, b"\x1bE\x014111\x1bE\x0011******1111");
    }

    #[test]
    fn star_emphasis_without_parameter() {
        // Star line mode: ESC E (on) and ESC F (off) take no parameter.
        let (out, r) = red_bytes(b"CARD 4111 \x1bE1111 1111\x1bF 1111\n");
        assert_eq!(r.pans, 1);
        assert_eq!(out, b"CARD 4111\x1bE11******\x1bF1111\n".to_vec());
    }

    #[test]
    fn escpos_receipt_without_card_data_is_kept() {
        let receipt: &[u8] =
            b"\x1b@\x1ba\x01STORE 0042\n\x1bE\x01TOTAL\x1bE\x00  19.99\n\x1d!\x11THANK YOU\x1d!\x00\n2026-11-27 10:00\n";
        let (out, r) = redact_bytes(receipt);
        assert!(matches!(out, Cow::Borrowed(_)));
        assert_eq!(r.total(), 0);
    }

    #[test]
    fn poslog_attributes_and_character_references() {
        let (out, r) = red(r#"<Card Number="4111111111111111" Type="Visa"/>"#);
        assert_eq!(out, r#"<Card Number="411111******1111" Type="Visa"/>"#);
        assert_eq!(r.pans, 1);
        let encoded: String = "4111111111111111"
            .bytes()
            .map(|c| format!("&#{c};"))
            .collect();
        let (out, r) = red(&format!(r#"<Card Number="{encoded}"/>"#));
        assert_eq!(r.pans, 1);
        assert_eq!(
            out,
            r#"<Card Number="&#52;&#49;&#49;&#49;&#49;&#49;******&#49;&#49;&#49;&#49;"/>"#
        );
        let (out, _) = red("<PAN>&#x35;555 5555 5555 4444</PAN>");
        assert_eq!(out, "<PAN>&#x35;55555******4444</PAN>");
        // Other references are left alone.
        let s = "Fish &amp; Chips &#169; 2026 &#38; more";
        assert_eq!(red(s).0, s);
    }

    #[test]
    fn sensitive_key_spellings() {
        for k in [
            "cvv2",
            "CVC2",
            "cid",
            "card_security_code",
            "securityCode",
            "pin_block",
            "pinblock",
            "PinBlk",
            "encrypted_pin_block",
            "exp_date",
            "expiry",
            "expiration",
            "expiration_date",
            "exp_month",
            "exp_year",
            "expirationMonth",
            "card_expiry_month",
            "cardExpirationYear",
            "exp_mmyy",
            "cvn",
            "cvd",
            "card_verification_value",
        ] {
            let mut v = json!({ k: "12", "keep": 1 });
            assert!(!json_is_clean(&v.to_string()), "{k}");
            assert_eq!(redact_json(&mut v).fields, 1, "{k}");
            assert_eq!(v, json!({"keep": 1}), "{k}");
        }
    }

    #[test]
    fn huge_blob_and_printer_inputs_are_linear() {
        let t = std::time::Instant::now();
        let hex_run: String = (0..1_000_000u32)
            .map(|i| char::from(b"0123456789abcdef"[(i.wrapping_mul(7919) % 16) as usize]))
            .collect();
        let (out, _) = red(&hex_run);
        assert_eq!(red(&out).1.total(), 0);
        let b64 = "QUJD".repeat(250_000);
        assert_eq!(red(&b64).1.total(), 0);
        let mut esc = Vec::new();
        for i in 0..200_000u32 {
            esc.extend_from_slice(b"\x1bE\x01");
            esc.push(b'0' + (i % 10) as u8);
        }
        let (out, _) = red_bytes(&esc);
        assert_eq!(red_bytes(&out).1.total(), 0);
        let refs = "&#52;".repeat(200_000);
        let (out, _) = red(&refs);
        assert_eq!(red(&out).1.total(), 0);
        assert!(t.elapsed().as_secs() < 30);
    }

    /// GTIN-8/12/13/14 with a leading digit no card range starts with.
    fn gtin() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec![8usize, 12, 13, 14]),
            "[01789]",
            "[0-9]{13}",
        )
            .prop_map(|(len, first, rest)| gtin_complete(&format!("{first}{}", &rest[..len - 2])))
    }

    /// Texts of ordinary numbers: GTINs, epoch times, order numbers, prices.
    fn ordinary() -> impl Strategy<Value = String> {
        prop_oneof![
            gtin(),
            (1_600_000_000_000u64..1_900_000_000_000).prop_map(|ms| ms.to_string()),
            (1_600_000_000_000_000u64..1_900_000_000_000_000).prop_map(|us| us.to_string()),
            "[0-9]{1,11}",
            "ORD-[0-9]{4,11}",
            "[0-9]{1,4}\\.[0-9]{2}",
        ]
    }

    fn sep_grouped(digits: &str, sep: &str, cuts: &[usize]) -> Vec<String> {
        let mut parts = Vec::new();
        let mut at = 0;
        for &c in cuts {
            parts.push(digits[at..c].to_string());
            at = c;
        }
        parts.push(digits[at..].to_string());
        parts
            .iter()
            .map(|p| p.chars().map(String::from).collect::<Vec<_>>().join(sep))
            .collect()
    }

    const COMMANDS: &[&[u8]] = &[
        b"\x1bE\x01",
        b"\x1bE\x00",
        b"\x1bE1",
        b"\x1bE0",
        b"\x1d!\x11",
        b"\x1d!\x00",
        b"\x1b-\x01",
        b"\x1b!\x08",
        b"\x1bG\x01",
    ];

    fn strip_commands(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if let Some(c) = COMMANDS.iter().find(|c| b[i..].starts_with(c)) {
                i += c.len();
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn prop_ordinary_numbers_survive(nums in prop::collection::vec(ordinary(), 1..6), sep in "[,;|/]| / ") {
            let text = nums.join(&sep);
            let (out, r) = redact_str(&text);
            prop_assert!(matches!(out, Cow::Borrowed(_)), "{} -> {}", text, out);
            prop_assert_eq!(r.total(), 0);
            // Neighbouring members with unrelated keys, as an event holds them.
            let keys = ["sku", "qty", "price", "ts", "order", "line"];
            let doc = Value::Object(keys.iter().zip(&nums).map(|(k, n)| (k.to_string(), Value::String(n.clone()))).collect());
            prop_assert!(json_is_clean(&doc.to_string()), "{}", doc);
            let mut v = doc.clone();
            prop_assert_eq!(redact_json(&mut v).total(), 0);
            prop_assert_eq!(v, doc);
        }

        #[test]
        fn prop_split_pan_is_masked(
            pan in issued_pan(),
            cut_a in 4usize..=10,
            cut_b in 0usize..=10,
            sep in "[ -]?",
            as_object in any::<bool>(),
        ) {
            let n = pan.len();
            // Every part 4–10 digits: two parts, or three when the second fits.
            let first = cut_a.clamp(n.saturating_sub(10).max(4), (n - 4).min(10));
            let mut cuts = vec![first];
            if cut_b >= 4 && first + cut_b + 4 <= n && n - first - cut_b <= 10 {
                cuts.push(first + cut_b);
            }
            let parts = sep_grouped(&pan, &sep, &cuts);
            let doc = if as_object {
                let m: serde_json::Map<String, Value> = parts.iter().enumerate()
                    .map(|(i, p)| (format!("pan{i}"), Value::String(p.clone()))).collect();
                Value::Object(m)
            } else {
                Value::Array(parts.iter().cloned().map(Value::String).collect())
            };
            prop_assert!(!json_is_clean(&doc.to_string()), "{}", doc);
            let mut v = doc.clone();
            let r = redact_json(&mut v);
            prop_assert_eq!(r.pans, 1);
            let values: Vec<&Value> = match &v {
                Value::Object(m) => m.values().collect(),
                Value::Array(a) => a.iter().collect(),
                _ => Vec::new(),
            };
            let joined: String = values.iter().filter_map(|x| x.as_str()).collect();
            prop_assert!(joined.contains(&masked(&pan)), "{} -> {}", doc, v);
            let mut again = v.clone();
            prop_assert_eq!(redact_json(&mut again).total(), 0);
            prop_assert!(json_is_clean(&v.to_string()));
        }

        #[test]
        fn prop_blob_with_card_data_is_replaced(
            pan in issued_pan(),
            pre in "[a-z ]{0,12}",
            post in "[a-z ]{0,12}",
            kind in 0usize..4,
        ) {
            let payload = format!("{pre}{pan}{post}");
            let blob = match kind {
                0 => base64(payload.as_bytes(), false),
                1 => base64(payload.as_bytes(), true),
                2 => hex(payload.as_bytes()),
                _ => format!("ab01{pan}ff"),
            };
            let (out, r) = red(&format!("x {blob} y"));
            prop_assert!(r.total() >= 1);
            if kind == 3 && out != "x [blob redacted] y" {
                // Glued into a digit run of 20 or more, the digit rules mask it first.
                prop_assert!(!out.contains(&pan), "{}", out);
            } else {
                prop_assert_eq!(out, "x [blob redacted] y");
            }
        }

        #[test]
        fn prop_blob_without_digits_is_kept(bytes in prop::collection::vec(any::<u8>(), 0..200), url in any::<bool>()) {
            // Bytes without ASCII digits cannot hold a PAN or a track.
            let clean: Vec<u8> = bytes.into_iter().filter(|c| !c.is_ascii_digit()).collect();
            let b64 = base64(&clean, url);
            prop_assert!(matches!(redact_str(&b64).0, Cow::Borrowed(_)), "{}", b64);
            // Hex of bytes whose high nibble is a letter: no decimal nibble runs.
            let high: Vec<u8> = clean.iter().map(|c| c | 0xa0).collect();
            let h = hex(&high);
            prop_assert!(matches!(redact_str(&h).0, Cow::Borrowed(_)), "{}", h);
        }

        #[test]
        fn prop_escpos_between_digits_never_hides_a_pan(
            pan in issued_pan(),
            at in prop::collection::vec((0usize..19, prop::sample::select(COMMANDS.to_vec())), 1..4),
            lead in prop::sample::select(vec![&b""[..], b"CARD ", b"\x1bE\x01", b"\n"]),
        ) {
            let mut input = lead.to_vec();
            let mut cmds = at.clone();
            cmds.sort_by_key(|(k, _)| *k);
            let mut next = cmds.iter().peekable();
            for (k, c) in pan.bytes().enumerate() {
                while let Some((_, cmd)) = next.next_if(|(p, _)| *p == k) {
                    input.extend_from_slice(cmd);
                }
                input.push(c);
            }
            input.push(b'\n');
            let (out, r) = red_bytes(&input);
            prop_assert!(r.pans >= 1);
            let text = strip_commands(&out);
            let pan_b = pan.as_bytes();
            prop_assert!(!text.windows(pan_b.len()).any(|w| w == pan_b), "{:?}", String::from_utf8_lossy(&out));
            let (again, r2) = red_bytes(&out);
            prop_assert_eq!(&again, &out);
            prop_assert_eq!(r2.total(), 0);
        }

        #[test]
        fn prop_hardened_idempotent(
            parts in prop::collection::vec(
                prop_oneof![
                    any_pan(),
                    any_track(),
                    "[0-9]{1,25}",
                    "[0-9a-fA-F]{8,40}",
                    "[A-Za-z0-9+/]{12,40}=?",
                    "[ .*=^;%?BDF-]{1,3}",
                    prop::sample::select(vec!["\u{1b}E\u{1}", "\u{1b}E1", "\u{1d}!\u{11}", "&#52;", "&#x31;", "\u{1b}F"]).prop_map(String::from),
                    issued_pan().prop_map(|p| base64(p.as_bytes(), false)),
                    issued_pan().prop_map(|p| format!("a{p}")),
                ],
                0..10,
            )
        ) {
            let input: String = parts.concat();
            let (once, _) = redact_str(&input);
            let (twice, r2) = redact_str(&once);
            prop_assert_eq!(once.as_ref(), twice.as_ref(), "input {:?}", input);
            prop_assert_eq!(r2.total(), 0);
        }
    }
}
