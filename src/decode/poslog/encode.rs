//! Simulator event (JSON) → POSLog 6 document with one `<Transaction>`, in the style of
//! the fixtures, written so that `decode` gives the same event back. Where ARTS has no
//! element for a canonical field, a `posedge:` extension element is used (AppliesToLine,
//! VoidsLine, PreviousOperatorID, Ext). Free text is escaped, never filtered.

use crate::model::transaction::*;
use crate::model::{Amount, Currency, PosSequence};
use serde_json::Value;
use std::fmt::Write;

/// Why an event cannot be written as POSLog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// POSLog has no transaction kind for this event.
    #[error("event_type {0:?} cannot be written as POSLog")]
    Unsupported(String),
    /// The event does not have the simulator's shape.
    #[error("the event cannot be encoded: {0}")]
    Invalid(String),
}

fn bad(e: impl std::fmt::Display) -> EncodeError {
    EncodeError::Invalid(e.to_string())
}

/// XML-escapes text; characters XML 1.0 cannot carry at all are an error.
fn esc(s: &str) -> Result<String, EncodeError> {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\r' => o.push_str("&#13;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n') => {
                return Err(bad(format!(
                    "text contains control character U+{:04X}",
                    c as u32
                )));
            }
            c => o.push(c),
        }
    }
    Ok(o)
}

fn major(a: Amount, cur: Currency) -> String {
    let s = a.of(cur).to_string();
    s.split(' ').next().unwrap_or_default().to_owned()
}

fn seq_text(p: &PosSequence) -> String {
    match p {
        PosSequence::Number(n) => n.to_string(),
        PosSequence::Text(t) => t.clone(),
    }
}

/// Writes `<tag>text</tag>` when `v` is present.
fn el(o: &mut String, tag: &str, v: Option<&str>) -> Result<(), EncodeError> {
    if let Some(v) = v {
        let _ = write!(o, "<{tag}>{}</{tag}>", esc(v)?);
    }
    Ok(())
}

/// Encodes one simulator event as a POSLog 6 document.
pub fn encode(event: &Value) -> Result<String, EncodeError> {
    let et = event["event_type"]
        .as_str()
        .ok_or_else(|| bad("no event_type"))?;
    let s = |k: &str| event[k].as_str();
    let body = &event["body"];
    let mut o = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<POSLog xmlns=\"http://www.nrf-arts.org/IXRetail/namespace/\" xmlns:posedge=\"urn:posedge:poslog:1\" MajorVersion=\"6\" MinorVersion=\"0\" FixVersion=\"0\">\n",
    );
    let flag = |k: &str| event["flags"][k].as_bool().unwrap_or(false);
    let _ = write!(o, "<Transaction TrainingModeFlag=\"{}\"", flag("training"));
    if flag("offline_payment") {
        o.push_str(" OfflineFlag=\"true\"");
    }
    if flag("reprint") {
        o.push_str(" ReprintFlag=\"true\"");
    }
    o.push('>');
    el(&mut o, "WorkstationID", s("register_id"))?;
    let seq = match &event["pos_sequence"] {
        Value::Number(n) => Some(n.to_string()),
        Value::String(t) => Some(t.clone()),
        _ => None,
    };
    el(&mut o, "SequenceNumber", seq.as_deref())?;
    el(&mut o, "OperatorID", s("operator_id"))?;
    match et {
        "transaction" => {
            let tx: Transaction = serde_json::from_value(body.clone()).map_err(bad)?;
            let _ = write!(o, "<CurrencyCode>{}</CurrencyCode>", tx.currency);
            retail(&mut o, &tx, body)?;
        }
        "operator" => {
            let tag = match body["action"].as_str() {
                Some("sign_on") => "OperatorSignOn",
                Some("sign_off") => "OperatorSignOff",
                other => return Err(bad(format!("operator action {other:?}"))),
            };
            let _ = write!(o, "<ControlTransaction>");
            el(&mut o, "ReasonCode", body["reason"].as_str())?;
            let _ = write!(o, "<{tag}>");
            el(
                &mut o,
                "posedge:PreviousOperatorID",
                body["previous_operator_id"].as_str(),
            )?;
            let _ = write!(o, "</{tag}></ControlTransaction>");
        }
        "no_sale" => {
            el(&mut o, "TillID", body["drawer_id"].as_str())?;
            o.push_str("<ControlTransaction>");
            el(&mut o, "ReasonCode", body["reason"].as_str())?;
            o.push_str("<NoSale/></ControlTransaction>");
        }
        "till" | "cash_movement" => {
            let tag = match body["action"].as_str() {
                Some("open") => "TillOpen",
                Some("close") => "TillClose",
                Some("settle") => "TillSettle",
                Some("loan") => "Loan",
                Some("pickup") => "Pickup",
                Some("paid_in") => "PaidIn",
                Some("paid_out") => "PaidOut",
                other => return Err(bad(format!("{et} action {other:?}"))),
            };
            let _ = write!(o, "<TenderControlTransaction><{tag}>");
            if let Some(a) = body["amount"].as_i64() {
                let cur: Currency = body["currency"]
                    .as_str()
                    .unwrap_or_default()
                    .parse()
                    .map_err(bad)?;
                let _ = write!(
                    o,
                    "<Amount Currency=\"{cur}\">{}</Amount>",
                    major(Amount::minor(a), cur)
                );
            }
            let _ = write!(o, "</{tag}></TenderControlTransaction>");
        }
        other => return Err(EncodeError::Unsupported(other.to_owned())),
    }
    el(&mut o, "BusinessDayDate", s("business_day"))?;
    el(&mut o, "EndDateTime", s("occurred_at"))?;
    if let Some(ext) = event["ext"].as_object() {
        for (k, v) in ext {
            let (ty, text) = match v {
                Value::String(t) => ("", t.clone()),
                Value::Number(n) => (" Type=\"number\"", n.to_string()),
                Value::Bool(b) => (" Type=\"boolean\"", b.to_string()),
                other => (" Type=\"json\"", other.to_string()),
            };
            let _ = write!(
                o,
                "<posedge:Ext Key=\"{}\"{ty}>{}</posedge:Ext>",
                esc(k)?,
                esc(&text)?
            );
        }
    }
    o.push_str("</Transaction>\n</POSLog>\n");
    Ok(o)
}

