//! `json_is_clean`: a serde visitor that judges a JSON text without building a value.

use std::borrow::Cow;

use super::keys::is_sensitive_key;
use super::split::{self, Unit};
use super::{NUMBER_FLOOR, key_is_clean, scan};

/// More elements than a split PAN can have parts: such an array is not one.
const MAX_SPLIT_ITEMS: usize = split::MAX_PARTS + 1;

pub(super) fn str_is_clean(s: &str) -> bool {
    scan(s.as_bytes()).is_none()
}

/// Judges one JSON text: `None` when it does not parse.
///
/// `prescanned`: the text is a byte-for-byte part of input the byte redactor found
/// nothing in. Its strings without escapes are then that input's bytes between two `"`,
/// and no rule of the byte redactor reaches across a `"` (runs, tracks, blob tokens and
/// character references all stop there; `prop_a_quoted_string_is_no_dirtier_than_its_input`
/// checks it), so they need no second scan. Keys are still checked for sensitive names,
/// numbers and the split rule as always: the byte redactor knows nothing of those.
pub(super) fn judge(json: &str, prescanned: bool) -> Option<Clean> {
    // With no string to scan, a walk over the bytes is a fraction of a serde pass.
    if prescanned && let Some(verdict) = super::walk::judge(json) {
        return Some(verdict);
    }
    read(json, prescanned)
}

/// [`judge`] by a serde pass.
pub(super) fn read(json: &str, prescanned: bool) -> Option<Clean> {
    let mut de = serde_json::Deserializer::from_str(json);
    let verdict = serde::de::DeserializeSeed::deserialize(Judge { prescanned }, &mut de).ok()?;
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

/// Judges one value; `prescanned` as in [`judge`].
#[derive(Clone, Copy)]
struct Judge {
    prescanned: bool,
}

/// Judges one object key; `prescanned` as in [`judge`].
struct JudgeKey {
    prescanned: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for Judge {
    type Value = Clean;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Clean, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for JudgeKey {
    type Value = CleanKey<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<CleanKey<'de>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JudgeKey {
    type Value = CleanKey<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }
    // Borrowed: no escapes, so the key is the input's own bytes.
    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<CleanKey<'de>, E> {
        let clean = if self.prescanned {
            !is_sensitive_key(key)
        } else {
            key_is_clean(key)
        };
        Ok(CleanKey {
            clean,
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

impl<'de> serde::de::Visitor<'de> for Judge {
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
    // Borrowed: no escapes, so the string is the input's own bytes.
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Clean, E> {
        Ok(Clean {
            clean: self.prescanned || str_is_clean(s),
            unit: split::classify(s.as_bytes()),
        })
    }
    fn visit_str<E>(self, s: &str) -> Result<Clean, E> {
        Ok(Clean {
            clean: str_is_clean(s),
            unit: split::classify(s.as_bytes()),
        })
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Clean, A::Error> {
        let mut verdict = ArrayVerdict::default();
        while let Some(v) = seq.next_element_seed(self)? {
            verdict.add(v);
        }
        Ok(verdict.finish())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Clean, A::Error> {
        let mut verdict = ObjectVerdict::default();
        let key = || JudgeKey {
            prescanned: self.prescanned,
        };
        while let Some(k) = map.next_key_seed(key())? {
            let v = map.next_value_seed(self)?;
            verdict.add(k.clean, k.key, v);
        }
        Ok(verdict.finish())
    }
}

/// An array's verdict, element by element.
#[derive(Default)]
pub(super) struct ArrayVerdict {
    // Only short arrays can be a split PAN; no allocation for the others.
    items: [Option<Unit>; MAX_SPLIT_ITEMS],
    n: usize,
    dirty: bool,
}

impl ArrayVerdict {
    /// The next element's verdict.
    pub(super) fn add(&mut self, v: Clean) {
        self.dirty |= !v.clean;
        if let Some(slot) = self.items.get_mut(self.n) {
            *slot = v.unit;
        }
        self.n += 1;
    }

    /// Clean when every element is and they hold no split PAN.
    pub(super) fn finish(self) -> Clean {
        let split = self.items.get(..self.n).is_some_and(split::array_is_split);
        Clean::is(!self.dirty && !split)
    }
}

/// An object's verdict, member by member.
#[derive(Default)]
pub(super) struct ObjectVerdict<'k> {
    dirty: bool,
    // `redact_json` sees an object's members in key order, the last of duplicate keys
    // winning (serde_json's map); from the first member that takes part in the split
    // rule on, every member is noted so that order can be rebuilt.
    noted: Vec<(Cow<'k, str>, Option<Unit>)>,
}

impl<'k> ObjectVerdict<'k> {
    /// The next member: whether its key is clean, the key, the value's verdict.
    pub(super) fn add(&mut self, key_clean: bool, key: Cow<'k, str>, v: Clean) {
        self.dirty |= !(key_clean && v.clean);
        if v.unit.is_some() || !self.noted.is_empty() {
            self.noted.push((key, v.unit));
        }
    }

    /// Clean when every member is and they hold no split PAN.
    pub(super) fn finish(self) -> Clean {
        if self.dirty {
            return Clean::is(false);
        }
        Clean::is(self.noted.len() < 2 || members_split_clean(self.noted))
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
