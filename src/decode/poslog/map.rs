//! One `<Transaction>` tree → one canonical event, or the reason it cannot be one.

use super::Options;
use super::xml::Node;
use crate::model::transaction::*;
use crate::model::{Amount, Body, Currency, Decimal, Event, EventType, MoneyError, PosSequence};
use serde_json::{Map, Value, json};
use std::collections::HashSet;

type R<T> = Result<T, String>;
type Ext = Map<String, Value>;

const EXT_MAX: usize = 64;
const EXT_VALUE_MAX: usize = 256;
/// Line-item children without money or a canonical field: skipped without a note.
const QUIET: &str = "SequenceNumber DateTime BeginDateTime EndDateTime AgeRestriction \
    ItemNotFound ItemRestriction CRMCustomVariable ElectronicSignature SupervisorOverride VoidsLine";
/// Vendor names that may hold card or personal data: never copied to `ext`.
const DENY: &str = "accountnumber pan track cvv cvc expir name address street city postal \
    zip mail phone birth";

/// "SequenceNumber 1042, workstation 3", for reasons.
pub(super) fn label(tx: &Node) -> String {
    let seq = tx.text_of("SequenceNumber").unwrap_or("?");
    let ws = tx.text_of("WorkstationID").unwrap_or("?");
    format!("SequenceNumber {seq}, workstation {ws}")
}

pub(super) fn event(tx: &Node, opts: &Options) -> R<Event> {
    let rt = tx.child("RetailTransaction");
    let ct = tx
        .child("ControlTransaction")
        .or(tx.child("TenderControlTransaction"));
    let mut ext = Ext::new();
    let mut ev = match (rt, ct) {
        (Some(rt), _) => retail(tx, rt, opts, &mut ext)?,
        (None, Some(ct)) => control(tx, ct, opts)?,
        (None, None) => {
            let kind = tx
                .children
                .iter()
                .find(|c| c.name().ends_with("Transaction"));
            return Err(match kind {
                Some(k) => format!("transaction kind {} is not mapped", k.name()),
                None => "no RetailTransaction or ControlTransaction inside".into(),
            });
        }
    };
    // A control record riding along a sale (Visma: drawer opened) is kept as vendor data.
    if let (Some(_), Some(ct)) = (rt, ct) {
        for c in ct.children.iter().filter(|c| c.children.is_empty()) {
            vendor(&mut ext, &format!("{}/{}", ct.name(), c.qname), c.txt());
        }
    }
    envelope(tx, &mut ev, &mut ext)?;
    if ext.len() > EXT_MAX {
        let keep: Vec<String> = ext.keys().take(EXT_MAX).cloned().collect();
        ext.retain(|k, _| keep.contains(k));
        ext.insert("ext_truncated".into(), Value::Bool(true));
    }
    ev.ext = ext;
    Ok(ev)
}

/// Vendor data into `ext`, unless its name suggests card or personal data.
fn vendor(ext: &mut Ext, key: &str, value: &str) {
    let lower = key.to_ascii_lowercase();
    if !DENY.split_whitespace().any(|w| lower.contains(w)) {
        put(ext, key, value);
    }
}

