//! Sensitive JSON member names (see the module doc of `redact`).

/// Keys (normalised) whose members are removed outright.
pub const SENSITIVE_KEYS: &[&str] = &[
    "cvv",
    "cvv2",
    "cvc",
    "cvc2",
    "cid",
    "csc",
    "pin",
    "pinblock",
    "track",
    "track1",
    "track2",
    "trackdata",
    "magstripe",
    "expiry",
    "expirydate",
    "exp",
    "expdate",
    "cardexpiry",
    "cardexpirydate",
    "expmonth",
    "expyear",
    "expirymonth",
    "expiryyear",
    "expiration",
    "expirationdate",
    "securitycode",
    "cardsecuritycode",
    "seccode",
    // Spellings that only some payment APIs use.
    "cvn",
    "cvd",
    "cav2",
    "pinblk",
    "epb",
    "pincode",
    "expirationmonth",
    "expirationyear",
    "expmm",
    "expyy",
    "expmmyy",
    "expyymm",
];

/// Key fragments (normalised) whose members are removed outright.
///
/// Each names card data wherever it appears in a key (`card_expiry_month`,
/// `encrypted_pin_block`); short codes like `cid` or `exp` are matched whole only,
/// since as parts they would hit ordinary words (`cidr`, `expected`).
pub const SENSITIVE_KEY_PARTS: &[&str] = &[
    "cvv",
    "cvc",
    "pinblock",
    "track",
    "cardexp",
    "securitycode",
    "cardverification",
    "encryptedpin",
    "pindata",
];

/// Bytes a list's entries start with: a key position whose byte is not one of them
/// cannot start a match, so most positions cost one table look-up.
const fn first_bytes(list: &[&str]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < list.len() {
        let entry = list[i].as_bytes();
        if !entry.is_empty() {
            table[entry[0] as usize] = true;
        }
        i += 1;
    }
    table
}

const KEY_FIRST: [bool; 256] = first_bytes(SENSITIVE_KEYS);
const PART_FIRST: [bool; 256] = first_bytes(SENSITIVE_KEY_PARTS);

/// Longest key normalised on the stack; longer ones take a heap copy.
const SMALL_KEY: usize = 64;

pub(super) fn is_sensitive_key(key: &str) -> bool {
    let keep = |c: &u8| !matches!(c, b'_' | b'-' | b'.' | b' ');
    // Keys are checked for every member of every event: one pass, no heap copy for
    // the usual short key.
    let mut small = [0u8; SMALL_KEY];
    let large: Vec<u8>;
    let norm: &[u8] = if key.len() <= SMALL_KEY {
        let mut n = 0;
        for c in key.bytes().filter(keep) {
            if let Some(slot) = small.get_mut(n) {
                *slot = c.to_ascii_lowercase();
            }
            n += 1;
        }
        small.get(..n).unwrap_or_default()
    } else {
        large = key
            .bytes()
            .filter(keep)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        &large
    };
    let Some(&first) = norm.first() else {
        return false;
    };
    if KEY_FIRST[usize::from(first)] && SENSITIVE_KEYS.iter().any(|k| k.as_bytes() == norm) {
        return true;
    }
    norm.iter().enumerate().any(|(i, &b)| {
        PART_FIRST[usize::from(b)]
            && norm.get(i..).is_some_and(|rest| {
                SENSITIVE_KEY_PARTS
                    .iter()
                    .any(|p| p.as_bytes().first() == Some(&b) && rest.starts_with(p.as_bytes()))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::Strategy;

    /// The plain reading of the rule, which the fast one must agree with.
    fn reference(key: &str) -> bool {
        let norm: Vec<u8> = key
            .bytes()
            .filter(|c| !matches!(c, b'_' | b'-' | b'.' | b' '))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        SENSITIVE_KEYS
            .iter()
            .any(|k| k.as_bytes() == norm.as_slice())
            || SENSITIVE_KEY_PARTS
                .iter()
                .any(|p| norm.windows(p.len()).any(|w| w == p.as_bytes()))
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_plain_reading(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(SENSITIVE_KEYS.to_vec()).prop_map(String::from),
                    proptest::sample::select(SENSITIVE_KEY_PARTS.to_vec()).prop_map(String::from),
                    "[a-zA-Z_. -]{0,8}",
                ],
                0..5,
            )
        ) {
            let key = parts.concat();
            proptest::prop_assert_eq!(is_sensitive_key(&key), reference(&key), "{:?}", key);
        }
    }

    #[test]
    fn long_keys_and_odd_spellings() {
        let long = format!("{}Card_Security-Code", "x".repeat(80));
        assert!(is_sensitive_key(&long) && reference(&long));
        for k in [
            "CVV",
            "c.v.v",
            "card_exp_month",
            "expected",
            "cidr",
            "",
            "_-. ",
        ] {
            assert_eq!(is_sensitive_key(k), reference(k), "{k}");
        }
    }
}
