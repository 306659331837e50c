//! SKU and GTIN normalisation.
//!
//! GTIN check digits (GS1 General Specifications §7.9): weights 3 and 1 alternate from the
//! rightmost data digit leftwards, so leading zeros never change the check digit and a
//! GTIN-8, -12 or -13 keeps its check digit when padded to GTIN-14.

/// What to do with leading zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LeadingZeros {
    Keep,
    Strip,
    Pad(usize),
}

/// GTIN handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gtin {
    Off,
    Validate,
    Complete,
}

/// Options of one `sku` rule, applied in this order: trim, leading zeros, upper, GTIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SkuOptions {
    pub(super) trim: bool,
    pub(super) leading_zeros: LeadingZeros,
    pub(super) upper: bool,
    pub(super) gtin: Gtin,
}

/// Width of the GTIN-14 form every GTIN can be padded to.
pub(super) const GTIN14: usize = 14;

/// Normalises one SKU; findings are messages without the rule and path prefix.
pub(super) fn normalise(raw: &str, o: &SkuOptions, findings: &mut Vec<String>) -> String {
    let mut s = if o.trim { raw.trim() } else { raw }.to_string();
    match o.leading_zeros {
        LeadingZeros::Keep => {}
        LeadingZeros::Strip => s = strip_zeros(&s).to_string(),
        LeadingZeros::Pad(width) => {
            let n = s.chars().count();
            if n > width {
                findings.push(format!("{n} characters, longer than width {width}"));
            }
            s = pad_zeros(&s, width);
        }
    }
    if o.upper {
        s = s.to_uppercase();
    }
    match o.gtin {
        Gtin::Off => {}
        Gtin::Validate => {
            if matches!(s.len(), 8 | 12 | 13 | 14) {
                check(&s, findings);
            }
        }
        Gtin::Complete => {
            if (8..=GTIN14).contains(&s.len()) && all_digits(&s) {
                s = pad_zeros(&s, GTIN14);
                check(&s, findings);
            }
        }
    }
    s
}

