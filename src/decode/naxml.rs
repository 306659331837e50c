//! `naxml`: Conexxus NAXML-POSJournal documents (`<NAXML-POSJournal>` or Verifone's
//! `<nax:POSJournal>`, namespace `http://www.naxml.org/POSBO/Vocabulary/2003-10-16`).
//!
//! One document gives one entry per journal event, in document order: an event, or a
//! rejection with the event's own bytes. A document that is not well-formed, has a DOCTYPE,
//! is nested deeper than `max_depth`, is larger than `max_bytes`, has another root or no
//! journal event at all is rejected whole. Element names are matched without prefix.
//!
//! Sources (no vendor fixture was available; the element names and conventions come from
//! public code that parses real files): the Gilbarco Passport 22.01/23.01 POSJournal 3.4
//! parsers and tests of a Python back-office (`PosImport`: refunds negative end to end,
//! change as a negative cash `TenderInfo` with `ChangeFlag value="yes"`, void events made of
//! `status="cancel"` lines, `FuelLine` with grade, position and 3-decimal volume), a Node.js
//! Passport importer (`TransactionTotalGrandAmount direction=…`, `FuelPrepayLine`,
//! `Authorization/ApprovalReferenceCode`, `ReturnFlag`, `VoidFlag`), a PHP importer (event
//! header fields, `ItemTax`, `TenderSubCode`, `FinancialEvent/PayOutDetail`), and a Verifone
//! Commander note (`nax:` prefixes). Our test documents in `tests/data/naxml/` are written
//! by us in that shape.
//!
//! | NAXML | posedge |
//! |---|---|
//! | `SaleEvent` / `RefundEvent` / `VoidEvent` | `transaction`, kind sale / return / sale with status voided; `SuspendFlag` → suspended |
//! | `TransactionID`, `RegisterID`, `CashierID`, `BusinessDate` | pos_sequence, register_id, operator_id, business_day |
//! | `EventEndDate`+`EventEndTime` (else `EventStart…`) | occurred_at when the time has an offset, else `ext.local_time` |
//! | `TrainingModeFlag`, `OfflineFlag` (`value="yes"`) | flags.training, flags.offline_payment |
//! | `TransactionLine status="cancel"/"void"`, `VoidFlag` | item `void` |
//! | `ItemLine`: `ItemCode/POSCode` (+`POSCodeFormat`), `Description`, `MerchandiseCode`, `SalesQuantity` (`uom`), `ActualSalesPrice`, `SalesAmount`, `ItemTax` (`TaxLevelID`, `TaxCollectedAmount`), `Promotion`/`Discount` | sku (and gtin for UPC/EAN), description, department, quantity (uom), unit_price, extended, taxes, modifiers (negative) |
//! | `MerchandiseCodeLine` | item with `no_sku`, department = `MerchandiseCode` |
//! | `FuelLine`: `FuelGradeID`, `SalesQuantity uom=…` | item sku `fuel:<grade>`, quantity = volume, uom from the document |
//! | `FuelPrepayLine` | item with `no_sku`, quantity 1 |
//! | `TenderInfo`: `Tender/TenderCode` (+`TenderSubCode`), `TenderAmount`, `Authorization` | tender (type by code, description `code/subcode`, card brand = sub-code of card tenders, auth approved + code); `ChangeFlag value="yes"` → change line of the absolute amount |
//! | `TransactionTax`: `TaxLevelID`, `TaxableSalesAmount`, `TaxCollectedAmount` | tax line |
//! | `TransactionSummary`: `…GrossAmount`, `…TaxNetAmount`/`…TaxAmount`, `…GrandAmount` | totals (a `direction="Refunded"` grand is negated); missing ones are summed from the lines |
//! | `OtherEvent/RegisterDetail detailType=…` (`CashInDrawer`) | `till` {action, amount, currency} |
//! | `FinancialEvent/FinancialEventDetail/<X>Detail` | `cash_movement` {action: x in snake case, amount, tender, currency} |
//!
//! To `ext`: `store_location_id`, `till_id`, `event_sequence_id`, `outside_sale`,
//! `transaction_total_net_amount` (its meaning differs between vendors), and per line
//! `line.N.fuel_position_id`, `line.N.actual_sales_price` (when not exact to the minor unit,
//! as fuel prices per gallon are) and `line.N.return` (N = the canonical line), and
//! `naxml_line.N.cancelled` (a cancelled tender or tax) and `naxml_line.N.unmapped` (an
//! element we do not map, e.g. `LoyaltyInfo`) (N = the `TransactionLine`'s position).
//! Amounts keep the sign the register wrote. NAXML names no currency: the source's default
//! currency is used and an event is refused without one. A refused event carries its own
//! element's bytes (as UTF-8, after any ISO-8859-1 conversion); a refused document its
//! first 64 KiB.

use super::{Decoded, Rejected};
use crate::model::transaction::{
    Auth, AuthStatus, Card, ChangeLine, ItemLine, Kind, Line, LineTax, Modifier, Status, TaxLine,
    TenderLine, TenderType, Totals, Transaction,
};
use crate::model::{Amount, Body, Currency, Decimal, Event, EventType, PosSequence};
use quick_xml::XmlVersion;
use quick_xml::events::Event as Xml;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Per-source settings of the NAXML decoder.
#[derive(Debug, Clone)]
pub struct NaxmlOptions {
    /// Currency of the amounts (NAXML documents rarely name one).
    pub default_currency: Option<Currency>,
    /// Largest document accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest element nesting accepted.
    pub max_depth: usize,
}

impl Default for NaxmlOptions {
    fn default() -> Self {
        NaxmlOptions {
            default_currency: None,
            max_bytes: 8 << 20,
            max_depth: 64,
        }
    }
}

