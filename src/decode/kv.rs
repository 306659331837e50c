//! `kv`: key=value electronic-journal lines, one record per line.
//!
//! # The grammar (for retail IT teams)
//!
//! A record is one line; the line reader has already removed the LF or CRLF.
//!
//! ```text
//! record  = *sep pair *(1*sep pair) *sep
//! pair    = key "=" value
//! key     = 1*64( A-Z / a-z / 0-9 / "_" / "." / "-" )    ; case-insensitive
//! value   = quoted / bare
//! quoted  = DQUOTE *( char / "\" DQUOTE / "\\" ) DQUOTE  ; any other "\" is kept as is
//! ```
//!
//! * **Separators.** If the line has a `|` outside quoted values, pairs are separated by
//!   `|`; else if it has a `;`, by `;`; else by spaces and tabs. With `|` or `;`, spaces
//!   around keys, `=` and values are ignored and bare values may contain spaces
//!   (`DESC=Orange Juice 1L|QTY=1`). Empty fields (`||`) are skipped.
//! * **Values.** A bare value runs to the next separator. A quoted value starts with `"`
//!   right after `=` and may hold anything, including separators; `\"` is a quote, `\\` a
//!   backslash. `KEY=` is an empty value.
//! * **Keys** are case-insensitive (`TYPE`, `Type`, `type`). Every key may appear once;
//!   two spellings of the same field (`TYPE=… EVT=…`) count as a duplicate and refuse
//!   the record.
//! * **Vendor fields.** Keys the table below does not know go to `ext` (at most 64, values
//!   of at most 256 characters; the same bounds hold for the body of other events). `ext.NAME=` always means a vendor field. In `ext` and in
//!   the bodies of non-transaction events a bare integer of up to 12 digits becomes a
//!   number and bare `true`/`false` a boolean; quote a value to keep it text (longer digit
//!   runs always stay text). Money is always written in major units with a decimal point
//!   (`1.89`), converted exactly to minor units; `1.899` in EUR is refused, not rounded.
//!   Words from a fixed list (event types, tender types, …) are case-insensitive and `-`
//!   may stand for `_` (`Gift-Card`). A record that breaks a rule is refused whole, with a
//!   reason naming the key.
//!
//! | field | keys (any case) | value |
//! |---|---|---|
//! | event_type | `TYPE` `EVT` `EVENT` `EVENT_TYPE` | `transaction`, `no_sale`, `drawer`, `till`, `shift`, `operator`, `cash_movement`, …; shorthands `sale`, `return`/`refund`, `exchange` mean a transaction of that kind; `nosale` = `no_sale` |
//! | pos_sequence | `TRX` `TXN` `SEQ` `RECEIPT` `TRANS` `POS_SEQUENCE` | bare digits without leading zeros are a number; anything else, or quoted, is text |
//! | business_day | `DAY` `BDATE` `BDAY` `BUSINESS_DAY` `BUSINESS_DATE` | `2026-11-27` or `20261127` |
//! | register_id | `REG` `TILL` `REGISTER` `LANE` `TERMINAL` `REGISTER_ID` | text |
//! | operator_id | `OP` `CASHIER` `OPERATOR` `CLERK` `OPERATOR_ID` | text |
//! | occurred_at | `TS` `TIME` `DATETIME` `TIMESTAMP` `OCCURRED_AT` | RFC 3339; without an offset it is kept as `ext.local_time` |
//! | currency | `CUR` `CURR` `CURRENCY` | ISO 4217; else the source's default currency |
//! | flags | `TRAINING`/`TRAIN`/`TRN`, `OFFLINE`, `REPRINT`/`DUP` | `1`/`0`, `Y`/`N`, `yes`/`no`, `true`/`false` |
//!
//! **Transactions** (`TYPE=transaction` or a shorthand) also know: `STATUS` (completed,
//! voided, suspended, resumed, cancelled), `KIND` (sale, return, exchange), totals
//! `GROSS`/`SUBTOTAL`, `DISCOUNTS`, `TAX`, `TOTAL`/`GRAND`, `TENDERED`/`PAID`, `CHANGE`,
//! `ITEMS`/`ITEM_COUNT`, and `CUSTOMER`/`CUST`, `LOYALTY`. A total that is left out is
//! computed from the lines (grand tax-exclusive); one that is given is kept and checked,
//! and disagreements are listed in `body.integrity`. Lines use indexed keys
//! `KIND.N.FIELD` (N = 1…9999):
//!
//! | kind | fields |
//! |---|---|
//! | `ITEM`/`ITM` | `SKU`/`PLU`, `GTIN`/`EAN`/`UPC`, `DESC`, `DEPT`, `QTY` (required), `UOM`, `PRICE` (unit), `EXT`/`AMOUNT` (required), `TAX` = `code:rate:amount[,…]` (parts may be empty), `VOID`, `VOIDS` (line it cancels), `NO_SKU` (default: no SKU and no GTIN), `MOD.M.DESC`/`AMOUNT`/`CODE` |
//! | `DISCOUNT`/`DISC` | `AMOUNT` (required, signed), `DESC`, `CODE`, `APPLIES_TO` (item line), `LOYALTY` |
//! | `ROUNDING` | `AMOUNT` |
//! | `TAX` | `AMOUNT` (required), `CODE`, `RATE` (fraction, `0.19`), `TAXABLE` |
//! | `TENDER`/`TND`/`PAY` | `TYPE` (cash, credit, debit, gift_card, ebt, check, store_credit, mobile, voucher, other), `AMOUNT`, `DESC`, `BRAND`, `LAST4`, `BIN`, `TOKEN`, `ENTRY`, `AUTH` (approved, declined, offline_approved, pending, reversed), `AUTH_CODE` |
//! | `CHANGE`/`CHG` | `AMOUNT`, `TYPE` |
//! | `LINK` | `REASON` (return, post_void, resume), `SEQ`, `REG`, `DAY`, `LINE` |
//!
//! Line numbers: when no line has a `LINE` field, lines are numbered 1, 2, 3… as items,
//! discounts, rounding, tax, tenders, change (each by N); otherwise every line needs
//! `KIND.N.LINE=` and lines are ordered by it. Unknown fields of a line (`TENDER.1.CARD_PAN`)
//! go to `ext` under their full key, where the redactor masks card numbers.
//!
//! **Other events**: every key that is not an envelope field becomes a member of `body`
//! (`TYPE=no_sale REASON=check_receipt` → `{"reason":"check_receipt"}`); `BODY.NAME=`
//! forces a body member. Keys `AMOUNT` or `…_AMOUNT` are money: converted to minor units,
//! and `body.currency` is set.

use super::{Decoded, Rejected};
use crate::model::transaction::{Line, Totals, Transaction};
use crate::model::{Amount, Body, Currency, Decimal, Event, EventType, PosSequence};
use Ty::*;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Vendor keys a record may carry in `ext` (and members in a non-transaction body).
pub const MAX_EXT_KEYS: usize = 64;
/// Longest `ext` or body value, in characters.
pub const MAX_EXT_VALUE: usize = 256;
const MAX_KEY: usize = 64;
const MAX_ID: usize = 64;

/// Per-source settings of the kv decoder.
#[derive(Debug, Clone, Default)]
pub struct KvOptions {
    /// Currency for records that name none.
    pub default_currency: Option<Currency>,
}

/// Why an event cannot be written as one kv line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode {field} as kv: {why}")]
pub struct EncodeError {
    /// The JSON member concerned.
    pub field: String,
    /// What is wrong with it.
    pub why: String,
}

fn enc_err(field: impl Into<String>, why: impl Into<String>) -> EncodeError {
    EncodeError {
        field: field.into(),
        why: why.into(),
    }
}

/// Decodes one record into one event, or one rejection naming the key at fault.
pub fn decode(raw: &[u8], opts: &KvOptions) -> Decoded {
    vec![decode_record(raw, opts).map_err(|reason| Rejected::whole(reason, raw))]
}

// ---------------------------------------------------------------------------------------
// The field tables: one source of truth for the decoder, the encoder and the docs above.