fn check(s: &str, findings: &mut Vec<String>) {
    if let Some((actual, expected)) = gtin_check(s)
        && actual != expected
    {
        findings.push(format!("GTIN check digit {actual} expected {expected}"));
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Leading zeros removed; an all-zero value keeps one zero so it does not become empty.
pub(super) fn strip_zeros(s: &str) -> &str {
    let stripped = s.trim_start_matches('0');
    if stripped.is_empty() && !s.is_empty() {
        &s[s.len() - 1..]
    } else {
        stripped
    }
}

/// Zeros prepended up to `width` characters; an empty value stays empty because a code of
/// only zeros would be invented data.
pub(super) fn pad_zeros(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if s.is_empty() || n >= width {
        return s.to_string();
    }
    let mut out = "0".repeat(width - n);
    out.push_str(s);
    out
}

/// The check digit of GTIN data digits (everything but the check digit).
pub(super) fn check_digit(data: &[u8]) -> u8 {
    let sum: u32 = data
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| u32::from(d.saturating_sub(b'0')) * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    // The sum of at most 13 weighted digits fits easily; the result is one digit.
    ((10 - sum % 10) % 10) as u8
}

/// `(check digit found, check digit expected)` for an all-digit value of 2+ digits.
pub(super) fn gtin_check(s: &str) -> Option<(u8, u8)> {
    if s.len() < 2 || !all_digits(s) {
        return None;
    }
    let (data, last) = s.as_bytes().split_at(s.len() - 1);
    Some((last[0].saturating_sub(b'0'), check_digit(data)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opts(leading_zeros: LeadingZeros, gtin: Gtin) -> SkuOptions {
        SkuOptions {
            trim: true,
            leading_zeros,
            upper: false,
            gtin,
        }
    }

    fn run(s: &str, o: SkuOptions) -> (String, Vec<String>) {
        let mut f = Vec::new();
        let out = normalise(s, &o, &mut f);
        (out, f)
    }

    #[test]
    fn real_gtins_pass() {
        for g in [
            "4006381333931",  // EAN-13
            "036000291452",   // UPC-A
            "96385074",       // EAN-8
            "00012345600012", // GTIN-14
            "5901234123457",  // EAN-13, GS1 example
        ] {
            let (a, e) = gtin_check(g).unwrap();
            assert_eq!(a, e, "{g}");
            assert_eq!(run(g, opts(LeadingZeros::Keep, Gtin::Validate)).1.len(), 0);
        }
    }

    #[test]
    fn wrong_check_digits_are_flagged_not_fixed() {
        let (out, f) = run("4006381333932", opts(LeadingZeros::Keep, Gtin::Validate));
        assert_eq!(out, "4006381333932");
        assert_eq!(f, vec!["GTIN check digit 2 expected 1"]);
        let (_, f) = run("036000291453", opts(LeadingZeros::Keep, Gtin::Validate));
        assert_eq!(f, vec!["GTIN check digit 3 expected 2"]);
        let (_, f) = run("96385075", opts(LeadingZeros::Keep, Gtin::Validate));
        assert_eq!(f, vec!["GTIN check digit 5 expected 4"]);
    }

    #[test]
    fn validate_ignores_values_that_are_not_gtin_shaped() {
        // A PLU, an alphanumeric SKU, 10 and 15 digits, a 13-character non-number.
        for s in [
            "4011",
            "ABC-123",
            "1234567890",
            "123456789012345",
            "400638133393X",
        ] {
            let (out, f) = run(s, opts(LeadingZeros::Keep, Gtin::Validate));
            assert_eq!(out, s);
            assert!(f.is_empty(), "{s}: {f:?}");
        }
    }

    #[test]
    fn complete_pads_to_gtin14_and_checks() {
        let (out, f) = run(" 036000291452 ", opts(LeadingZeros::Keep, Gtin::Complete));
        assert_eq!(out, "00036000291452");
        assert!(f.is_empty());
        // A UPC-A kept as an integer by the POS lost its leading zero.
        let (out, f) = run("36000291452", opts(LeadingZeros::Keep, Gtin::Complete));
        assert_eq!(out, "00036000291452");
        assert!(f.is_empty());
        let (out, f) = run("96385074", opts(LeadingZeros::Keep, Gtin::Complete));
        assert_eq!(out, "00000096385074");
        assert!(f.is_empty());
        let (out, f) = run("4006381333939", opts(LeadingZeros::Keep, Gtin::Complete));
        assert_eq!(out, "04006381333939");
        assert_eq!(f, vec!["GTIN check digit 9 expected 1"]);
        // A PLU is not a GTIN.
        assert_eq!(
            run("4011", opts(LeadingZeros::Keep, Gtin::Complete)).0,
            "4011"
        );
    }

    #[test]
    fn strip_and_pad() {
        assert_eq!(strip_zeros("000123"), "123");
        assert_eq!(strip_zeros("0000"), "0");
        assert_eq!(strip_zeros(""), "");
        assert_eq!(strip_zeros("0A1"), "A1");
        assert_eq!(pad_zeros("123", 6), "000123");
        assert_eq!(pad_zeros("", 6), "");
        assert_eq!(pad_zeros("1234567", 6), "1234567");
        let (out, f) = run("  00042  ", opts(LeadingZeros::Strip, Gtin::Off));
        assert_eq!((out.as_str(), f.len()), ("42", 0));
        let (out, f) = run("42", opts(LeadingZeros::Pad(8), Gtin::Off));
        assert_eq!((out.as_str(), f.len()), ("00000042", 0));
        let (out, f) = run("123456789", opts(LeadingZeros::Pad(8), Gtin::Off));
        assert_eq!(out, "123456789");
        assert_eq!(f, vec!["9 characters, longer than width 8"]);
    }

    #[test]
    fn upper_and_untrimmed() {
        let o = SkuOptions {
            trim: false,
            leading_zeros: LeadingZeros::Keep,
            upper: true,
            gtin: Gtin::Off,
        };
        assert_eq!(run(" ab-12x", o).0, " AB-12X");
    }

    proptest! {
        #[test]
        fn complete_then_validate_passes(data in "[0-9]{7,13}") {
            let check = check_digit(data.as_bytes());
            let gtin = format!("{data}{check}");
            let (completed, f) = run(&gtin, opts(LeadingZeros::Keep, Gtin::Complete));
            prop_assert!(f.is_empty());
            prop_assert_eq!(completed.len(), GTIN14);
            let (validated, f) = run(&completed, opts(LeadingZeros::Keep, Gtin::Validate));
            prop_assert!(f.is_empty());
            prop_assert_eq!(validated, completed);
        }

        #[test]
        fn validate_after_complete_agrees_with_complete(s in "[0-9]{8,14}") {
            let (completed, f1) = run(&s, opts(LeadingZeros::Keep, Gtin::Complete));
            let (_, f2) = run(&completed, opts(LeadingZeros::Keep, Gtin::Validate));
            prop_assert_eq!(f1, f2);
        }

        #[test]
        fn every_single_digit_error_is_detected(data in "[0-9]{7,13}", pos in 0usize..14, bump in 1u8..10) {
            let gtin = format!("{data}{}", check_digit(data.as_bytes()));
            let pos = pos % gtin.len();
            let mut bytes = gtin.into_bytes();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + bump) % 10;
            let wrong = String::from_utf8(bytes).unwrap();
            let (a, e) = gtin_check(&wrong).unwrap();
            prop_assert_ne!(a, e);
        }

        #[test]
        fn strip_then_pad_is_idempotent(s in "[0-9A-Z]{0,20}") {
            let o = |s: &str| pad_zeros(strip_zeros(s), GTIN14);
            let once = o(&s);
            prop_assert_eq!(o(&once), once);
        }

        #[test]
        fn padding_keeps_the_check_digit(data in "[0-9]{7,13}") {
            let gtin = format!("{data}{}", check_digit(data.as_bytes()));
            let (a, e) = gtin_check(&pad_zeros(&gtin, GTIN14)).unwrap();
            prop_assert_eq!(a, e);
        }
    }
}
