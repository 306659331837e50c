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

pub(super) fn is_sensitive_key(key: &str) -> bool {
    let keep = |c: &u8| !matches!(c, b'_' | b'-' | b'.' | b' ');
    let len = key.bytes().filter(keep).count();
    // Keys are checked for every member of every event: avoid a heap copy for the
    // usual short key.
    let mut small = [0u8; 64];
    let large: Vec<u8>;
    let norm: &[u8] = if len <= small.len() {
        for (slot, c) in small.iter_mut().zip(key.bytes().filter(keep)) {
            *slot = c.to_ascii_lowercase();
        }
        small.get(..len).unwrap_or_default()
    } else {
        large = key
            .bytes()
            .filter(keep)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        &large
    };
    SENSITIVE_KEYS.iter().any(|k| k.as_bytes() == norm)
        || SENSITIVE_KEY_PARTS
            .iter()
            .any(|p| norm.windows(p.len()).any(|w| w == p.as_bytes()))
}
