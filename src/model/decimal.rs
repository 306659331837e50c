//! Exact decimal numbers for quantities and tax rates ("0.420", "-2", "0.19"): never
//! floats, and the scale the register sent is kept when the number is written back.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Most fractional digits accepted; enough for weights in grams and rates in basis points.
pub const MAX_SCALE: u8 = 9;

/// Why a decimal string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a decimal number (digits, one optional '.', at most {MAX_SCALE} decimals)")]
pub struct DecimalError(String);

/// A decimal as `units × 10^-scale`.
#[derive(Debug, Clone, Copy)]
pub struct Decimal {
    units: i64,
    scale: u8,
}

impl Decimal {
    /// Zero with no decimals.
    pub const ZERO: Decimal = Decimal { units: 0, scale: 0 };

    /// `units × 10^-scale`, e.g. `(420, 3)` is 0.420.
    pub fn new(units: i64, scale: u8) -> Option<Self> {
        (scale <= MAX_SCALE).then_some(Decimal { units, scale })
    }

    /// An integer.
    pub const fn from_int(n: i64) -> Self {
        Decimal { units: n, scale: 0 }
    }

    /// Digits after the point as written.
    pub fn scale(self) -> u8 {
        self.scale
    }

    /// The integer `units` at `scale`, when representable without losing non-zero digits.
    pub fn rescale(self, scale: u8) -> Option<i64> {
        match scale.cmp(&self.scale) {
            Ordering::Equal => Some(self.units),
            Ordering::Greater => self
                .units
                .checked_mul(10i64.checked_pow(u32::from(scale - self.scale))?),
            Ordering::Less => {
                let div = 10i64.checked_pow(u32::from(self.scale - scale))?;
                (self.units % div == 0).then_some(self.units / div)
            }
        }
    }

    /// Sum at the larger of the two scales, or `None` on overflow.
    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        let units = self.rescale(scale)?.checked_add(other.rescale(scale)?)?;
        Some(Decimal { units, scale })
    }

    /// The negated number.
    pub fn checked_neg(self) -> Option<Decimal> {
        Some(Decimal {
            units: self.units.checked_neg()?,
            scale: self.scale,
        })
    }

    /// True below zero.
    pub fn is_negative(self) -> bool {
        self.units < 0
    }

    /// True when zero at any scale.
    pub fn is_zero(self) -> bool {
        self.units == 0
    }

    /// Product with an integer amount, rounded half away from zero at scale 0: the
    /// extended price of a quantity, or the tax on a net amount.
    pub fn mul_round(self, amount: i64) -> Option<i64> {
        let div = 10i128.checked_pow(u32::from(self.scale))?;
        let p = i128::from(self.units).checked_mul(i128::from(amount))?;
        let q = p / div;
        let r = p % div;
        let rounded = if r.abs() * 2 >= div {
            q + p.signum()
        } else {
            q
        };
        i64::try_from(rounded).ok()
    }

    /// The same number with trailing fractional zeros removed ("1.500" → "1.5").
    pub fn normalized(self) -> Decimal {
        let mut d = self;
        while d.scale > 0 && d.units % 10 == 0 {
            d.units /= 10;
            d.scale -= 1;
        }
        d
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Decimal {}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let scale = self.scale.max(other.scale);
        let widen = |d: &Decimal| i128::from(d.units) * 10i128.pow(u32::from(scale - d.scale));
        widen(self).cmp(&widen(other))
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || DecimalError(s.chars().take(32).collect());
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty())
            || !all_digits(int)
            || !all_digits(frac)
            || (body.contains('.') && frac.is_empty())
        {
            return Err(bad());
        }
        let scale = u8::try_from(frac.len())
            .ok()
            .filter(|s| *s <= MAX_SCALE)
            .ok_or_else(bad)?;
        let mut units: i64 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(i64::from(b - b'0')))
                .ok_or_else(bad)?;
        }
        Ok(Decimal {
            units: if negative { -units } else { units },
            scale,
        })
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.units < 0 { "-" } else { "" };
        let abs = self.units.unsigned_abs();
        if self.scale == 0 {
            return write!(f, "{sign}{abs}");
        }
        let div = 10u64.pow(u32::from(self.scale));
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / div,
            abs % div,
            width = usize::from(self.scale)
        )
    }
}

impl Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A decimal string as [`Decimal`]'s parser accepts it: an optional sign, digits with at
/// most [`MAX_SCALE`] decimals ("0.420", "-2", ".5"); never a JSON number.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for Decimal {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Decimal".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": format!("^[+-]?(?:[0-9]+(?:\\.[0-9]{{1,{MAX_SCALE}}})?|\\.[0-9]{{1,{MAX_SCALE}}})$"),
            "description": "An exact decimal number as a string (\"0.420\"), never a JSON number.",
            "examples": ["1", "0.420", "-2.000", "0.19"],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints_with_the_scale_given() {
        for s in ["0.420", "-2", "0.19", "12.000", "0", "-0.5"] {
            assert_eq!(s.parse::<Decimal>().unwrap().to_string(), s);
        }
        assert_eq!("+3".parse::<Decimal>().unwrap().to_string(), "3");
        for bad in [
            "",
            ".",
            "1.",
            "1e3",
            "1,5",
            "--1",
            "0.1234567890",
            "NaN",
            " 1",
        ] {
            assert!(bad.parse::<Decimal>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn compares_across_scales() {
        let a: Decimal = "1.50".parse().unwrap();
        let b: Decimal = "1.5".parse().unwrap();
        assert_eq!(a, b);
        assert!("0.999".parse::<Decimal>().unwrap() < Decimal::from_int(1));
        assert_eq!(a.normalized().to_string(), "1.5");
    }

    #[test]
    fn multiplies_with_half_away_from_zero() {
        let q: Decimal = "0.425".parse().unwrap();
        assert_eq!(q.mul_round(1299), Some(552)); // 552.075
        let r: Decimal = "0.19".parse().unwrap();
        assert_eq!(r.mul_round(250), Some(48)); // 47.5
        assert_eq!(r.mul_round(-250), Some(-48));
    }

    proptest! {
        #[test]
        fn text_round_trips(units in any::<i64>(), scale in 0u8..=MAX_SCALE) {
            let d = Decimal::new(units, scale).unwrap();
            let back: Decimal = d.to_string().parse().unwrap();
            prop_assert_eq!(back.to_string(), d.to_string());
            prop_assert_eq!(back, d);
        }

        #[test]
        fn addition_is_exact(a in -1_000_000_000i64..1_000_000_000, b in -1_000_000_000i64..1_000_000_000,
                             sa in 0u8..=6, sb in 0u8..=6) {
            let x = Decimal::new(a, sa).unwrap();
            let y = Decimal::new(b, sb).unwrap();
            let s = x.checked_add(y).unwrap();
            prop_assert_eq!(s.checked_add(y.checked_neg().unwrap()).unwrap(), x);
        }
    }
}