fn put(ext: &mut Ext, key: &str, value: &str) {
    if !value.is_empty() {
        let v: String = value.chars().take(EXT_VALUE_MAX).collect();
        ext.insert(key.into(), Value::String(v));
    }
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

fn envelope(tx: &Node, ev: &mut Event, ext: &mut Ext) -> R<()> {
    ev.register_id = owned(tx.text_of("WorkstationID"));
    ev.pos_sequence = tx.text_of("SequenceNumber").map(pos_seq);
    ev.operator_id = owned(tx.text_of("OperatorID"));
    ev.flags.training |= tx.flag("TrainingModeFlag");
    ev.flags.offline_payment |= tx.flag("OfflineFlag");
    ev.flags.reprint |= tx.flag("ReprintFlag");
    let rt = tx.child("RetailTransaction");
    // The last EndDateTime (Decathlon writes one per phase), else the other stamps.
    let names = [
        "EndDateTime",
        "BeginDateTime",
        "ReceiptDateTime",
        "POSLogDateTime",
    ];
    let stamp = names.iter().find_map(|n| {
        let mut all: Vec<&Node> = tx
            .kids(n)
            .chain(rt.into_iter().flat_map(|r| r.kids(n)))
            .collect();
        all.sort_by_key(|c| *n == "POSLogDateTime" && c.attr("TypeCode") == Some("Transaction"));
        all.last().map(|c| (*n, c.txt()))
    });
    let mut day = None;
    if let Some((name, text)) = stamp {
        let bad = || format!("{name} '{}' is not an ISO 8601 date-time", clip(text));
        let (local, offset) = timestamp(text).ok_or_else(bad)?;
        day = owned(local.get(..10));
        match offset {
            Some(off) => ev.occurred_at = Some(format!("{local}{off}")),
            None => put(ext, "occurred_at_local", &local),
        }
    }
    if let Some(b) = tx.child("BusinessDayDate") {
        let d = b.text_of("Date").unwrap_or(b.txt());
        let bad = || format!("BusinessDayDate '{}' is not YYYY-MM-DD", clip(d));
        day = Some(date(d).ok_or_else(bad)?);
    }
    ev.business_day = day;
    let units: Vec<&Node> = tx
        .kids("BusinessUnit")
        .filter_map(|b| b.child("UnitID"))
        .collect();
    let store = units
        .iter()
        .find(|u| u.attr("TypeCode") == Some("RetailStore"));
    let store = store.or(units.first()).map(|u| u.txt());
    put(
        ext,
        "store_ref",
        store.or(tx.text_of("RetailStoreID")).unwrap_or(""),
    );
    // Vendor (prefixed) leaf elements on the transaction; ItemCount is read into totals,
    // Ext is our own typed extension (below).
    for c in std::iter::once(tx).chain(rt).flat_map(|n| &n.children) {
        let leaf = c.prefixed() && c.children.is_empty() && c.attr("Key").is_none();
        if leaf && c.name() != "ItemCount" {
            vendor(ext, &c.qname, c.txt());
        }
    }
    for (k, v) in tx
        .attrs
        .iter()
        .filter(|(k, _)| k.contains(':') && !k.starts_with("xsi:"))
    {
        vendor(ext, k, v);
    }
    for x in tx.kids("Ext") {
        let Some(key) = x.attr("Key") else { continue };
        let typed = matches!(x.attr("Type"), Some("number" | "boolean" | "json"));
        let value = match typed && x.txt().len() <= EXT_VALUE_MAX {
            true => serde_json::from_str(x.txt())
                .map_err(|_| format!("Ext '{}' is not valid JSON", clip(key)))?,
            false => Value::String(x.txt().chars().take(EXT_VALUE_MAX).collect()),
        };
        ext.insert(key.into(), value);
    }
    Ok(())
}

fn pos_seq(s: &str) -> PosSequence {
    match s.parse::<u64>() {
        Ok(n) if n.to_string() == s => PosSequence::Number(n),
        _ => PosSequence::Text(s.to_owned()),
    }
}

/// Digits only, `len` long, and at most `max`.
fn num(s: &str, len: usize, max: u32) -> bool {
    s.len() == len
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse().is_ok_and(|v: u32| v <= max)
}

fn date(s: &str) -> Option<String> {
    let mut p = s.split('-');
    let (y, m, d) = (p.next()?, p.next()?, p.next()?);
    let ok = p.next().is_none() && num(y, 4, 9999) && num(m, 2, 12) && num(d, 2, 31);
    (ok && m != "00" && d != "00").then(|| s.to_owned())
}

/// `YYYY-MM-DDTHH:MM[:SS[.f]][Z|±HH:MM|±HHMM]` → (local part with seconds, RFC 3339 offset).
fn timestamp(s: &str) -> Option<(String, Option<String>)> {
    let (day, rest) = s.split_once(['T', 't', ' '])?;
    date(day)?;
    let (time, off) = rest.split_at(rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len()));
    let (hms, frac) = time
        .split_once('.')
        .map_or((time, None), |(a, f)| (a, Some(f)));
    let parts: Vec<&str> = hms.split(':').collect();
    let (h, m, sec) = match parts[..] {
        [h, m] => (h, m, "00"),
        [h, m, sec] => (h, m, sec),
        _ => return None,
    };
    let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    if !(num(h, 2, 23) && num(m, 2, 59) && num(sec, 2, 60) && frac_ok) {
        return None;
    }
    let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
    let offset = match off {
        "" => None,
        "Z" | "z" => Some("Z".to_owned()),
        o => {
            let (sign, hm) = o.split_at(1);
            let hm = hm.replace(':', "");
            let (hh, mm) = (hm.get(..2)?, hm.get(2..)?);
            if !matches!(sign, "+" | "-") || !num(hh, 2, 23) || !num(mm, 2, 59) {
                return None;
            }
            Some(format!("{sign}{hh}:{mm}"))
        }
    };
    Some((format!("{day}T{h}:{m}:{sec}{frac}"), offset))
}

/// The one real currency of a transaction (attributes `Currency`/`CurrencyCode`, elements
/// `CurrencyCode`; "XXX" means none), else the configured default.
fn currency(tx: &Node, opts: &Options) -> R<Currency> {
    let mut all = Vec::new();
    tx.walk(&mut all);
    let mut found: Option<Currency> = None;
    for n in all {
        let element = (n.name() == "CurrencyCode").then(|| n.txt());
        let codes = [n.attr("Currency"), n.attr("CurrencyCode"), element];
        for code in codes
            .into_iter()
            .flatten()
            .filter(|c| !c.is_empty() && *c != "XXX")
        {
            let bad = |_| {
                format!(
                    "currency '{}' on <{}> is not an ISO 4217 code",
                    clip(code),
                    n.qname
                )
            };
            let c: Currency = code.parse().map_err(bad)?;
            match found {
                Some(f) if f != c => {
                    return Err(format!("two currencies in one transaction ({f} and {c})"));
                }
                _ => found = Some(c),
            }
        }
    }
    let none =
        "no currency in Transaction (no Currency/CurrencyCode) and no default currency configured";
    found.or(opts.default_currency).ok_or_else(|| none.into())
}

fn money(n: &Node, cur: Currency) -> R<Amount> {
    let (name, text) = (n.name(), clip(n.txt()));
    Amount::parse_major(n.txt(), cur).map_err(|e| match e {
        MoneyError::NotExact { .. } => {
            format!("{name} '{text}' is not exact to the minor unit of {cur}")
        }
        MoneyError::Overflow => format!("{name} '{text}' is out of range"),
        _ => format!("{name} '{text}' is not a decimal amount"),
    })
}

/// Child `name` as money, when present and not empty.
fn money_of(n: &Node, name: &str, cur: Currency) -> R<Option<Amount>> {
    n.child(name)
        .filter(|c| !c.txt().is_empty())
        .map(|c| money(c, cur))
        .transpose()
}

fn neg(a: Amount) -> R<Amount> {
    a.checked_neg()
        .map_err(|_| "amount out of range".to_owned())
}

fn abs(a: Amount) -> R<Amount> {
    if a.get() < 0 { neg(a) } else { Ok(a) }
}

/// A reduction: `Action="Add"` makes it positive, anything else negative.
fn reduction(a: Amount, action: Option<&str>) -> R<Amount> {
    if action == Some("Add") {
        abs(a)
    } else {
        neg(abs(a)?)
    }
}

fn decimal(n: &Node) -> R<Decimal> {
    let bad = |_| format!("{} '{}' is not a decimal number", n.name(), clip(n.txt()));
    n.txt().parse().map_err(bad)
}

