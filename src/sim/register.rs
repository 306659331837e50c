//! The simulated LAN register: sends generated events as NDJSON, waits for acks like a
//! real register (re-sending whatever was not acked after a reconnect) and writes a
//! ledger so a test can prove every acked event reached the cloud.

use super::generate::{Generator, Profile};
use crate::config::Format;
use crate::decode::escpos::CodePage;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How the simulated register behaves.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Agent TCP source address.
    pub connect: SocketAddr,
    /// Events to send.
    pub count: u64,
    /// Seed of the generator.
    pub seed: u64,
    /// Store or restaurant.
    pub profile: Profile,
    /// Register id stamped on every event.
    pub register_id: String,
    /// Business day `YYYY-MM-DD`.
    pub business_day: String,
    /// Events per second; 0 = as fast as acks allow.
    pub rate: u64,
    /// Lines sent ahead of their acks.
    pub window: usize,
    /// Store id, to write idempotency keys into the ledger.
    pub store_id: String,
    /// Ledger file (one JSON line per event).
    pub ledger: Option<PathBuf>,
    /// Give up when the agent stays unreachable this long.
    pub give_up_after: Duration,
    /// What the register speaks.
    pub format: Format,
    /// The last event is a till close: the register closes its business day.
    pub close_day: bool,
}

/// What a run did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SimReport {
    /// Events generated.
    pub generated: u64,
    /// Events acked.
    pub acked: u64,
    /// Events nacked.
    pub nacked: u64,
    /// Lines re-sent after a reconnect.
    pub resent: u64,
    /// Reconnects (or replugs of a serial line).
    pub reconnects: u64,
    /// Generated events the format cannot express (not sent).
    pub skipped: u64,
    /// Ack latencies in microseconds (send → ack).
    #[serde(skip)]
    pub ack_latency_us: Vec<u64>,
}

/// Why a simulated run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The agent stayed unreachable.
    #[error("agent at {addr} unreachable for {secs}s: {last}")]
    Unreachable {
        /// Address.
        addr: SocketAddr,
        /// How long.
        secs: u64,
        /// Last error.
        last: String,
    },
    /// The ledger could not be written.
    #[error("ledger: {0}")]
    Ledger(#[from] std::io::Error),
}

struct Sent {
    line: Vec<u8>,
    meta: Value,
    at: Instant,
}

