//! Money as integer minor units. An [`Amount`] is a figure inside one transaction (whose
//! body names the currency); a [`Money`] carries its currency, and adding two of different
//! currencies is an error rather than a wrong total.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why a money figure was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a 3-letter upper-case ISO 4217 code.
    #[error("{0:?} is not an ISO 4217 currency code (three letters A–Z)")]
    BadCurrency(String),
    /// Not a decimal number.
    #[error("{0:?} is not a decimal amount")]
    NotDecimal(String),
    /// More precision than the currency's minor unit, and the extra digits are not zero.
    #[error("{text:?} is not exact to the minor unit of {currency} ({exponent} decimals)")]
    NotExact {
        /// The figure as given.
        text: String,
        /// Its currency.
        currency: Currency,
        /// The currency's minor-unit exponent.
        exponent: u8,
    },
    /// Beyond ±9.2e18 minor units.
    #[error("amount out of range")]
    Overflow,
    /// Two currencies in one sum.
    #[error("cannot add {0} to {1}")]
    CurrencyMismatch(Currency, Currency),
}

/// ISO 4217 currency code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Constructed only from three ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Decimal places of the minor unit (ISO 4217); 2 unless the code is known otherwise.
    pub fn exponent(self) -> u8 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_uppercase()) => {
                Ok(Currency([*a, *b, *c]))
            }
            _ => Err(MoneyError::BadCurrency(s.chars().take(16).collect())),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A figure in minor units of the enclosing transaction's currency (cents, pence, yen).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Amount(i64);

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);

    /// Wraps a count of minor units.
    pub const fn minor(units: i64) -> Self {
        Amount(units)
    }

    /// The count of minor units.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// Parses a decimal major-unit figure ("79.990", "-12.5", "3") exactly: digits beyond
    /// the currency's exponent must be zeros, because rounding money silently is a defect.
    pub fn parse_major(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let exponent = currency.exponent();
        let d: super::Decimal = text
            .trim()
            .parse()
            .map_err(|_| MoneyError::NotDecimal(text.chars().take(32).collect()))?;
        d.rescale(exponent)
            .map(Amount)
            .ok_or_else(|| MoneyError::NotExact {
                text: text.chars().take(32).collect(),
                currency,
                exponent,
            })
    }

    /// Sum, or `Overflow`.
    pub fn checked_add(self, other: Amount) -> Result<Amount, MoneyError> {
        self.0
            .checked_add(other.0)
            .map(Amount)
            .ok_or(MoneyError::Overflow)
    }

    /// Sums figures of one currency.
    pub fn sum<I: IntoIterator<Item = Amount>>(items: I) -> Result<Amount, MoneyError> {
        items
            .into_iter()
            .try_fold(Amount::ZERO, |acc, a| acc.checked_add(a))
    }

    /// The negated figure (a refund of this amount).
    pub fn checked_neg(self) -> Result<Amount, MoneyError> {
        self.0.checked_neg().map(Amount).ok_or(MoneyError::Overflow)
    }

    /// This figure in a currency.
    pub fn of(self, currency: Currency) -> Money {
        Money {
            amount: self,
            currency,
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An amount with its currency: what crosses transaction boundaries (summaries, reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Money {
    /// Minor units.
    pub amount: Amount,
    /// ISO 4217 code.
    pub currency: Currency,
}

impl Money {
    /// Sum of two figures of the same currency; different currencies are refused.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(other.currency, self.currency));
        }
        Ok(self.amount.checked_add(other.amount)?.of(self.currency))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exp = u32::from(self.currency.exponent());
        let scale = 10i128.pow(exp);
        let v = i128::from(self.amount.get());
        let sign = if v < 0 { "-" } else { "" };
        let (major, minor) = (v.abs() / scale, v.abs() % scale);
        if exp == 0 {
            write!(f, "{sign}{major} {}", self.currency)
        } else {
            write!(
                f,
                "{sign}{major}.{minor:0width$} {}",
                self.currency,
                width = exp as usize
            )
        }
    }
}

/// Three capital letters, as [`Currency`]'s parser accepts them.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for Currency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[A-Z]{3}$",
            "description": "ISO 4217 currency code.",
            "examples": ["EUR", "USD", "JPY"],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        "EUR".parse().unwrap()
    }

    #[test]
    fn major_units_parse_exactly_or_not_at_all() {
        assert_eq!(
            Amount::parse_major("79.990", eur()),
            Ok(Amount::minor(7999))
        );
        assert_eq!(
            Amount::parse_major("-12.5", eur()),
            Ok(Amount::minor(-1250))
        );
        assert_eq!(Amount::parse_major("3", eur()), Ok(Amount::minor(300)));
        assert!(matches!(
            Amount::parse_major("0.995", eur()),
            Err(MoneyError::NotExact { .. })
        ));
        assert!(Amount::parse_major("12,50", eur()).is_err());
        let jpy: Currency = "JPY".parse().unwrap();
        assert_eq!(Amount::parse_major("1200", jpy), Ok(Amount::minor(1200)));
        assert!(Amount::parse_major("1200.5", jpy).is_err());
        let kwd: Currency = "KWD".parse().unwrap();
        assert_eq!(Amount::parse_major("1.250", kwd), Ok(Amount::minor(1250)));
    }

    #[test]
    fn mixing_currencies_is_an_error() {
        let usd: Currency = "USD".parse().unwrap();
        let a = Amount::minor(100).of(eur());
        assert!(matches!(
            a.checked_add(Amount::minor(1).of(usd)),
            Err(MoneyError::CurrencyMismatch(..))
        ));
        assert_eq!(
            a.checked_add(Amount::minor(5).of(eur()))
                .unwrap()
                .to_string(),
            "1.05 EUR"
        );
        assert_eq!(Amount::minor(-7).of(eur()).to_string(), "-0.07 EUR");
    }

    #[test]
    fn currency_codes_are_checked() {
        for bad in ["eur", "EURO", "E1R", ""] {
            assert!(bad.parse::<Currency>().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Currency>("\"usd\"").is_err());
        assert_eq!(serde_json::to_string(&eur()).unwrap(), "\"EUR\"");
    }

    #[test]
    fn overflow_is_reported() {
        assert_eq!(
            Amount::minor(i64::MAX).checked_add(Amount::minor(1)),
            Err(MoneyError::Overflow)
        );
        assert!(Amount::parse_major("99999999999999999999", eur()).is_err());
    }
}
