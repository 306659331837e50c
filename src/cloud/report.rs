//! `posedge cloud-report`: per store, one business day's events in PostgreSQL against the
//! store's latest end-of-day summary. The database side is added up by the agent's own
//! [`DaySummary::add`] over the stored payloads, so both sides follow the same counting
//! rules (`src/derive/summary.rs`).

use super::db::{self, DbError};
use super::ranges::{SeqRange, holes};
use super::topic::StoreKey;
use crate::derive::summary::{DaySummary, DayTotals, SummaryMessage};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use tokio_postgres::Client;

/// One figure on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Figure {
    /// ISO 4217.
    pub currency: String,
    /// `grand`, `tax`, `tender:<type>`.
    pub figure: String,
    /// From the stored events (minor units).
    pub db: i64,
    /// From the summary (minor units); `None` without a summary.
    pub summary: Option<i64>,
}

/// One store's reconciliation.
#[derive(Debug, Clone, Serialize)]
pub struct StoreReport {
    /// Tenant.
    pub tenant: String,
    /// Store.
    pub store: String,
    /// The latest summary revision, if one arrived.
    pub summary_revision: Option<u64>,
    /// Why the summary is final (`registers`, `cutoff`), `None` while open.
    pub summary_closed: Option<String>,
    /// Register events stored for the day.
    pub events_received: u64,
    /// Register events the summary counts.
    pub events_in_summary: Option<u64>,
    /// Money per currency: grand, tax, tenders per type.
    pub money: Vec<Figure>,
    /// Per lane, the `seq` ranges of the day's span that never arrived.
    pub missing: BTreeMap<String, Vec<SeqRange>>,
    /// Messages absorbed as duplicates for the day.
    pub duplicates: u64,
    /// Everything that does not match, one sentence each; empty when clean.
    pub discrepancies: Vec<String>,
}

/// The whole report for one day.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `YYYY-MM-DD`.
    pub business_day: String,
    /// Per store, in order.
    pub stores: Vec<StoreReport>,
}

impl Report {
    /// No store has a discrepancy.
    pub fn clean(&self) -> bool {
        self.stores.iter().all(|s| s.discrepancies.is_empty())
    }
}

/// Why the report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// `--day` is not a date.
    #[error("--day {0:?} must be a date YYYY-MM-DD")]
    BadDay(String),
}

impl From<tokio_postgres::Error> for ReportError {
    fn from(e: tokio_postgres::Error) -> Self {
        ReportError::Db(DbError::Query(e))
    }
}

/// Builds the report for `day` from the database at `url`.
pub async fn run(url: &str, day: &str) -> Result<Report, ReportError> {
    if day.parse::<jiff::civil::Date>().is_err() || day.len() != 10 {
        return Err(ReportError::BadDay(day.to_string()));
    }
    let client = db::connect(url).await?;
    let stores: Vec<StoreKey> = client
        .query(
            "SELECT tenant_id, store_id FROM events WHERE business_day = $1::text::date
             UNION SELECT tenant_id, store_id FROM inventory_messages WHERE business_day = $1::text::date
             UNION SELECT tenant_id, store_id FROM summaries WHERE business_day = $1::text::date
             ORDER BY 1, 2",
            &[&day],
        )
        .await?
        .iter()
        .map(|r| StoreKey {
            tenant: r.get(0),
            store: r.get(1),
        })
        .collect();
    let mut out = Vec::new();
    for key in stores {
        out.push(store_report(&client, &key, day).await?);
    }
    Ok(Report {
        business_day: day.to_string(),
        stores: out,
    })
}

