//! The dead-letter workflow through the whole agent: a record refused for a reason the
//! store can fix (here: a source without a register id) is replayed after the fix and
//! delivered; another is purged; both are in the audit trail with the operator.

mod common;

use common::*;
use posedge::config::MqttVersion;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn posedge(args: &[&str], cfg: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_posedge"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn json(args: &[&str], cfg: &Path) -> Vec<Value> {
    let (ok, text) = posedge(args, cfg);
    assert!(ok, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn send(port: u16, line: &str) -> String {
    let mut s = TcpStream::connect(lan(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(line.as_bytes()).unwrap();
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).unwrap();
    answer
}

#[test]
fn a_fixed_dead_letter_is_replayed_and_delivered_another_is_purged_both_audited() {
    let mut w = World::new();
    w.start_broker();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let sub = w.subscriber(MqttVersion::V5);
    let lan_port = free_port();
    let lane2 = free_port();
    let source =
        format!("[[source]]\nname = \"lan2\"\nkind = \"tcp\"\nlisten = \"127.0.0.1:{lane2}\"\n");
    let cfg = w.agent_config_with(lan_port, "", "", &source);
    let agent = Agent::start(&cfg, lan_port, w.path("agent.log"));

    let nack = send(lane2, "{\"event_type\":\"no_sale\",\"pos_sequence\":7}\n");
    assert!(nack.contains("nack"), "{nack}");
    let garbage = send(lane2, "\u{1}\u{2} not a record\n");
    assert!(garbage.contains("nack"), "{garbage}");
    let letters = json(&["queue", "dead-letters", "--json"], &cfg);
    assert_eq!(letters.len(), 2, "{letters:?}");
    let by_reason = |needle: &str| {
        letters
            .iter()
            .find(|l| l["reason"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no letter for {needle}: {letters:?}"))["id"]
            .as_i64()
            .unwrap()
    };
    let fixable = by_reason("no register_id");
    let junk = letters
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .find(|id| *id != fixable)
        .unwrap();

    // Replaying before the fix changes nothing and says why.
    let (ok, out) = posedge(&["queue", "replay", "--id", &fixable.to_string()], &cfg);
    assert!(ok && out.contains("requested"), "{out}");
    eventually(Duration::from_secs(15), "failed replay audited", || {
        json(&["queue", "audit", "--json"], &cfg)
            .iter()
            .any(|a| a["action"] == "dead_letter_replayed" && a["outcome"] == "failure")
    });
    assert_eq!(json(&["queue", "dead-letters", "--json"], &cfg).len(), 2);

    // The fix: lane 2 gets its register id. Restart, replay, delivered.
    drop(agent);
    let fixed = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(&source, &format!("{source}register_id = \"reg-lane2\"\n"));
    std::fs::write(&cfg, fixed).unwrap();
    let _agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    let (ok, out) = posedge(&["queue", "replay", "--id", &fixable.to_string()], &cfg);
    assert!(ok, "{out}");
    eventually(Duration::from_secs(20), "replayed event delivered", || {
        sub.seen().payloads.iter().any(|p| {
            serde_json::from_slice::<Value>(p)
                .is_ok_and(|v| v["register_id"] == "reg-lane2" && v["pos_sequence"] == 7)
        })
    });
    let left = json(&["queue", "dead-letters", "--json"], &cfg);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["id"], junk);

    let (ok, out) = posedge(&["queue", "purge", "--id", &junk.to_string()], &cfg);
    assert!(!ok, "purge needs --yes: {out}");
    let (ok, out) = posedge(
        &["queue", "purge", "--id", &junk.to_string(), "--yes"],
        &cfg,
    );
    assert!(ok && out.contains("1 dead letter(s) deleted"), "{out}");
    assert!(json(&["queue", "dead-letters", "--json"], &cfg).is_empty());

    let audit = json(&["queue", "audit", "--json"], &cfg);
    let replayed: Vec<&Value> = audit
        .iter()
        .filter(|a| a["action"] == "dead_letter_replayed")
        .collect();
    assert_eq!(replayed.len(), 2, "{audit:?}");
    assert_eq!(replayed[0]["outcome"], "failure");
    assert_eq!(replayed[1]["outcome"], "success");
    assert!(replayed.iter().all(|a| a["actor"] == "operator"));
    assert!(
        replayed[1]["detail"]
            .as_str()
            .unwrap()
            .contains("1 event(s) stored"),
        "{audit:?}"
    );
    let purged = audit
        .iter()
        .find(|a| a["action"] == "dead_letters_purged")
        .unwrap_or_else(|| panic!("{audit:?}"));
    assert_eq!(purged["actor"], "operator");
    assert!(
        purged["detail"].as_str().unwrap().contains("uid"),
        "{purged}"
    );
}
