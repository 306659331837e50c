//! What the simulated register prints: a receipt laid out from a generated event, with
//! the card numbers the generator planted printed where careless registers print them.

use crate::model::{Amount, Currency};
use serde_json::Value;

/// The printable content of one receipt, before ESC/POS encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// Text lines, laid out for 42 columns.
    pub lines: Vec<String>,
    /// Code 128 payload printed under the totals.
    pub barcode: Option<String>,
    /// QR payload (the e-receipt link).
    pub qr: Option<String>,
    /// The cash drawer opens.
    pub drawer_kick: bool,
}

const WIDTH: usize = 42;

/// The receipt a register prints for `ev`; `None` for events that print nothing.
pub fn draft(ev: &Value) -> Option<Draft> {
    let s = |v: &Value, k: &str| match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let register = s(ev, "register_id");
    let number = s(ev, "pos_sequence");
    let mut lines = vec![
        "POSEDGE SIMULATED STORE".to_string(),
        format!("Reg {register}  Trx {number}  {}", s(ev, "operator_id")),
        s(ev, "occurred_at")
            .replace('T', " ")
            .chars()
            .take(19)
            .collect(),
        "-".repeat(WIDTH),
    ];
    let body = ev.get("body").unwrap_or(&Value::Null);
    let mut drawer_kick = false;
    match ev.get("event_type").and_then(Value::as_str) {
        Some("transaction") => {
            let currency: Currency = s(body, "currency").parse().ok()?;
            let money = |v: &Value, k: &str| {
                v.get(k)
                    .and_then(Value::as_i64)
                    .map(|m| major(Amount::minor(m), currency))
                    .unwrap_or_default()
            };
            if ev.pointer("/flags/training") == Some(&Value::Bool(true)) {
                lines.push("*** TRAINING - NOT A SALE ***".into());
            }
            if s(body, "status") == "voided" {
                lines.push("*** POST VOID ***".into());
            }
            for line in body.get("lines").and_then(Value::as_array)? {
                match line.get("kind").and_then(Value::as_str) {
                    Some("item") => {
                        let void = line.get("void") == Some(&Value::Bool(true));
                        let text = format!(
                            "{}{}",
                            if void { "VOID " } else { "" },
                            s(line, "description")
                        );
                        lines.push(columns(&text, &money(line, "extended")));
                        if s(line, "quantity") != "1" {
                            lines.push(format!(
                                "  {} x {}",
                                s(line, "quantity"),
                                money(line, "unit_price")
                            ));
                        }
                    }
                    Some("discount") => {
                        lines.push(columns(&s(line, "description"), &money(line, "amount")))
                    }
                    Some("tax") => lines.push(columns(
                        &format!("TAX {} {}", s(line, "code"), s(line, "rate")),
                        &money(line, "amount"),
                    )),
                    Some("tender") => {
                        let kind = s(line, "type").to_uppercase();
                        drawer_kick |= kind == "CASH";
                        lines.push(columns(&kind, &money(line, "amount")));
                        if let Some(card) = line.get("card") {
                            // Some registers print the whole PAN; the redactor must catch it.
                            let number = match card.get("pan").and_then(Value::as_str) {
                                Some(pan) => pan.to_string(),
                                None => format!("************{}", s(card, "last4")),
                            };
                            lines.push(format!("  {} {number}", s(card, "brand").to_uppercase()));
                        }
                        if let Some(auth) = line.get("auth") {
                            lines.push(format!("  AUTH {} {}", s(auth, "code"), s(auth, "status")));
                        }
                    }
                    Some("change") => lines.push(columns("CHANGE", &money(line, "amount"))),
                    _ => {}
                }
            }
            let totals = body.get("totals").unwrap_or(&Value::Null);
            lines.push("-".repeat(WIDTH));
            lines.push(columns("TOTAL", &money(totals, "grand")));
        }
        Some("no_sale") => {
            lines.push("NO SALE".into());
            drawer_kick = true;
        }
        _ => return None,
    }
    if let Some(note) = ev.pointer("/ext/note").and_then(Value::as_str) {
        // Unwrapped: a PAN cut across two lines would be neither readable nor maskable.
        lines.push(note.to_string());
    }
    lines.push("Thank you".into());
    Some(Draft {
        barcode: (!number.is_empty()).then(|| format!("{register}-{number}")),
        qr: (number.len() % 2 == 0).then(|| format!("https://r.example/{register}/{number}")),
        lines,
        drawer_kick,
    })
}

/// `text` left, `amount` right, within the receipt width.
fn columns(text: &str, amount: &str) -> String {
    let room = WIDTH.saturating_sub(amount.chars().count() + 1);
    let text: String = text.chars().take(room).collect();
    format!("{text:<room$} {amount}")
}

/// Minor units as a major-unit figure without the currency code ("-0.07").
fn major(amount: Amount, currency: Currency) -> String {
    let with_code = amount.of(currency).to_string();
    with_code
        .rsplit_once(' ')
        .map_or(with_code.clone(), |(n, _)| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::generate::{Generator, Profile};

    #[test]
    fn transactions_and_no_sales_print_and_card_numbers_reach_the_paper() {
        let mut g = Generator::new(5, Profile::Retail, "reg-1", "2026-11-27");
        let events: Vec<Value> = (0..200).map(|_| g.next_event()).collect();
        let drafts: Vec<Draft> = events.iter().filter_map(draft).collect();
        let printable = events
            .iter()
            .filter(|e| ["transaction", "no_sale"].contains(&e["event_type"].as_str().unwrap()))
            .count();
        assert_eq!(drafts.len(), printable);
        let laid_out = drafts.iter().flat_map(|d| &d.lines[..d.lines.len() - 2]);
        assert!(
            laid_out
                .clone()
                .all(|l| l.chars().count() <= WIDTH || l.contains("card"))
        );
        let text: String = drafts
            .iter()
            .flat_map(|d| d.lines.iter().cloned())
            .collect();
        let planted = events
            .iter()
            .filter(|e| crate::sim::generate::contains_test_pan(e) && draft(e).is_some())
            .count();
        assert!(planted > 0);
        assert!(crate::redact::redact_str(&text).1.pans > 0);
        assert!(text.contains("TOTAL") && text.contains("NO SALE"));
    }
}
