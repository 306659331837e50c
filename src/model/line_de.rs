//! `Line`'s `Deserialize`: the members of every kind of line read in one pass, then the
//! kind's own line built from them.
//!
//! serde's derive for an internally tagged enum first buffers each element as a
//! `Content` tree (an allocation per string and map) to find the tag: on the ingest
//! path that buffering was the largest single cost of reading a transaction. Reading
//! into one flat struct needs no buffer and works with every deserializer (text, a
//! `serde_json::Value`). A member a kind does not have is ignored, as before, when it
//! has the type the kind that owns it gives it.

use super::transaction::{
    Auth, Card, ChangeLine, DiscountLine, ItemLine, Line, LineTax, Modifier, RoundingLine, TaxLine,
    TenderLine, TenderType,
};
use super::{Amount, Decimal};
use serde::de::Error;
use serde::{Deserialize, Deserializer};

/// The `kind` tag.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum LineKind {
    Item,
    Discount,
    Rounding,
    Tax,
    Tender,
    Change,
}

/// Every member any kind of line has.
#[derive(Deserialize)]
struct AnyLine {
    kind: Option<LineKind>,
    line: Option<u32>,
    amount: Option<Amount>,
    description: Option<String>,
    code: Option<String>,
    // item
    sku: Option<String>,
    gtin: Option<String>,
    department: Option<String>,
    quantity: Option<Decimal>,
    uom: Option<String>,
    unit_price: Option<Amount>,
    extended: Option<Amount>,
    taxes: Option<Vec<LineTax>>,
    modifiers: Option<Vec<Modifier>>,
    void: Option<bool>,
    voids_line: Option<u32>,
    no_sku: Option<bool>,
    // discount
    applies_to_line: Option<u32>,
    loyalty: Option<bool>,
    // tax
    rate: Option<Decimal>,
    taxable: Option<Amount>,
    // tender and change
    #[serde(rename = "type")]
    tender_type: Option<TenderType>,
    card: Option<Card>,
    auth: Option<Auth>,
}

/// A member the kind requires.
fn required<T, E: Error>(v: Option<T>, name: &'static str) -> Result<T, E> {
    v.ok_or_else(|| E::missing_field(name))
}

impl AnyLine {
    fn into_line<E: Error>(self) -> Result<Line, E> {
        // The tag first, as serde's derive reads it.
        let kind = required(self.kind, "kind")?;
        let line = required(self.line, "line")?;
        Ok(match kind {
            LineKind::Item => Line::Item(ItemLine {
                line,
                sku: self.sku,
                gtin: self.gtin,
                description: self.description,
                department: self.department,
                quantity: required(self.quantity, "quantity")?,
                uom: self.uom,
                unit_price: self.unit_price,
                extended: required(self.extended, "extended")?,
                taxes: self.taxes.unwrap_or_default(),
                modifiers: self.modifiers.unwrap_or_default(),
                void: self.void.unwrap_or_default(),
                voids_line: self.voids_line,
                no_sku: self.no_sku.unwrap_or_default(),
            }),
            LineKind::Discount => Line::Discount(DiscountLine {
                line,
                amount: required(self.amount, "amount")?,
                description: self.description,
                code: self.code,
                applies_to_line: self.applies_to_line,
                loyalty: self.loyalty.unwrap_or_default(),
            }),
            LineKind::Rounding => Line::Rounding(RoundingLine {
                line,
                amount: required(self.amount, "amount")?,
            }),
            LineKind::Tax => Line::Tax(TaxLine {
                line,
                code: self.code,
                rate: self.rate,
                taxable: self.taxable,
                amount: required(self.amount, "amount")?,
            }),
            LineKind::Tender => Line::Tender(TenderLine {
                line,
                tender_type: required(self.tender_type, "type")?,
                amount: required(self.amount, "amount")?,
                card: self.card,
                auth: self.auth,
                description: self.description,
            }),
            LineKind::Change => Line::Change(ChangeLine {
                line,
                amount: required(self.amount, "amount")?,
                tender_type: self.tender_type,
            }),
        })
    }
}

impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        AnyLine::deserialize(d)?.into_line()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What serde's own derive for the tagged enum reads: the reference.
    #[derive(Deserialize, PartialEq, Debug)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Tagged {
        Item(ItemLine),
        Discount(DiscountLine),
        Rounding(RoundingLine),
        Tax(TaxLine),
        Tender(TenderLine),
        Change(ChangeLine),
    }

    fn tagged(v: &serde_json::Value) -> Option<Line> {
        Some(match serde_json::from_value::<Tagged>(v.clone()).ok()? {
            Tagged::Item(l) => Line::Item(l),
            Tagged::Discount(l) => Line::Discount(l),
            Tagged::Rounding(l) => Line::Rounding(l),
            Tagged::Tax(l) => Line::Tax(l),
            Tagged::Tender(l) => Line::Tender(l),
            Tagged::Change(l) => Line::Change(l),
        })
    }

    #[test]
    fn every_generated_line_reads_as_the_tagged_derive_reads_it() {
        let mut g = crate::sim::generate::Generator::new(
            3,
            crate::sim::generate::Profile::Retail,
            "reg-1",
            "2026-11-27",
        );
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let e = g.next_event();
            for l in e["body"]["lines"].as_array().into_iter().flatten() {
                let want = tagged(l).expect("the generator writes valid lines");
                let text = serde_json::to_string(l).unwrap();
                assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), want, "{text}");
                assert_eq!(serde_json::from_value::<Line>(l.clone()).unwrap(), want);
                kinds.insert(l["kind"].as_str().unwrap().to_string());
            }
        }
        assert!(kinds.len() >= 4, "{kinds:?}");
    }

    #[test]
    fn refusals_match_the_tagged_derive() {
        let cases = [
            json!({"line": 1, "amount": 5}),
            json!({"kind": "coupon", "line": 1, "amount": 5}),
            json!({"kind": "tender", "line": 1, "amount": 5}),
            json!({"kind": "item", "line": 1, "quantity": "1"}),
            json!({"kind": "rounding", "amount": 5}),
            json!({"kind": "tax", "line": "1", "amount": 5}),
        ];
        for c in cases {
            assert!(tagged(&c).is_none(), "the reference refuses {c}");
            let err = serde_json::from_value::<Line>(c.clone()).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("missing field")
                    || text.contains("unknown variant")
                    || text.contains("invalid type"),
                "{c}: {text}"
            );
        }
        let fine = json!({"kind": "rounding", "line": 3, "amount": -2, "sku": "x"});
        assert_eq!(
            serde_json::from_value::<Line>(fine.clone()).ok(),
            tagged(&fine)
        );
    }
}
