//! Uplink behaviour against a real Mosquitto: a PUBACK with a failure reason code moves
//! the event to the dead letters instead of looping, and the rest keeps flowing.

mod common;

use common::*;
use posedge::config::MqttVersion;
use posedge::demo::mosquitto::Mosquitto;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn refused_publish_goes_to_the_dead_letters_instead_of_looping() {
    let w = World::new();
    // The broker maps client certificates to user names and lets the agent publish only
    // for register r1 (and its status): events of register r2 get "not authorized", and
    // so does the inventory message of register r3's sale (its row's second message).
    let acl = w.path("acl");
    std::fs::write(
        &acl,
        "user test-ca-agent\ntopic readwrite posedge/v1/t1/s1/r1/#\ntopic readwrite posedge/v1/t1/s1/_agent/#\n\
         topic readwrite posedge/v1/t1/s1/r3/transaction\n\
         user test-ca-cloud\ntopic read posedge/#\n",
    )
    .unwrap();
    let _broker = Mosquitto::start_with(
        w.dir.path(),
        w.broker_port,
        (&w.pki.ca, &w.pki.server.0, &w.pki.server.1),
        &format!(
            "use_identity_as_username true\nacl_file {}\n",
            acl.display()
        ),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let sub = w.subscriber(MqttVersion::V5);
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "", "");
    let _agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    let mut s = TcpStream::connect(lan(lan_port)).unwrap();
    let mut rd = BufReader::new(s.try_clone().unwrap());
    for (i, reg) in ["r1", "r2", "r1"].iter().enumerate() {
        s.write_all(
            format!(
                "{{\"event_type\":\"no_sale\",\"register_id\":\"{reg}\",\"pos_sequence\":{i}}}\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let mut line = String::new();
        rd.read_line(&mut line).unwrap();
        assert!(line.contains("\"ack\""), "{line}");
    }
    let sale = std::fs::read_to_string("tests/data/edge_cases/split_tender.ndjson").unwrap();
    let mut sale: serde_json::Value = serde_json::from_str(sale.lines().next().unwrap()).unwrap();
    sale["register_id"] = "r3".into();
    s.write_all(format!("{sale}\n").as_bytes()).unwrap();
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    assert!(line.contains("\"ack\""), "{line}");
    eventually(
        Duration::from_secs(15),
        "refused event dead-lettered, others delivered",
        || {
            let st = status(&cfg);
            st["outbox"]["pending"] == 0 && st["outbox"]["dead_letters"] == 2
        },
    );
    let seen = sub.seen();
    assert_eq!((seen.unique(), seen.derived), (3, 0), "{seen:?}");
    let log = std::fs::read_to_string(w.path("agent.log")).unwrap();
    assert!(log.contains("broker refused an event"), "{log}");
    assert!(log.contains("NotAuthorized"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("broker refused") && l.contains("Derived")),
        "{log}"
    );
}
