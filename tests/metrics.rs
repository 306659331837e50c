//! The Prometheus endpoint scraped during a pipeline run: counters match what the
//! simulated register sent and what the broker acknowledged.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

fn scrape(port: u16) -> String {
    let mut s = TcpStream::connect(lan(port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    text
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

#[test]
fn counters_match_what_was_sent_and_delivered() {
    let mut w = World::new();
    w.start_broker();
    let (lan_port, metrics_port) = (free_port(), free_port());
    let cfg = w.agent_config_with(
        lan_port,
        "",
        "",
        &format!("[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"),
    );
    let _agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    wait_port(metrics_port, true, Duration::from_secs(10));
    let out = Command::new(env!("CARGO_BIN_EXE_posedge"))
        .args([
            "sim",
            "--tcp",
            &format!("127.0.0.1:{lan_port}"),
            "--count",
            "500",
        ])
        .args(["--register", "reg-m", "--store", "s1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    eventually(Duration::from_secs(30), "the outbox drained", || {
        value(&scrape(metrics_port), "posedge_outbox_pending_events") == Some(0.0)
    });
    let text = scrape(metrics_port);
    let get = |s: &str| value(&text, s).unwrap_or_else(|| panic!("no {s} in\n{text}"));
    assert_eq!(get("posedge_source_received_total{source=\"lan1\"}"), 500.0);
    assert_eq!(get("posedge_source_acked_total{source=\"lan1\"}"), 500.0);
    assert_eq!(
        get("posedge_source_dead_lettered_total{source=\"lan1\"}"),
        0.0
    );
    // One planted test PAN in every ten events, each masked once.
    assert_eq!(get("posedge_source_redacted_total{source=\"lan1\"}"), 50.0);
    assert_eq!(get("posedge_uplink_connected"), 1.0);
    assert!(get("posedge_uplink_pubacks_total") >= 500.0);
    assert!(get("posedge_uplink_puback_rtt_seconds_count") >= 500.0);
    assert_eq!(get("posedge_up"), 1.0);
    assert!(!text.contains("4111 1111"), "no card data in metrics");
}
