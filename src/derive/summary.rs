//! The end-of-day summary (`posedge.summary/1`, the accounting feed on
//! `…/_agent/summary/{business_day}`): one business day's figures per register and for
//! the store, added up from the stored events so it is the same however often it is
//! computed.
//!
//! What counts (the rules the cloud's reconciliation applies too):
//! - a training event counts only under `training`; nothing else sees it;
//! - a completed transaction counts in `transactions` and adds its register totals
//!   (gross, discounts, tax, rounding, grand), its tax lines per rate and its tenders net
//!   of change; a return also counts under `refunds`;
//! - a voided transaction linked as a post-void reverses those figures (its body repeats
//!   the sale it voids) and counts under `post_voids`; a voided one without that link was
//!   never paid and counts under `voided` only;
//! - suspended, resumed and cancelled transactions are counted, not added;
//! - a transaction whose body is not readable, or whose figures overflow, is counted under
//!   `unsummable` and added nowhere (the event itself still reaches the cloud);
//! - a till or shift event with action `close` or `settle` closes its register's day.

use crate::event::TrainingFlag;
use crate::model::transaction::{LinkReason, TenderType};
use crate::model::{Amount, Currency, Line, Status, Transaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Schema tag of the summary message.
pub const SCHEMA: &str = "posedge.summary/1";

/// Money figures of one currency.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyTotals {
    /// Sum of item lines.
    pub gross: i64,
    /// Sum of discounts (negative on sales).
    pub discounts: i64,
    /// Sum of taxes.
    pub tax: i64,
    /// Cash rounding.
    pub rounding: i64,
    /// What customers owed, net of returns and post-voids.
    pub grand: i64,
    /// Grand of returns (negative).
    pub refunds: i64,
    /// Grand of the sales voided after completion (positive: what was taken back).
    pub post_voided: i64,
    /// Tax per rate ("0.19"), or per code where no rate was given.
    pub tax_by_rate: BTreeMap<String, TaxTotals>,
    /// Tenders per type, net of change.
    pub tenders: BTreeMap<String, i64>,
}

/// Tax at one rate.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxTotals {
    /// Taxable amount, where the register gave it.
    pub taxable: i64,
    /// Tax.
    pub tax: i64,
}

/// Counts and money of one register, or of the store, for one business day.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTotals {
    /// Every event, training included.
    pub events: u64,
    /// Completed transactions (sales, returns, exchanges), training excluded.
    pub transactions: u64,
    /// Completed returns.
    pub returns: u64,
    /// Sales voided after completion.
    pub post_voids: u64,
    /// Transactions voided before payment.
    pub voided: u64,
    /// Voided item lines in completed transactions.
    pub line_voids: u64,
    /// Suspended, resumed or cancelled transactions.
    pub suspended_or_cancelled: u64,
    /// No-sale drawer openings.
    pub no_sales: u64,
    /// Transactions the integrity checks flagged (counted and added as sent).
    pub integrity_flagged: u64,
    /// Transactions that could not be added (unreadable body, overflow).
    pub unsummable: u64,
    /// Training events, excluded from every other figure.
    pub training: TrainingTotals,
    /// Money per currency.
    pub money: BTreeMap<Currency, MoneyTotals>,
}

/// What training mode did, apart from the real figures.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingTotals {
    /// Training events of every type.
    pub events: u64,
    /// Training transactions.
    pub transactions: u64,
    /// Their grand per currency.
    pub grand: BTreeMap<Currency, i64>,
}

/// The figures one register reported for the day, with its close.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterDay {
    /// Figures.
    #[serde(flatten)]
    pub totals: DayTotals,
    /// The register sent a till or shift close for the day.
    pub closed: bool,
}

/// The events one source lane stored for the day.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSpan {
    /// Lowest `seq`.
    pub first_seq: u64,
    /// Highest `seq`.
    pub last_seq: u64,
    /// Events (less than `last_seq - first_seq + 1` when other days interleave).
    pub events: u64,
}

/// One business day of one store.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySummary {
    /// Per register.
    pub registers: BTreeMap<String, RegisterDay>,
    /// The store: the sum of its registers.
    pub store: DayTotals,
    /// Per source lane (derived lanes such as `<source>.inventory` included).
    pub sources: BTreeMap<String, SourceSpan>,
}

/// Why a summary is final: every register closed its till, or the store's cut-off passed.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Closed {
    /// Every register that traded sent its close.
    Registers,
    /// The configured cut-off time passed in the store's time zone.
    Cutoff,
}

