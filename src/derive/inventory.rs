//! Stock movements per SKU from a transaction (the real-time inventory feed on
//! `…/{register}/inventory`). Quantities are exact decimals and signed as stock changes:
//! a sale of 2 is −2, a return of 1 is +1, a post-void gives back what its sale took.
//! Voided lines and the lines that void them cancel out and move nothing; training,
//! suspended and cancelled transactions move nothing; an item without a SKU is reported
//! by its department.

use crate::model::{Decimal, Kind, Status, Transaction};
use serde::Serialize;

/// Why stock moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Goods sold.
    Sale,
    /// Goods returned.
    Return,
    /// A sale reversed after it was completed.
    PostVoid,
}

/// One SKU's (or one department's) stock change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Movement {
    /// The register's SKU; absent for an item without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// GTIN when the register gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gtin: Option<String>,
    /// Department, the only handle on an item without a SKU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Signed stock change.
    pub quantity: Decimal,
    /// Unit of measure when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uom: Option<String>,
    /// Why.
    pub reason: Reason,
}

/// The stock movements of one transaction, one per counted item line, in line order.
/// `training` transactions never touch stock.
pub fn movements(tx: &Transaction, training: bool) -> Vec<Movement> {
    let reason = match (tx.status, tx.kind) {
        _ if training => return Vec::new(),
        (Status::Completed, Kind::Return) => Reason::Return,
        (Status::Completed, _) => Reason::Sale,
        (Status::Voided, _) => Reason::PostVoid,
        (Status::Suspended | Status::Resumed | Status::Cancelled, _) => return Vec::new(),
    };
    tx.counted_items()
        .filter_map(|item| {
            // Stock moves against the quantity sold; a post-void gives it back.
            let quantity = match reason {
                Reason::PostVoid => item.quantity,
                Reason::Sale | Reason::Return => item.quantity.checked_neg()?,
            };
            (!quantity.is_zero()).then(|| Movement {
                sku: item.sku.clone(),
                gtin: item.gtin.clone(),
                department: item.department.clone(),
                quantity,
                uom: item.uom.clone(),
                reason,
            })
        })
        .collect()
}

/// The shape of one `posedge.inventory/1` message, for its JSON Schema only: ingest
/// assembles the message member by member from the transaction's event
/// (`crate::ingest`), and `tests/schema.rs` validates what it assembles against this.
#[cfg(feature = "schema")]
#[derive(schemars::JsonSchema)]
#[schemars(
    title = "posedge.inventory/1",
    description = "The stock movements of one transaction, on …/{register}/inventory: one message per stock-moving transaction, on the derived lane <source>.inventory (source.name), whose seq is gapless per lane and store. Quantities are signed stock changes as decimal strings (a sale of 2 is \"-2\")."
)]
pub struct InventoryMessage {
    /// Always "posedge.inventory/1".
    #[schemars(extend("const" = crate::ingest::INVENTORY_SCHEMA))]
    pub schema: String,
    /// UUIDv7 of this message, reused on resend.
    #[schemars(schema_with = "crate::model::schema::uuid_v7")]
    pub event_id: String,
    /// The lane's sequence number: gapless, starts at 1.
    #[schemars(range(min = 1))]
    pub seq: u64,
    /// The transaction's idempotency key with `|inventory` appended.
    #[schemars(length(min = 1))]
    pub idempotency_key: String,
    /// The idempotency key of the transaction the stock moved for.
    #[schemars(length(min = 1))]
    pub of_idempotency_key: String,
    /// Store id from the agent's config.
    #[schemars(regex(pattern = crate::model::schema::TOPIC_SAFE))]
    pub store_id: String,
    /// The transaction's register.
    #[schemars(regex(pattern = crate::model::schema::TOPIC_SAFE))]
    pub register_id: String,
    /// The transaction's business day (YYYY-MM-DD), when the register gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date"))]
    pub business_day: Option<String>,
    /// The transaction's number, when the register gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pos_sequence: Option<crate::model::transaction::PosSequence>,
    /// Register clock of the transaction, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub occurred_at: Option<String>,
    /// Agent clock (UTC) when the transaction arrived.
    #[schemars(extend("format" = "date-time"))]
    pub received_at: String,
    /// The derived lane.
    pub source: InventorySource,
    /// One per counted item line, in line order.
    #[schemars(length(min = 1))]
    pub movements: Vec<Movement>,
}

/// `source` of an inventory message (schema only).
#[cfg(feature = "schema")]
#[derive(schemars::JsonSchema)]
pub struct InventorySource {
    /// `<source>.inventory`: the lane whose gapless `seq` the message carries.
    #[schemars(regex(pattern = "^[A-Za-z0-9_.-]{1,64}\\.inventory$"))]
    pub name: String,
    /// Always "derived".
    #[schemars(extend("const" = "derived"))]
    pub kind: String,
    /// Always "posedge.inventory/1".
    #[schemars(extend("const" = crate::ingest::INVENTORY_SCHEMA))]
    pub format: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::generate::{Generator, Profile};
    use std::collections::BTreeMap;

