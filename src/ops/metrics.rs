//! The Prometheus endpoint (`[metrics] listen`): text exposition format 0.0.4 over a
//! minimal HTTP/1.1 responder. Counters come from the outbox (per source, durable across
//! restarts) and from the uplink's and printer taps' atomics; a scrape never blocks the
//! pipeline.

use crate::outbox::queue::{Reader, Snapshot};
use crate::source::printer_tap::TapStats;
use crate::uplink::counters::UplinkCounters;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Everything a scrape reads.
pub struct Sources {
    /// Read-only outbox connection.
    pub reader: Reader,
    /// The uplink's counters.
    pub uplink: Arc<UplinkCounters>,
    /// Printer taps by source name.
    pub taps: Vec<(String, Arc<TapStats>)>,
}

/// Serves scrapes until the listener fails.
pub async fn serve(listener: TcpListener, sources: Arc<Sources>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let sources = sources.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), answer(stream, &sources)).await;
        });
    }
}

async fn answer(mut stream: TcpStream, sources: &Sources) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    // Only the request line matters; the head is bounded.
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let (status, kind, body) =
        if line.starts_with(b"GET /metrics ") || line.starts_with(b"GET /metrics?") {
            let snapshot = sources.reader.snapshot().ok();
            let text = render(snapshot.as_ref(), &sources.uplink, &sources.taps);
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", text)
        } else {
            (
                "404 Not Found",
                "text/plain",
                "posedge serves /metrics\n".to_string(),
            )
        };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

/// One metric family with its help and type lines.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
        }
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition text.
pub fn render(
    snap: Option<&Snapshot>,
    uplink: &UplinkCounters,
    taps: &[(String, Arc<TapStats>)],
) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    f.head(
        "posedge_up",
        "gauge",
        "1 while the outbox could be read for this scrape.",
    );
    f.sample("posedge_up", &[], u8::from(snap.is_some()));
    if let Some(s) = snap {
        type Pick = fn(&crate::outbox::queue::SourceCounters) -> u64;
        let per_source: [(&str, &str, Pick); 6] = [
            (
                "posedge_source_received_total",
                "Records read by the source.",
                |c| c.received,
            ),
            (
                "posedge_source_acked_total",
                "Events acknowledged to the register once durable.",
                |c| c.acked,
            ),
            (
                "posedge_source_nacked_total",
                "Records answered with a nack or NAK.",
                |c| c.nacked,
            ),
            (
                "posedge_source_dead_lettered_total",
                "Records or parts stored in the dead letters.",
                |c| c.dead_letters,
            ),
            (
                "posedge_source_redacted_total",
                "Card data occurrences masked or removed.",
                |c| c.redacted,
            ),
            (
                "posedge_source_integrity_flagged_total",
                "Transactions stored with totals that do not add up (flagged, never fixed).",
                |c| c.integrity_flags,
            ),
        ];
        for (name, help, pick) in per_source {
            f.head(name, "counter", help);
            for c in &s.sources {
                f.sample(name, &[("source", &c.name)], pick(c));
            }
        }
        f.head(
            "posedge_outbox_pending_events",
            "gauge",
            "Events waiting for their PUBACK.",
        );
        f.sample("posedge_outbox_pending_events", &[], s.outbox.pending);
        f.head(
            "posedge_outbox_pending_bytes",
            "gauge",
            "Payload bytes of the waiting events.",
        );
        f.sample("posedge_outbox_pending_bytes", &[], s.outbox.bytes);
        f.head(
            "posedge_outbox_oldest_age_seconds",
            "gauge",
            "Age of the oldest waiting event (0 when none).",
        );
        f.sample(
            "posedge_outbox_oldest_age_seconds",
            &[],
            s.outbox.oldest_age_s.unwrap_or(0),
        );
        f.head(
            "posedge_outbox_dead_letters",
            "gauge",
            "Dead letters stored.",
        );
        f.sample("posedge_outbox_dead_letters", &[], s.outbox.dead_letters);
        f.head(
            "posedge_alarm",
            "gauge",
            "1 for each active alarm (see the README for what to do).",
        );
        for a in &s.alarms {
            f.sample("posedge_alarm", &[("name", &a.name)], 1);
        }
    }
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    f.head(
        "posedge_uplink_connected",
        "gauge",
        "1 while connected to the broker.",
    );
    f.sample(
        "posedge_uplink_connected",
        &[],
        u8::from(uplink.connected.load(Ordering::Relaxed)),
    );
    let uplink_counters = [
        (
            "posedge_uplink_publishes_total",
            "Events published (QoS 1), re-sends included.",
            &uplink.publishes,
        ),
        (
            "posedge_uplink_pubacks_total",
            "Successful PUBACKs of events.",
            &uplink.pubacks,
        ),
        (
            "posedge_uplink_refused_total",
            "PUBACKs with a failure reason (event dead-lettered).",
            &uplink.refused,
        ),
        (
            "posedge_uplink_reconnects_total",
            "Broker sessions that ended or failed to start.",
            &uplink.reconnects,
        ),
    ];
    for (name, help, v) in uplink_counters {
        f.head(name, "counter", help);
        f.sample(name, &[], load(v));
    }
    f.head(
        "posedge_uplink_puback_rtt_seconds",
        "summary",
        "Publish to PUBACK round trip.",
    );
    f.sample(
        "posedge_uplink_puback_rtt_seconds_sum",
        &[],
        load(&uplink.rtt_us_sum) as f64 / 1e6,
    );
    f.sample(
        "posedge_uplink_puback_rtt_seconds_count",
        &[],
        load(&uplink.rtt_count),
    );
    if !taps.is_empty() {
        f.head(
            "posedge_printer_bytes_total",
            "counter",
            "Bytes relayed by a printer tap.",
        );
        for (name, t) in taps {
            f.sample(
                "posedge_printer_bytes_total",
                &[("source", name), ("direction", "to_printer")],
                load(&t.bytes_to_printer),
            );
            f.sample(
                "posedge_printer_bytes_total",
                &[("source", name), ("direction", "to_register")],
                load(&t.bytes_to_register),
            );
        }
        f.head(
            "posedge_printer_unreachable_total",
            "counter",
            "Register connections closed because the printer was unreachable.",
        );
        for (name, t) in taps {
            f.sample(
                "posedge_printer_unreachable_total",
                &[("source", name)],
                load(&t.printer_unreachable),
            );
        }
        f.head(
            "posedge_dropped_bytes_total",
            "counter",
            "Bytes not recorded, by reason (printing was not affected).",
        );
        for (name, t) in taps {
            f.sample(
                "posedge_dropped_bytes_total",
                &[("source", name), ("reason", "receipt_copy_behind")],
                load(&t.copies_dropped_bytes),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_is_well_formed_and_escaped() {
        let up = UplinkCounters::default();
        UplinkCounters::inc(&up.publishes);
        up.rtt(Duration::from_millis(3));
        let taps = vec![("pr\"1".to_string(), Arc::new(TapStats::default()))];
        let text = render(None, &up, &taps);
        assert!(text.contains("posedge_up 0\n"));
        assert!(text.contains("posedge_uplink_publishes_total 1\n"));
        assert!(text.contains("posedge_uplink_puback_rtt_seconds_sum 0.003\n"));
        assert!(text.contains("source=\"pr\\\"1\""));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("posedge_"), "{line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