/// The retained message on `…/_agent/summary/{business_day}`. It is published again, with
/// a higher `revision`, whenever the day's records change (a register closes, a late
/// event arrives after an outage); the newest revision is the truth.
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        title = "posedge.summary/1",
        description = "One business day of one store, retained on …/_agent/summary/{business_day}: figures per register and for the store, from the stored events (counting rules in src/derive/summary.rs). Republished with a higher revision whenever the day changes; the newest revision is the truth. Money is integer minor units per ISO 4217 currency."
    )
)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryMessage {
    /// [`SCHEMA`].
    #[cfg_attr(feature = "schema", schemars(extend("const" = SCHEMA)))]
    pub schema: String,
    /// Tenant.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = crate::model::schema::TOPIC_SAFE)))]
    pub tenant_id: String,
    /// Store.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = crate::model::schema::TOPIC_SAFE)))]
    pub store_id: String,
    /// The business day (YYYY-MM-DD).
    #[cfg_attr(feature = "schema", schemars(extend("format" = "date")))]
    pub business_day: String,
    /// The store's IANA time zone, in which the cut-off applies.
    pub time_zone: String,
    /// Increases with every publication for the day.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub revision: u64,
    /// Why the day is final; `None` while registers are still trading.
    pub closed: Option<Closed>,
    /// When it was computed (RFC 3339, UTC).
    #[cfg_attr(feature = "schema", schemars(extend("format" = "date-time")))]
    pub computed_at: String,
    /// The figures.
    #[serde(flatten)]
    pub day: DaySummary,
}

/// The members of a stored event the summary reads.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    schema: String,
    #[serde(default)]
    event_type: String,
    #[serde(default)]
    register_id: String,
    #[serde(default)]
    flags: TrainingFlag,
    #[serde(default, borrow)]
    body: Option<&'a serde_json::value::RawValue>,
}

/// The `action` of a till or shift body.
#[derive(Deserialize)]
struct Action {
    #[serde(default)]
    action: Option<String>,
}

/// What one event adds: the register it counts for and its figures.
struct Contribution {
    register: String,
    totals: DayTotals,
    closes: bool,
}

/// Version of the [`DayFigures`] encoding, its first byte. Postcard is not
/// self-describing: bump this whenever [`DayTotals`] or what it nests changes shape, so
/// rows written before decode from their payload instead of into the wrong fields
/// (`figures_encoding_is_pinned` fails until you do).
const FIGURES_VERSION: u8 = 1;

/// What one event adds to its business day, worked out when it is stored (from the
/// transaction the decoder already parsed) so the day close never parses the event
/// again; kept in `events.day_figures`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayFigures(Vec<u8>);

/// The stored part of a [`Contribution`]: its register is the row's.
#[derive(Serialize, Deserialize)]
struct StoredFigures {
    totals: DayTotals,
    closes: bool,
}

impl DayFigures {
    /// The figures of an event about to be stored, from its members; `tx` is its body
    /// read as a transaction (looked at only for transaction events; `None` when the
    /// body is not one).
    pub fn of_members(members: &crate::event::Fields, tx: Option<&Transaction>) -> DayFigures {
        let figures = Envelope::of_members(members)
            .and_then(|env| contribution(&env, tx))
            .map(|c| StoredFigures {
                totals: c.totals,
                closes: c.closes,
            });
        let mut bytes = vec![FIGURES_VERSION];
        // Serialising plain integers, strings and maps into a Vec cannot fail; if it
        // ever did, the lone version byte decodes as an error and the day close reads
        // the payload instead.
        if let Ok(encoded) = postcard::to_allocvec(&figures) {
            bytes.extend(encoded);
        }
        DayFigures(bytes)
    }

    /// The encoding, as stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `Some(None)`: not a register event; `None`: not readable (another version).
    fn decode(bytes: &[u8], register: &str) -> Option<Option<Contribution>> {
        let (&FIGURES_VERSION, rest) = bytes.split_first()? else {
            return None;
        };
        let figures: Option<StoredFigures> = postcard::from_bytes(rest).ok()?;
        Some(figures.map(|f| Contribution {
            register: register.to_string(),
            totals: f.totals,
            closes: f.closes,
        }))
    }
}

/// One stored row as the day close reads it.
pub struct StoredEvent<'a> {
    /// Its `seq` lane.
    pub source: &'a str,
    /// Its `seq`.
    pub seq: u64,
    /// Its register.
    pub register: &'a str,
    /// `events.day_figures` (NULL for rows stored before it existed).
    pub figures: Option<&'a [u8]>,
}