fn retail(o: &mut String, tx: &Transaction, body: &Value) -> Result<(), EncodeError> {
    let cur = tx.currency;
    let m = |a: Amount| major(a, cur);
    let post_void = tx.links.iter().any(|l| l.reason == LinkReason::PostVoid);
    let status = match tx.status {
        Status::Completed => "Finished",
        Status::Voided if post_void => "PostVoided",
        Status::Voided => "Voided",
        Status::Suspended => "Suspended",
        Status::Resumed => "Resumed",
        Status::Cancelled => "Canceled",
    };
    let _ = write!(o, "<RetailTransaction TransactionStatus=\"{status}\">");
    for (idx, line) in tx.lines.iter().enumerate() {
        let pan = body["lines"][idx]["card"]["pan"].as_str();
        match line {
            Line::Item(i) => item(o, i, cur)?,
            Line::Discount(d) => {
                let tag = if d.loyalty {
                    "LoyaltyReward"
                } else {
                    "Discount"
                };
                let action = if d.amount.get() > 0 {
                    "Add"
                } else {
                    "Subtract"
                };
                let _ = write!(
                    o,
                    "<LineItem><{tag}><Amount Action=\"{action}\">{}</Amount>",
                    m(abs(d.amount)?)
                );
                el(o, "Description", d.description.as_deref())?;
                el(o, "PromotionID", d.code.as_deref())?;
                el(
                    o,
                    "posedge:AppliesToLine",
                    d.applies_to_line.map(|n| n.to_string()).as_deref(),
                )?;
                let _ = write!(o, "</{tag}>");
            }
            Line::Rounding(r) => {
                let _ = write!(o, "<LineItem><Rounding>{}</Rounding>", m(r.amount));
            }
            Line::Tax(t) => {
                o.push_str("<LineItem><Tax>");
                el(o, "TaxableAmount", t.taxable.map(m).as_deref())?;
                let _ = write!(o, "<Amount>{}</Amount>", m(t.amount));
                el(o, "Percent", t.rate.map(percent).as_deref())?;
                el(o, "TaxGroupID", t.code.as_deref())?;
                o.push_str("</Tax>");
            }
            Line::Tender(t) => tender(o, t, pan, cur)?,
            Line::Change(c) => {
                let ty = c.tender_type.map_or("Cash", tender_name);
                let _ = write!(
                    o,
                    "<LineItem><TenderChange TypeCode=\"Refund\"><TenderChange TenderType=\"{ty}\"><Amount>{}</Amount></TenderChange></TenderChange>",
                    m(c.amount)
                );
            }
        }
        let n = match line {
            Line::Item(x) => x.line,
            Line::Discount(x) => x.line,
            Line::Rounding(x) => x.line,
            Line::Tax(x) => x.line,
            Line::Tender(x) => x.line,
            Line::Change(x) => x.line,
        };
        let _ = write!(o, "<SequenceNumber>{n}</SequenceNumber>");
        if let Line::Item(ItemLine {
            voids_line: Some(v),
            ..
        }) = line
        {
            let _ = write!(o, "<posedge:VoidsLine>{v}</posedge:VoidsLine>");
        }
        o.push_str("</LineItem>");
    }
    let t = &tx.totals;
    for (ty, a) in [
        ("TransactionGrandAmount", t.grand),
        ("TransactionGrossAmount", t.gross),
        ("TransactionTaxAmount", t.tax),
    ] {
        let _ = write!(
            o,
            "<Total TotalType=\"{ty}\" CurrencyCode=\"{cur}\">{}</Total>",
            m(a)
        );
    }
    if let Some(n) = t.item_count {
        let _ = write!(
            o,
            "<Total TotalType=\"TransactionPurchaseQuantity\">{n}</Total>"
        );
    }
    for l in &tx.links {
        let code = match l.reason {
            LinkReason::Return => "Return",
            LinkReason::PostVoid => "PostVoid",
            LinkReason::Resume => "Resume",
        };
        let _ = write!(o, "<TransactionLink ReasonCode=\"{code}\">");
        el(o, "WorkstationID", l.register_id.as_deref())?;
        el(o, "SequenceNumber", Some(&seq_text(&l.pos_sequence)))?;
        el(o, "BusinessDayDate", l.business_day.as_deref())?;
        el(
            o,
            "LineItemSequenceNumber",
            l.line.map(|n| n.to_string()).as_deref(),
        )?;
        o.push_str("</TransactionLink>");
    }
    if let Some(c) = &tx.customer {
        if let Some(id) = &c.id {
            let _ = write!(
                o,
                "<Customer><CustomerID>{}</CustomerID></Customer>",
                esc(id)?
            );
        }
        if let Some(l) = &c.loyalty_id {
            let _ = write!(
                o,
                "<LoyaltyAccount><LoyaltyCard><PrimaryAccountNumber>{}</PrimaryAccountNumber></LoyaltyCard></LoyaltyAccount>",
                esc(l)?
            );
        }
    }
    o.push_str("</RetailTransaction>");
    Ok(())
}

