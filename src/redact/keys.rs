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

/// Three lower-case letters as a number below 26³, when they are letters.
const fn trigram(a: u8, b: u8, c: u8) -> Option<usize> {
    if a.is_ascii_lowercase() && b.is_ascii_lowercase() && c.is_ascii_lowercase() {
        Some(((a - b'a') as usize * 26 + (b - b'a') as usize) * 26 + (c - b'a') as usize)
    } else {
        None
    }
}

/// The first three bytes of a list's entries, as a bit set of trigrams: a key position
/// whose next three bytes are not one of them cannot start a match, so nearly every
/// position costs one look-up (every entry starts with three letters: checked here at
/// compile time).
const fn first_trigrams(list: &[&str]) -> [u64; 26 * 26 * 26 / 64 + 1] {
    let mut table = [0u64; 26 * 26 * 26 / 64 + 1];
    let mut i = 0;
    while i < list.len() {
        let e = list[i].as_bytes();
        assert!(e.len() >= 3, "an entry is shorter than three bytes");
        let Some(t) = trigram(e[0], e[1], e[2]) else {
            panic!("an entry does not start with three lower-case letters");
        };
        table[t / 64] |= 1 << (t % 64);
        i += 1;
    }
    table
}

const KEY_FIRST: [u64; 26 * 26 * 26 / 64 + 1] = first_trigrams(SENSITIVE_KEYS);
const PART_FIRST: [u64; 26 * 26 * 26 / 64 + 1] = first_trigrams(SENSITIVE_KEY_PARTS);

/// `b` starts with a trigram in `table`.
fn starts_like(table: &[u64; 26 * 26 * 26 / 64 + 1], b: &[u8]) -> bool {
    match b {
        [x, y, z, ..] => trigram(*x, *y, *z)
            .is_some_and(|t| table.get(t / 64).is_some_and(|w| w & (1 << (t % 64)) != 0)),
        _ => false,
    }
}

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
    if starts_like(&KEY_FIRST, norm) && SENSITIVE_KEYS.iter().any(|k| k.as_bytes() == norm) {
        return true;
    }
    (0..norm.len()).any(|i| {
        norm.get(i..).is_some_and(|rest| {
            starts_like(&PART_FIRST, rest)
                && SENSITIVE_KEY_PARTS
                    .iter()
                    .any(|p| rest.starts_with(p.as_bytes()))
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
