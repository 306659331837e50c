//! Decoder and redactor throughput: each format's decoder alone, and the whole ingest
//! stage (decode ▸ redact ▸ stamp), over the simulator's events in that format, plus the
//! largest real POSLog fixture when present. Single core, in-process, no I/O.

use crate::config::Format;
use crate::decode::{self, escpos::CodePage};
use crate::event::{Origin, RegisterId, SourceName};
use crate::ingest::{KeyRule, SourceContext, prepare};
use crate::model::Currency;
use crate::sim::generate::{Generator, Profile};
use std::time::{Duration, Instant};

/// One measured row.
pub struct Rate {
    /// What was measured.
    pub what: String,
    /// Events (or receipts) per second.
    pub events_per_s: f64,
    /// Input megabytes per second.
    pub mb_per_s: f64,
}

/// Runs `f` over `records` until at least `min` has passed; returns (events/s, MB/s).
fn rate(records: &[Vec<u8>], min: Duration, mut f: impl FnMut(&[u8]) -> usize) -> (f64, f64) {
    let (mut events, mut bytes, start) = (0usize, 0usize, Instant::now());
    while start.elapsed() < min {
        for r in records {
            events += f(r);
            bytes += r.len();
        }
    }
    let s = start.elapsed().as_secs_f64();
    (events as f64 / s, bytes as f64 / s / 1e6)
}

/// The ingest context of a bench source reading `format`.
pub(super) fn context(format: Format) -> SourceContext {
    SourceContext {
        store_id: "bench".into(),
        origin: Origin {
            name: SourceName::new("bench"),
            kind: "file",
            format: format.as_str(),
        },
        format,
        default_register: Some(RegisterId::new("reg-1")),
        options: decode::Options {
            default_currency: "EUR".parse::<Currency>().ok(),
            code_page: None,
        },
        keys: KeyRule::Content,
        mapping: Default::default(),
    }
}

/// Measures every decoder, the ingest stage per format and the redactor.
pub fn measure(min: Duration) -> Vec<Rate> {
    let mut g = Generator::new(11, Profile::Retail, "reg-1", "2026-11-27");
    let events: Vec<serde_json::Value> = (0..2000).map(|_| g.next_event()).collect();
    let mut corpora: Vec<(String, Format, Vec<Vec<u8>>)> =
        [Format::Ndjson, Format::Kv, Format::Poslog, Format::Escpos]
            .into_iter()
            .map(|f| {
                let recs = events
                    .iter()
                    .filter_map(|e| crate::sim::encode::record(f, e, CodePage::Cp858))
                    .collect();
                (format!("{} (simulator)", f.as_str()), f, recs)
            })
            .collect();
    corpora.push((
        "naxml (test documents)".into(),
        Format::Naxml,
        vec![
            include_bytes!("../../tests/data/naxml/01-passport-sale-latin1.xml").to_vec(),
            include_bytes!("../../tests/data/naxml/02-fuel-outside-credit.xml").to_vec(),
            include_bytes!("../../tests/data/naxml/03-refund-and-void-prefixed.xml").to_vec(),
        ],
    ));
    let big = std::path::Path::new("../shared/fixtures/real/poslog/kjbreil-poslog__POSLog.xml");
    if let Ok(doc) = std::fs::read(big).or_else(|_| {
        std::fs::read(std::path::Path::new(
            "/work/shared/fixtures/real/poslog/kjbreil-poslog__POSLog.xml",
        ))
    }) {
        corpora.push((
            "poslog (NCR ACS fixture, 51 transactions)".into(),
            Format::Poslog,
            vec![doc],
        ));
    }
    let mut out = Vec::new();
    for (name, format, recs) in &corpora {
        let opts = context(*format).options;
        let (eps, mbps) = rate(recs, min, |r| decode::decode(*format, r, &opts).len());
        out.push(Rate {
            what: format!("decode {name}"),
            events_per_s: eps,
            mb_per_s: mbps,
        });
        let ctx = context(*format);
        let (eps, mbps) = rate(recs, min, |r| {
            prepare(&ctx, r, "2026-11-27T00:00:00Z").items.len()
        });
        out.push(Rate {
            what: format!("ingest {name}"),
            events_per_s: eps,
            mb_per_s: mbps,
        });
    }
    if let Some((_, _, ndjson)) = corpora.first() {
        let (eps, mbps) = rate(ndjson, min, |r| {
            crate::redact::redact_bytes(r);
            1
        });
        out.push(Rate {
            what: "redactor over raw NDJSON records".into(),
            events_per_s: eps,
            mb_per_s: mbps,
        });
    }
    out
}

/// The rows as a markdown table.
pub fn table(rates: &[Rate]) -> String {
    let mut s = String::from("| stage | records/s | MB/s |\n|---|---|---|\n");
    for r in rates {
        s.push_str(&format!(
            "| {} | {:.0} | {:.1} |\n",
            r.what, r.events_per_s, r.mb_per_s
        ));
    }
    s
}