/// How a value is read and written.
#[derive(Clone, Copy)]
enum Ty {
    Text,
    Money,
    Dec,
    Num,
    Int,
    Flag,
    Pick(&'static [&'static str]),
    Taxes,
    Seq,
    Day,
}

/// A field: its model path (`card.brand` is nested), kv name, other spellings, type, and
/// whether the line needs it.
struct F(
    &'static str,
    &'static str,
    &'static [&'static str],
    Ty,
    bool,
);

// One row per field, kept on one line each: the tables read as the documentation does.
#[rustfmt::skip]
mod tables {
    use super::{F, Ty::*};

    pub const EVENT_TYPES: &[&str] = &["transaction", "no_sale", "drawer", "till", "shift", "operator",
        "cash_movement", "inventory_adjustment", "price_change", "customer_update", "receipt", "device_status"];
    pub const TENDERS: &[&str] = &["cash", "credit", "debit", "gift_card", "ebt", "check", "store_credit",
        "mobile", "voucher", "other"];
    const AUTH: &[&str] = &["approved", "declined", "offline_approved", "pending", "reversed"];

    pub const TX: &[F] = &[
        F("status", "status", &[], Pick(&["completed", "voided", "suspended", "resumed", "cancelled"]), false),
        F("kind", "kind", &[], Pick(&["sale", "return", "exchange"]), false),
        F("totals.gross", "gross", &["subtotal"], Money, false),
        F("totals.discounts", "discounts", &[], Money, false),
        F("totals.tax", "tax", &[], Money, false),
        F("totals.grand", "total", &["grand"], Money, false),
        F("totals.tendered", "tendered", &["paid"], Money, false),
        F("totals.change", "change", &[], Money, false),
        F("totals.item_count", "items", &["item_count"], Int, false),
        F("customer.id", "customer", &["cust", "customer_id"], Text, false),
        F("customer.loyalty_id", "loyalty", &["loyalty_id"], Text, false),
    ];
    pub const ITEM: &[F] = &[
        F("sku", "sku", &["plu", "item_id"], Text, false),
        F("gtin", "gtin", &["ean", "upc"], Text, false),
        F("description", "desc", &["description"], Text, false),
        F("department", "dept", &["department"], Text, false),
        F("quantity", "qty", &["quantity"], Dec, true),
        F("uom", "uom", &["unit"], Text, false),
        F("unit_price", "price", &["unit_price"], Money, false),
        F("extended", "ext", &["extended", "amount"], Money, true),
        F("taxes", "tax", &["taxes"], Taxes, false),
        F("void", "void", &[], Flag, false),
        F("voids_line", "voids", &["voids_line"], Num, false),
        F("no_sku", "no_sku", &[], Flag, false),
    ];
    pub const MODIFIER: &[F] = &[
        F("description", "desc", &["description"], Text, false),
        F("amount", "amount", &[], Money, false),
        F("code", "code", &[], Text, false),
    ];
    const DISCOUNT: &[F] = &[
        F("amount", "amount", &["amt"], Money, true),
        F("description", "desc", &["description"], Text, false),
        F("code", "code", &[], Text, false),
        F("applies_to_line", "applies_to", &["applies_to_line"], Num, false),
        F("loyalty", "loyalty", &[], Flag, false),
    ];
    const ROUNDING: &[F] = &[F("amount", "amount", &["amt"], Money, true)];
    const TAX: &[F] = &[
        F("code", "code", &[], Text, false),
        F("rate", "rate", &[], Dec, false),
        F("taxable", "taxable", &[], Money, false),
        F("amount", "amount", &["amt"], Money, true),
    ];
    const TENDER: &[F] = &[
        F("type", "type", &[], Pick(TENDERS), true),
        F("amount", "amount", &["amt"], Money, true),
        F("description", "desc", &["description"], Text, false),
        F("card.brand", "brand", &[], Text, false),
        F("card.last4", "last4", &[], Text, false),
        F("card.bin", "bin", &[], Text, false),
        F("card.token", "token", &[], Text, false),
        F("card.entry_mode", "entry", &["entry_mode"], Text, false),
        F("auth.status", "auth", &["auth_status"], Pick(AUTH), false),
        F("auth.code", "auth_code", &[], Text, false),
    ];
    const CHANGE: &[F] = &[
        F("amount", "amount", &["amt"], Money, true),
        F("type", "type", &[], Pick(TENDERS), false),
    ];
    pub const LINK: &[F] = &[
        F("reason", "reason", &[], Pick(&["return", "post_void", "resume"]), true),
        F("pos_sequence", "seq", &["pos_sequence"], Seq, true),
        F("register_id", "reg", &["register_id"], Text, false),
        F("business_day", "day", &["business_day"], Day, false),
        F("line", "line", &[], Num, false),
    ];

    /// Line kinds (model and kv name, other spellings, fields), in auto-numbering order.
    pub const KINDS: &[(&str, &[&str], &[F])] = &[
        ("item", &["itm"], ITEM),
        ("discount", &["disc"], DISCOUNT),
        ("rounding", &[], ROUNDING),
        ("tax", &[], TAX),
        ("tender", &["tnd", "pay"], TENDER),
        ("change", &["chg"], CHANGE),
        ("link", &[], LINK),
    ];
}
use tables::*;

const LINK_KIND: usize = 6;

fn field<'t>(table: &'t [F], name: &str) -> Option<&'t F> {
    table.iter().find(|f| f.1 == name || f.2.contains(&name))
}

