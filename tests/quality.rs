//! Data quality through the whole agent: a transaction whose lines do not add up to its
//! totals reaches the cloud as sent, flagged in `body.integrity`, and is counted per
//! source in `posedge status` and the metrics; mapping rules from the config rewrite
//! events before they are stored.

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

    send_acked(lan_port, &[&good, &bad]);

    eventually(Duration::from_secs(20), "both delivered", || {
        events(&sub).len() >= 2
    });
    let delivered = events(&sub);
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

/// The events the subscriber received (its filter also matches the agent's status).
fn events(sub: &posedge::sim::subscriber::Subscriber) -> Vec<Value> {
    sub.seen()
        .payloads
        .iter()
        .map(|p| serde_json::from_slice::<Value>(p).unwrap())
        .filter(|v| v["schema"] == "posedge.event/1")
        .collect()
}

/// Sends events as one LAN register and waits for each ack.
fn send_acked(lan_port: u16, events: &[&Value]) {
    let stream = TcpStream::connect(lan(lan_port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    for ev in events {
        let mut line = serde_json::to_vec(ev).unwrap();
        line.push(b'\n');
        writer.write_all(&line).unwrap();
        let mut answer = String::new();
        reader.read_line(&mut answer).unwrap();
        assert!(answer.starts_with("{\"ack\""), "{answer}");
    }
}

#[test]
fn mapping_rules_rewrite_events_before_they_are_stored() {
    let mut w = World::new();
    w.start_broker();
    let lan_port = free_port();
    let rules = "[[mapping]]\nsource = \"lan1\"\naction = \"sku\"\nfield = \"body.lines[].sku\"\n\
                 leading_zeros = \"pad\"\nwidth = 14\n\n\
                 [[mapping]]\naction = \"sku\"\nfield = \"body.lines[].gtin\"\ngtin = \"validate\"\n\n\
                 [[mapping]]\naction = \"rename\"\nfrom = \"ext.cust_no\"\nto = \"body.customer.id\"\n";
    let cfg = w.agent_config_with(lan_port, "", "", rules);
    let _agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let sub = w.subscriber(MqttVersion::V5);

    let mut g = Generator::new(21, Profile::Retail, "reg-m", "2026-11-27");
    let mut sale = std::iter::repeat_with(|| g.next_event())
        .find(|e| {
            e["event_type"] == "transaction"
                && e["body"]["lines"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|l| l["gtin"].is_string()))
        })
        .unwrap();
    let lines = sale["body"]["lines"].as_array_mut().unwrap();
    let with_gtin = lines.iter().position(|l| l["gtin"].is_string()).unwrap();
    let gtin = lines[with_gtin]["gtin"].as_str().unwrap().to_string();
    // One wrong check digit: flagged, never corrected.
    let last = gtin.chars().last().unwrap().to_digit(10).unwrap();
    let wrong = format!("{}{}", &gtin[..gtin.len() - 1], (last + 1) % 10);
    lines[with_gtin]["gtin"] = Value::from(wrong.clone());
    sale["ext"] = serde_json::json!({"cust_no": "C-1007"});
    send_acked(lan_port, &[&sale]);

    eventually(Duration::from_secs(20), "delivered", || {
        !events(&sub).is_empty()
    });
    let out = events(&sub).remove(0);
    let body = &out["body"];
    for (sent, got) in sale["body"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .zip(body["lines"].as_array().unwrap())
    {
        if let Some(sku) = sent["sku"]
            .as_str()
            .map(str::to_string)
            .or_else(|| sent["sku"].as_u64().map(|n| n.to_string()))
        {
            let padded = got["sku"].as_str().unwrap();
            assert_eq!(padded.len(), 14, "{got}");
            assert_eq!(padded.trim_start_matches('0'), sku.trim_start_matches('0'));
        }
    }
    assert_eq!(
        body["lines"][with_gtin]["gtin"],
        wrong.as_str(),
        "kept as sent"
    );
    let findings = body["mapping"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f
            .as_str()
            .unwrap()
            .contains(&format!("lines[{with_gtin}].gtin"))),
        "{findings:?}"
    );
    assert_eq!(body["customer"]["id"], "C-1007");
    assert!(out["ext"].get("cust_no").is_none(), "{out}");
}