/// The day's summary as the database's events give it.
pub async fn from_events(
    client: &Client,
    key: &StoreKey,
    day: &str,
) -> Result<DaySummary, ReportError> {
    let rows = client
        .query(
            "SELECT source, seq, payload::text FROM events
               WHERE tenant_id = $1 AND store_id = $2 AND business_day = $3::text::date
             UNION ALL
             SELECT source, seq, payload::text FROM inventory_messages
               WHERE tenant_id = $1 AND store_id = $2 AND business_day = $3::text::date",
            &[&key.tenant, &key.store, &day],
        )
        .await?;
    let mut s = DaySummary::default();
    for r in rows {
        let seq = u64::try_from(r.get::<_, i64>(1)).unwrap_or(0);
        s.add(r.get::<_, &str>(0), seq, r.get::<_, &str>(2).as_bytes());
    }
    Ok(s)
}

async fn store_report(
    client: &Client,
    key: &StoreKey,
    day: &str,
) -> Result<StoreReport, ReportError> {
    let db = from_events(client, key, day).await?;
    let latest = client
        .query_opt(
            "SELECT payload::text FROM latest_summaries
             WHERE tenant_id = $1 AND store_id = $2 AND business_day = $3::text::date",
            &[&key.tenant, &key.store, &day],
        )
        .await?;
    let mut discrepancies = Vec::new();
    let summary = match latest {
        Some(row) => match serde_json::from_str::<SummaryMessage>(row.get(0)) {
            Ok(s) => Some(s),
            Err(e) => {
                discrepancies.push(format!("the stored summary cannot be read: {e}"));
                None
            }
        },
        None => {
            discrepancies.push("no end-of-day summary arrived".into());
            None
        }
    };
    if let Some(s) = &summary {
        let theirs = serde_json::to_value(&s.day).unwrap_or_default();
        let ours = serde_json::to_value(&db).unwrap_or_default();
        for (path, a, b) in differences(&ours, &theirs, String::new()) {
            discrepancies.push(format!("{path}: database {a}, summary {b}"));
        }
    }
    // The day's span per lane; without a summary, what arrived.
    let spans = summary.as_ref().map_or(&db.sources, |s| &s.day.sources);
    let mut missing = BTreeMap::new();
    for (lane, span) in spans {
        let present: Vec<u64> = client
            .query(
                "SELECT seq FROM received WHERE tenant_id = $1 AND store_id = $2 AND source = $3
                 AND seq BETWEEN $4 AND $5 ORDER BY seq",
                &[
                    &key.tenant,
                    &key.store,
                    lane,
                    &i64::try_from(span.first_seq).unwrap_or(i64::MAX),
                    &i64::try_from(span.last_seq).unwrap_or(i64::MAX),
                ],
            )
            .await?
            .iter()
            .map(|r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0))
            .collect();
        let h = holes(present, span.first_seq, span.last_seq);
        if !h.is_empty() {
            let text: Vec<String> = h.iter().map(|r| format!("{}–{}", r.from, r.to)).collect();
            discrepancies.push(format!("{lane}: seq {} never arrived", text.join(", ")));
            missing.insert(lane.clone(), h);
        }
    }
    let duplicates: i64 = client
        .query_opt(
            "SELECT count FROM duplicates WHERE tenant_id = $1 AND store_id = $2 AND business_day = $3::text::date",
            &[&key.tenant, &key.store, &day],
        )
        .await?
        .map_or(0, |r| r.get(0));
    Ok(StoreReport {
        tenant: key.tenant.clone(),
        store: key.store.clone(),
        summary_revision: summary.as_ref().map(|s| s.revision),
        summary_closed: summary.as_ref().and_then(|s| {
            s.closed
                .and_then(|c| serde_json::to_value(c).ok())
                .and_then(|v| v.as_str().map(str::to_string))
        }),
        events_received: db.store.events,
        events_in_summary: summary.as_ref().map(|s| s.day.store.events),
        money: figures(&db.store, summary.as_ref().map(|s| &s.day.store)),
        missing,
        duplicates: u64::try_from(duplicates).unwrap_or(0),
        discrepancies,
    })
}

