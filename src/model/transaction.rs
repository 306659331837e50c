//! The `transaction` body of `posedge.event/1` (DESIGN §3).

use super::{Amount, Currency, Decimal};
use serde::{Deserialize, Serialize};

/// How the transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
pub enum PosSequence {
    /// The common case.
    Number(u64),
    /// Registers that number with prefixes ("A-0042").
    Text(String),
}

/// A reference to another transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct LineTax {
    /// The register's tax code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Rate as a fraction ("0.19").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Decimal>,
    /// Tax amount on this line.
    pub amount: Amount,
}

/// A price modifier, discount or loyalty reward attached to an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct RoundingLine {
    /// Line number.
    pub line: u32,
    /// Signed amount.
    pub amount: Amount,
}

/// One tax rate's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct Auth {
    /// Outcome.
    pub status: AuthStatus,
    /// Approval code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// A payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct ChangeLine {
    /// Line number.
    pub line: u32,
    /// Amount given back (positive).
    pub amount: Amount,
    /// Tender the change was given in, when not cash.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub tender_type: Option<TenderType>,
}

/// A transaction line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
}

fn is_false(b: &bool) -> bool {
    !*b
}