fn abs(a: Amount) -> Result<Amount, EncodeError> {
    if a.get() < 0 {
        a.checked_neg().map_err(bad)
    } else {
        Ok(a)
    }
}

/// Rate 0.19 → Percent "19"; 0.0875 → "8.75".
fn percent(r: crate::model::Decimal) -> String {
    let s = r.scale();
    match r.rescale(s) {
        Some(u) if s >= 2 => crate::model::Decimal::new(u, s - 2)
            .map(|d| d.to_string())
            .unwrap_or_default(),
        Some(u) => (i128::from(u) * 10i128.pow(u32::from(2 - s))).to_string(),
        None => String::new(),
    }
}

fn item(o: &mut String, i: &ItemLine, cur: Currency) -> Result<(), EncodeError> {
    let reversal = i.voids_line.is_some();
    let tag = if i.quantity.is_negative() && !reversal {
        "Return"
    } else {
        "Sale"
    };
    let _ = write!(
        o,
        "<LineItem{}><{tag} ItemType=\"Stock\">",
        if i.void || reversal {
            " VoidFlag=\"true\""
        } else {
            ""
        }
    );
    el(o, "ItemID", i.sku.as_deref())?;
    if let Some(g) = &i.gtin {
        let _ = write!(
            o,
            "<POSIdentity POSIDType=\"GTIN\"><POSItemID>{}</POSItemID></POSIdentity>",
            esc(g)?
        );
    }
    if let Some(d) = &i.department {
        let _ = write!(
            o,
            "<MerchandiseHierarchy Level=\"Department\">{}</MerchandiseHierarchy>",
            esc(d)?
        );
    }
    el(o, "Description", i.description.as_deref())?;
    el(
        o,
        "ActualSalesUnitPrice",
        i.unit_price.map(|p| major(p, cur)).as_deref(),
    )?;
    let _ = write!(
        o,
        "<ExtendedAmount>{}</ExtendedAmount>",
        major(i.extended, cur)
    );
    match &i.uom {
        Some(u) => {
            let _ = write!(
                o,
                "<Quantity UnitOfMeasureCode=\"{}\">{}</Quantity>",
                esc(&u.to_ascii_uppercase())?,
                i.quantity
            );
        }
        None => {
            let _ = write!(o, "<Quantity>{}</Quantity>", i.quantity);
        }
    }
    for t in &i.taxes {
        o.push_str("<Tax>");
        if let Some(a) = t.amount {
            let _ = write!(o, "<Amount>{}</Amount>", major(a, cur));
        }
        el(o, "Percent", t.rate.map(percent).as_deref())?;
        el(o, "TaxGroupID", t.code.as_deref())?;
        o.push_str("</Tax>");
    }
    for md in &i.modifiers {
        o.push_str("<RetailPriceModifier>");
        if let Some(a) = md.amount {
            let action = if a.get() > 0 { "Add" } else { "Subtract" };
            let _ = write!(
                o,
                "<Amount Action=\"{action}\">{}</Amount>",
                major(abs(a)?, cur)
            );
        }
        el(o, "Description", md.description.as_deref())?;
        el(o, "PromotionID", md.code.as_deref())?;
        o.push_str("</RetailPriceModifier>");
    }
    let _ = write!(o, "</{tag}>");
    Ok(())
}