    fn transactions(n: usize) -> Vec<(serde_json::Value, Transaction)> {
        let mut g = Generator::new(77, Profile::Retail, "reg-1", "2026-11-27");
        std::iter::repeat_with(|| g.next_event())
            .take(n)
            .filter(|e| e["event_type"] == "transaction")
            .map(|e| {
                let t = serde_json::from_value(e["body"].clone()).unwrap();
                (e, t)
            })
            .collect()
    }

    fn per_sku(moves: &[Movement]) -> BTreeMap<String, Decimal> {
        let mut out: BTreeMap<String, Decimal> = BTreeMap::new();
        for m in moves {
            let key = m
                .sku
                .clone()
                .unwrap_or_else(|| format!("dept:{}", m.department.clone().unwrap_or_default()));
            let sum = out.entry(key).or_insert(Decimal::new(0, 0).unwrap());
            *sum = sum.checked_add(m.quantity).unwrap();
        }
        out.retain(|_, q| !q.is_zero());
        out
    }

    #[test]
    fn a_sale_takes_stock_and_its_post_void_gives_it_all_back() {
        let all = transactions(600);
        let (_, voided) = all
            .iter()
            .find(|(_, t)| t.status == Status::Voided)
            .expect("the generator post-voids a sale in every block");
        let back = movements(voided, false);
        assert!(!back.is_empty());
        assert!(
            back.iter()
                .all(|m| m.reason == Reason::PostVoid && !m.quantity.is_negative())
        );
        // The voided body repeats the sale it reverses: sale + post-void is no change.
        let mut sale = voided.clone();
        sale.status = Status::Completed;
        let mut both = movements(&sale, false);
        both.extend(back);
        assert!(per_sku(&both).is_empty(), "{:?}", per_sku(&both));
    }

    #[test]
    fn returns_give_stock_back_and_training_moves_nothing() {
        let all = transactions(600);
        let (_, ret) = all.iter().find(|(_, t)| t.kind == Kind::Return).unwrap();
        let moves = movements(ret, false);
        assert!(!moves.is_empty());
        assert!(
            moves
                .iter()
                .all(|m| m.reason == Reason::Return && !m.quantity.is_negative())
        );
        let (_, training) = all
            .iter()
            .find(|(e, _)| e["flags"]["training"] == true)
            .unwrap();
        assert!(movements(training, true).is_empty());
    }

    #[test]
    fn a_voided_line_and_its_reversal_move_nothing_no_sku_goes_by_department() {
        let all = transactions(600);
        let (_, with_void) = all
            .iter()
            .find(|(_, t)| {
                t.status == Status::Completed
                    && t.lines
                        .iter()
                        .any(|l| matches!(l, crate::model::Line::Item(i) if i.void))
            })
            .unwrap();
        let moves = movements(with_void, false);
        let counted: usize = with_void.counted_items().count();
        assert_eq!(
            moves.len(),
            counted,
            "voided lines and their reversals are skipped"
        );
        let (_, no_sku) = all
            .iter()
            .find(|(_, t)| {
                t.status == Status::Completed
                    && t.lines
                        .iter()
                        .any(|l| matches!(l, crate::model::Line::Item(i) if i.no_sku))
            })
            .unwrap();
        assert!(
            movements(no_sku, false)
                .iter()
                .any(|m| m.sku.is_none() && m.department.is_some())
        );
    }

    fn fixture_moves(text: &str) -> Vec<Movement> {
        text.lines()
            .flat_map(|l| {
                let e: serde_json::Value = serde_json::from_str(l).unwrap();
                let t: Transaction = serde_json::from_value(e["body"].clone()).unwrap();
                movements(&t, e["flags"]["training"] == true)
            })
            .collect()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn a_partial_return_and_a_line_void_sum_to_the_stock_change_counted_by_hand() {
        // Sale #4: 100106 x1, 100101 x1, 100106 x1; return #22 takes back one of each.
        let moves = fixture_moves(include_str!(
            "../../tests/data/edge_cases/partial_refund.ndjson"
        ));
        assert_eq!(
            per_sku(&moves),
            BTreeMap::from([("100106".to_string(), dec("-1"))])
        );
        // Sale #23: 100109 x5, 100101, 100113, 100106, 100110 x1 each; 100111 sold on
        // line 6 and voided by line 8.
        let moves = fixture_moves(include_str!("../../tests/data/edge_cases/line_void.ndjson"));
        let want: BTreeMap<String, Decimal> = [
            ("100109", "-5"),
            ("100101", "-1"),
            ("100113", "-1"),
            ("100106", "-1"),
            ("100110", "-1"),
        ]
        .into_iter()
        .map(|(k, q)| (k.to_string(), dec(q)))
        .collect();
        assert_eq!(per_sku(&moves), want);
    }
}