/// The idempotency key the agent derives for a generated event (DESIGN §2.4).
pub fn expected_key(store: &str, ev: &Value) -> String {
    let s = |k: &str| {
        ev.get(k)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    format!(
        "{store}|{}|{}|{}|{}",
        s("register_id"),
        s("business_day"),
        s("pos_sequence"),
        s("event_type")
    )
}

/// The register clock's skew against the wall clock in milliseconds; `i64::MIN` while the
/// simulated clock (derived from the business day) is in use.
static CLOCK_SKEW_MS: AtomicI64 = AtomicI64::new(i64::MIN);

/// `posedge sim --clock-skew-s`: from now on every event's `occurred_at` is the wall clock
/// plus `skew_s` (negative: the register's clock is behind), as a register whose clock is
/// off would stamp it. `None` goes back to the simulated clock. One register per process.
pub fn set_clock_skew_s(skew_s: Option<i64>) {
    let ms = skew_s.map_or(i64::MIN, |s| s.saturating_mul(1000).max(i64::MIN + 1));
    CLOCK_SKEW_MS.store(ms, Ordering::Relaxed);
}

/// Stamps `occurred_at` as a register clock `skew_ms` off the wall clock at `now_ms`.
fn stamp_register_clock(ev: &mut Value, now_ms: i64, skew_ms: i64) {
    ev["occurred_at"] = json!(crate::clock::rfc3339_from_ms(
        now_ms.saturating_add(skew_ms)
    ));
}

/// One line per event sent, so a test can prove every acked event reached the cloud.
pub struct Ledger(Option<std::io::BufWriter<std::fs::File>>);

impl Ledger {
    /// A ledger at `path`, or none.
    pub fn create(path: Option<&std::path::Path>) -> std::io::Result<Self> {
        Ok(Ledger(match path {
            Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
            None => None,
        }))
    }

    /// Records what became of one event; `answer` is the agent's ack line, if any.
    /// `answered_ms` (wall clock, epoch ms) is when the answer came, next to `sent_ms`.
    pub fn write(&mut self, mut meta: Value, acked: bool, answer: &Value) -> std::io::Result<()> {
        meta["acked"] = json!(acked);
        meta["answered_ms"] = json!(crate::clock::now_ms());
        meta["event_id"] = answer.get("event_id").cloned().unwrap_or(Value::Null);
        meta["seq"] = answer.get("seq").cloned().unwrap_or(Value::Null);
        self.line(&meta)
    }

    /// Writes one ledger line as it is.
    pub fn line(&mut self, line: &Value) -> std::io::Result<()> {
        match self.0.as_mut() {
            Some(w) => writeln!(w, "{line}"),
            None => Ok(()),
        }
    }

    /// Flushes to disk.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match self.0.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

/// What the ledger says about an event before its answer; call it when the event is first
/// sent: `sent_ms` (wall clock, epoch ms) is the start of its register→cloud latency.
pub fn meta(store: &str, ev: &Value) -> Value {
    json!({
        "sent_ms": crate::clock::now_ms(),
        "idempotency_key": expected_key(store, ev),
        "register_id": ev.get("register_id"),
        "pos_sequence": ev.get("pos_sequence"),
        "event_type": ev.get("event_type"),
    })
}

/// The next event the register's format can express, with its record bytes.
pub fn next_record(
    generator: &mut Generator,
    o: &SimOptions,
    report: &mut SimReport,
) -> (Value, Vec<u8>) {
    loop {
        let mut ev = if o.close_day && report.generated + 1 == o.count {
            generator.close_till()
        } else {
            generator.next_event()
        };
        let skew = CLOCK_SKEW_MS.load(Ordering::Relaxed);
        if skew != i64::MIN {
            stamp_register_clock(&mut ev, crate::clock::now_ms(), skew);
        }
        match super::encode::record(o.format, &ev, CodePage::Cp858) {
            Some(raw) => return (ev, raw),
            None => report.skipped += 1,
        }
    }
}

/// Runs the register until `count` events are acked or nacked.
pub async fn run(o: &SimOptions) -> Result<SimReport, SimError> {
    let mut ledger = Ledger::create(o.ledger.as_deref())?;
    let mut generator = Generator::new(o.seed, o.profile, &o.register_id, &o.business_day);
    let mut report = SimReport::default();
    let mut unacked: VecDeque<Sent> = VecDeque::new();
    let started = Instant::now();
    let pace = (o.rate > 0).then(|| Duration::from_secs_f64(1.0 / o.rate as f64));
    let mut down_since: Option<(Instant, String)> = None;
    while report.acked + report.nacked < o.count {
        let stream = match TcpStream::connect(o.connect).await {
            Ok(s) => s,
            Err(e) => {
                let (since, _) = down_since.get_or_insert_with(|| (Instant::now(), String::new()));
                if since.elapsed() > o.give_up_after {
                    return Err(SimError::Unreachable {
                        addr: o.connect,
                        secs: o.give_up_after.as_secs(),
                        last: e.to_string(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if down_since.take().is_some() || report.generated > 0 {
            report.reconnects += u64::from(report.generated > 0);
        }
        let _ = stream.set_nodelay(true);
        let (rd, mut wr) = stream.into_split();
        let mut rd = BufReader::new(rd).lines();
        // A real register re-sends everything it holds no ack for, in order.
        let mut batch = Vec::new();
        for s in unacked.iter_mut() {
            batch.extend_from_slice(&s.line);
            s.at = Instant::now();
            report.resent += 1;
        }
        if wr.write_all(&batch).await.is_err() {
            continue;
        }
        let mut broken = false;
        while !broken && report.acked + report.nacked < o.count {
            let can_send = report.generated < o.count && unacked.len() < o.window;
            let next_due = pace.map(|p| started + p.mul_f64(report.generated as f64));
            tokio::select! {
                line = rd.next_line() => match line {
                    Ok(Some(l)) => {
                        let Some(sent) = unacked.pop_front() else { broken = true; continue };
                        let v: Value = serde_json::from_str(&l).unwrap_or(Value::Null);
                        let acked = v.get("ack").is_some();
                        report.ack_latency_us.push(sent.at.elapsed().as_micros() as u64);
                        if acked { report.acked += 1 } else { report.nacked += 1 }
                        ledger.write(sent.meta, acked, &v)?;
                    }
                    _ => broken = true,
                },
                _ = async {
                    if let Some(due) = next_due {
                        tokio::time::sleep_until(due.into()).await;
                    }
                }, if can_send => {
                    let (ev, mut line) = next_record(&mut generator, o, &mut report);
                    line.push(b'\n');
                    let meta = meta(&o.store_id, &ev);
                    report.generated += 1;
                    if wr.write_all(&line).await.is_err() {
                        broken = true;
                    }
                    unacked.push_back(Sent { line, meta, at: Instant::now() });
                }
            }
        }
        if broken {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    ledger.flush()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skewed_register_clock_stamps_the_wall_clock_plus_the_skew() {
        let mut ev = json!({"event_type": "no_sale", "occurred_at": "2026-11-27T07:00:00.000Z"});
        stamp_register_clock(&mut ev, 1_764_221_116_123, -3 * 3600 * 1000);
        assert_eq!(ev["occurred_at"], "2025-11-27T02:25:16.123Z");
        stamp_register_clock(&mut ev, 1_764_221_116_123, 25 * 3600 * 1000);
        assert_eq!(ev["occurred_at"], "2025-11-28T06:25:16.123Z");
    }

    #[test]
    fn ledger_lines_carry_when_sent_and_when_answered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger");
        let ev = json!({"event_type": "no_sale", "register_id": "r1", "business_day": "2026-11-27", "pos_sequence": 7});
        let before = crate::clock::now_ms();
        let m = meta("s1", &ev);
        let mut ledger = Ledger::create(Some(&path)).unwrap();
        ledger
            .write(m, true, &json!({"ack": 1, "event_id": "e", "seq": 3}))
            .unwrap();
        ledger.flush().unwrap();
        let line: Value =
            serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
        assert_eq!(line["idempotency_key"], "s1|r1|2026-11-27|7|no_sale");
        assert_eq!(
            (line["acked"].clone(), line["seq"].clone()),
            (json!(true), json!(3))
        );
        let (sent, answered) = (
            line["sent_ms"].as_i64().unwrap(),
            line["answered_ms"].as_i64().unwrap(),
        );
        assert!(before <= sent && sent <= answered, "{line}");
    }
}