fn tender_name(t: TenderType) -> &'static str {
    match t {
        TenderType::Cash => "Cash",
        TenderType::Credit | TenderType::Debit => "CreditDebit",
        TenderType::GiftCard => "GiftCard",
        TenderType::Ebt => "FoodStamps",
        TenderType::Check => "Check",
        TenderType::StoreCredit => "StoreCredit",
        TenderType::Mobile => "Mobile",
        TenderType::Voucher => "Voucher",
        TenderType::Other => "Other",
    }
}

fn tender(
    o: &mut String,
    t: &TenderLine,
    pan: Option<&str>,
    cur: Currency,
) -> Result<(), EncodeError> {
    let entry = t
        .card
        .as_ref()
        .and_then(|c| c.entry_mode.as_deref())
        .map(|e| match e {
            "chip" => "ICC".to_owned(),
            "swipe" => "MSR".to_owned(),
            "manual" => "Keyed".to_owned(),
            "contactless" => "Contactless".to_owned(),
            other => other.to_owned(),
        });
    o.push_str("<LineItem");
    if let Some(e) = entry {
        let _ = write!(o, " EntryMethod=\"{}\"", esc(&e)?);
    }
    let name = match (t.tender_type, &t.description) {
        (TenderType::Other, Some(d)) => esc(d)?,
        (ty, _) => tender_name(ty).to_owned(),
    };
    let code = if t.amount.get() < 0 { "Refund" } else { "Sale" };
    let _ = write!(
        o,
        "><Tender TenderType=\"{name}\" TypeCode=\"{code}\"><Amount>{}</Amount>",
        major(abs(t.amount)?, cur)
    );
    if let Some(a) = &t.auth {
        let host = if a.status == AuthStatus::OfflineApproved {
            "false"
        } else {
            "true"
        };
        let _ = write!(o, "<Authorization HostAuthorized=\"{host}\">");
        el(o, "AuthorizationCode", a.code.as_deref())?;
        let status = match a.status {
            AuthStatus::Approved => None,
            AuthStatus::Declined => Some("Declined"),
            AuthStatus::OfflineApproved => Some("OfflineApproved"),
            AuthStatus::Pending => Some("Pending"),
            AuthStatus::Reversed => Some("Reversed"),
        };
        el(o, "AuthorizationStatus", status)?;
        o.push_str("</Authorization>");
    }
    if let Some(c) = &t.card {
        let kind = if t.tender_type == TenderType::Debit {
            "Debit"
        } else {
            "Credit"
        };
        let _ = write!(o, "<CreditDebit CardType=\"{kind}\">");
        el(o, "CardBrand", c.brand.as_deref())?;
        // A PAN the simulator planted goes in as given, for the redactor downstream.
        let masked = c.last4.as_ref().map(|l| {
            format!(
                "{}{}{l}",
                c.bin.as_deref().unwrap_or("******"),
                "*".repeat(6)
            )
        });
        el(
            o,
            "PrimaryAccountNumber",
            pan.map(str::to_owned).or(masked).as_deref(),
        )?;
        el(o, "Token", c.token.as_deref())?;
        o.push_str("</CreditDebit>");
    }
    o.push_str("</Tender>");
    Ok(())
}