/// Bytes of a refused whole document kept for the dead letters.
const KEEP_RAW: usize = 64 << 10;

/// Decodes one document into one entry per journal event.
pub fn decode(raw: &[u8], opts: &NaxmlOptions) -> Decoded {
    let whole = |reason| {
        vec![Err(Rejected::whole(
            reason,
            raw.get(..KEEP_RAW).unwrap_or(raw),
        ))]
    };
    if raw.len() > opts.max_bytes {
        return whole(format!(
            "the document is {} bytes, over the limit of {}",
            raw.len(),
            opts.max_bytes
        ));
    }
    let text = match utf8(raw) {
        Ok(t) => t,
        Err(reason) => return whole(reason),
    };
    let doc = match parse(&text, opts.max_depth) {
        Ok(d) => d,
        Err(reason) => return whole(reason),
    };
    doc.events
        .iter()
        .map(|(n, span)| {
            let raw = text
                .as_bytes()
                .get(span.clone())
                .unwrap_or_default()
                .to_vec();
            map_event(n, &doc, opts).map_err(|e| Rejected {
                reason: format!("{} {}: {e}", n.name, n.id()),
                raw,
            })
        })
        .collect()
}

/// The document as UTF-8: as is, or from ISO-8859-1 when declared so (Passport writes it).
fn utf8(raw: &[u8]) -> Result<Cow<'_, str>, String> {
    if raw.starts_with(b"\xFF\xFE") || raw.starts_with(b"\xFE\xFF") {
        return Err("the document is UTF-16; only UTF-8 and ISO-8859-1 are read".into());
    }
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    let head = raw.get(..raw.len().min(256)).unwrap_or(raw);
    let decl = head
        .starts_with(b"<?xml")
        .then(|| head.split(|b| *b == b'>').next())
        .flatten();
    let encoding = decl.and_then(|d| {
        let d = String::from_utf8_lossy(d).to_ascii_lowercase();
        let v = d
            .split("encoding")
            .nth(1)?
            .trim_start()
            .strip_prefix('=')?
            .trim_start()
            .to_string();
        let q = v.chars().next()?;
        Some(v.get(1..)?.split(q).next()?.to_string())
    });
    match encoding.as_deref() {
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii") => {
            std::str::from_utf8(raw).map(Cow::Borrowed).map_err(|e| {
                format!(
                    "the document is not UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                )
            })
        }
        Some("iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "l1") => {
            Ok(Cow::Owned(raw.iter().map(|&b| char::from(b)).collect()))
        }
        Some(other) => Err(format!(
            "the document's encoding {other:?} is not supported (UTF-8 or ISO-8859-1)"
        )),
    }
}

/// An element: local name, attributes, text, children.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    kids: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.kids.iter().find(|k| k.name == name)
    }
    fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, p| n.child(p))
    }
    /// Trimmed text of the element at `path`, when not empty.
    fn text(&self, path: &[&str]) -> Option<&str> {
        self.at(path)
            .map(|n| n.text.trim())
            .filter(|t| !t.is_empty())
    }
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    }
    /// `<Flag value="yes"/>`.
    fn yes(&self, name: &str) -> bool {
        self.child(name)
            .and_then(|f| f.attr("value"))
            .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
    }
    fn id(&self) -> String {
        self.text(&["TransactionID"]).map_or_else(
            || "without TransactionID".into(),
            |t| format!("TransactionID {t}"),
        )
    }
}

struct Doc {
    headers: Vec<Node>,
    events: Vec<(Node, std::ops::Range<usize>)>,
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// Streams the document, keeping trees only of the journal events and headers.
fn parse(text: &str, max_depth: usize) -> Result<Doc, String> {
    let mut r = quick_xml::Reader::from_str(text);
    // Open elements: local name and whether it is kept as a tree (then it is on `open`).
    let mut names: Vec<(String, bool)> = Vec::new();
    let mut open: Vec<(Node, usize)> = Vec::new();
    let mut doc = Doc {
        headers: Vec::new(),
        events: Vec::new(),
    };
    loop {
        let pos = usize::try_from(r.buffer_position()).unwrap_or(usize::MAX);
        let ev = r
            .read_event()
            .map_err(|e| format!("malformed XML near byte {}: {e}", r.error_position()))?;
        let closes = match &ev {
            Xml::Start(e) | Xml::Empty(e) => {
                let name = local(e.local_name().as_ref()).to_string();
                if names.is_empty() && !matches!(name.as_str(), "NAXML-POSJournal" | "POSJournal") {
                    return Err(format!(
                        "the root element <{name}> is not a NAXML POSJournal"
                    ));
                }
                if names.len() >= max_depth {
                    return Err(format!("elements nest deeper than {max_depth} levels"));
                }
                let top =
                    names.len() == 1 || names.last().is_some_and(|(n, _)| n == "JournalReport");
                let keep = !open.is_empty()
                    || top
                        && (name.ends_with("Event")
                            || name == "TransmissionHeader"
                            || name == "JournalHeader");
                if keep {
                    let mut attrs = Vec::new();
                    for a in e.attributes() {
                        let a = a.map_err(|e| format!("malformed attribute in <{name}>: {e}"))?;
                        let v = a
                            .normalized_value(XmlVersion::Implicit1_0)
                            .map_err(|e| format!("attribute in <{name}>: {e}"))?;
                        attrs.push((local(a.key.as_ref()).to_string(), v.into_owned()));
                    }
                    open.push((
                        Node {
                            name: name.clone(),
                            attrs,
                            ..Node::default()
                        },
                        pos,
                    ));
                }
                names.push((name, keep));
                matches!(ev, Xml::Empty(_))
            }
            Xml::End(_) => true,
            Xml::Text(t) => push_text(&mut open, &t.xml10_content()),
            Xml::CData(t) => push_text(&mut open, &t.xml10_content()),
            Xml::GeneralRef(g) => {
                let c = match g.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(g)
                        .ok_or_else(|| format!("undefined entity &{};", &**g))?
                        .to_string(),
                };
                push_text(&mut open, &c)
            }
            Xml::DocType(_) => {
                return Err("the document has a DOCTYPE, which NAXML does not use; refused".into());
            }
            Xml::Eof if names.is_empty() => break,
            Xml::Eof => {
                return Err(
                    "malformed XML: the document ends before its elements are closed".into(),
                );
            }
            _ => false,
        };
        if closes && names.pop().is_some_and(|(_, keep)| keep) {
            let Some((node, at)) = open.pop() else {
                continue;
            };
            let end = usize::try_from(r.buffer_position()).unwrap_or(usize::MAX);
            match open.last_mut() {
                Some((parent, _)) => parent.kids.push(node),
                None if node.name.ends_with("Event") => doc.events.push((node, at..end)),
                None => doc.headers.push(node),
            }
        }
    }
    if doc.events.is_empty() {
        return Err(
            "the document holds no journal event (SaleEvent, RefundEvent, VoidEvent, …)".into(),
        );
    }
    Ok(doc)
}