impl DaySummary {
    /// Adds one stored row from its day figures; false when they are missing or of
    /// another version, and nothing was added: add its payload with [`DaySummary::add`].
    pub fn add_figures(&mut self, row: &StoredEvent<'_>) -> bool {
        let Some(c) = row
            .figures
            .and_then(|b| DayFigures::decode(b, row.register))
        else {
            return false;
        };
        self.add_span(row.source, row.seq);
        if let Some(c) = c {
            self.add_contribution(c);
        }
        true
    }

    /// Adds one stored event (its lane, `seq` and payload as stored).
    pub fn add(&mut self, source: &str, seq: u64, payload: &[u8]) {
        self.add_span(source, seq);
        if let Some(c) = contribution_of_payload(payload) {
            self.add_contribution(c);
        }
    }

    /// Adds `seq` to the span of a lane, with nothing for the day's figures.
    pub fn add_span(&mut self, source: &str, seq: u64) {
        if let Some(s) = self.sources.get_mut(source) {
            s.first_seq = s.first_seq.min(seq);
            s.last_seq = s.last_seq.max(seq);
            s.events += 1;
            return;
        }
        self.sources.insert(
            source.to_string(),
            SourceSpan {
                first_seq: seq,
                last_seq: seq,
                events: 1,
            },
        );
    }

    fn add_contribution(&mut self, c: Contribution) {
        merge(&mut self.store, &c.totals);
        let register = match self.registers.get_mut(&c.register) {
            Some(r) => r,
            None => self.registers.entry(c.register).or_default(),
        };
        merge(&mut register.totals, &c.totals);
        register.closed |= c.closes;
    }

    /// Every register that traded on the day has closed it.
    pub fn all_closed(&self) -> bool {
        !self.registers.is_empty() && self.registers.values().all(|r| r.closed)
    }
}