fn envelope(k: &str) -> Option<&'static str> {
    Some(match k {
        "type" | "evt" | "event" | "event_type" => "event_type",
        "trx" | "txn" | "seq" | "receipt" | "trans" | "pos_sequence" => "pos_sequence",
        "day" | "bdate" | "bday" | "business_day" | "business_date" => "business_day",
        "reg" | "till" | "register" | "lane" | "terminal" | "register_id" => "register_id",
        "op" | "cashier" | "operator" | "clerk" | "operator_id" => "operator_id",
        "ts" | "time" | "datetime" | "timestamp" | "occurred_at" => "occurred_at",
        "cur" | "curr" | "currency" => "currency",
        "training" | "train" | "trn" => "training",
        "offline" | "offline_payment" => "offline_payment",
        "reprint" | "dup" => "reprint",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// Splitting a line into pairs.

/// One `key=value` as written: key lower-cased, value unquoted.
struct Val {
    key: String,
    text: String,
    quoted: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Sep {
    Space,
    Pipe,
    Semi,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Index just past the closing quote of a quoted value whose text starts at `i`.
fn quoted_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        match (b.get(i)?, b.get(i + 1)) {
            (b'\\', Some(b'"' | b'\\')) => i += 2,
            (b'"', _) => return Some(i + 1),
            _ => i += 1,
        }
    }
}

fn detect(b: &[u8]) -> Sep {
    let (mut i, mut semi) = (0, false);
    while let Some(&c) = b.get(i) {
        i += 1;
        match c {
            b'|' => return Sep::Pipe,
            b';' => semi = true,
            b'=' => {
                let blank = b
                    .get(i..)
                    .map_or(0, |r| r.iter().take_while(|c| is_space(**c)).count());
                if b.get(i + blank) == Some(&b'"') {
                    // A separator inside a quoted value says nothing about the record.
                    i = quoted_end(b, i + blank + 1).unwrap_or(b.len());
                }
            }
            _ => {}
        }
    }
    if semi { Sep::Semi } else { Sep::Space }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&n)) if n == '"' || n == '\\' => {
                out.push(n);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

fn split(line: &str) -> Result<Vec<Val>, String> {
    let b = line.as_bytes();
    let sep = detect(b);
    let ends_bare = |c: u8| match sep {
        Sep::Space => is_space(c),
        Sep::Pipe => c == b'|',
        Sep::Semi => c == b';',
    };
    let blank = |i: &mut usize| {
        while sep != Sep::Space && b.get(*i).is_some_and(|c| matches!(c, b' ' | b'\t')) {
            *i += 1;
        }
    };
    let (mut i, mut out) = (0, Vec::new());
    loop {
        while b.get(i).is_some_and(|c| ends_bare(*c) || is_space(*c)) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while b
            .get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
        {
            i += 1;
        }
        let key = line.get(start..i).unwrap_or_default().to_ascii_lowercase();
        if key.is_empty() {
            let c = line
                .get(start..)
                .and_then(|r| r.chars().next())
                .unwrap_or('?');
            return Err(format!("expected a key at byte {}, found {c:?}", start + 1));
        }
        if key.len() > MAX_KEY {
            return Err(format!(
                "the key at byte {} is longer than {MAX_KEY} characters",
                start + 1
            ));
        }
        blank(&mut i);
        if b.get(i) != Some(&b'=') {
            return Err(format!(
                "key {key:?} at byte {} is not followed by '='",
                start + 1
            ));
        }
        i += 1;
        blank(&mut i);
        let (text, quoted) = if b.get(i) == Some(&b'"') {
            let end = quoted_end(b, i + 1)
                .ok_or_else(|| format!("the quoted value of {key:?} has no closing quote"))?;
            let text = unescape(line.get(i + 1..end - 1).unwrap_or_default());
            i = end;
            blank(&mut i);
            if b.get(i).is_some_and(|c| !ends_bare(*c) && !is_space(*c)) {
                return Err(format!(
                    "unexpected text after the closing quote of {key:?}"
                ));
            }
            (text, true)
        } else {
            let start = i;
            while b.get(i).is_some_and(|c| !ends_bare(*c)) {
                i += 1;
            }
            let text = line.get(start..i).unwrap_or_default();
            (text.trim_end_matches([' ', '\t']).to_string(), false)
        };
        out.push(Val { key, text, quoted });
    }
    if out.is_empty() {
        return Err("the record is empty".into());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Sorting pairs into their places.

type Fields = BTreeMap<&'static str, Val>;

#[derive(Default)]
struct Rec {
    env: Fields,
    top: Fields,
    /// (kind index, N) → kv field name → value.
    lines: BTreeMap<(usize, u32), Fields>,
    /// (item N, modifier M) → field → value.
    mods: BTreeMap<(u32, u32), Fields>,
    rest: Vec<Val>,
}

fn put(map: &mut Fields, name: &'static str, v: Val, what: &str) -> Result<(), String> {
    if let Some(old) = map.get(name) {
        return Err(format!("{what} is given twice ({} and {})", old.key, v.key));
    }
    map.insert(name, v);
    Ok(())
}

fn index(s: &str) -> Option<u32> {
    s.parse()
        .ok()
        .filter(|n| (1..=9999).contains(n) && s.bytes().all(|b| b.is_ascii_digit()))
}

fn sort(vals: Vec<Val>, tx: bool) -> Result<Rec, String> {
    let mut r = Rec::default();
    for v in vals {
        if let Some(name) = envelope(&v.key) {
            put(&mut r.env, name, v, name)?;
            continue;
        }
        if let Some(f) = field(TX, &v.key).filter(|_| tx) {
            put(&mut r.top, f.1, v, f.1)?;
            continue;
        }
        let seg: Vec<&str> = v.key.split('.').collect();
        let kind = seg.first().and_then(|k| {
            KINDS
                .iter()
                .position(|(name, alias, _)| name == k || alias.contains(k))
        });
        let table = kind.and_then(|k| KINDS.get(k)).map_or(&[][..], |k| k.2);
        let slot = match (seg.as_slice(), kind) {
            (_, _) if !tx => None,
            ([_, n, "line"], Some(k)) => index(n).map(|n| (k, n, None, "line")),
            ([_, n, f], Some(k)) => index(n)
                .zip(field(table, f))
                .map(|(n, f)| (k, n, None, f.1)),
            ([_, n, "mod", m, f], Some(0)) => index(n)
                .zip(index(m))
                .zip(field(MODIFIER, f))
                .map(|((n, m), f)| (0, n, Some(m), f.1)),
            _ => None,
        };
        let name = |k: usize| KINDS.get(k).map_or("line", |k| k.0);
        match slot {
            Some((k, n, None, f)) => {
                put(
                    r.lines.entry((k, n)).or_default(),
                    f,
                    v,
                    &format!("{}.{n}.{f}", name(k)),
                )?;
            }
            Some((k, n, Some(m), f)) => {
                // The item must exist for its modifier to mean anything; an item made only
                // of modifiers is then refused for lacking qty.
                r.lines.entry((k, n)).or_default();
                put(
                    r.mods.entry((n, m)).or_default(),
                    f,
                    v,
                    &format!("item.{n}.mod.{m}.{f}"),
                )?;
            }
            None => r.rest.push(v),
        }
    }
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// Values.

fn pick(v: &Val, list: &[&'static str]) -> Result<&'static str, String> {
    let norm = v.text.trim().to_ascii_lowercase().replace('-', "_");
    let norm = match norm.as_str() {
        "giftcard" => "gift_card",
        "cheque" => "check",
        "canceled" => "cancelled",
        "void" => "voided",
        n => n,
    };
    let known = list.iter().find(|x| **x == norm).copied();
    known.ok_or_else(|| format!("{}: {:?} is not one of {}", v.key, v.text, list.join(", ")))
}

fn ident(v: &Val) -> Result<String, String> {
    let t = v.text.trim();
    if t.is_empty() || t.chars().count() > MAX_ID {
        return Err(format!("{} must be 1 to {MAX_ID} characters", v.key));
    }
    Ok(t.to_string())
}

fn sequence(v: &Val) -> Result<PosSequence, String> {
    let t = v.text.trim();
    let number =
        !v.quoted && t.bytes().all(|b| b.is_ascii_digit()) && (t == "0" || !t.starts_with('0'));
    match t.parse::<u64>() {
        Ok(n) if number => Ok(PosSequence::Number(n)),
        _ => ident(v).map(PosSequence::Text),
    }
}

fn boolean(v: &Val) -> Result<bool, String> {
    match v.text.trim().to_ascii_lowercase().as_str() {
        "1" | "y" | "yes" | "true" => Ok(true),
        "0" | "n" | "no" | "false" => Ok(false),
        _ => Err(format!(
            "{}: {:?} is not 1/0, Y/N, yes/no or true/false",
            v.key, v.text
        )),
    }
}

fn money(v: &Val, cur: Currency) -> Result<Amount, String> {
    Amount::parse_major(&v.text, cur).map_err(|e| format!("bad amount in {}: {e}", v.key))
}

fn parsed<T: std::str::FromStr>(v: &Val, what: &str) -> Result<T, String> {
    v.text
        .trim()
        .parse()
        .map_err(|_| format!("{}: {:?} is not {what}", v.key, v.text))
}

fn digits(s: &str, at: usize, n: usize, range: std::ops::RangeInclusive<u32>) -> bool {
    s.get(at..at + n)
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| p.parse().ok())
        .is_some_and(|x| range.contains(&x))
}

fn is_date(s: &str) -> bool {
    s.len() == 10
        && digits(s, 0, 4, 0..=9999)
        && digits(s, 5, 2, 1..=12)
        && digits(s, 8, 2, 1..=31)
        && s.get(4..5) == Some("-")
        && s.get(7..8) == Some("-")
}

fn day(v: &Val) -> Result<String, String> {
    let t = v.text.trim();
    let t = match (t.get(..4), t.get(4..6), t.get(6..)) {
        (Some(y), Some(m), Some(d)) if t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{y}-{m}-{d}")
        }
        _ => t.to_string(),
    };
    if is_date(&t) {
        Ok(t)
    } else {
        Err(format!(
            "{}: {:?} is not a date (YYYY-MM-DD)",
            v.key, v.text
        ))
    }
}

/// A date-time as RFC 3339 text (a space separator becomes `T`), and whether it has an
/// offset; `None` when it is not a date-time at all.
fn timestamp(s: &str) -> Option<(String, bool)> {
    let (date, time) = (s.trim().get(..10)?, s.trim().get(11..)?);
    let ok = is_date(date)
        && matches!(s.trim().get(10..11), Some("T" | "t" | " "))
        && digits(time, 0, 2, 0..=23)
        && digits(time, 3, 2, 0..=59)
        && digits(time, 6, 2, 0..=60)
        && time.get(2..3) == Some(":")
        && time.get(5..6) == Some(":");
    let rest = time.get(8..)?;
    let frac = rest
        .strip_prefix('.')
        .map_or(0, |f| 1 + f.bytes().take_while(u8::is_ascii_digit).count());
    let offset = match rest.get(frac..)? {
        "" => Some(false),
        "Z" | "z" => Some(true),
        z => (z.len() == 6
            && matches!(z.get(..1), Some("+" | "-"))
            && digits(z, 1, 2, 0..=23)
            && digits(z, 4, 2, 0..=59)
            && z.get(3..4) == Some(":"))
        .then_some(true),
    };
    (ok && frac != 1).then_some(())?;
    offset.map(|o| (format!("{date}T{time}"), o))
}

/// Bare integers of up to 12 digits and booleans are typed; everything else is text. Card
/// numbers (13+ digits) so always stay strings, where the redactor looks for them.
fn typed(v: &Val) -> Result<Value, String> {
    if v.text.chars().count() > MAX_EXT_VALUE {
        return Err(format!(
            "{} is longer than {MAX_EXT_VALUE} characters",
            v.key
        ));
    }
    Ok(match v.text.as_str() {
        _ if v.quoted => Value::from(v.text.clone()),
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        t if is_int(t) => t
            .parse::<i64>()
            .map_or_else(|_| Value::from(t), Value::from),
        t => Value::from(t),
    })
}

fn is_int(t: &str) -> bool {
    let d = t.strip_prefix('-').unwrap_or(t);
    (1..=12).contains(&d.len())
        && d.bytes().all(|b| b.is_ascii_digit())
        && (d == "0" || !d.starts_with('0'))
}

fn is_money_key(k: &str) -> bool {
    k == "amount" || k.ends_with("_amount")
}

fn convert(v: &Val, ty: Ty, cur: Currency) -> Result<Value, String> {
    Ok(match ty {
        Text => Value::from(v.text.clone()),
        Money => Value::from(money(v, cur)?.get()),
        Dec => Value::from(parsed::<Decimal>(v, "a decimal number")?.to_string()),
        Num => Value::from(parsed::<u32>(v, "a line number")?),
        Int => Value::from(parsed::<i64>(v, "a whole number")?),
        Flag => Value::from(boolean(v)?),
        Pick(list) => Value::from(pick(v, list)?),
        Seq => serde_json::to_value(sequence(v)?).unwrap_or_default(),
        Day => Value::from(day(v)?),
        Taxes => Value::Array(
            v.text
                .split(',')
                .map(|part| line_tax(v, part, cur))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// One `code:rate:amount` of an item's compact tax list; each part may be empty.
fn line_tax(v: &Val, part: &str, cur: Currency) -> Result<Value, String> {
    let p: Vec<&str> = part.split(':').map(str::trim).collect();
    let [code, rate, amount] = p.as_slice() else {
        return Err(format!("{}: {part:?} is not code:rate:amount", v.key));
    };
    let mut t = Map::new();
    if !code.is_empty() {
        t.insert("code".into(), Value::from(*code));
    }
    if !rate.is_empty() {
        let r: Decimal = rate.parse().map_err(|e| format!("{}: {e}", v.key))?;
        t.insert("rate".into(), Value::from(r.to_string()));
    }
    if !amount.is_empty() {
        let a = Amount::parse_major(amount, cur)
            .map_err(|e| format!("bad amount in {}: {e}", v.key))?;
        t.insert("amount".into(), Value::from(a.get()));
    }
    Ok(Value::Object(t))
}

fn set(obj: &mut Map<String, Value>, path: &str, v: Value) {
    match path.split_once('.') {
        Some((a, b)) => {
            if let Value::Object(m) = obj.entry(a).or_insert_with(|| Value::Object(Map::new())) {
                m.insert(b.into(), v);
            }
        }
        None => {
            obj.insert(path.into(), v);
        }
    }
}

fn get<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(obj, |o, k| o.get(k))
}

/// Converts a line's (or the transaction's) fields into model JSON.
fn fill(
    obj: &mut Map<String, Value>,
    table: &[F],
    vals: &Fields,
    what: &str,
    cur: Currency,
) -> Result<(), String> {
    for f in table {
        match vals.get(f.1) {
            Some(v) => set(obj, f.0, convert(v, f.3, cur)?),
            None if f.4 => return Err(format!("{what} has no {}", f.1)),
            None => {}
        }
    }
    Ok(())
}

fn model<T: serde::de::DeserializeOwned>(obj: Map<String, Value>, what: &str) -> Result<T, String> {
    serde_json::from_value(Value::Object(obj)).map_err(|e| format!("{what}: {e}"))
}

// ---------------------------------------------------------------------------------------
// Records to events.

fn decode_record(raw: &[u8], opts: &KvOptions) -> Result<Event, String> {
    let line = std::str::from_utf8(raw).map_err(|e| {
        format!(
            "the record is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    let vals = split(line.trim_end_matches(['\r', '\n']))?;
    let ty = vals
        .iter()
        .find(|v| envelope(&v.key) == Some("event_type"))
        .ok_or(
            "the record has no event type: add TYPE=transaction (or no_sale, drawer, till, …)",
        )?;
    let (event_type, shorthand) = match ty.text.trim().to_ascii_lowercase().as_str() {
        "sale" => ("transaction", Some("sale")),
        "return" | "refund" => ("transaction", Some("return")),
        "exchange" => ("transaction", Some("exchange")),
        "nosale" => ("no_sale", None),
        _ => (pick(ty, EVENT_TYPES)?, None),
    };
    let tx = event_type == "transaction";
    let mut ev = Event::new(
        serde_json::from_value::<EventType>(Value::from(event_type)).map_err(|e| e.to_string())?,
    );
    let mut r = sort(vals, tx)?;
    let env = &r.env;
    ev.pos_sequence = env.get("pos_sequence").map(sequence).transpose()?;
    ev.business_day = env.get("business_day").map(day).transpose()?;
    ev.register_id = env.get("register_id").map(ident).transpose()?;
    ev.operator_id = env.get("operator_id").map(ident).transpose()?;
    let flag = |name| {
        env.get(name)
            .map(boolean)
            .transpose()
            .map(Option::unwrap_or_default)
    };
    ev.flags.training = flag("training")?;
    ev.flags.offline_payment = flag("offline_payment")?;
    ev.flags.reprint = flag("reprint")?;
    let named = env
        .get("currency")
        .map(|v| {
            v.text
                .trim()
                .to_ascii_uppercase()
                .parse::<Currency>()
                .map_err(|e| format!("{}: {e}", v.key))
        })
        .transpose()?;
    let currency = named.or(opts.default_currency);
    let mut ext = Map::new();
    if let Some(v) = env.get("occurred_at") {
        match timestamp(&v.text) {
            Some((ts, true)) => ev.occurred_at = Some(ts),
            // No offset: the instant is unknown, so the register's wall-clock text is kept
            // for people rather than guessed into UTC.
            Some((ts, false)) => drop(ext.insert("local_time".into(), Value::from(ts))),
            None => {
                return Err(format!(
                    "{}: {:?} is not an RFC 3339 date-time",
                    v.key, v.text
                ));
            }
        }
    }
    let mut body = Map::new();
    for v in std::mem::take(&mut r.rest) {
        let (to_body, name) = match (v.key.strip_prefix("ext."), v.key.strip_prefix("body.")) {
            (Some(n), _) => (false, n),
            (_, Some(_)) if tx => {
                return Err(format!(
                    "{}: body.* keys are for non-transaction events; use ext.*",
                    v.key
                ));
            }
            (_, Some(n)) => (true, n),
            _ => (!tx, v.key.as_str()),
        };
        let value = if to_body && is_money_key(name) {
            Value::from(money(&v, currency.ok_or_else(|| no_currency(&v.key))?)?.get())
        } else {
            typed(&v)?
        };
        let map = if to_body { &mut body } else { &mut ext };
        if map.insert(name.to_string(), value).is_some() {
            return Err(format!("{name} is given twice (once as {})", v.key));
        }
    }
    if ext.len() > MAX_EXT_KEYS || body.len() > MAX_EXT_KEYS {
        return Err(format!(
            "the record has more than {MAX_EXT_KEYS} vendor fields"
        ));
    }
    if tx {
        let cur = currency.ok_or_else(|| no_currency("the transaction"))?;
        ev.body = Body::Transaction(Box::new(transaction(&r, cur, shorthand)?));
    } else {
        let money_given = named.is_some() || body.keys().any(|k| is_money_key(k));
        if let Some(cur) = currency.filter(|_| money_given)
            && body
                .insert("currency".into(), Value::from(cur.as_str()))
                .is_some()
        {
            return Err("currency is given twice (once as body.currency)".into());
        }
        ev.body = Body::Other(body);
    }
    ev.ext = ext;
    Ok(ev)
}

fn no_currency(what: &str) -> String {
    format!(
        "no currency for {what}: add CUR=… to the record or set a default currency for this source"
    )
}

fn transaction(r: &Rec, cur: Currency, shorthand: Option<&str>) -> Result<Transaction, String> {
    let mut top = Map::new();
    fill(&mut top, TX, &r.top, "the transaction", cur)?;
    match (shorthand, top.get("kind")) {
        (Some(k), Some(given)) if given != k => {
            return Err(format!("kind={given} contradicts the event type {k}"));
        }
        (Some(k), _) => drop(top.insert("kind".into(), Value::from(k))),
        (None, _) => drop(top.entry("kind").or_insert_with(|| Value::from("sale"))),
    }
    top.entry("status")
        .or_insert_with(|| Value::from("completed"));
    let what = |&(k, n): &(usize, u32)| format!("{}.{n}", KINDS.get(k).map_or("line", |k| k.0));
    let (links, lines): (Vec<_>, Vec<_>) = r.lines.iter().partition(|(k, _)| k.0 == LINK_KIND);
    let explicit = lines.iter().filter(|(_, f)| f.contains_key("line")).count();
    let mut numbered: Vec<(u32, _)> = if explicit == 0 {
        (1..).zip(lines).collect()
    } else if let Some((k, _)) = lines.iter().find(|(_, f)| !f.contains_key("line")) {
        return Err(format!(
            "either every line has a .line number or none does ({} has none)",
            what(k)
        ));
    } else {
        let n = |f: &Fields| f.get("line").map_or(Ok(0), |v| parsed(v, "a line number"));
        lines
            .into_iter()
            .map(|l| Ok((n(l.1)?, l)))
            .collect::<Result<_, String>>()?
    };
    numbered.sort_by_key(|(n, _)| *n);
    if let Some(w) = numbered
        .windows(2)
        .find(|w| w.first().map(|x| x.0) == w.get(1).map(|x| x.0))
    {
        let names: Vec<String> = w.iter().map(|(_, l)| what(l.0)).collect();
        return Err(format!("{} share one line number", names.join(" and ")));
    }
    let mut out = Vec::new();
    for (n, (key @ &(k, idx), vals)) in numbered {
        let (name, _, table) = KINDS.get(k).copied().unwrap_or(("item", &[], ITEM));
        let what = what(key);
        let mut obj = Map::from_iter([
            ("kind".into(), Value::from(name)),
            ("line".into(), Value::from(n)),
        ]);
        fill(&mut obj, table, vals, &what, cur)?;
        if k == 0 {
            let mods = r.mods.range((idx, 0)..=(idx, u32::MAX));
            let mods = mods.map(|((_, m), f)| {
                let mut o = Map::new();
                fill(&mut o, MODIFIER, f, &format!("{what}.mod.{m}"), cur)
                    .map(|()| Value::Object(o))
            });
            obj.insert(
                "modifiers".into(),
                Value::Array(mods.collect::<Result<_, _>>()?),
            );
            let no_sku = !obj.contains_key("sku") && !obj.contains_key("gtin");
            obj.entry("no_sku").or_insert(Value::from(no_sku));
        }
        if obj.get("auth").is_some_and(|a| a.get("status").is_none()) {
            return Err(format!(
                "{what}.auth_code needs {what}.auth (approved, declined, …)"
            ));
        }
        out.push(model::<Line>(obj, &what)?);
    }
    let links = links.iter().map(|(key, vals)| {
        let mut o = Map::new();
        fill(&mut o, LINK, vals, &what(key), cur).map(|()| Value::Object(o))
    });
    top.insert(
        "links".into(),
        Value::Array(links.collect::<Result<_, _>>()?),
    );
    let given = match top.remove("totals") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    top.insert("currency".into(), Value::from(cur.as_str()));
    top.insert("lines".into(), Value::Array(Vec::new()));
    top.insert(
        "totals".into(),
        serde_json::to_value(Totals::default()).unwrap_or_default(),
    );
    let mut t: Transaction = model(top, "the transaction")?;
    t.lines = out;
    // Totals the record leaves out are what the lines say; those it gives are kept as given
    // and checked below.
    let sums = t
        .line_sums()
        .ok_or("the lines do not sum: an amount is out of range")?;
    let mut totals = match serde_json::to_value(sums) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    totals.extend(given);
    t.totals = model(totals, "totals")?;
    Ok(t)
}

// ---------------------------------------------------------------------------------------
// Encoder: the simulated register's kv output.

/// Members the agent owns: a register never sends them, so the encoder leaves them out.
use crate::event::AGENT_FIELDS;

/// Envelope members and the keys the encoder writes them as, in writing order.
const ENVELOPE: [(&str, &str); 5] = [
    ("pos_sequence", "seq"),
    ("register_id", "reg"),
    ("business_day", "day"),
    ("operator_id", "op"),
    ("occurred_at", "ts"),
];

struct W(String);

impl W {
    fn raw(&mut self, k: &str, v: &str) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        self.0.push_str(k);
        self.0.push('=');
        self.0.push_str(v);
    }

    /// A value whose type the key fixes: bare when its characters allow.
    fn field(&mut self, k: &str, v: &str) -> Result<(), EncodeError> {
        let safe = |c: char| c.is_ascii_alphanumeric() || "_-.:,/@+#*%&()[]!?~^'".contains(c);
        if v.contains(['\n', '\r']) {
            return Err(enc_err(
                k,
                "a line break cannot be carried in a one-line record",
            ));
        }
        self.raw(
            k,
            &if !v.is_empty() && v.chars().all(safe) {
                v.to_string()
            } else {
                quote(v)
            },
        );
        Ok(())
    }

    /// An `ext` or body value: text that would read back as a number or boolean is quoted.
    fn value(&mut self, k: &str, v: &Value) -> Result<(), EncodeError> {
        match v {
            Value::String(s) if is_int(s) || s == "true" || s == "false" => self.raw(k, &quote(s)),
            Value::String(s) => self.field(k, s)?,
            Value::Bool(b) => self.raw(k, if *b { "true" } else { "false" }),
            Value::Number(n) if n.as_i64().is_some_and(|i| is_int(&i.to_string())) => {
                self.raw(k, &n.to_string());
            }
            _ => {
                return Err(enc_err(
                    k,
                    "only text, booleans and integers of up to 12 digits are carried",
                ));
            }
        }
        Ok(())
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn major(a: Amount, cur: Currency) -> String {
    let exp = u32::from(cur.exponent());
    let (v, scale) = (i128::from(a.get()), 10i128.pow(exp));
    if exp == 0 {
        return v.to_string();
    }
    let sign = if v < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:0w$}",
        v.abs() / scale,
        v.abs() % scale,
        w = exp as usize
    )
}

/// Writes an event (`posedge.event/1` JSON; agent-owned members are left out) as one kv
/// line without a newline, such that `decode` gives the event back.
pub fn encode(event: &Value) -> Result<String, EncodeError> {
    let obj = event
        .as_object()
        .ok_or_else(|| enc_err("event", "not a JSON object"))?;
    let mut w = W(String::new());
    let et = obj
        .get("event_type")
        .and_then(Value::as_str)
        .ok_or_else(|| enc_err("event_type", "missing"))?;
    w.field("type", et)?;
    if let Some(n) = obj.keys().find(|k| {
        let known = ["flags", "body", "ext", "event_type"].contains(&k.as_str());
        !known && !AGENT_FIELDS.contains(&k.as_str()) && !ENVELOPE.iter().any(|e| e.0 == *k)
    }) {
        return Err(enc_err(n, "not a member of posedge.event/1"));
    }
    for (name, key) in ENVELOPE {
        match obj.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if key == "seq" && n.is_u64() => w.raw(key, &n.to_string()),
            Some(Value::String(s)) if key == "seq" => w.raw(key, &quote(s)),
            Some(Value::String(s)) => w.field(key, s)?,
            _ => return Err(enc_err(name, "must be a string")),
        }
    }
    for (name, v) in obj
        .get("flags")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let key = match name.as_str() {
            "training" => "training",
            "offline_payment" => "offline",
            "reprint" => "reprint",
            n => return Err(enc_err(format!("flags.{n}"), "unknown flag")),
        };
        match v {
            Value::Bool(true) => w.raw(key, "1"),
            Value::Bool(false) => {}
            _ => return Err(enc_err(format!("flags.{name}"), "must be true or false")),
        }
    }
    let body = obj
        .get("body")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let tx = et == "transaction";
    if tx {
        encode_tx(&mut w, body)?
    } else {
        encode_other(&mut w, body)?
    }
    for (k, v) in obj
        .get("ext")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        check_key(k)?;
        let bare = tx && !k.contains('.') && envelope(k).is_none() && field(TX, k).is_none();
        w.value(&if bare { k.clone() } else { format!("ext.{k}") }, v)?;
    }
    Ok(w.0)
}

fn check_key(k: &str) -> Result<(), EncodeError> {
    let ok = (1..=MAX_KEY - 5).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    ok.then_some(())
        .ok_or_else(|| enc_err(k, "keys are lower-case [a-z0-9_.-], at most 59 characters"))
}

fn encode_other(w: &mut W, body: Value) -> Result<(), EncodeError> {
    let Value::Object(map) = body else {
        return Err(enc_err("body", "not an object"));
    };
    let cur = match map.get("currency") {
        None => None,
        Some(Value::String(s)) => Some(
            s.parse::<Currency>()
                .map_err(|e| enc_err("body.currency", e.to_string()))?,
        ),
        Some(_) => return Err(enc_err("body.currency", "not a string")),
    };
    if let Some(c) = cur {
        w.raw("cur", c.as_str());
    }
    for (k, v) in map.iter().filter(|(k, _)| *k != "currency") {
        check_key(k)?;
        let clash = envelope(k).is_some() || k.starts_with("ext.") || k.starts_with("body.");
        let key = if clash {
            format!("body.{k}")
        } else {
            k.clone()
        };
        match (is_money_key(k), v.as_i64(), cur) {
            (false, _, _) => w.value(&key, v)?,
            (true, Some(n), Some(c)) => w.raw(&key, &major(Amount::minor(n), c)),
            _ => {
                return Err(enc_err(
                    format!("body.{k}"),
                    "an amount needs integer minor units and body.currency",
                ));
            }
        }
    }
    Ok(())
}

fn encode_tx(w: &mut W, body: Value) -> Result<(), EncodeError> {
    // The model has no place for a card number (it is masked downstream): it travels as an
    // unknown tender field and comes back in ext, where the redactor masks it.
    let mut b = body;
    let mut pans = BTreeMap::new();
    for l in b
        .get_mut("lines")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(pan) = l
            .get_mut("card")
            .and_then(Value::as_object_mut)
            .and_then(|c| c.remove("pan"))
        {
            pans.insert(l.get("line").and_then(Value::as_u64), pan);
        }
    }
    // Through the model and back: whatever it would not keep cannot be written either.
    let tx: Transaction =
        serde_json::from_value(b.clone()).map_err(|e| enc_err("body", e.to_string()))?;
    if serde_json::to_value(&tx).ok().as_ref() != Some(&b) {
        return Err(enc_err(
            "body",
            "it has members the transaction model does not know",
        ));
    }
    let cur = tx.currency;
    w.raw("cur", cur.as_str());
    let lines = b
        .get("lines")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let kind = |l: &Value| {
        let k = l.get("kind").and_then(Value::as_str);
        KINDS
            .iter()
            .position(|(name, _, _)| Some(*name) == k)
            .unwrap_or(LINK_KIND)
    };
    let number = |l: &Value| l.get("line").and_then(Value::as_u64).unwrap_or(0);
    let auto = lines
        .windows(2)
        .all(|p| p.first().map(kind) <= p.get(1).map(kind))
        && lines.iter().map(number).eq(1..=lines.len() as u64);
    let mut counts = [0u32; 7];
    for l in lines {
        let k = kind(l);
        let (Some(n), Some((name, _, table))) = (counts.get_mut(k), KINDS.get(k)) else {
            continue;
        };
        *n += 1;
        let p = format!("{name}.{n}.");
        if !auto {
            w.raw(&format!("{p}line"), &number(l).to_string());
        }
        write(w, &p, table, l, cur)?;
        if k == 0 && l.get("no_sku").is_none() && l.get("sku").is_none() && l.get("gtin").is_none()
        {
            w.raw(&format!("{p}no_sku"), "0");
        }
        for (m, x) in (1..).zip(
            l.get("modifiers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        ) {
            if x.as_object().is_none_or(Map::is_empty) {
                return Err(enc_err(
                    format!("{p}mod.{m}"),
                    "an empty modifier cannot be written",
                ));
            }
            write(w, &format!("{p}mod.{m}."), MODIFIER, x, cur)?;
        }
        if let Some(pan) = pans.get(&Some(number(l))) {
            w.value(&format!("{p}card_pan"), pan)?;
        }
    }
    for (n, l) in (1..).zip(
        b.get("links")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    ) {
        write(w, &format!("link.{n}."), LINK, l, cur)?;
    }
    write(w, "", TX, &b, cur)
}

/// Writes the members of `obj` that `table` names, as `prefix` + kv name.
fn write(
    w: &mut W,
    prefix: &str,
    table: &[F],
    obj: &Value,
    cur: Currency,
) -> Result<(), EncodeError> {
    for f in table {
        if let Some((nested, _)) = f.0.split_once('.')
            && obj
                .get(nested)
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
        {
            return Err(enc_err(
                format!("{prefix}{nested}"),
                "an empty object cannot be written",
            ));
        }
        let Some(v) = get(obj, f.0) else { continue };
        let k = format!("{prefix}{}", f.1);
        match (f.3, v) {
            (Text | Pick(_) | Day, Value::String(s)) => w.field(&k, s)?,
            (Dec, Value::String(s)) => w.raw(&k, s),
            (Money, Value::Number(n)) => {
                w.raw(&k, &major(Amount::minor(n.as_i64().unwrap_or(0)), cur))
            }
            (Num | Int | Seq, Value::Number(n)) => w.raw(&k, &n.to_string()),
            (Seq, Value::String(s)) => w.raw(&k, &quote(s)),
            (Flag, Value::Bool(b)) => {
                if *b {
                    w.raw(&k, "1");
                }
            }
            (Taxes, Value::Array(taxes)) => {
                let parts = taxes.iter().map(|t| {
                    let code = t.get("code").and_then(Value::as_str).unwrap_or_default();
                    if code.contains([':', ','])
                        || code.trim() != code
                        || t.get("code") == Some(&Value::from(""))
                    {
                        return Err(enc_err(
                            &k,
                            "a tax code with ':', ',' or outer spaces cannot be written",
                        ));
                    }
                    let rate = t.get("rate").and_then(Value::as_str).unwrap_or_default();
                    let amount = t
                        .get("amount")
                        .and_then(Value::as_i64)
                        .map(|a| major(Amount::minor(a), cur));
                    Ok(format!("{code}:{rate}:{}", amount.unwrap_or_default()))
                });
                w.field(&k, &parts.collect::<Result<Vec<_>, _>>()?.join(","))?;
            }
            _ => return Err(enc_err(k, "has a value of an unexpected type")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::transaction::Kind;
    use proptest::prelude::*;

    fn eur() -> KvOptions {
        KvOptions {
            default_currency: "EUR".parse().ok(),
        }
    }

    fn one(line: &str, opts: &KvOptions) -> Result<Event, String> {
        let mut out = decode(line.as_bytes(), opts);
        assert_eq!(out.len(), 1);
        out.pop().expect("one result").map_err(|r| r.reason)
    }

    fn tx(e: &Event) -> &Transaction {
        e.transaction().expect("a transaction")
    }

    #[test]
    fn brief_example_decodes_with_auto_line_numbers() {
        let e = one(
            r#"TYPE=sale TRX=17 item.1.sku=100105 item.1.qty=1 item.1.price=1.89 item.1.ext=1.89 item.1.desc="Orange Juice 1L" item.1.tax=A:0.19:0.36 tender.1.type=cash tender.1.amount=20.00 change=17.75 total=2.25"#,
            &eur(),
        )
        .unwrap();
        let t = tx(&e);
        assert_eq!(e.pos_sequence, Some(PosSequence::Number(17)));
        assert!(
            matches!(&t.lines[0], Line::Item(i) if i.line == 1 && i.description.as_deref() == Some("Orange Juice 1L") && i.taxes[0].amount == Some(Amount::minor(36)))
        );
        assert!(
            matches!(&t.lines[1], Line::Tender(x) if x.line == 2 && x.amount == Amount::minor(2000))
        );
        assert_eq!(
            (t.totals.gross, t.totals.tax, t.totals.grand),
            (Amount::minor(189), Amount::minor(36), Amount::minor(225))
        );
        // change=17.75 is given but no change line: kept and flagged, never fixed.
        assert_eq!(t.totals.change, Amount::minor(1775));
        let findings = t.check_integrity();
        assert!(
            findings.iter().any(|f| f.starts_with("change")),
            "{findings:?}"
        );
    }

    #[test]
    fn separator_styles_are_detected() {
        let pipe = one(
            "TYPE=no_sale | REASON=Customer wants change ; coins |REG= 3 ",
            &eur(),
        )
        .unwrap();
        assert_eq!(
            pipe.body,
            Body::Other(Map::from_iter([(
                "reason".into(),
                Value::from("Customer wants change ; coins")
            )]))
        );
        assert_eq!(pipe.register_id.as_deref(), Some("3"));
        let semi = one(r#"TYPE=no_sale;note="a|b; c";OP=7"#, &eur()).unwrap();
        assert_eq!(semi.operator_id.as_deref(), Some("7"));
        assert_eq!(
            semi.body,
            Body::Other(Map::from_iter([("note".into(), Value::from("a|b; c"))]))
        );
        let space = one(
            "type=drawer\tdrawer_id=\"1\"  open_seconds=64 big=4111111111111111",
            &eur(),
        )
        .unwrap();
        let Body::Other(b) = space.body else { panic!() };
        assert_eq!(
            (b["drawer_id"].clone(), b["open_seconds"].clone()),
            (Value::from("1"), Value::from(64))
        );
        assert_eq!(b["big"], Value::from("4111111111111111"));
    }

    #[test]
    fn quoting_and_escapes() {
        let e = one(
            r#"TYPE=no_sale note="say \"hi\" C:\temp\\" x= y=5""#,
            &eur(),
        )
        .unwrap();
        let Body::Other(b) = e.body else { panic!() };
        assert_eq!(b["note"], Value::from(r#"say "hi" C:\temp\"#));
        assert_eq!(
            (b["x"].clone(), b["y"].clone()),
            (Value::from(""), Value::from("5\""))
        );
        for (bad, why) in [
            (r#"TYPE=no_sale note="open"#, "no closing quote"),
            (r#"TYPE=no_sale note="a"b"#, "after the closing quote"),
            ("TYPE=no_sale =x", "expected a key"),
            ("TYPE=no_sale reason", "not followed by '='"),
            ("   ", "empty"),
        ] {
            assert!(one(bad, &eur()).unwrap_err().contains(why), "{bad}");
        }
    }

    #[test]
    fn keys_are_case_insensitive_and_aliases_collide() {
        let e = one(
            "Type=NO_SALE Reg=r1 CASHIER=9 Bdate=20261127 TS=2026-11-27T07:00:40Z",
            &eur(),
        )
        .unwrap();
        assert_eq!(
            (e.register_id.as_deref(), e.operator_id.as_deref()),
            (Some("r1"), Some("9"))
        );
        assert_eq!(e.business_day.as_deref(), Some("2026-11-27"));
        assert_eq!(e.occurred_at.as_deref(), Some("2026-11-27T07:00:40Z"));
        let dup = one("TYPE=no_sale EVT=no_sale", &eur()).unwrap_err();
        assert!(
            dup.contains("twice") && dup.contains("type") && dup.contains("evt"),
            "{dup}"
        );
        assert!(
            one("TYPE=no_sale reason=a REASON=b", &eur())
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            one(
                "TYPE=sale item.1.qty=1 ITEM.1.QUANTITY=2 item.1.ext=1",
                &eur()
            )
            .unwrap_err()
            .contains("twice")
        );
    }

    #[test]
    fn envelope_rules() {
        assert!(one("REG=1", &eur()).unwrap_err().contains("no event type"));
        assert!(
            one("TYPE=party", &eur())
                .unwrap_err()
                .contains("is not one of transaction")
        );
        let e = one(
            "TYPE=no_sale SEQ=00042 TRAINING=Y OFFLINE=0 TS=\"2026-11-27 07:00:40\"",
            &eur(),
        )
        .unwrap();
        assert_eq!(e.pos_sequence, Some(PosSequence::Text("00042".into())));
        assert!(e.flags.training && !e.flags.offline_payment);
        assert_eq!(
            (e.occurred_at, e.ext["local_time"].clone()),
            (None, Value::from("2026-11-27T07:00:40"))
        );
        assert_eq!(
            one("TYPE=no_sale SEQ=\"42\"", &eur()).unwrap().pos_sequence,
            Some(PosSequence::Text("42".into()))
        );
        for bad in [
            "TRAINING=maybe",
            "DAY=2026-13-01",
            "TS=yesterday",
            "TS=2026-11-27T07:00:40+0100",
            "REG=",
        ] {
            assert!(
                one(&format!("TYPE=no_sale {bad}"), &eur()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn money_is_exact_and_needs_a_currency() {
        let err = one("TYPE=sale item.1.qty=1 item.1.ext=1.899", &eur()).unwrap_err();
        assert!(
            err.contains("item.1.ext") && err.contains("not exact"),
            "{err}"
        );
        assert!(
            one("TYPE=sale item.1.qty=1 item.1.ext=1,50", &eur())
                .unwrap_err()
                .contains("item.1.ext")
        );
        let none = KvOptions::default();
        assert!(
            one("TYPE=sale item.1.qty=1 item.1.ext=1", &none)
                .unwrap_err()
                .contains("no currency")
        );
        let jpy = one("TYPE=sale CUR=jpy item.1.qty=1 item.1.ext=1200", &none).unwrap();
        assert_eq!(tx(&jpy).totals.gross, Amount::minor(1200));
        let till = one("TYPE=till action=open amount=150.00", &eur()).unwrap();
        assert_eq!(
            till.body,
            Body::Other(Map::from_iter([
                ("action".into(), Value::from("open")),
                ("amount".into(), Value::from(15000)),
                ("currency".into(), Value::from("EUR"))
            ]))
        );
        assert!(
            one("TYPE=till float_amount=abc", &eur())
                .unwrap_err()
                .contains("float_amount")
        );
        assert!(
            one("TYPE=till amount=1", &none)
                .unwrap_err()
                .contains("no currency")
        );
    }

    #[test]
    fn every_line_kind_and_explicit_numbers() {
        let e = one(
            "TYPE=return CUR=EUR STATUS=completed item.1.line=1 item.1.sku=7 item.1.qty=-1.5 item.1.uom=kg item.1.ext=-3.00 \
             item.1.tax=:0.07:-0.21,B:: item.1.mod.1.desc=\"no ice\" item.1.mod.1.amount=-0.10 item.2.line=2 item.2.qty=1 item.2.ext=1 item.2.void=1 \
             item.3.line=3 item.3.qty=-1 item.3.ext=-1 item.3.voids=2 item.3.dept=bakery disc.1.line=4 disc.1.amount=0.30 disc.1.applies_to=1 disc.1.loyalty=y \
             rounding.1.line=5 rounding.1.amount=0.01 tax.1.line=6 tax.1.rate=0.07 tax.1.taxable=-3.00 tax.1.amount=-0.21 \
             tender.1.line=7 tender.1.type=credit tender.1.amount=-2.90 tender.1.brand=visa tender.1.last4=1111 tender.1.auth=reversed tender.1.auth_code=X1 tender.1.card_pan=\"4111111111111111\" \
             chg.1.line=8 chg.1.amount=0 chg.1.type=gift-card link.1.reason=return link.1.seq=70 link.1.reg=reg-1 link.1.day=2026-11-26 link.1.line=1 customer=C1 table=T4",
            &eur(),
        )
        .unwrap();
        let t = tx(&e);
        assert_eq!((t.kind, t.lines.len(), t.links.len()), (Kind::Return, 8, 1));
        let Line::Item(i) = &t.lines[0] else { panic!() };
        assert_eq!(
            (
                i.taxes.len(),
                i.taxes[1].code.as_deref(),
                i.taxes[1].amount,
                i.modifiers.len()
            ),
            (2, Some("B"), None, 1)
        );
        assert!(matches!(&t.lines[2], Line::Item(x) if x.no_sku && x.voids_line == Some(2)));
        assert!(
            matches!(&t.lines[6], Line::Tender(x) if x.card.as_ref().and_then(|c| c.last4.as_deref()) == Some("1111"))
        );
        assert_eq!(e.ext["tender.1.card_pan"], Value::from("4111111111111111"));
        assert_eq!(e.ext["table"], Value::from("T4"));
        assert_eq!(
            t.customer.as_ref().and_then(|c| c.id.as_deref()),
            Some("C1")
        );
        // gross -3.00 (void pair does not count), discounts 0.30, tax -0.21, rounding 0.01.
        assert_eq!((t.totals.gross.get(), t.totals.grand.get()), (-300, -290));
        assert!(t.integrity.is_empty(), "{:?}", t.integrity);
        for (bad, why) in [
            (
                "item.1.line=1 item.1.qty=1 item.1.ext=1 item.2.qty=1 item.2.ext=1",
                "none does",
            ),
            (
                "item.1.line=1 item.1.qty=1 item.1.ext=1 tender.1.line=1 tender.1.type=cash tender.1.amount=1",
                "share one line",
            ),
            ("item.1.ext=1", "item.1 has no qty"),
            (
                "item.1.qty=1 item.1.ext=1 item.1.mod.2.amount=x",
                "item.1.mod.2.amount",
            ),
            ("tender.1.type=bitcoin tender.1.amount=1", "not one of cash"),
            (
                "tender.1.type=cash tender.1.amount=1 tender.1.auth_code=9",
                "needs tender.1.auth",
            ),
            (
                "item.1.qty=1 item.1.ext=1 item.1.tax=A:0.19",
                "code:rate:amount",
            ),
            ("body.x=1", "non-transaction"),
            ("kind=sale", "contradicts"),
        ] {
            let r = one(&format!("TYPE=return {bad}"), &eur()).unwrap_err();
            assert!(r.contains(why), "{bad}: {r}");
        }
    }

    #[test]
    fn ext_is_bounded() {
        let many: String = (0..65).map(|i| format!(" v{i}=1")).collect();
        assert!(
            one(&format!("TYPE=sale{many}"), &eur())
                .unwrap_err()
                .contains("more than 64")
        );
        let long = "x".repeat(257);
        assert!(
            one(&format!("TYPE=sale note={long}"), &eur())
                .unwrap_err()
                .contains("longer than 256")
        );
        assert!(
            one(&format!("TYPE=sale ext.{}=1", "k".repeat(61)), &eur())
                .unwrap_err()
                .contains("longer than 64")
        );
    }

    #[test]
    fn encode_refuses_what_it_cannot_carry() {
        let e = serde_json::json!({"event_type":"no_sale","body":{"note":"a\nb"}});
        assert!(encode(&e).is_err());
        let e = serde_json::json!({"event_type":"no_sale","body":{"x":1.5}});
        assert!(encode(&e).is_err());
        let e = serde_json::json!({"event_type":"till","body":{"amount":100}});
        assert!(encode(&e).unwrap_err().why.contains("currency"));
    }

    fn load_sample() -> Vec<Value> {
        crate::fixtures::simulated()
    }

    /// The event as the decoder must give it back: `card.pan` moves to ext.
    fn expected(e: &Value) -> Value {
        let mut e = e.clone();
        let mut moved = Vec::new();
        let mut tender = 0;
        for l in e
            .pointer_mut("/body/lines")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            tender += usize::from(l["kind"] == "tender");
            if let Some(pan) = l
                .get_mut("card")
                .and_then(Value::as_object_mut)
                .and_then(|c| c.remove("pan"))
            {
                moved.push((format!("tender.{tender}.card_pan"), pan));
            }
        }
        if !moved.is_empty() {
            let ext = e
                .as_object_mut()
                .unwrap()
                .entry("ext")
                .or_insert_with(|| Value::Object(Map::new()));
            ext.as_object_mut().unwrap().extend(moved);
        }
        e
    }

    #[test]
    fn simulator_events_round_trip_exactly() {
        let sample = load_sample();
        assert_eq!(sample.len(), 300);
        let mut pans = 0;
        for e in &sample {
            let line = encode(e).unwrap_or_else(|err| panic!("{err}: {e}"));
            assert!(!line.contains('\n'));
            let back = one(&line, &KvOptions::default()).unwrap_or_else(|r| panic!("{r}: {line}"));
            let want = expected(e);
            pans += want
                .get("ext")
                .and_then(Value::as_object)
                .map_or(0, |x| x.keys().filter(|k| k.ends_with("card_pan")).count());
            assert_eq!(serde_json::to_value(&back).unwrap(), want, "{line}");
        }
        assert!(pans > 0, "the sample plants card numbers");
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&raw, &eur());
        }

        #[test]
        fn kv_shaped_noise_never_panics(s in "[a-z.=\" |;\\\\0-9-]{0,80}") {
            let _ = decode(format!("TYPE=sale {s}").as_bytes(), &eur());
        }

        #[test]
        fn quoted_strings_round_trip(s in "[a-zA-Z0-9 \"\\\\|;=\t_.,:éü€日本🙂-]{0,40}") {
            let e = serde_json::json!({"event_type":"no_sale","flags":{"offline_payment":false,"reprint":false,"training":false},
                "body":{"note": s}, "ext": {"v": s}});
            let line = encode(&e).unwrap();
            let back = one(&line, &eur()).unwrap();
            prop_assert_eq!(serde_json::to_value(&back).unwrap(), e);
        }

    }

    #[test]
    fn sample_round_trips_in_pipe_style_and_upper_case_too() {
        // Every simulator record re-written with '|' separators and upper-case keys decodes
        // to the same event: the grammar, not the encoder's habits, carries the meaning.
        for e in load_sample() {
            let line = encode(&e).unwrap();
            let piped: Vec<String> = split(&line)
                .unwrap()
                .iter()
                .map(|v| {
                    let text = if v.quoted {
                        quote(&v.text)
                    } else {
                        v.text.clone()
                    };
                    format!("{}={text}", v.key.to_uppercase())
                })
                .collect();
            let again = one(&piped.join(" | "), &KvOptions::default()).unwrap();
            assert_eq!(again, one(&line, &KvOptions::default()).unwrap(), "{line}");
        }
    }
}
