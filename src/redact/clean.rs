//! `json_is_clean`: a serde visitor that judges a JSON text without building a value.

use std::borrow::Cow;

use super::split::{self, Unit};
use super::{NUMBER_FLOOR, key_is_clean, scan};

/// More elements than a split PAN can have parts: such an array is not one.
const MAX_SPLIT_ITEMS: usize = split::MAX_PARTS + 1;

pub(super) fn str_is_clean(s: &str) -> bool {
    scan(s.as_bytes()).is_none()
}

/// Judges one JSON text: `None` when it does not parse.
pub(super) fn judge(json: &str) -> Option<Clean> {
    let mut de = serde_json::Deserializer::from_str(json);
    let verdict: Clean = serde::Deserialize::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(verdict)
}

/// Verdict of [`super::json_is_clean`] for one value.
pub(super) struct Clean {
    /// Nothing in the value is to be redacted.
    pub(super) clean: bool,
    /// What the value is to the split rule, when it is a string that takes part.
    pub(super) unit: Option<Unit>,
}

impl Clean {
    fn is(clean: bool) -> Clean {
        Clean { clean, unit: None }
    }
}

/// Verdict for one object key, with the key (borrowed unless it had escapes).
struct CleanKey<'de> {
    clean: bool,
    key: Cow<'de, str>,
}

impl<'de> serde::Deserialize<'de> for Clean {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CleanVisitor)
    }
}

impl<'de> serde::Deserialize<'de> for CleanKey<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> serde::de::Visitor<'de> for KeyVisitor {
    type Value = CleanKey<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<CleanKey<'de>, E> {
        Ok(CleanKey {
            clean: key_is_clean(key),
            key: Cow::Borrowed(key),
        })
    }
    fn visit_str<E>(self, key: &str) -> Result<CleanKey<'de>, E> {
        Ok(CleanKey {
            clean: key_is_clean(key),
            key: Cow::Owned(key.to_owned()),
        })
    }
}

struct CleanVisitor;

impl<'de> serde::de::Visitor<'de> for CleanVisitor {
    type Value = Clean;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Clean, E> {
        Ok(Clean::is(true))
    }
    fn visit_unit<E>(self) -> Result<Clean, E> {
        Ok(Clean::is(true))
    }
    // The same threshold as `redact_json`: smaller integers cannot hold a PAN.
    fn visit_i64<E>(self, v: i64) -> Result<Clean, E> {
        Ok(Clean::is(v.unsigned_abs() < NUMBER_FLOOR))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Clean, E> {
        Ok(Clean::is(v < NUMBER_FLOOR))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Clean, E> {
        Ok(Clean::is(false))
    }
    fn visit_str<E>(self, s: &str) -> Result<Clean, E> {
        Ok(Clean {
            clean: str_is_clean(s),
            unit: split::classify(s.as_bytes()),
        })
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Clean, A::Error> {
        let mut clean = true;
        // Only short arrays can be a split PAN; no allocation for the others.
        let mut items = [None; MAX_SPLIT_ITEMS];
        let mut n = 0;
        while let Some(v) = seq.next_element::<Clean>()? {
            clean &= v.clean;
            if let Some(slot) = items.get_mut(n) {
                *slot = v.unit;
            }
            n += 1;
        }
        let split = items.get(..n).is_some_and(split::array_is_split);
        Ok(Clean::is(clean && !split))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Clean, A::Error> {
        let mut clean = true;
        // `redact_json` sees an object's members in key order, the last of duplicate
        // keys winning (serde_json's map); from the first member that takes part in
        // the split rule on, every member is noted so that order can be rebuilt.
        let mut noted: Vec<(Cow<'de, str>, Option<Unit>)> = Vec::new();
        while let Some(k) = map.next_key::<CleanKey<'de>>()? {
            let v: Clean = map.next_value()?;
            clean &= k.clean && v.clean;
            if v.unit.is_some() || !noted.is_empty() {
                noted.push((k.key, v.unit));
            }
        }
        if clean && noted.len() >= 2 {
            clean = members_split_clean(noted);
        }
        Ok(Clean::is(clean))
    }
}

/// No split PAN among these members (any order, duplicates resolved as serde_json
/// does: the last one wins).
fn members_split_clean(mut noted: Vec<(Cow<'_, str>, Option<Unit>)>) -> bool {
    // A stable sort keeps duplicates in document order, so the last of each is kept.
    noted.sort_by(|a, b| a.0.cmp(&b.0));
    let units: Vec<(&str, Unit)> = noted
        .iter()
        .enumerate()
        .filter(|(i, (k, _))| noted.get(i + 1).is_none_or(|next| next.0 != *k))
        .filter_map(|(_, (k, u))| u.map(|u| (k.as_ref(), u)))
        .collect();
    split::object_groups(&units).is_empty()
}
