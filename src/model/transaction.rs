//! The `transaction` body of `posedge.event/1` (DESIGN §3).

use super::{Amount, Currency, Decimal};
use serde::{Deserialize, Serialize};

/// How the transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Status {
    /// Paid and closed.
    Completed,
    /// Voided (incl. post-void).
    Voided,
    /// Parked to be resumed later.
    Suspended,
    /// A suspended transaction taken up again.
    Resumed,
    /// Abandoned before payment.
    Cancelled,
}

/// Sale, return or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Kind {
    /// Goods out, money in.
    Sale,
    /// Goods back, money out.
    Return,
    /// Both in one transaction.
    Exchange,
}

/// A register's own transaction number (`pos_sequence`): numeric or textual.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum PosSequence {
    /// The common case.
    Number(u64),
    /// Registers that number with prefixes ("A-0042").
    Text(String),
}

/// A reference to another transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Link {
    /// Why the transactions are linked.
    pub reason: LinkReason,
    /// The other transaction's number.
    pub pos_sequence: PosSequence,
    /// Its register, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_id: Option<String>,
    /// Its business day, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_day: Option<String>,
    /// The line referred to, when one line is meant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// The relation a [`Link`] expresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum LinkReason {
    /// This transaction returns goods of the linked one.
    Return,
    /// This transaction voids the linked one after it closed.
    PostVoid,
    /// This transaction resumes the linked suspended one.
    Resume,
}

/// One tax applied to an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LineTax {
    /// The register's tax code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Rate as a fraction ("0.19").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Decimal>,
    /// Tax amount on this line, when the register states it (some name only the tax code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
}

/// A price modifier, discount or loyalty reward attached to an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Modifier {
    /// What the receipt says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Effect on the line (negative for a reduction), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// Register's code for the modifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// A sold or returned article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ItemLine {
    /// Line number within the transaction.
    pub line: u32,
    /// Article number, as the register has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// GTIN (EAN/UPC), when scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtin: Option<String>,
    /// Text on the receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Department or merchandise group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Signed quantity (negative on returns).
    pub quantity: Decimal,
    /// Unit of measure ("ea", "kg").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uom: Option<String>,
    /// Price per unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Amount>,
    /// Line amount before discounts.
    pub extended: Amount,
    /// Taxes on this line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taxes: Vec<LineTax>,
    /// Modifiers (options, price overrides, rewards).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifiers: Vec<Modifier>,
    /// The line was voided and does not count.
    #[serde(default, skip_serializing_if = "is_false")]
    pub void: bool,
    /// This line cancels an earlier one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voids_line: Option<u32>,
    /// The article had no SKU (open department sale).
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_sku: bool,
}

/// A discount line (negative amount on a sale).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DiscountLine {
    /// Line number.
    pub line: u32,
    /// Signed amount.
    pub amount: Amount,
    /// What the receipt says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Register's discount or promotion code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The item line it reduces; none for a transaction discount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to_line: Option<u32>,
    /// A loyalty reward rather than a promotion.
    #[serde(default, skip_serializing_if = "is_false")]
    pub loyalty: bool,
}

/// Cash rounding (e.g. to 5 cents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RoundingLine {
    /// Line number.
    pub line: u32,
    /// Signed amount.
    pub amount: Amount,
}

/// One tax rate's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaxLine {
    /// Line number.
    pub line: u32,
    /// Register's tax code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Rate as a fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Decimal>,
    /// Net amount the rate applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taxable: Option<Amount>,
    /// Tax at this rate.
    pub amount: Amount,
}

/// Means of payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum TenderType {
    /// Notes and coins.
    Cash,
    /// Credit card.
    Credit,
    /// Debit card.
    Debit,
    /// Gift card.
    GiftCard,
    /// Food stamps / EBT.
    Ebt,
    /// Cheque.
    Check,
    /// Store credit.
    StoreCredit,
    /// Mobile wallet.
    Mobile,
    /// Voucher or coupon tender.
    Voucher,
    /// Anything else.
    Other,
}

/// A payment card, masked: never more than BIN and last four.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(transform = crate::model::schema::masked_pan)
)]
pub struct Card {
    /// Scheme ("visa", "mastercard").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Last four digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last4: Option<String>,
    /// First six digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    /// Processor token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// chip, swipe, contactless, manual, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_mode: Option<String>,
}

/// Outcome of a card authorisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum AuthStatus {
    /// Approved online.
    Approved,
    /// Declined.
    Declined,
    /// Approved by the terminal while offline.
    OfflineApproved,
    /// Not yet answered.
    Pending,
    /// Reversed (e.g. by a post-void).
    Reversed,
}