/// `Percent` 19.00 → rate 0.19 (exact; trailing zeros dropped down to two decimals).
fn rate(n: &Node) -> R<Option<Decimal>> {
    let Some(p) = n.child("Percent").filter(|p| !p.txt().is_empty()) else {
        return Ok(None);
    };
    let d = decimal(p)?;
    let too_fine = || format!("Percent '{}' has too many decimals", clip(p.txt()));
    let (mut units, mut scale) = (d.rescale(d.scale()).ok_or_else(too_fine)?, d.scale() + 2);
    while scale > 2 && units % 10 == 0 {
        units /= 10;
        scale -= 1;
    }
    Decimal::new(units, scale).map(Some).ok_or_else(too_fine)
}

fn tax_code(n: &Node) -> Option<String> {
    let code = n
        .text_of("TaxGroupID")
        .or(n.attr("TaxID"))
        .or(n.text_of("TaxRuleID"));
    owned(code.or(n.attr("TaxGroupID")))
}

/// Local part, alphanumerics only, lower case: "DKT:Credit_Card" → "creditcard".
fn norm(s: &str) -> String {
    let local = s.rsplit(':').next().unwrap_or(s);
    local
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Per-line facts that are not in the canonical line.
#[derive(Default)]
struct Meta {
    seq: Option<u32>,
    weighed: bool,
    reversal: bool,
    voids: Option<u32>,
    op_seq: Option<String>,
    op_ref: Option<String>,
    tax_included: bool,
}

fn at_seq(seq: Option<u32>) -> Meta {
    Meta {
        seq,
        ..Meta::default()
    }
}

fn line_no(l: &mut Line) -> &mut u32 {
    match l {
        Line::Item(x) => &mut x.line,
        Line::Discount(x) => &mut x.line,
        Line::Rounding(x) => &mut x.line,
        Line::Tax(x) => &mut x.line,
        Line::Tender(x) => &mut x.line,
        Line::Change(x) => &mut x.line,
    }
}

fn amount(l: &Line) -> Amount {
    match l {
        Line::Item(x) => x.extended,
        Line::Discount(x) => x.amount,
        Line::Rounding(x) => x.amount,
        Line::Tax(x) => x.amount,
        Line::Tender(x) => x.amount,
        Line::Change(x) => x.amount,
    }
}

fn retail(tx: &Node, rt: &Node, opts: &Options, ext: &mut Ext) -> R<Event> {
    let cur = currency(tx, opts)?;
    let status_attr = rt
        .attr("TransactionStatus")
        .or(rt.text_of("TransactionStatus"));
    let status_text = status_attr.or(tx.attr("TransactionStatus"));
    let mut status = match status_text.map(norm).as_deref() {
        None | Some("finished" | "totaled" | "totalled" | "completed") => Status::Completed,
        Some("canceled" | "cancelled") => Status::Cancelled,
        Some("voided" | "postvoided" | "void") => Status::Voided,
        Some("suspended") => Status::Suspended,
        Some("resumed" | "retrieved") => Status::Resumed,
        Some(_) => {
            let text = clip(status_text.unwrap_or_default());
            return Err(format!("TransactionStatus '{text}' is not mapped"));
        }
    };
    if tx.flag("CancelFlag") || rt.flag("CancelFlag") {
        status = Status::Cancelled;
    }
    if tx.flag("VoidFlag") || rt.flag("VoidFlag") {
        status = Status::Voided;
    }
    let (mut lines, mut meta) = (Vec::<Line>::new(), Vec::<Meta>::new());
    let (mut links, mut unmapped, mut loyalty_id) = (Vec::new(), Vec::<&str>::new(), None);
    for (i, li) in rt.kids("LineItem").enumerate() {
        let seq_text = li.text_of("SequenceNumber");
        let name = seq_text.map_or_else(|| format!("#{}", i + 1), str::to_owned);
        let at = |e: String| format!("LineItem {name}: {e}");
        let seq = seq_text.and_then(|s| s.parse::<u32>().ok());
        let void = li.flag("VoidFlag") || li.flag("CancelFlag");
        let before = lines.len();
        for c in &li.children {
            let made: Vec<(Line, Meta)> = match c.name() {
                "Sale" | "Return" => {
                    let (item, m) = item(li, c, void, cur, &mut links).map_err(at)?;
                    vec![(Line::Item(item), Meta { seq, ..m })]
                }
                n @ ("Discount" | "RetailPriceModifier" | "PriceModifier" | "LoyaltyReward") => {
                    let d = discount(c, n == "LoyaltyReward", cur).map_err(at)?;
                    let op_ref = c.text_of("OperatorSequenceReference").filter(|s| *s != "0");
                    let m = Meta {
                        op_ref: owned(op_ref),
                        ..at_seq(seq)
                    };
                    d.map(|d| (Line::Discount(d), m)).into_iter().collect()
                }
                "Tax" => vec![(Line::Tax(tax_line(c, cur).map_err(at)?), at_seq(seq))],
                "Tender" => tender(li, c, void, cur)
                    .map_err(at)?
                    .into_iter()
                    .map(|l| (l, at_seq(seq)))
                    .collect(),
                "TenderChange" => change(c, cur)
                    .map_err(at)?
                    .into_iter()
                    .map(|l| (l, at_seq(seq)))
                    .collect(),
                "Rounding" | "RoundingAdjustment" => rounding(c, cur)
                    .map_err(at)?
                    .map(|l| (l, at_seq(seq)))
                    .into_iter()
                    .collect(),
                "LoyaltyMembership" => {
                    loyalty_id = loyalty_id.or(owned(c.text_of("LoyaltyID")));
                    vec![]
                }
                n if QUIET.split(' ').any(|q| q == n) => vec![],
                _ => {
                    if !unmapped.contains(&c.qname.as_str()) {
                        unmapped.push(&c.qname);
                    }
                    vec![]
                }
            };
            for (l, m) in made {
                lines.push(l);
                meta.push(m);
            }
        }
        // One LineItem usually makes one line; extra lines from it are numbered later.
        meta.iter_mut().skip(before + 1).for_each(|m| m.seq = None);
    }
    for l in rt.kids("TransactionLink") {
        match link(l, None)? {
            Ok(link) => links.push(link),
            Err(reason) => put(ext, "unmapped_link", &reason),
        }
    }
    put(ext, "unmapped_line_items", &unmapped.join(","));
    number_lines(&mut lines, &meta);
    pair_voids(&mut lines, &meta);
    // NCR rewards name their item by its OperatorSequence.
    for k in 0..lines.len() {
        let Some(r) = &meta[k].op_ref else { continue };
        let target = lines.iter().zip(&meta).find_map(|(l, m)| match l {
            Line::Item(i) if m.op_seq.as_ref() == Some(r) => Some(i.line),
            _ => None,
        });
        if let Line::Discount(d) = &mut lines[k] {
            d.applies_to_line = d.applies_to_line.or(target);
        }
    }
    let kind = kind_of(&lines, &meta);
    let totals = totals(rt, &lines, &meta, cur, ext)?;
    let mut ev = Event::new(EventType::Transaction);
    ev.flags.offline_payment = lines.iter().any(|l| match l {
        Line::Tender(t) => t
            .auth
            .as_ref()
            .is_some_and(|a| a.status == AuthStatus::OfflineApproved),
        _ => false,
    });
    let customer = customer(tx, rt, loyalty_id);
    let body = Transaction {
        status,
        kind,
        currency: cur,
        lines,
        totals,
        links,
        customer,
        integrity: Vec::new(),
        mapping: Vec::new(),
    };
    ev.body = Body::Transaction(Box::new(body));
    Ok(ev)
}

fn tax_line(c: &Node, cur: Currency) -> R<TaxLine> {
    let amount = money(c.child("Amount").ok_or("Tax has no Amount")?, cur)?;
    let taxable = money_of(c, "TaxableAmount", cur)?;
    Ok(TaxLine {
        line: 0,
        code: tax_code(c),
        rate: rate(c)?,
        taxable,
        amount,
    })
}

fn item(
    li: &Node,
    c: &Node,
    void: bool,
    cur: Currency,
    links: &mut Vec<Link>,
) -> R<(ItemLine, Meta)> {
    let q = c.child("Quantity").filter(|q| !q.txt().is_empty());
    let mut quantity = q.map(decimal).transpose()?.unwrap_or(Decimal::from_int(1));
    let no_amount = || format!("{} has no ExtendedAmount", c.name());
    let mut extended = money(c.child("ExtendedAmount").ok_or_else(no_amount)?, cur)?;
    // NCR writes a line void as a second line with VoidFlag and negative amounts.
    let reversal = void && (quantity.is_negative() || extended.get() < 0);
    let is_return = !reversal && (c.name() == "Return" || quantity.is_negative());
    let mut taxes = Vec::new();
    for t in c.kids("Tax") {
        let mut amount = money(t.child("Amount").ok_or("Tax has no Amount")?, cur)?;
        if is_return {
            amount = neg(abs(amount)?)?;
        }
        taxes.push(LineTax {
            code: tax_code(t),
            rate: rate(t)?,
            amount: Some(amount),
        });
    }
    if is_return {
        // Returns are negative whatever sign the document used (roqqio writes a negative
        // quantity with a positive ExtendedAmount).
        if !quantity.is_negative() {
            quantity = quantity.checked_neg().ok_or("Quantity out of range")?;
        }
        extended = neg(abs(extended)?)?;
    }
    let mut modifiers = Vec::new();
    for m in c
        .children
        .iter()
        .filter(|m| m.name().ends_with("PriceModifier") || m.name() == "LoyaltyReward")
    {
        let amount = m.child("Amount").filter(|a| !a.txt().is_empty());
        let amount = amount
            .map(|a| reduction(money(a, cur)?, a.attr("Action")))
            .transpose()?;
        let description = owned(m.text_of("Description"));
        modifiers.push(Modifier {
            description,
            amount,
            code: owned(m.text_of("PromotionID")),
        });
    }
    let link_names = [
        "TransactionLink",
        "OriginalTransaction",
        "OriginalTransactionInfo",
        "ReturnReceipt",
    ];
    for l in c.children.iter().filter(|l| link_names.contains(&l.name())) {
        links.extend(link(l, Some(LinkReason::Return))?.ok());
    }
    // Identity: ItemID, else the first non-GTIN POSIdentity; GTIN from any identity that
    // is a valid GS1 number.
    let is_gtin = |t: Option<&str>| {
        t.map(norm)
            .is_some_and(|t| matches!(t.as_str(), "gtin" | "ean" | "upc"))
    };
    let ids: Vec<(&str, bool)> = c
        .kids("POSIdentity")
        .filter_map(|p| Some((p.text_of("POSItemID")?, is_gtin(p.attr("POSIDType")))))
        .collect();
    let sku = c
        .text_of("ItemID")
        .or(ids.iter().find(|i| !i.1).or(ids.first()).map(|i| i.0));
    let serials = c
        .kids("SerialNumber")
        .filter(|s| s.attr("Type") == Some("GTIN"))
        .map(Node::txt);
    let gtin = ids
        .iter()
        .filter(|i| i.1)
        .map(|i| i.0)
        .chain(serials)
        .chain(sku)
        .find(|g| valid_gtin(g));
    let uom = q.and_then(|q| q.attr("UnitOfMeasureCode")).map(|u| {
        let u = u.to_ascii_lowercase();
        let canonical = match u.as_str() {
            "ea" | "each" | "c62" | "h87" | "pce" | "pc" => "ea",
            "kgm" => "kg",
            "lbr" => "lb",
            "grm" => "g",
            "ltr" => "l",
            _ => u.as_str(),
        };
        canonical.to_owned()
    });
    let price = ["ActualSalesUnitPrice", "RegularSalesUnitPrice", "UnitPrice"]
        .iter()
        .find_map(|n| money_of(c, n, cur).transpose());
    let dept = [
        "MerchandiseHierarchy",
        "MerchandiseStructureItemID",
        "ProductGroup",
    ]
    .iter()
    .find_map(|n| c.text_of(n));
    let description = c
        .text_of("Description")
        .or(c.child("ItemID").and_then(|i| i.attr("Name")));
    let item = ItemLine {
        line: 0,
        sku: owned(sku),
        gtin: owned(gtin),
        description: owned(description),
        department: owned(dept),
        quantity,
        uom,
        unit_price: price.transpose()?,
        extended,
        taxes,
        modifiers,
        void: void && !reversal,
        voids_line: None,
        no_sku: sku.is_none(),
    };
    let meta = Meta {
        weighed: li.flag("weightItem"),
        reversal,
        voids: li.text_of("VoidsLine").and_then(|v| v.parse().ok()),
        op_seq: owned(c.text_of("OperatorSequence")),
        tax_included: c.flag("TaxIncludedInPriceFlag"),
        ..Meta::default()
    };
    Ok((item, meta))
}

/// GS1 GTIN-8/12/13/14 with a valid check digit and at least 8 significant digits (a PLU
/// padded with zeros is not a GTIN).
fn valid_gtin(s: &str) -> bool {
    let b = s.as_bytes();
    let zeros = b.iter().take_while(|d| **d == b'0').count() + 14usize.saturating_sub(b.len());
    if !matches!(b.len(), 8 | 12 | 13 | 14) || !b.iter().all(u8::is_ascii_digit) || zeros > 6 {
        return false;
    }
    let weight = |i: usize| if i.is_multiple_of(2) { 3 } else { 1 };
    let sum: u32 = b
        .iter()
        .rev()
        .skip(1)
        .enumerate()
        .map(|(i, d)| u32::from(d - b'0') * weight(i))
        .sum();
    b.last()
        .is_some_and(|c| u32::from(c - b'0') == (10 - sum % 10) % 10)
}

fn discount(c: &Node, loyalty: bool, cur: Currency) -> R<Option<DiscountLine>> {
    // NCR ACS writes each reward twice, per item (detailedData) and summarised; only the
    // summary counts. Non-monetary rewards (points, receipt messages) are not discounts.
    let detail =
        c.attr("detailedData") == Some("true") && c.attr("summarizedActivity") != Some("true");
    if detail || c.text_of("RewardCategory").is_some_and(|k| k != "Monetary") {
        return Ok(None);
    }
    let names = ["Amount", "ExtendedRewardAmount", "ExtendedAmount"];
    let Some(node) = names
        .iter()
        .find_map(|n| c.child(n).filter(|a| !a.txt().is_empty()))
    else {
        return if loyalty {
            Ok(None)
        } else {
            Err(format!("{} has no Amount", c.name()))
        };
    };
    let amount = reduction(money(node, cur)?, node.attr("Action"))?;
    if loyalty && amount == Amount::ZERO {
        return Ok(None);
    }
    let applies_to_line = c.text_of("AppliesToLine").and_then(|s| s.parse().ok());
    let (description, code) = (
        owned(c.text_of("Description")),
        owned(c.text_of("PromotionID")),
    );
    Ok(Some(DiscountLine {
        line: 0,
        amount,
        description,
        code,
        applies_to_line,
        loyalty,
    }))
}

fn rounding(n: &Node, cur: Currency) -> R<Option<Line>> {
    if n.txt().is_empty() {
        return Ok(None);
    }
    let a = money(n, cur)?;
    let amount = match n.attr("RoundingDirection") {
        Some("Down") => neg(abs(a)?)?,
        Some("Up") => abs(a)?,
        _ => a,
    };
    Ok((amount != Amount::ZERO).then_some(Line::Rounding(RoundingLine { line: 0, amount })))
}

/// ARTS tender type (any prefix) → canonical type, and the original text for "other".
fn tender_type(raw: Option<&str>, card_type: Option<&str>) -> (TenderType, Option<String>) {
    let t = match raw.map(norm).as_deref() {
        Some("cash") => TenderType::Cash,
        Some("creditdebit") if card_type.map(norm).as_deref() == Some("debit") => TenderType::Debit,
        Some("creditdebit" | "credit" | "creditcard") => TenderType::Credit,
        Some("debit" | "debitcard") => TenderType::Debit,
        Some("check" | "cheque" | "personalcheck") => TenderType::Check,
        Some("giftcard" | "giftcertificate") => TenderType::GiftCard,
        Some("voucher" | "coupon") => TenderType::Voucher,
        Some("storecredit") => TenderType::StoreCredit,
        Some("foodstamps" | "foodstamp" | "ebt") => TenderType::Ebt,
        Some("mobile" | "mobilepayment" | "wallet" | "mobilewallet") => TenderType::Mobile,
        Some("other") | None => return (TenderType::Other, None),
        Some(_) => return (TenderType::Other, owned(raw)),
    };
    (t, None)
}

const BRANDS: &str = "visa=visa mastercard=mastercard mc=mastercard amex=amex \
    americanexpress=amex discover=discover maestro=maestro girocard=girocard jcb=jcb \
    diners=diners dinersclub=diners unionpay=unionpay cup=unionpay vpay=vpay interac=interac";

fn brand(s: &str) -> Option<String> {
    let key = norm(s);
    let mut known = BRANDS.split_whitespace().filter_map(|p| p.split_once('='));
    known.find(|(k, _)| *k == key).map(|(_, b)| b.to_owned())
}

fn entry_mode(s: &str) -> String {
    let mode = match norm(s).as_str() {
        "msr" | "swipe" | "swiped" | "magstripe" | "magneticstripe" => "swipe",
        "icc" | "chip" | "emv" | "inserted" => "chip",
        "contactless" | "rfid" | "nfc" | "tapped" => "contactless",
        "keyed" | "manual" | "keyentered" => "manual",
        _ => {
            return s
                .rsplit(':')
                .next()
                .unwrap_or(s)
                .to_ascii_lowercase()
                .replace(['-', ' '], "_");
        }
    };
    mode.to_owned()
}

/// Only the last four digits, and the first six when the number has a PAN's length and is
/// either a full Luhn-valid PAN or masked in the middle.
fn pan_parts(pan: &str) -> (Option<String>, Option<String>) {
    let s: Vec<char> = pan.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = |r: &[char]| r.iter().all(char::is_ascii_digit);
    let n = s.len();
    let last4 = (n >= 4 && digits(&s[n - 4..])).then(|| s[n - 4..].iter().collect());
    let masked = n >= 10
        && s[6..n - 4]
            .iter()
            .all(|c| matches!(c, '*' | 'X' | 'x' | '#'));
    let pan_like = (13..=19).contains(&n) && last4.is_some() && digits(&s[..6]);
    let bin = (pan_like && ((digits(&s) && luhn(&s)) || masked)).then(|| s[..6].iter().collect());
    (last4, bin)
}

fn luhn(d: &[char]) -> bool {
    let digit = |(i, c): (usize, &char)| {
        let v = c.to_digit(10).unwrap_or(0) * if i % 2 == 1 { 2 } else { 1 };
        if v > 9 { v - 9 } else { v }
    };
    d.iter().rev().enumerate().map(digit).sum::<u32>() % 10 == 0
}

fn tender(li: &Node, c: &Node, void: bool, cur: Currency) -> R<Vec<Line>> {
    let mut out = Vec::new();
    let round = c
        .child("Rounding")
        .map(|r| rounding(r, cur))
        .transpose()?
        .flatten();
    let Some(amount_node) = c.child("Amount").filter(|a| !a.txt().is_empty()) else {
        // Visma writes cash rounding as a Tender holding only a Rounding.
        out.extend(round);
        for ch in c.kids("TenderChange") {
            out.extend(change(ch, cur)?);
        }
        return Ok(out);
    };
    let mut amount = money(amount_node, cur)?;
    if c.attr("TypeCode") == Some("Refund") && amount.get() > 0 {
        amount = neg(amount)?;
    }
    let cd = c.child("CreditDebit");
    let raw_type = c.attr("TenderType").or(c.text_of("TenderType"));
    let (tender_type, description) = tender_type(raw_type, cd.and_then(|d| d.attr("CardType")));
    // NCR writes change as a Tender whose Amount is the (negative) change itself.
    let mut only_change = false;
    for ch in c.kids("TenderChange") {
        only_change |= money_of(ch, "Amount", cur)? == Some(amount);
        out.extend(change(ch, cur)?);
    }
    if !only_change {
        let card = cd
            .map(|d| card(li, c, d))
            .filter(|k| k.brand.is_some() || k.last4.is_some() || k.token.is_some());
        let auth = c.child("Authorization").map(|a| authorization(a, void));
        let description = description.or(owned(c.text_of("Description")));
        out.insert(
            0,
            Line::Tender(TenderLine {
                line: 0,
                tender_type,
                amount,
                card,
                auth,
                description,
            }),
        );
    }
    out.extend(round);
    Ok(out)
}

fn card(li: &Node, c: &Node, d: &Node) -> Card {
    let (last4, bin) = d
        .text_of("PrimaryAccountNumber")
        .map(pan_parts)
        .unwrap_or_default();
    let iin = d
        .child("IssuerIdentificationNumber")
        .and_then(|i| i.attr("Name"));
    let reason = c.child("ReasonCode").and_then(|r| r.attr("Description"));
    let names = [
        d.text_of("CardBrand"),
        d.attr("CreditDescription"),
        d.attr("CardType"),
        iin,
        reason,
    ];
    let entry = c
        .attr("EntryMethod")
        .or(d.attr("EntryMethod"))
        .or(li.attr("EntryMethod"));
    Card {
        brand: names.into_iter().flatten().find_map(brand),
        last4,
        bin,
        token: owned(d.text_of("Token").or(d.text_of("CardToken"))),
        entry_mode: entry.map(entry_mode),
    }
}

fn authorization(a: &Node, tender_void: bool) -> Auth {
    let explicit = a
        .text_of("AuthorizationStatus")
        .or(a.attr("Status"))
        .map(norm);
    let status = match explicit.as_deref() {
        Some("declined") => AuthStatus::Declined,
        Some("reversed") => AuthStatus::Reversed,
        Some("pending") => AuthStatus::Pending,
        Some("offlineapproved") => AuthStatus::OfflineApproved,
        Some("approved") => AuthStatus::Approved,
        _ if a.flag("DeclinedFlag") => AuthStatus::Declined,
        _ if tender_void || a.flag("ReversalFlag") => AuthStatus::Reversed,
        _ if a.flag("OfflineFlag") || a.attr("HostAuthorized") == Some("false") => {
            AuthStatus::OfflineApproved
        }
        _ => AuthStatus::Approved,
    };
    Auth {
        status,
        code: owned(a.text_of("AuthorizationCode")),
    }
}

/// Change lines of a `TenderChange` (roqqio nests one per tender type inside it).
fn change(n: &Node, cur: Currency) -> R<Vec<Line>> {
    let mut out = Vec::new();
    if let Some(a) = money_of(n, "Amount", cur)? {
        let (t, _) = tender_type(n.attr("TenderType"), None);
        let tender_type = (t != TenderType::Cash && n.attr("TenderType").is_some()).then_some(t);
        out.push(Line::Change(ChangeLine {
            line: 0,
            amount: abs(a)?,
            tender_type,
        }));
    }
    for inner in n.kids("TenderChange") {
        out.extend(change(inner, cur)?);
    }
    if let Some(r) = n.child("Rounding") {
        out.extend(rounding(r, cur)?);
    }
    Ok(out)
}

/// A TransactionLink; `Ok(Err(code))` when its reason has no canonical equivalent.
fn link(n: &Node, default: Option<LinkReason>) -> R<Result<Link, String>> {
    let code = n.attr("ReasonCode").or(n.text_of("ReasonCode"));
    let reason = match (code.map(norm).as_deref(), default) {
        (Some("return" | "refund"), _) => LinkReason::Return,
        (Some("postvoid" | "void" | "voided" | "postvoided"), _) => LinkReason::PostVoid,
        (Some("resume" | "resumed"), _) => LinkReason::Resume,
        (None, Some(d)) => d,
        _ => return Ok(Err(code.unwrap_or("no ReasonCode").to_owned())),
    };
    let Some(seq) = n.text_of("SequenceNumber").or(n.text_of("TransactionID")) else {
        return Ok(Err("link without SequenceNumber".into()));
    };
    let day = n
        .child("BusinessDayDate")
        .map(|b| b.text_of("Date").unwrap_or(b.txt()));
    let bad = |d: &str| {
        format!(
            "TransactionLink BusinessDayDate '{}' is not YYYY-MM-DD",
            clip(d)
        )
    };
    let business_day = day.map(|d| date(d).ok_or_else(|| bad(d))).transpose()?;
    let register_id = owned(n.text_of("WorkstationID"));
    let line = n
        .text_of("LineItemSequenceNumber")
        .and_then(|s| s.parse().ok());
    Ok(Ok(Link {
        reason,
        pos_sequence: pos_seq(seq),
        register_id,
        business_day,
        line,
    }))
}

/// `line` = the LineItem's SequenceNumber when usable and unique, else numbers after the
/// largest one, in document order.
fn number_lines(lines: &mut [Line], meta: &[Meta]) {
    let mut used = HashSet::new();
    let mut pending = Vec::new();
    for (i, m) in meta.iter().enumerate() {
        match m.seq.filter(|s| used.insert(*s)) {
            Some(s) => *line_no(&mut lines[i]) = s,
            None => pending.push(i),
        }
    }
    let mut next = used.iter().max().copied().unwrap_or(0);
    for i in pending {
        next = next.saturating_add(1);
        *line_no(&mut lines[i]) = next;
    }
}

/// A reversal line cancels the line it names (`VoidsLine`), else the latest earlier line of
/// the same article and opposite amount: that line becomes `void: true`, the reversal gets
/// `voids_line`. Both stay in the sums, as the register counted them.
fn pair_voids(lines: &mut [Line], meta: &[Meta]) {
    let mut taken = HashSet::new();
    for j in 0..lines.len() {
        let Line::Item(rev) = &lines[j] else { continue };
        if !meta[j].reversal {
            continue;
        }
        let (sku, ext, named) = (rev.sku.clone(), rev.extended.get(), meta[j].voids);
        let matches = |i: usize, it: &ItemLine| match named {
            Some(n) => it.line == n,
            None => {
                !it.void
                    && it.sku == sku
                    && it.extended.get() == -ext
                    && !meta[i].reversal
                    && !taken.contains(&i)
            }
        };
        let target = (0..j)
            .rev()
            .find(|&i| matches!(&lines[i], Line::Item(it) if matches(i, it)));
        let Some(i) = target else { continue };
        taken.insert(i);
        let mut voided = 0;
        if let Line::Item(it) = &mut lines[i] {
            (it.void, voided) = (true, it.line);
        }
        if let Line::Item(rev) = &mut lines[j] {
            rev.voids_line = Some(voided);
        }
    }
}

/// Item lines that count in totals: a voided line counts only when a reversal line
/// cancels it (the two then net to zero, as in the register's own sums).
fn counted(lines: &[Line]) -> Vec<(usize, &ItemLine)> {
    let items = lines.iter().enumerate().filter_map(|(k, l)| match l {
        Line::Item(i) => Some((k, i)),
        _ => None,
    });
    let cancelled: HashSet<u32> = items.clone().filter_map(|(_, i)| i.voids_line).collect();
    items
        .filter(|(_, i)| !i.void || cancelled.contains(&i.line))
        .collect()
}

fn kind_of(lines: &[Line], meta: &[Meta]) -> Kind {
    let items = counted(lines);
    let live = items.iter().filter(|(k, i)| !i.void && !meta[*k].reversal);
    let returns = live
        .clone()
        .filter(|(_, i)| i.quantity.is_negative())
        .count();
    match (live.count() - returns, returns) {
        (_, 0) => Kind::Sale,
        (0, _) => Kind::Return,
        _ => Kind::Exchange,
    }
}

fn sum(it: impl Iterator<Item = Amount>) -> R<Amount> {
    Amount::sum(it).map_err(|_| "a total is out of range".to_owned())
}

/// Totals as the register printed them; the ones it did not print are computed from the
/// lines and named in `ext.totals_computed`. Mismatches are kept, never fixed.
fn totals(rt: &Node, lines: &[Line], meta: &[Meta], cur: Currency, ext: &mut Ext) -> R<Totals> {
    let (mut grand, mut gross, mut tax, mut item_count) = (None, None, None, None);
    for t in rt.kids("Total") {
        let ty = t.attr("TotalType").unwrap_or("");
        match ty {
            "TransactionPurchaseQuantity" => item_count = decimal(t)?.rescale(0),
            "TransactionGrandAmount" => grand = Some(money(t, cur)?),
            "TransactionGrossAmount" => gross = Some(money(t, cur)?),
            "TransactionTaxAmount" => tax = Some(money(t, cur)?),
            _ => {
                if let Ok(a) = money(t, cur) {
                    ext.insert(format!("total:{ty}"), json!(a.get()));
                }
            }
        }
    }
    if let (None, Some(n)) = (item_count, rt.child("ItemCount")) {
        item_count = decimal(n)?.rescale(0);
    }
    let of = |f: fn(&Line) -> bool| sum(lines.iter().filter(|&l| f(l)).map(amount));
    let items = counted(lines);
    let mods = items
        .iter()
        .flat_map(|(_, i)| i.modifiers.iter().filter_map(|m| m.amount));
    let discounts = sum(mods.chain([of(|l| matches!(l, Line::Discount(_)))?]))?;
    let mut computed = Vec::new();
    let gross = match gross {
        Some(g) => g,
        None => {
            computed.push("gross");
            sum(items.iter().map(|(_, i)| i.extended))?
        }
    };
    let tax = match tax {
        Some(t) => t,
        None if lines.iter().any(|l| matches!(l, Line::Tax(_))) => {
            computed.push("tax");
            of(|l| matches!(l, Line::Tax(_)))?
        }
        None => {
            computed.push("tax");
            sum(items
                .iter()
                .flat_map(|(_, i)| i.taxes.iter().filter_map(|t| t.amount)))?
        }
    };
    let grand = match grand {
        Some(g) => g,
        None => {
            computed.push("grand");
            let rounding = of(|l| matches!(l, Line::Rounding(_)))?;
            let inclusive = items.iter().any(|(k, _)| meta[*k].tax_included);
            sum([
                gross,
                discounts,
                rounding,
                if inclusive { Amount::ZERO } else { tax },
            ]
            .into_iter())?
        }
    };
    // Articles: whole quantities of "ea" lines, ±1 per weighed line.
    let count = |(k, i): &(usize, &ItemLine)| {
        let sign = if i.quantity.is_negative() { -1 } else { 1 };
        let each = !meta[*k].weighed && i.uom.as_deref().is_none_or(|u| u == "ea");
        i.quantity.rescale(0).filter(|_| each).unwrap_or(sign)
    };
    let item_count =
        item_count.or_else(|| Some(items.iter().map(count).fold(0i64, i64::saturating_add)));
    put(ext, "totals_computed", &computed.join(","));
    let tendered = of(|l| matches!(l, Line::Tender(_)))?;
    let change = of(|l| matches!(l, Line::Change(_)))?;
    Ok(Totals {
        gross,
        discounts,
        tax,
        grand,
        tendered,
        change,
        item_count,
    })
}

/// Customer by reference only: names, addresses, birthdays, e-mails are never read.
fn customer(tx: &Node, rt: &Node, loyalty: Option<String>) -> Option<Customer> {
    let scopes = [rt, tx];
    let id = scopes.iter().find_map(|s| {
        let c = s.child("Customer").and_then(|c| c.text_of("CustomerID"));
        c.or(s
            .child("LoyaltyAccount")
            .and_then(|l| l.text_of("CustomerID")))
    });
    let card = scopes.iter().find_map(|s| {
        let l = s.child("LoyaltyAccount")?;
        let number = l
            .child("LoyaltyCard")
            .and_then(|c| c.text_of("PrimaryAccountNumber"));
        number
            .or(l.text_of("LoyaltyCardNumber"))
            .or(l.text_of("CustomerAccountID"))
    });
    let c = Customer {
        id: owned(id),
        loyalty_id: owned(card).or(loyalty),
    };
    (c.id.is_some() || c.loyalty_id.is_some()).then_some(c)
}

fn control(tx: &Node, ct: &Node, opts: &Options) -> R<Event> {
    let kind = ct
        .children
        .iter()
        .find(|c| c.name() != "ReasonCode" && !c.prefixed());
    let Some(k) = kind else {
        return Err(format!("{} is empty", ct.name()));
    };
    let (et, action) = match k.name() {
        "OperatorSignOn" => (EventType::Operator, "sign_on"),
        "OperatorSignOff" => (EventType::Operator, "sign_off"),
        "NoSale" => (EventType::NoSale, ""),
        "TillOpen" => (EventType::Till, "open"),
        "TillClose" => (EventType::Till, "close"),
        "TillSettle" => (EventType::Till, "settle"),
        "Loan" | "TenderLoan" => (EventType::CashMovement, "loan"),
        "Pickup" | "TenderPickup" => (EventType::CashMovement, "pickup"),
        "PaidIn" => (EventType::CashMovement, "paid_in"),
        "PaidOut" => (EventType::CashMovement, "paid_out"),
        other => return Err(format!("{} kind {other} is not mapped", ct.name())),
    };
    let mut body = Map::new();
    if !action.is_empty() {
        body.insert("action".into(), json!(action));
    }
    if matches!(et, EventType::Operator | EventType::NoSale) {
        let fields = [
            (
                "reason",
                ct.text_of("ReasonCode").or(k.text_of("ReasonCode")),
            ),
            ("previous_operator_id", k.text_of("PreviousOperatorID")),
            (
                "drawer_id",
                tx.text_of("TillID").filter(|_| et == EventType::NoSale),
            ),
        ];
        for (key, v) in fields.into_iter().filter_map(|(k, v)| Some((k, v?))) {
            body.insert(key.into(), json!(v));
        }
    } else {
        let mut all = Vec::new();
        k.walk(&mut all);
        if let Some(a) = all
            .into_iter()
            .find(|n| n.name() == "Amount" && !n.txt().is_empty())
        {
            let cur = currency(tx, opts)?;
            body.insert("amount".into(), json!(money(a, cur)?.get()));
            body.insert("currency".into(), json!(cur.as_str()));
        }
    }
    let mut ev = Event::new(et);
    ev.body = Body::Other(body);
    Ok(ev)
}