/// Grand, tax and tenders per currency, from both sides.
fn figures(db: &DayTotals, summary: Option<&DayTotals>) -> Vec<Figure> {
    let currencies: BTreeSet<_> = db
        .money
        .keys()
        .chain(summary.iter().flat_map(|s| s.money.keys()))
        .collect();
    let mut out = Vec::new();
    for c in currencies {
        let ours = db.money.get(c).cloned().unwrap_or_default();
        let theirs = summary.map(|s| s.money.get(c).cloned().unwrap_or_default());
        let mut push = |figure: String, a: i64, b: Option<i64>| {
            out.push(Figure {
                currency: c.to_string(),
                figure,
                db: a,
                summary: b,
            })
        };
        push("grand".into(), ours.grand, theirs.as_ref().map(|t| t.grand));
        push("tax".into(), ours.tax, theirs.as_ref().map(|t| t.tax));
        let types: BTreeSet<&String> = ours
            .tenders
            .keys()
            .chain(theirs.iter().flat_map(|t| t.tenders.keys()))
            .collect();
        for ty in types {
            push(
                format!("tender:{ty}"),
                ours.tenders.get(ty).copied().unwrap_or(0),
                theirs
                    .as_ref()
                    .map(|t| t.tenders.get(ty).copied().unwrap_or(0)),
            );
        }
    }
    out
}

/// Leaf paths where two JSON trees differ, with both values (absent shown as `none`).
fn differences(
    a: &serde_json::Value,
    b: &serde_json::Value,
    path: String,
) -> Vec<(String, String, String)> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter()
                .flat_map(|k| {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    differences(
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        p,
                    )
                })
                .collect()
        }
        // A zero figure on one side and no entry on the other are the same thing.
        _ if is_zero(a) && is_zero(b) => Vec::new(),
        _ if a == b => Vec::new(),
        _ => vec![(path, show(a), show(b))],
    }
}

fn is_zero(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Number(n) => n.as_i64() == Some(0),
        serde_json::Value::Object(o) => o.values().all(is_zero),
        _ => false,
    }
}

fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "none".into(),
        other => other.to_string(),
    }
}

/// The report as a person reads it.
pub fn text(r: &Report) -> String {
    let mut s = format!("business day {}\n", r.business_day);
    if r.stores.is_empty() {
        s.push_str("  no store has events or a summary for this day\n");
    }
    for st in &r.stores {
        let _ = writeln!(
            s,
            "\n{}/{}: {}  summary {}  events {} received / {} in summary  duplicates absorbed {}",
            st.tenant,
            st.store,
            if st.discrepancies.is_empty() {
                "CLEAN"
            } else {
                "DISCREPANCIES"
            },
            match (st.summary_revision, &st.summary_closed) {
                (Some(rev), Some(c)) => format!("rev {rev} (closed: {c})"),
                (Some(rev), None) => format!("rev {rev} (open)"),
                (None, _) => "missing".into(),
            },
            st.events_received,
            st.events_in_summary
                .map_or_else(|| "-".into(), |n| n.to_string()),
            st.duplicates,
        );
        let _ = writeln!(
            s,
            "  {:<8} {:<20} {:>14} {:>14}",
            "currency", "figure", "database", "summary"
        );
        for f in &st.money {
            let mark = if f.summary == Some(f.db) { "" } else { "  ≠" };
            let _ = writeln!(
                s,
                "  {:<8} {:<20} {:>14} {:>14}{mark}",
                f.currency,
                f.figure,
                f.db,
                f.summary.map_or_else(|| "-".into(), |n| n.to_string())
            );
        }
        for d in &st.discrepancies {
            let _ = writeln!(s, "  ! {d}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_the_leaf_and_treat_zero_as_absent() {
        let a = json!({"money": {"EUR": {"grand": 100, "tenders": {"cash": 0}}}, "events": 3});
        let b = json!({"money": {"EUR": {"grand": 90, "tenders": {}}}, "events": 3});
        assert_eq!(
            differences(&a, &b, String::new()),
            vec![(
                "money.EUR.grand".to_string(),
                "100".to_string(),
                "90".to_string()
            )]
        );
    }
}