/// A card authorisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Auth {
    /// Outcome.
    pub status: AuthStatus,
    /// Approval code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// A payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TenderLine {
    /// Line number.
    pub line: u32,
    /// Means of payment.
    #[serde(rename = "type")]
    pub tender_type: TenderType,
    /// Signed amount (negative when refunded).
    pub amount: Amount,
    /// The card, masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    /// Its authorisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// Register's tender code or text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Change handed back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChangeLine {
    /// Line number.
    pub line: u32,
    /// Amount given back (positive).
    pub amount: Amount,
    /// Tender the change was given in, when not cash.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub tender_type: Option<TenderType>,
}

// Deserialize is `line_de`'s: no buffering of the tagged element.
/// A transaction line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Line {
    /// Article.
    Item(ItemLine),
    /// Discount.
    Discount(DiscountLine),
    /// Cash rounding.
    Rounding(RoundingLine),
    /// Tax at one rate.
    Tax(TaxLine),
    /// Payment.
    Tender(TenderLine),
    /// Change.
    Change(ChangeLine),
}

/// The register's totals, as it printed them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Totals {
    /// Sum of item lines.
    pub gross: Amount,
    /// Sum of discounts (≤ 0 on a sale).
    pub discounts: Amount,
    /// Sum of taxes.
    pub tax: Amount,
    /// What the customer owes.
    pub grand: Amount,
    /// Sum of tenders.
    pub tendered: Amount,
    /// Change given.
    pub change: Amount,
    /// Number of articles, signed; a weighed line counts as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_count: Option<i64>,
}

/// The customer, by reference only (no names or addresses in events).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Customer {
    /// Customer number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Loyalty card number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loyalty_id: Option<String>,
}

/// The body of a `transaction` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Transaction {
    /// How it ended.
    pub status: Status,
    /// Sale, return or exchange.
    pub kind: Kind,
    /// Currency of every amount in the body.
    pub currency: Currency,
    /// Lines in register order.
    pub lines: Vec<Line>,
    /// Register totals.
    pub totals: Totals,
    /// Related transactions.
    #[serde(default)]
    pub links: Vec<Link>,
    /// Customer reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    /// Where lines and totals disagree (DESIGN §3): kept as the register sent them, never fixed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrity: Vec<String>,
    /// What the config's mapping rules noticed (a wrong GTIN check digit, an unmapped
    /// code): set by ingest, never by a decoder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mapping: Vec<String>,
}

impl Transaction {
    /// The totals as the lines add up: voided items, and reversals of voided items, do not
    /// count; tax is the tax lines, else the item taxes; grand is tax-exclusive. `None` on
    /// overflow. `item_count` is left `None`: it cannot be derived from weighed lines.
    pub fn line_sums(&self) -> Option<Totals> {
        let gross = Amount::sum(self.counted_items().map(|i| i.extended)).ok()?;
        let discounts = self.sum_lines(|l| matches!(l, Line::Discount(_)))?;
        let tax = if self.lines.iter().any(|l| matches!(l, Line::Tax(_))) {
            self.sum_lines(|l| matches!(l, Line::Tax(_)))?
        } else {
            let taxes = self.counted_items().flat_map(|i| i.taxes.iter());
            Amount::sum(taxes.map(|t| t.amount.unwrap_or(Amount::ZERO))).ok()?
        };
        let rounding = self.sum_lines(|l| matches!(l, Line::Rounding(_)))?;
        Some(Totals {
            gross,
            discounts,
            tax,
            grand: Amount::sum([gross, discounts, tax, rounding]).ok()?,
            tendered: self.sum_lines(|l| matches!(l, Line::Tender(_)))?,
            change: self.sum_lines(|l| matches!(l, Line::Change(_)))?,
            item_count: None,
        })
    }

    /// One finding per total that the lines contradict, worded for people; empty when all
    /// agree. Grand may be tax-inclusive or tax-exclusive; tenders less change must cover
    /// grand on a completed transaction.
    pub fn check_integrity(&self) -> Vec<String> {
        let (Some(sums), Some(rounding)) = (
            self.line_sums(),
            self.sum_lines(|l| matches!(l, Line::Rounding(_))),
        ) else {
            return vec!["the lines do not sum: an amount is out of range".into()];
        };
        let t = &self.totals;
        // An item tax without an amount leaves the tax unknowable from the lines.
        let tax_known = self.lines.iter().any(|l| matches!(l, Line::Tax(_)))
            || self
                .counted_items()
                .all(|i| i.taxes.iter().all(|x| x.amount.is_some()));
        let mut out = Vec::new();
        let mut check = |name: &str, total: Amount, lines: Amount| {
            if total != lines {
                out.push(format!("{name}: totals say {total}, lines sum to {lines}"));
            }
        };
        check("gross", t.gross, sums.gross);
        check("discounts", t.discounts, sums.discounts);
        if tax_known {
            check("tax", t.tax, sums.tax);
        }
        check("tendered", t.tendered, sums.tendered);
        check("change", t.change, sums.change);
        let inclusive = Amount::sum([t.gross, t.discounts, rounding]).ok();
        let exclusive = inclusive.and_then(|a| a.checked_add(t.tax).ok());
        if exclusive != Some(t.grand) && inclusive != Some(t.grand) {
            out.push(format!(
                "grand: totals say {}, gross + discounts + tax + rounding make {}",
                t.grand,
                exclusive.map_or_else(|| "an overflow".into(), |a| a.to_string())
            ));
        }
        let paid = t.tendered.get().checked_sub(t.change.get());
        if self.status == Status::Completed && paid != Some(t.grand.get()) {
            out.push(format!(
                "cover: tendered less change is {}, grand is {}",
                paid.map_or_else(|| "an overflow".into(), |p| p.to_string()),
                t.grand
            ));
        }
        out
    }

