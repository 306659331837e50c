//! Data quality through the whole agent: a transaction whose lines do not add up to its
//! totals reaches the cloud as sent, flagged in `body.integrity`, and is counted per
//! source in `posedge status` and the metrics.

mod common;

use common::*;
use posedge::config::MqttVersion;
use posedge::sim::generate::{Generator, Profile};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn a_transaction_that_does_not_add_up_is_delivered_flagged_and_counted() {
    let mut w = World::new();
    w.start_broker();
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "", "");
    let _agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let sub = w.subscriber(MqttVersion::V5);

    let mut g = Generator::new(9, Profile::Retail, "reg-q", "2026-11-27");
    let mut transactions = std::iter::repeat_with(|| g.next_event())
        .filter(|e| e["event_type"] == "transaction")
        .take(2);
    let good = transactions.next().unwrap();
    let mut bad = transactions.next().unwrap();
    let grand = bad["body"]["totals"]["grand"].as_i64().unwrap();
    bad["body"]["totals"]["grand"] = Value::from(grand + 1);

    let stream = TcpStream::connect(lan(lan_port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    for ev in [&good, &bad] {
        let mut line = serde_json::to_vec(ev).unwrap();
        line.push(b'\n');
        writer.write_all(&line).unwrap();
        let mut answer = String::new();
        reader.read_line(&mut answer).unwrap();
        assert!(answer.starts_with("{\"ack\""), "{answer}");
    }

    eventually(Duration::from_secs(20), "both delivered", || {
        sub.seen().payloads.len() >= 2
    });
    let delivered: Vec<Value> = sub
        .seen()
        .payloads
        .iter()
        .map(|p| serde_json::from_slice(p).unwrap())
        .collect();
    let out = |sent: &Value| {
        delivered
            .iter()
            .find(|e| e["pos_sequence"] == sent["pos_sequence"])
            .unwrap_or_else(|| panic!("not delivered: {delivered:?}"))
    };
    let good_out = out(&good);
    let bad_out = out(&bad);
    assert!(good_out["body"].get("integrity").is_none(), "{good_out}");
    assert_eq!(bad_out["body"]["totals"]["grand"], grand + 1, "never fixed");
    let findings = bad_out["body"]["integrity"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f.as_str().unwrap_or("").contains(&(grand + 1).to_string())),
        "the finding carries the figures: {findings:?}"
    );

    let st = status(&cfg);
    let lan1 = st["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "lan1")
        .unwrap();
    assert_eq!(lan1["integrity_flags"], 1, "{lan1}");
    assert_eq!(lan1["received"], 2, "{lan1}");
}