impl<'a> Envelope<'a> {
    /// The envelope of an event about to be stored, read member by member exactly as
    /// [`contribution_of_payload`] reads it from the stored object.
    fn of_members(members: &'a crate::event::Fields) -> Option<Envelope<'a>> {
        fn member<'a, T: Deserialize<'a> + Default>(
            members: &'a crate::event::Fields,
            name: &str,
        ) -> Option<T> {
            match members.get(name) {
                Some(v) => serde_json::from_str(v.get()).ok(),
                None => Some(T::default()),
            }
        }
        Some(Envelope {
            schema: member(members, "schema")?,
            event_type: member(members, "event_type")?,
            register_id: member(members, "register_id")?,
            flags: member(members, "flags")?,
            // A `null` body reads as no body from the stored object; both read as `null`.
            body: members.get("body").map(|b| &**b),
        })
    }
}

/// The figures of one stored event; `None` for messages that are not register events
/// (derived feeds).
fn contribution_of_payload(payload: &[u8]) -> Option<Contribution> {
    let env: Envelope = serde_json::from_slice(payload).ok()?;
    let tx = match env.event_type.as_str() {
        "transaction" => env
            .body
            .and_then(|b| serde_json::from_str::<Transaction>(b.get()).ok()),
        _ => None,
    };
    contribution(&env, tx.as_ref())
}

/// The figures of one event; `tx` is its body read as a transaction (`None` when it is
/// not one). `None` for messages that are not register events.
fn contribution(env: &Envelope<'_>, tx: Option<&Transaction>) -> Option<Contribution> {
    if env.schema != crate::event::SCHEMA {
        return None;
    }
    let mut t = DayTotals {
        events: 1,
        ..DayTotals::default()
    };
    let mut closes = false;
    let body = env.body.map(|b| b.get()).unwrap_or("null");
    match env.event_type.as_str() {
        _ if env.flags.training => {
            t.training.events = 1;
            if env.event_type == "transaction" {
                t.training.transactions = 1;
                if let Some(tx) = tx {
                    t.training.grand.insert(tx.currency, tx.totals.grand.get());
                }
            }
        }
        "transaction" => match tx {
            Some(tx) => add_transaction(&mut t, tx),
            None => t.unsummable = 1,
        },
        "no_sale" => t.no_sales = 1,
        "till" | "shift" => {
            let action = serde_json::from_str::<Action>(body)
                .ok()
                .and_then(|a| a.action);
            closes = matches!(action.as_deref(), Some("close" | "settle"));
        }
        _ => {}
    }
    Some(Contribution {
        register: env.register_id.clone(),
        totals: t,
        closes,
    })
}

fn add_transaction(t: &mut DayTotals, tx: &Transaction) {
    t.integrity_flagged = u64::from(!tx.integrity.is_empty());
    let sign = match tx.status {
        Status::Completed => {
            t.transactions = 1;
            t.returns = u64::from(tx.kind == crate::model::Kind::Return);
            t.line_voids = tx
                .lines
                .iter()
                .filter(|l| matches!(l, Line::Item(i) if i.void))
                .count() as u64;
            1
        }
        Status::Voided if tx.links.iter().any(|l| l.reason == LinkReason::PostVoid) => {
            t.post_voids = 1;
            -1
        }
        Status::Voided => {
            t.voided = 1;
            return;
        }
        Status::Suspended | Status::Resumed | Status::Cancelled => {
            t.suspended_or_cancelled = 1;
            return;
        }
    };
    match money_of(tx, sign) {
        Some(m) => {
            t.money.insert(tx.currency, m);
        }
        None => {
            *t = DayTotals {
                events: 1,
                unsummable: 1,
                ..DayTotals::default()
            };
        }
    }
}

/// A transaction's money, times `sign` (−1 reverses a post-voided sale); `None` on
/// overflow.
fn money_of(tx: &Transaction, sign: i64) -> Option<MoneyTotals> {
    let s = |a: Amount| a.get().checked_mul(sign);
    let tot = &tx.totals;
    let mut m = MoneyTotals {
        gross: s(tot.gross)?,
        discounts: s(tot.discounts)?,
        tax: s(tot.tax)?,
        grand: s(tot.grand)?,
        ..MoneyTotals::default()
    };
    if sign < 0 {
        m.post_voided = tot.grand.get();
    } else if tx.kind == crate::model::Kind::Return {
        m.refunds = tot.grand.get();
    }
    let has_tax_lines = tx.lines.iter().any(|l| matches!(l, Line::Tax(_)));
    let mut change_to: Option<TenderType> = None;
    for line in &tx.lines {
        match line {
            Line::Rounding(r) => m.rounding = m.rounding.checked_add(s(r.amount)?)?,
            Line::Tax(x) => {
                let rate = rate_key(x.rate.map(|r| r.to_string()), x.code.as_deref());
                let e = m.tax_by_rate.entry(rate).or_default();
                e.tax = e.tax.checked_add(s(x.amount)?)?;
                e.taxable = e
                    .taxable
                    .checked_add(s(x.taxable.unwrap_or(Amount::ZERO))?)?;
            }
            Line::Tender(x) => {
                change_to.get_or_insert(x.tender_type);
                let e = m.tenders.entry(tender_key(x.tender_type)).or_default();
                *e = e.checked_add(s(x.amount)?)?;
            }
            Line::Change(c) => {
                // Change goes back in its own tender, else in cash.
                let ty = c.tender_type.unwrap_or(TenderType::Cash);
                let e = m.tenders.entry(tender_key(ty)).or_default();
                *e = e.checked_sub(s(c.amount)?)?;
            }
            Line::Item(_) | Line::Discount(_) => {}
        }
    }
    if !has_tax_lines {
        for item in tx.counted_items() {
            for x in &item.taxes {
                let rate = rate_key(x.rate.map(|r| r.to_string()), x.code.as_deref());
                let e = m.tax_by_rate.entry(rate).or_default();
                e.tax = e.tax.checked_add(s(x.amount.unwrap_or(Amount::ZERO))?)?;
                e.taxable = e.taxable.checked_add(s(item.extended)?)?;
            }
        }
    }
    Some(m)
}

fn rate_key(rate: Option<String>, code: Option<&str>) -> String {
    match (rate, code) {
        (Some(r), _) => r,
        (None, Some(c)) => format!("code:{c}"),
        (None, None) => "unknown".into(),
    }
}

fn tender_key(t: TenderType) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "other".into())
}