    /// Items that count: not voided, and not the reversal of a voided line (a register
    /// that marks both would otherwise subtract the article twice).
    /// Item lines that count: neither voided nor the reversal of a voided line.
    pub fn counted_items(&self) -> impl Iterator<Item = &ItemLine> {
        let voided: Vec<u32> = self.items().filter(|i| i.void).map(|i| i.line).collect();
        self.items()
            .filter(move |i| !i.void && !i.voids_line.is_some_and(|v| voided.contains(&v)))
    }

    fn items(&self) -> impl Iterator<Item = &ItemLine> {
        self.lines.iter().filter_map(|l| match l {
            Line::Item(i) => Some(i),
            _ => None,
        })
    }

    fn sum_lines(&self, kind: impl Fn(&Line) -> bool) -> Option<Amount> {
        Amount::sum(self.lines.iter().filter(|l| kind(l)).map(|l| match l {
            Line::Item(i) => i.extended,
            Line::Discount(d) => d.amount,
            Line::Rounding(r) => r.amount,
            Line::Tax(t) => t.amount,
            Line::Tender(t) => t.amount,
            Line::Change(c) => c.amount,
        }))
        .ok()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(line: u32, extended: i64, void: bool, voids_line: Option<u32>) -> Line {
        Line::Item(ItemLine {
            line,
            sku: None,
            gtin: None,
            description: None,
            department: None,
            quantity: Decimal::from_int(1),
            uom: None,
            unit_price: None,
            extended: Amount::minor(extended),
            taxes: vec![LineTax {
                code: None,
                rate: None,
                amount: Some(Amount::minor(extended / 10)),
            }],
            modifiers: Vec::new(),
            void,
            voids_line,
            no_sku: true,
        })
    }

    fn sale(lines: Vec<Line>, totals: Totals) -> Transaction {
        Transaction {
            status: Status::Completed,
            kind: Kind::Sale,
            currency: "EUR".parse().unwrap(),
            lines,
            totals,
            links: Vec::new(),
            customer: None,
            integrity: Vec::new(),
            mapping: Vec::new(),
        }
    }

    #[test]
    fn voided_items_and_their_reversals_do_not_count() {
        let cash = Line::Tender(TenderLine {
            line: 4,
            tender_type: TenderType::Cash,
            amount: Amount::minor(110),
            card: None,
            auth: None,
            description: None,
        });
        let t = sale(
            vec![
                item(1, 500, true, None),
                item(2, 100, false, None),
                item(3, -500, false, Some(1)),
                cash,
            ],
            Totals::default(),
        );
        let sums = t.line_sums().unwrap();
        assert_eq!(
            (sums.gross, sums.tax, sums.grand, sums.tendered),
            (
                Amount::minor(100),
                Amount::minor(10),
                Amount::minor(110),
                Amount::minor(110)
            )
        );
        let mut ok = t.clone();
        ok.totals = sums.clone();
        assert!(
            ok.check_integrity().is_empty(),
            "{:?}",
            ok.check_integrity()
        );
        // A tax-inclusive grand is accepted too.
        ok.totals.grand = Amount::minor(100);
        ok.totals.tendered = Amount::minor(100);
        ok.lines.pop();
        ok.lines.push(Line::Tender(TenderLine {
            line: 4,
            tender_type: TenderType::Cash,
            amount: Amount::minor(100),
            card: None,
            auth: None,
            description: None,
        }));
        assert!(
            ok.check_integrity().is_empty(),
            "{:?}",
            ok.check_integrity()
        );
    }

    #[test]
    fn disagreements_are_listed_not_fixed() {
        let t = sale(
            vec![item(1, 100, false, None)],
            Totals {
                gross: Amount::minor(90),
                grand: Amount::minor(200),
                ..Totals::default()
            },
        );
        let found = t.check_integrity();
        for name in ["gross", "tax", "grand", "cover"] {
            assert!(
                found.iter().any(|f| f.starts_with(name)),
                "{name}: {found:?}"
            );
        }
        assert_eq!(t.totals.gross, Amount::minor(90));
    }
}