/// Adds text to the innermost kept element; returns `false` (text closes nothing).
fn push_text(open: &mut [(Node, usize)], t: &str) -> bool {
    if let Some((n, _)) = open.last_mut() {
        n.text.push_str(t);
    }
    false
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
        && s.get(5..7)
            .and_then(|m| m.parse::<u8>().ok())
            .is_some_and(|m| (1..=12).contains(&m))
        && s.get(8..)
            .and_then(|d| d.parse::<u8>().ok())
            .is_some_and(|d| (1..=31).contains(&d))
}

/// Whether an `xs:time` (`13:31:38`, `13:31:38.5`, `…Z`, `…-05:00`) carries an offset;
/// `None` when it is not a time.
fn offset(t: &str) -> Option<bool> {
    let two = |at: usize, max: u8| {
        t.get(at..at + 2)
            .and_then(|d| d.parse::<u8>().ok())
            .is_some_and(|d| d <= max)
    };
    let ok = two(0, 23)
        && two(3, 59)
        && two(6, 60)
        && t.get(2..3) == Some(":")
        && t.get(5..6) == Some(":");
    let rest = t.get(8..)?;
    let frac = rest
        .strip_prefix('.')
        .map_or(0, |f| 1 + f.bytes().take_while(u8::is_ascii_digit).count());
    let zone = rest.get(frac..)?;
    let z = |at: usize, max: u8| {
        zone.get(at..at + 2)
            .and_then(|d| d.parse::<u8>().ok())
            .is_some_and(|d| d <= max)
    };
    let has = match zone {
        "" => false,
        "Z" => true,
        _ if zone.len() == 6
            && matches!(zone.get(..1), Some("+" | "-"))
            && z(1, 23)
            && z(4, 59) =>
        {
            true
        }
        _ => return None,
    };
    (ok && frac != 1).then_some(has)
}

fn money(el: &Node, name: &str, cur: Currency, at: &str) -> Result<Option<Amount>, String> {
    el.text(&[name])
        .map(|t| Amount::parse_major(t, cur).map_err(|e| format!("{at} {}/{name}: {e}", el.name)))
        .transpose()
}

fn map_event(n: &Node, doc: &Doc, opts: &NaxmlOptions) -> Result<Event, String> {
    let event_type = match n.name.as_str() {
        "SaleEvent" | "RefundEvent" | "VoidEvent" => EventType::Transaction,
        "OtherEvent" => EventType::Till,
        "FinancialEvent" => EventType::CashMovement,
        other => return Err(format!("<{other}> is not mapped to a posedge event")),
    };
    let mut ev = Event::new(event_type);
    let mut ext = Map::new();
    let header = |path: &[&str]| doc.headers.iter().find_map(|h| h.text(path));
    ev.pos_sequence = n
        .text(&["TransactionID"])
        .map(|t| match t.parse() {
            Ok(v) if t == "0" || !t.starts_with('0') => Ok(PosSequence::Number(v)),
            _ if t.chars().count() <= 64 => Ok(PosSequence::Text(t.into())),
            _ => Err("TransactionID is longer than 64 characters"),
        })
        .transpose()?;
    ev.register_id = n.text(&["RegisterID"]).map(String::from);
    ev.operator_id = n.text(&["CashierID"]).map(String::from);
    ev.business_day = match n
        .text(&["BusinessDate"])
        .or_else(|| header(&["BusinessDate"]))
    {
        Some(d) if is_date(d) => Some(d.into()),
        Some(d) => return Err(format!("BusinessDate {d:?} is not YYYY-MM-DD")),
        None => None,
    };
    let when = |p: &str| {
        n.text(&[&format!("Event{p}Date")])
            .zip(n.text(&[&format!("Event{p}Time")]))
    };
    if let Some((d, t)) = when("End").or_else(|| when("Start")) {
        match offset(t).filter(|_| is_date(d)) {
            Some(true) => ev.occurred_at = Some(format!("{d}T{t}")),
            // NAXML times are the store's wall clock; without an offset the instant is not
            // known, so the text is kept for people instead of being guessed into UTC.
            Some(false) => drop(ext.insert("local_time".into(), Value::from(format!("{d}T{t}")))),
            None => {
                return Err(format!(
                    "event date and time {d:?} {t:?} are not xs:date and xs:time"
                ));
            }
        }
    }
    ev.flags.training = n.yes("TrainingModeFlag");
    ev.flags.offline_payment = n.yes("OfflineFlag");
    for (key, value) in [
        ("store_location_id", header(&["StoreLocationID"])),
        ("till_id", n.text(&["TillID"])),
        ("event_sequence_id", n.text(&["EventSequenceID"])),
    ] {
        if let Some(v) = value {
            ext.insert(key.into(), Value::from(v));
        }
    }
    if n.yes("OutsideSalesFlag") {
        ext.insert("outside_sale".into(), Value::Bool(true));
    }
    let cur = opts.default_currency;
    let no_cur = || "no currency: set a default currency for this source".to_string();
    ev.body = match event_type {
        EventType::Transaction => {
            Body::Transaction(Box::new(transaction(n, cur.ok_or_else(no_cur)?, &mut ext)?))
        }
        _ => {
            let (detail, action, amount) = if event_type == EventType::Till {
                let d = n
                    .child("RegisterDetail")
                    .ok_or("an OtherEvent without RegisterDetail is not mapped")?;
                let action = d
                    .attr("detailType")
                    .ok_or("RegisterDetail has no detailType")?;
                (d, action, "CashInDrawer")
            } else {
                let d = n
                    .child("FinancialEventDetail")
                    .and_then(|d| d.kids.iter().find(|k| k.name.ends_with("Detail")));
                let d =
                    d.ok_or("a FinancialEvent without FinancialEventDetail/…Detail is not mapped")?;
                (d, d.name.trim_end_matches("Detail"), "DetailAmount")
            };
            let mut body = Map::from_iter([("action".into(), Value::from(snake(action)))]);
            let text = detail
                .text(&[amount])
                .or_else(|| detail.text(&["TenderInfo", "TenderAmount"]));
            if let Some(t) = text {
                let c = cur.ok_or_else(no_cur)?;
                let a = Amount::parse_major(t, c)
                    .map_err(|e| format!("{}/{amount}: {e}", detail.name))?;
                body.insert("amount".into(), Value::from(a.get()));
                body.insert("currency".into(), Value::from(c.as_str()));
            }
            if let Some(t) = detail.text(&["TenderInfo", "Tender", "TenderCode"]) {
                body.insert("tender".into(), Value::from(t));
            }
            Body::Other(body)
        }
    };
    ev.ext = ext;
    Ok(ev)
}