/// Adds `b` into `a`. Day sums of i64 minor units cannot overflow from real trading;
/// a hostile register could, so the sums saturate rather than wrap or panic.
fn merge(a: &mut DayTotals, b: &DayTotals) {
    a.events += b.events;
    a.transactions += b.transactions;
    a.returns += b.returns;
    a.post_voids += b.post_voids;
    a.voided += b.voided;
    a.line_voids += b.line_voids;
    a.suspended_or_cancelled += b.suspended_or_cancelled;
    a.no_sales += b.no_sales;
    a.integrity_flagged += b.integrity_flagged;
    a.unsummable += b.unsummable;
    a.training.events += b.training.events;
    a.training.transactions += b.training.transactions;
    for (c, v) in &b.training.grand {
        let e = a.training.grand.entry(*c).or_default();
        *e = e.saturating_add(*v);
    }
    for (c, m) in &b.money {
        let e = a.money.entry(*c).or_default();
        let add = |x: &mut i64, y: i64| *x = x.saturating_add(y);
        add(&mut e.gross, m.gross);
        add(&mut e.discounts, m.discounts);
        add(&mut e.tax, m.tax);
        add(&mut e.rounding, m.rounding);
        add(&mut e.grand, m.grand);
        add(&mut e.refunds, m.refunds);
        add(&mut e.post_voided, m.post_voided);
        for (rate, x) in &m.tax_by_rate {
            let r = e.tax_by_rate.entry(rate.clone()).or_default();
            add(&mut r.taxable, x.taxable);
            add(&mut r.tax, x.tax);
        }
        for (ty, v) in &m.tenders {
            add(e.tenders.entry(ty.clone()).or_default(), *v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn edge_case(name: &str) -> Vec<Vec<u8>> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/edge_cases")
            .join(format!("{name}.ndjson"));
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["schema"] = crate::event::SCHEMA.into();
                serde_json::to_vec(&v).unwrap()
            })
            .collect()
    }

    fn summarise(names: &[&str]) -> DaySummary {
        let mut s = DaySummary::default();
        let mut seq = 0;
        for name in names {
            for e in edge_case(name) {
                seq += 1;
                s.add("lane", seq, &e);
            }
        }
        s
    }

    fn eur(s: &DaySummary) -> &MoneyTotals {
        &s.store.money[&"EUR".parse::<Currency>().unwrap()]
    }

    #[test]
    fn a_post_void_takes_its_sale_back_out() {
        let s = summarise(&["post_void"]);
        assert_eq!(s.store.transactions, 1);
        assert_eq!(s.store.post_voids, 1);
        let m = eur(&s);
        assert_eq!((m.grand, m.gross, m.tax, m.post_voided), (0, 0, 0, 4439));
        assert_eq!(m.tenders["cash"], 0, "{:?}", m.tenders);
        assert!(m.tax_by_rate.values().all(|t| t.tax == 0 && t.taxable == 0));
    }

    #[test]
    fn a_partial_refund_counts_as_a_return_and_nets_the_tenders() {
        let s = summarise(&["partial_refund"]);
        assert_eq!((s.store.transactions, s.store.returns), (2, 1));
        let m = eur(&s);
        // Sale 9.11 paid 10.00 cash with 0.89 change; the return gives 5.19 back.
        assert_eq!((m.grand, m.refunds), (911 - 519, -519));
        assert_eq!(m.tenders["cash"], 1000 - 89 - 519);
    }

    #[test]
    fn split_tenders_and_mixed_tax_rates_add_per_type_and_rate() {
        let s = summarise(&["split_tender", "mixed_tax"]);
        let m = eur(&s);
        assert_eq!(m.tenders["cash"], 1500);
        assert_eq!(m.tenders["credit"], 1545 + 3243);
        assert_eq!(
            m.tax_by_rate["0.19"],
            TaxTotals {
                taxable: 558,
                tax: 106
            }
        );
        assert_eq!(
            m.tax_by_rate["0.07"],
            TaxTotals {
                taxable: 2846 + 2411,
                tax: 199 + 168
            }
        );
        assert_eq!(m.grand, 3045 + 3243);
        assert_eq!(m.discounts, -520);
    }

    #[test]
    fn training_is_counted_apart_and_no_sales_and_line_voids_are_counted() {
        let s = summarise(&["training", "no_sale", "line_void"]);
        assert_eq!(s.store.training.transactions, 1);
        assert_eq!(s.store.training.events, 1);
        assert_eq!(s.store.no_sales, 1);
        assert_eq!(s.store.line_voids, 1);
        assert_eq!(s.store.transactions, 1);
        assert_eq!(s.store.events, 3);
        assert_eq!(eur(&s).grand, 7871, "training money stays out");
    }

    #[test]
    fn cash_rounding_is_kept_per_currency() {
        let s = summarise(&["rounding", "no_sku"]);
        let chf = &s.store.money[&"CHF".parse::<Currency>().unwrap()];
        assert_eq!(
            (chf.rounding, chf.grand, chf.tenders["cash"]),
            (1, 2930, 2930)
        );
        assert_eq!(eur(&s).grand, 2929);
    }

    #[test]
    fn registers_close_and_the_store_is_their_sum() {
        let mut s = DaySummary::default();
        let ev = |reg: &str, ty: &str, body: serde_json::Value| {
            serde_json::to_vec(&serde_json::json!({"schema": crate::event::SCHEMA,
                "event_type": ty, "register_id": reg, "body": body}))
            .unwrap()
        };
        for (i, e) in edge_case("split_tender").into_iter().enumerate() {
            s.add("a", i as u64 + 1, &e);
        }
        s.add("b", 7, &ev("reg-2", "no_sale", serde_json::json!({})));
        s.add(
            "b",
            9,
            &ev("reg-2", "till", serde_json::json!({"action": "close"})),
        );
        assert!(!s.all_closed());
        s.add(
            "a",
            2,
            &ev("reg-edge", "till", serde_json::json!({"action": "open"})),
        );
        assert!(!s.all_closed());
        s.add(
            "a",
            3,
            &ev("reg-edge", "shift", serde_json::json!({"action": "close"})),
        );
        assert!(s.all_closed());
        assert_eq!(s.store.events, 5);
        assert_eq!(s.registers["reg-2"].totals.events, 2);
        assert_eq!(
            s.sources["b"],
            SourceSpan {
                first_seq: 7,
                last_seq: 9,
                events: 2
            }
        );
        // Derived messages count in their lane only.
        s.add(
            "a.inventory",
            1,
            br#"{"schema":"posedge.inventory/1","register_id":"reg-edge"}"#,
        );
        assert_eq!(s.store.events, 5);
        assert_eq!(s.sources["a.inventory"].events, 1);
    }

    /// Every field set, each to a value of its own, so a field added, removed or moved
    /// changes the bytes: bump [`FIGURES_VERSION`] and the expectation together.
    #[test]
    fn figures_encoding_is_pinned() {
        let eur: Currency = "EUR".parse().unwrap();
        let money = MoneyTotals {
            gross: 1,
            discounts: -2,
            tax: 3,
            rounding: -4,
            grand: 5,
            refunds: -6,
            post_voided: 7,
            tax_by_rate: [("0.19".to_string(), TaxTotals { taxable: 8, tax: 9 })].into(),
            tenders: [("cash".to_string(), 10)].into(),
        };
        let totals = DayTotals {
            events: 11,
            transactions: 12,
            returns: 13,
            post_voids: 14,
            voided: 15,
            line_voids: 16,
            suspended_or_cancelled: 17,
            no_sales: 18,
            integrity_flagged: 19,
            unsummable: 20,
            training: TrainingTotals {
                events: 21,
                transactions: 22,
                grand: [(eur, 23)].into(),
            },
            money: [(eur, money)].into(),
        };
        let stored = Some(StoredFigures {
            totals: totals.clone(),
            closes: true,
        });
        let mut bytes = vec![FIGURES_VERSION];
        bytes.extend(postcard::to_allocvec(&stored).unwrap());
        let hex = crate::ingest::hex(&bytes);
        assert_eq!(
            hex,
            "01010b0c0d0e0f1011121314151601034555522e0103455552020306070a0b0e0104302e313910120104636173681401",
            "the encoding changed: bump FIGURES_VERSION"
        );
        let back = DayFigures::decode(&bytes, "reg-1").unwrap().unwrap();
        assert_eq!(
            (back.register.as_str(), back.totals, back.closes),
            ("reg-1", totals, true)
        );
        // Another version is not read: the day close falls back to the payload.
        bytes[0] = FIGURES_VERSION + 1;
        assert!(DayFigures::decode(&bytes, "reg-1").is_none());
        assert!(DayFigures::decode(&[], "reg-1").is_none());
    }

    #[test]
    fn unreadable_or_overflowing_transactions_are_counted_not_added() {
        let mut s = DaySummary::default();
        // A post-void reverses its figures: i64::MIN has no negation.
        let mut e: serde_json::Value = serde_json::from_slice(&edge_case("post_void")[1]).unwrap();
        e["body"]["totals"]["grand"] = i64::MIN.into();
        s.add("a", 1, &serde_json::to_vec(&e).unwrap());
        e["body"] = serde_json::json!({"not": "a transaction"});
        s.add("a", 2, &serde_json::to_vec(&e).unwrap());
        assert_eq!(s.store.unsummable, 2);
        assert_eq!(s.store.transactions, 0);
        assert!(s.store.money.is_empty());
    }
}