/// `PayOut` → `pay_out`, `open` → `open`.
fn snake(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn transaction(
    n: &Node,
    cur: Currency,
    ext: &mut Map<String, Value>,
) -> Result<Transaction, String> {
    let status = match n.name.as_str() {
        "VoidEvent" => Status::Voided,
        _ if n.yes("SuspendFlag") => Status::Suspended,
        _ => Status::Completed,
    };
    let kind = if n.name == "RefundEvent" {
        Kind::Return
    } else {
        Kind::Sale
    };
    let mut lines = Vec::new();
    // Passport groups lines in TransactionDetailGroup; Verifone's journal may not.
    let group = n
        .child("TransactionDetailGroup")
        .map_or(&[][..], |g| g.kids.as_slice());
    let tls = group
        .iter()
        .chain(&n.kids)
        .filter(|k| k.name == "TransactionLine");
    for (i, tl) in (1..).zip(tls) {
        let at = format!("TransactionLine {i}");
        let cancelled = match tl
            .attr("status")
            .unwrap_or("normal")
            .to_ascii_lowercase()
            .as_str()
        {
            "normal" | "" => false,
            "cancel" | "cancelled" | "canceled" | "void" | "voided" => true,
            s => return Err(format!("{at} has status {s:?}, not normal, cancel or void")),
        };
        for el in &tl.kids {
            let line = u32::try_from(lines.len() + 1).unwrap_or(u32::MAX);
            let mut note = |what: &str| {
                let key = format!("naxml_line.{i}.{what}");
                let names = ext
                    .get(&key)
                    .and_then(Value::as_str)
                    .map_or(el.name.clone(), |v| format!("{v},{}", el.name));
                ext.insert(key, Value::from(names));
            };
            match el.name.as_str() {
                "ItemLine" | "MerchandiseCodeLine" | "FuelLine" | "FuelPrepayLine" => {
                    lines.push(Line::Item(item(el, line, cancelled, cur, ext, &at)?));
                }
                "LineNumber" | "TransactionLineSequenceNumber" => {}
                // A cancelled tender or tax never happened; the model has no void flag for
                // them, so the fact is kept beside the event.
                _ if cancelled => note("cancelled"),
                "TenderInfo" => lines.push(tender(el, line, cur, &at)?),
                "TransactionTax" => lines.push(Line::Tax(TaxLine {
                    line,
                    code: el.text(&["TaxLevelID"]).map(String::from),
                    rate: None,
                    taxable: money(el, "TaxableSalesAmount", cur, &at)?,
                    amount: money(el, "TaxCollectedAmount", cur, &at)?
                        .ok_or_else(|| format!("{at} TransactionTax has no TaxCollectedAmount"))?,
                })),
                _ => note("unmapped"),
            }
        }
    }
    let mut tx = Transaction {
        status,
        kind,
        currency: cur,
        lines,
        totals: Totals::default(),
        links: Vec::new(),
        customer: None,
        integrity: Vec::new(),
        mapping: Vec::new(),
    };
    let sums = tx
        .line_sums()
        .ok_or("the lines do not sum: an amount is out of range")?;
    let summary = n.child("TransactionSummary");
    let total = |names: &[&str]| -> Result<Option<(Amount, &Node)>, String> {
        let found = names.iter().find_map(|m| {
            summary
                .and_then(|s| s.child(m))
                .filter(|e| !e.text.trim().is_empty())
        });
        found
            .map(|e| {
                Amount::parse_major(e.text.trim(), cur)
                    .map(|a| (a, e))
                    .map_err(|x| format!("{}: {x}", e.name))
            })
            .transpose()
    };
    let grand = match total(&["TransactionTotalGrandAmount"])? {
        // Some registers write refunds as a positive amount "refunded"; the model signs them.
        Some((a, e))
            if e.attr("direction")
                .is_some_and(|d| d.eq_ignore_ascii_case("refunded"))
                && a.get() > 0 =>
        {
            a.checked_neg().map_err(|x| x.to_string())?
        }
        Some((a, _)) => a,
        None => sums.grand,
    };
    if let Some(net) = summary.and_then(|s| s.text(&["TransactionTotalNetAmount"])) {
        ext.insert("transaction_total_net_amount".into(), Value::from(net));
    }
    tx.totals = Totals {
        gross: total(&["TransactionTotalGrossAmount"])?.map_or(sums.gross, |t| t.0),
        tax: total(&["TransactionTotalTaxNetAmount", "TransactionTotalTaxAmount"])?
            .map_or(sums.tax, |t| t.0),
        grand,
        ..sums
    };
    Ok(tx)
}

fn item(
    el: &Node,
    line: u32,
    cancelled: bool,
    cur: Currency,
    ext: &mut Map<String, Value>,
    at: &str,
) -> Result<ItemLine, String> {
    let what = |f: &str| format!("{at} {}/{f}", el.name);
    let code = el.text(&["ItemCode", "POSCode"]);
    let format = el
        .at(&["ItemCode", "POSCodeFormat"])
        .and_then(|f| f.attr("format"))
        .map(str::to_ascii_lowercase);
    let gtin = code.filter(|c| {
        let digits = c.bytes().all(|b| b.is_ascii_digit());
        match format.as_deref() {
            Some(f) => digits && ["upca", "upce", "ean8", "ean13", "gtin", "gtin14"].contains(&f),
            None => digits && matches!(c.len(), 8 | 12 | 13 | 14),
        }
    });
    let sku = match el.name.as_str() {
        "ItemLine" => code.map(String::from),
        "FuelLine" => el.text(&["FuelGradeID"]).map(|g| format!("fuel:{g}")),
        _ => None,
    };
    let qty = el.child("SalesQuantity");
    let quantity = match qty.map(|q| q.text.trim()).filter(|q| !q.is_empty()) {
        Some(q) => q
            .parse::<Decimal>()
            .map_err(|e| format!("{}: {e}", what("SalesQuantity")))?,
        None if el.name == "FuelPrepayLine" => Decimal::from_int(1),
        None => return Err(format!("{at} {} has no SalesQuantity", el.name)),
    };
    let unit_price = match el.text(&["ActualSalesPrice"]) {
        None => None,
        Some(p) => match Amount::parse_major(p, cur) {
            Ok(a) => Some(a),
            // Fuel is priced in tenths of a cent: not an amount of the currency, so the
            // figure is kept as written instead of being rounded.
            Err(crate::model::MoneyError::NotExact { .. }) => {
                ext.insert(format!("line.{line}.actual_sales_price"), Value::from(p));
                None
            }
            Err(e) => return Err(format!("{}: {e}", what("ActualSalesPrice"))),
        },
    };
    let mut taxes = Vec::new();
    let mut modifiers = Vec::new();
    for k in &el.kids {
        match k.name.as_str() {
            "ItemTax" => taxes.push(LineTax {
                code: k.text(&["TaxLevelID"]).map(String::from),
                rate: None,
                amount: money(k, "TaxCollectedAmount", cur, at)?,
            }),
            "Promotion" | "Discount" => {
                let p = k.name.as_str();
                let amount = money(k, &format!("{p}Amount"), cur, at)?;
                // NAXML states the reduction as a positive figure; a modifier is signed.
                let amount = amount
                    .map(|a| if a.get() > 0 { a.checked_neg() } else { Ok(a) })
                    .transpose();
                modifiers.push(Modifier {
                    description: k.text(&[&format!("{p}Reason")]).map(String::from),
                    amount: amount.map_err(|e| format!("{}: {e}", what(p)))?,
                    code: k.text(&[&format!("{p}ID")]).map(String::from),
                });
            }
            _ => {}
        }
    }
    if let Some(p) = el.text(&["FuelPositionID"]) {
        ext.insert(format!("line.{line}.fuel_position_id"), Value::from(p));
    }
    if el.yes("ReturnFlag") {
        ext.insert(format!("line.{line}.return"), Value::Bool(true));
    }
    Ok(ItemLine {
        line,
        no_sku: sku.is_none(),
        sku,
        gtin: gtin.map(String::from),
        description: el.text(&["Description"]).map(String::from),
        department: el.text(&["MerchandiseCode"]).map(String::from),
        quantity,
        uom: qty
            .and_then(|q| q.attr("uom"))
            .filter(|u| !u.is_empty())
            .map(String::from),
        unit_price,
        extended: money(el, "SalesAmount", cur, at)?
            .ok_or_else(|| format!("{at} {} has no SalesAmount", el.name))?,
        taxes,
        modifiers,
        void: cancelled || el.yes("VoidFlag"),
        voids_line: None,
    })
}

fn tender(el: &Node, line: u32, cur: Currency, at: &str) -> Result<Line, String> {
    let code = el
        .text(&["Tender", "TenderCode"])
        .ok_or_else(|| format!("{at} TenderInfo has no Tender/TenderCode"))?;
    let sub = el
        .text(&["Tender", "TenderSubCode"])
        .filter(|s| !s.eq_ignore_ascii_case("generic"));
    let amount = money(el, "TenderAmount", cur, at)?
        .ok_or_else(|| format!("{at} TenderInfo has no TenderAmount"))?;
    let c = code.to_ascii_lowercase();
    let has = |s: &str| c.contains(s);
    let ty = match () {
        _ if c == "cash" => TenderType::Cash,
        _ if has("foodstamp") || has("ebt") => TenderType::Ebt,
        _ if has("gift") => TenderType::GiftCard,
        _ if has("check") || has("cheque") => TenderType::Check,
        _ if has("coupon") || has("voucher") => TenderType::Voucher,
        _ if has("housecharge") || has("storecredit") => TenderType::StoreCredit,
        _ if has("credit") => TenderType::Credit,
        _ if has("debit") => TenderType::Debit,
        _ if has("mobile") => TenderType::Mobile,
        _ => TenderType::Other,
    };
    if el.yes("ChangeFlag") {
        // Passport writes change as a negative tender; the model's change is positive.
        let amount = amount
            .get()
            .checked_abs()
            .map(Amount::minor)
            .ok_or("change amount out of range")?;
        return Ok(Line::Change(ChangeLine {
            line,
            amount,
            tender_type: (ty != TenderType::Cash).then_some(ty),
        }));
    }
    let approval = el
        .text(&["Authorization", "ApprovalReferenceCode"])
        .or_else(|| el.text(&["Authorization", "AuthorizationCode"]));
    let card = matches!(ty, TenderType::Credit | TenderType::Debit);
    Ok(Line::Tender(TenderLine {
        line,
        tender_type: ty,
        amount,
        card: sub.filter(|_| card).map(|s| Card {
            brand: Some(s.to_ascii_lowercase()),
            last4: None,
            bin: None,
            token: None,
            entry_mode: None,
        }),
        // A journal lists the tenders that were taken: an approval code means approved.
        auth: approval.map(|a| Auth {
            status: AuthStatus::Approved,
            code: Some(a.into()),
        }),
        description: Some(sub.map_or_else(|| code.to_string(), |s| format!("{code}/{s}"))),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd() -> NaxmlOptions {
        NaxmlOptions {
            default_currency: "USD".parse().ok(),
            ..NaxmlOptions::default()
        }
    }

    fn file(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/data/naxml/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("test document")
    }

    fn ok(raw: &[u8]) -> Vec<Event> {
        decode(raw, &usd())
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("{}", e.reason)))
            .collect()
    }

    fn tx(e: &Event) -> &Transaction {
        e.transaction().expect("a transaction")
    }

    /// A minimal document around one event body.
    fn doc(event: &str) -> Vec<u8> {
        format!("<NAXML-POSJournal><JournalReport>{event}</JournalReport></NAXML-POSJournal>")
            .into_bytes()
    }

    fn reason(raw: &[u8], opts: &NaxmlOptions) -> String {
        match decode(raw, opts).pop() {
            Some(Err(r)) => r.reason,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn passport_sale_maps_every_line_and_adds_up() {
        let evs = ok(&file("01-passport-sale-latin1.xml"));
        let (e, t) = (&evs[0], tx(&evs[0]));
        assert_eq!(
            (
                e.pos_sequence.clone(),
                e.register_id.as_deref(),
                e.operator_id.as_deref()
            ),
            (Some(PosSequence::Number(8945)), Some("1"), Some("3"))
        );
        assert_eq!(
            (e.business_day.as_deref(), e.occurred_at.as_deref()),
            (Some("2025-12-08"), None)
        );
        assert_eq!(e.ext["local_time"], "2025-12-09T13:31:38");
        assert_eq!(
            (e.ext["store_location_id"].clone(), e.ext["till_id"].clone()),
            (Value::from("1022"), Value::from("0318"))
        );
        let Line::Item(voided) = &t.lines[0] else {
            panic!()
        };
        assert!(voided.void && voided.gtin.as_deref() == Some("111111111117"));
        let Line::Item(latte) = &t.lines[2] else {
            panic!()
        };
        assert_eq!(
            (latte.description.as_deref(), latte.gtin.as_deref()),
            (Some("CAFÉ LATTE 12OZ"), None),
            "Latin-1 read, PLU is no GTIN"
        );
        let Line::Item(ice) = &t.lines[3] else {
            panic!()
        };
        assert!(
            ice.no_sku
                && ice.department.as_deref() == Some("17")
                && ice.description.as_deref() == Some("ICE 7LB & CUPS")
        );
        assert_eq!(
            ice.taxes,
            vec![LineTax {
                code: Some("101".into()),
                rate: None,
                amount: None
            }]
        );
        assert!(
            matches!(&t.lines[4], Line::Tax(x) if x.taxable == Some(Amount::minor(1526)) && x.amount == Amount::minor(107))
        );
        assert!(
            matches!(&t.lines[6], Line::Change(c) if c.amount == Amount::minor(367) && c.tender_type.is_none())
        );
        let want = Totals {
            gross: Amount::minor(1526),
            discounts: Amount::ZERO,
            tax: Amount::minor(107),
            grand: Amount::minor(1633),
            tendered: Amount::minor(2000),
            change: Amount::minor(367),
            item_count: None,
        };
        assert_eq!(t.totals, want);
        assert!(t.integrity.is_empty(), "{:?}", t.integrity);
    }

    #[test]
    fn fuel_lines_keep_volume_and_sub_cent_prices() {
        let evs = ok(&file("02-fuel-outside-credit.xml"));
        let (e, t) = (&evs[0], tx(&evs[0]));
        assert_eq!(e.occurred_at.as_deref(), Some("2025-12-09T07:15:02-05:00"));
        assert!(e.flags.offline_payment && e.ext["outside_sale"] == true);
        assert_eq!(e.pos_sequence, Some(PosSequence::Text("A-900".into())));
        let Line::Item(f) = &t.lines[0] else { panic!() };
        assert_eq!(
            (
                f.sku.as_deref(),
                f.quantity.to_string(),
                f.uom.as_deref(),
                f.unit_price
            ),
            (Some("fuel:001"), "10.000".into(), Some("gallonUS"), None)
        );
        assert_eq!(e.ext["line.1.actual_sales_price"], "3.459");
        assert_eq!(e.ext["line.2.fuel_position_id"], "9");
        assert_eq!(e.ext["naxml_line.4.unmapped"], "LoyaltyInfo");
        let Line::Tender(c) = &t.lines[2] else {
            panic!()
        };
        assert_eq!(
            (
                c.tender_type,
                c.card.as_ref().and_then(|c| c.brand.as_deref())
            ),
            (TenderType::Credit, Some("visa"))
        );
        assert_eq!(
            c.auth,
            Some(Auth {
                status: AuthStatus::Approved,
                code: Some("084321".into())
            })
        );
        assert_eq!(
            (t.totals.grand, t.totals.tendered),
            (Amount::minor(4484), Amount::minor(4484))
        );
        assert!(t.integrity.is_empty(), "{:?}", t.integrity);
    }

    #[test]
    fn refund_and_void_in_one_prefixed_document() {
        let evs = ok(&file("03-refund-and-void-prefixed.xml"));
        assert_eq!(evs.len(), 2);
        let r = tx(&evs[0]);
        assert_eq!(
            (r.kind, r.status, evs[0].occurred_at.as_deref()),
            (
                Kind::Return,
                Status::Completed,
                Some("2024-10-14T18:02:11Z")
            )
        );
        assert!(
            matches!(&r.lines[0], Line::Item(i) if i.quantity.is_negative() && i.extended == Amount::minor(-249) && i.description.as_deref() == Some("PEPSI 2L <returned>"))
        );
        assert_eq!(
            (r.totals.grand, r.totals.tendered, r.totals.change),
            (Amount::minor(-266), Amount::ZERO, Amount::minor(266))
        );
        assert!(r.integrity.is_empty(), "{:?}", r.integrity);
        let v = tx(&evs[1]);
        assert_eq!(
            (v.status, v.lines.len(), v.totals.grand),
            (Status::Voided, 1, Amount::ZERO)
        );
        assert_eq!(evs[1].ext["naxml_line.2.cancelled"], "TenderInfo");
    }

    #[test]
    fn other_and_financial_events_and_unknown_ones() {
        let out = decode(&file("04-other-financial-unknown.xml"), &usd());
        let till = out[0].as_ref().unwrap();
        assert_eq!(till.event_type, EventType::Till);
        assert_eq!(
            serde_json::to_value(&till.body).unwrap(),
            serde_json::json!({"action":"open","amount":50000,"currency":"USD"})
        );
        let pay = out[1].as_ref().unwrap();
        assert_eq!(
            serde_json::to_value(&pay.body).unwrap(),
            serde_json::json!({"action":"pay_out","amount":60000,"currency":"USD","tender":"cash"})
        );
        let rej = out[2].as_ref().unwrap_err();
        assert!(
            rej.reason.contains("PriceChangeEvent TransactionID 4037")
                && rej.reason.contains("not mapped")
        );
        assert!(
            rej.raw.starts_with(b"<PriceChangeEvent>") && rej.raw.ends_with(b"</PriceChangeEvent>")
        );
    }

    #[test]
    fn a_bad_event_is_refused_alone_with_its_own_bytes() {
        let raw = doc(
            "<SaleEvent><TransactionID>1</TransactionID><TransactionDetailGroup><TransactionLine>\
            <ItemLine><SalesQuantity>1</SalesQuantity><SalesAmount>1.999</SalesAmount></ItemLine></TransactionLine>\
            </TransactionDetailGroup></SaleEvent><VoidEvent><TransactionID>2</TransactionID></VoidEvent>",
        );
        let out = decode(&raw, &usd());
        let r = out[0].as_ref().unwrap_err();
        assert!(
            r.reason.contains("TransactionLine 1 ItemLine/SalesAmount")
                && r.reason.contains("not exact"),
            "{}",
            r.reason
        );
        assert!(r.raw.starts_with(b"<SaleEvent>") && r.raw.ends_with(b"</SaleEvent>"));
        assert!(out[1].is_ok());
    }

    #[test]
    fn verifone_journal_without_detail_group() {
        let raw = b"<nax:POSJournal xmlns:nax=\"http://www.naxml.org/POSBO/Vocabulary/2003-10-16\">\
            <nax:SaleEvent><nax:TransactionID>77</nax:TransactionID><nax:TransactionLine><nax:ItemLine>\
            <nax:SalesQuantity>1</nax:SalesQuantity><nax:SalesAmount>68.96</nax:SalesAmount></nax:ItemLine>\
            </nax:TransactionLine></nax:SaleEvent></nax:POSJournal>";
        let t = tx(&ok(raw)[0]).clone();
        assert_eq!((t.lines.len(), t.totals.gross), (1, Amount::minor(6896)));
    }

    #[test]
    fn currency_must_be_configured() {
        let r = reason(
            &file("02-fuel-outside-credit.xml"),
            &NaxmlOptions::default(),
        );
        assert!(
            r.contains("no currency: set a default currency for this source"),
            "{r}"
        );
    }

    #[test]
    fn line_rules() {
        let line = |tl: &str| {
            doc(&format!(
                "<SaleEvent><TransactionDetailGroup>{tl}</TransactionDetailGroup></SaleEvent>"
            ))
        };
        let e = &ok(&line(
            "<TransactionLine status=\"void\"><ItemLine><ItemCode><POSCode>4006381333931</POSCode></ItemCode>\
            <SalesQuantity>1</SalesQuantity><SalesAmount>2.00</SalesAmount><Promotion><PromotionID>P7</PromotionID>\
            <PromotionReason>combo</PromotionReason><PromotionAmount>0.50</PromotionAmount></Promotion><ReturnFlag value=\"yes\"/></ItemLine></TransactionLine>\
            <TransactionLine><FuelPrepayLine><FuelPositionID>3</FuelPositionID><SalesAmount>20.00</SalesAmount></FuelPrepayLine></TransactionLine>\
            <TransactionLine><TenderInfo><Tender><TenderCode>foodStamps</TenderCode></Tender><TenderAmount>20</TenderAmount></TenderInfo></TransactionLine>",
        ))[0];
        let t = tx(e);
        let Line::Item(i) = &t.lines[0] else { panic!() };
        assert!(i.void && i.gtin.as_deref() == Some("4006381333931"));
        assert_eq!(
            i.modifiers,
            vec![Modifier {
                description: Some("combo".into()),
                amount: Some(Amount::minor(-50)),
                code: Some("P7".into())
            }]
        );
        assert_eq!(e.ext["line.1.return"], true);
        assert!(
            matches!(&t.lines[1], Line::Item(p) if p.no_sku && p.quantity == Decimal::from_int(1))
        );
        assert!(matches!(&t.lines[2], Line::Tender(x) if x.tender_type == TenderType::Ebt));
        for (tl, why) in [
            ("<TransactionLine status=\"maybe\"/>", "status \"maybe\""),
            (
                "<TransactionLine><ItemLine><SalesAmount>1</SalesAmount></ItemLine></TransactionLine>",
                "has no SalesQuantity",
            ),
            (
                "<TransactionLine><ItemLine><SalesQuantity>x</SalesQuantity><SalesAmount>1</SalesAmount></ItemLine></TransactionLine>",
                "SalesQuantity",
            ),
            (
                "<TransactionLine><TenderInfo><TenderAmount>1</TenderAmount></TenderInfo></TransactionLine>",
                "no Tender/TenderCode",
            ),
            (
                "<TransactionLine><TransactionTax><TaxLevelID>1</TaxLevelID></TransactionTax></TransactionLine>",
                "no TaxCollectedAmount",
            ),
        ] {
            let r = reason(&line(tl), &usd());
            assert!(r.contains(why), "{tl}: {r}");
        }
    }

    #[test]
    fn integrity_flags_what_does_not_add_up() {
        let raw = doc(
            "<SaleEvent><TransactionDetailGroup><TransactionLine><MerchandiseCodeLine><SalesQuantity>1</SalesQuantity>\
            <SalesAmount>5.00</SalesAmount></MerchandiseCodeLine></TransactionLine></TransactionDetailGroup>\
            <TransactionSummary><TransactionTotalGrossAmount>6.00</TransactionTotalGrossAmount></TransactionSummary></SaleEvent>",
        );
        let t = tx(&ok(&raw)[0]).clone();
        let findings = t.check_integrity();
        assert_eq!(
            t.totals.gross,
            Amount::minor(600),
            "kept as the register sent it"
        );
        assert!(
            findings.iter().any(|f| f.starts_with("gross"))
                && findings.iter().any(|f| f.starts_with("cover")),
            "{findings:?}"
        );
    }

    #[test]
    fn documents_that_are_refused_whole() {
        let bomb = b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><NAXML-POSJournal><JournalReport><SaleEvent><RegisterID>&a;</RegisterID></SaleEvent></JournalReport></NAXML-POSJournal>";
        let deep = doc(&format!(
            "<SaleEvent>{}{}</SaleEvent>",
            "<a>".repeat(70),
            "</a>".repeat(70)
        ));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (bomb.to_vec(), "DOCTYPE"),
            (deep, "deeper than 64"),
            (
                b"<POSLog><SaleEvent/></POSLog>".to_vec(),
                "not a NAXML POSJournal",
            ),
            (
                doc("<SaleEvent><RegisterID>&x;</RegisterID></SaleEvent>"),
                "undefined entity",
            ),
            (doc("<SaleEvent></Sale>"), "malformed XML"),
            (
                b"<NAXML-POSJournal><JournalReport><SaleEvent>".to_vec(),
                "malformed XML",
            ),
            (doc(""), "no journal event"),
            (b"\xFF\xFE<\x00".to_vec(), "UTF-16"),
            (
                b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><NAXML-POSJournal/>".to_vec(),
                "not supported",
            ),
            (
                b"<NAXML-POSJournal>\xE9</NAXML-POSJournal>".to_vec(),
                "not UTF-8",
            ),
        ];
        for (raw, why) in cases {
            let out = decode(&raw, &usd());
            assert_eq!(out.len(), 1, "{why}");
            let r = reason(&raw, &usd());
            assert!(r.contains(why), "{why}: {r}");
        }
        let small = NaxmlOptions {
            max_bytes: 100,
            ..usd()
        };
        assert!(
            reason(&file("01-passport-sale-latin1.xml"), &small).contains("over the limit of 100")
        );
    }

    #[test]
    fn times_and_dates() {
        assert_eq!(offset("13:31:38"), Some(false));
        assert_eq!(offset("13:31:38.250+01:00"), Some(true));
        for bad in ["1:31:38", "25:00:00", "13:31:38.", "13:31:38+0100", "13:31"] {
            assert_eq!(offset(bad), None, "{bad}");
        }
        let r = reason(
            &doc("<SaleEvent><BusinessDate>08/12/2025</BusinessDate></SaleEvent>"),
            &usd(),
        );
        assert!(r.contains("BusinessDate"), "{r}");
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&raw, &usd());
        }

        #[test]
        fn damaged_documents_never_panic(cut in 0usize..4652, flip in 0usize..4652, byte in any::<u8>()) {
            let mut raw = file("01-passport-sale-latin1.xml");
            if let Some(b) = raw.get_mut(flip) { *b = byte; }
            raw.truncate(cut.max(1));
            let _ = decode(&raw, &usd());
        }
    }
}
