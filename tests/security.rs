//! TLS and PCI: wrong CA refused and logged, mTLS enforced by Mosquitto, and card numbers
//! never reaching disk, logs or the wire.

mod common;

use common::*;
use posedge::config::MqttVersion;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn wrong_ca_is_refused_with_a_clear_log_and_events_stay_queued() {
    let mut w = World::new();
    w.start_broker();
    let other = tempfile::tempdir().unwrap();
    let foreign = posedge::demo::certs::generate(other.path(), "foreign-ca", &[]).unwrap();
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "", "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("ca = \"{}\"", w.pki.ca.display()),
        &format!("ca = \"{}\"", foreign.ca.display()),
    );
    std::fs::write(&cfg, text).unwrap();
    let log = w.path("agent.log");
    let _agent = Agent::start(&cfg, lan_port, log.clone());
    let mut s = TcpStream::connect(lan(lan_port)).unwrap();
    s.write_all(b"{\"event_type\":\"no_sale\",\"register_id\":\"r1\",\"pos_sequence\":1}\n")
        .unwrap();
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).unwrap();
    assert!(line.contains("\"ack\":1"), "{line}");
    eventually(
        Duration::from_secs(10),
        "a log line naming the certificate problem",
        || {
            let l = std::fs::read_to_string(&log).unwrap_or_default();
            l.contains("uplink down") && (l.contains("UnknownIssuer") || l.contains("certificate"))
        },
    );
    std::thread::sleep(Duration::from_secs(1));
    let st = status(&cfg);
    assert_eq!(st["uplink"]["connected"], false, "{st}");
    assert_eq!(st["outbox"]["pending"], 1, "{st}");
}

#[test]
fn mosquitto_requiring_client_certs_rejects_a_client_without_one() {
    let mut w = World::new();
    w.start_broker();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let opts = posedge::uplink::session::SessionOptions {
        version: MqttVersion::V5,
        host: "localhost".into(),
        port: w.broker_port,
        client_id: "no-cert".into(),
        keep_alive: Duration::from_secs(5),
        tls: Some(posedge::uplink::tls::client_config(&w.pki.ca, None).unwrap()),
        will: ("x/status".into(), b"offline".to_vec()),
        max_inflight: 10,
    };
    let mut s = posedge::uplink::session::Session::start(&opts);
    let r = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), s.next()).await });
    match r {
        Ok(Err(e)) => assert!(!e.is_empty()),
        other => panic!("a client without a certificate must be refused, got {other:?}"),
    }
    // The agent, with its certificate, is accepted: its status shows the link up.
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "", "");
    let _agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    eventually(Duration::from_secs(10), "agent connected", || {
        status(&cfg)["uplink"]["connected"] == true
    });
}

/// The PAN in groups of four, as printed on a card.
fn spaced(pan: &str) -> String {
    let digits: Vec<char> = pan.chars().collect();
    digits
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Luhn-valid test PANs of several brands, a 12-digit Maestro among them.
const PANS: &[&str] = &[
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "501800000009",
];

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02x}")).collect()
}

fn to_base64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// What a reader could make of stored bytes: the digits alone (a PAN split across
/// fields, or printed between ESC/POS commands, joins up again), and the same after
/// decoding XML character references.
fn digit_views(hay: &[u8]) -> [Vec<u8>; 2] {
    let digits = |b: &[u8]| -> Vec<u8> { b.iter().copied().filter(u8::is_ascii_digit).collect() };
    let text = String::from_utf8_lossy(hay);
    let mut decoded = String::new();
    let mut rest = text.as_ref();
    while let Some(at) = rest.find("&#") {
        decoded.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        match tail
            .find(';')
            .and_then(|e| Some((e, tail[..e].parse::<u32>().ok()?)))
        {
            Some((e, code)) => {
                decoded.extend(char::from_u32(code));
                rest = &tail[e + 1..];
            }
            None => {
                decoded.push_str("&#");
                rest = tail;
            }
        }
    }
    decoded.push_str(rest);
    [digits(hay), digits(decoded.as_bytes())]
}

#[test]
fn card_numbers_never_reach_sqlite_logs_or_mqtt() {
    let mut w = World::new();
    w.start_broker();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let sub = w.subscriber(MqttVersion::V5);
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "", "");
    let log = w.path("agent.log");
    let agent = Agent::start(&cfg, lan_port, log.clone());
    let mut s = TcpStream::connect(lan(lan_port)).unwrap();
    let mut rd = BufReader::new(s.try_clone().unwrap());
    let mut n = 0;
    let mut blobs: Vec<(usize, String)> = Vec::new();
    for (i, pan) in PANS.iter().enumerate() {
        let spaced = spaced(pan);
        let (head, tail) = pan.split_at(8);
        let groups: Vec<String> = spaced.split(' ').map(String::from).collect();
        let b64 = to_base64(format!("{{\"pan\":\"{pan}\",\"exp\":\"2512\"}}").as_bytes());
        let hex = to_hex(format!("PAN={pan};").as_bytes());
        blobs.push((i, b64.clone()));
        blobs.push((i, hex.clone()));
        // The PAN in every string field, spaced and plain, split across members and
        // array elements, inside base64 and hex blobs; plus broken lines holding one
        // (dead letters): plain, as a POSLog attribute, as XML character references,
        // and printed in bold (ESC E 1 / ESC E 0 between its digits).
        let ev = serde_json::json!({
            "event_type": "transaction", "register_id": "r1", "pos_sequence": i + 1,
            // occurred_at and business_day must be a time and a date (a PAN there gets
            // the whole record refused, redacted in the dead letters, also scanned).
            "operator_id": pan, "business_day": "2026-11-27", "occurred_at": "2026-11-27T10:00:00Z",
            "body": {"lines": [{"kind": "item", "description": format!("gift {pan}"), "sku": pan},
                               {"kind": "tender", "type": "credit", "card": {"pan": spaced, "cvv": "123"}}],
                     "note": format!("card={pan};exp=2512")},
            "ext": {"track2": format!(";{pan}=25121010000000000000?"), (pan.to_string()): "as a key",
                    "when": spaced, "pan_part1": head, "pan_part2": tail, "groups": groups,
                    "emv": b64, "raw": hex}
        });
        let entities: String = pan.bytes().map(|c| format!("&#{c};")).collect();
        let (bold, rest) = pan.split_at(4);
        let broken: [Vec<u8>; 4] = [
            format!("{{broken {pan}").into_bytes(),
            format!("<Tender><Card Number=\"{pan}\" Type=\"x\"/></Tender>").into_bytes(),
            format!("<Card Number=\"{entities}\"/>").into_bytes(),
            [
                &b"CARD \x1bE\x01"[..],
                bold.as_bytes(),
                b"\x1bE\x00",
                rest.as_bytes(),
            ]
            .concat(),
        ];
        let mut record = format!("{ev}\n").into_bytes();
        for b in &broken {
            record.extend_from_slice(b);
            record.push(b'\n');
        }
        s.write_all(&record).unwrap();
        for k in 0..=broken.len() {
            let mut line = String::new();
            rd.read_line(&mut line).unwrap();
            n += 1;
            assert!(line.contains("ack"), "{line}");
            if k == 0 {
                assert!(line.starts_with("{\"ack\""), "the event is stored: {line}");
            }
        }
    }
    assert_eq!(n, PANS.len() * 5);
    eventually(Duration::from_secs(20), "events delivered", || {
        sub.seen().unique() == PANS.len()
    });
    let st = status(&cfg);
    assert!(st["sources"][0]["redacted"].as_u64().unwrap() >= 8, "{st}");
    drop(agent);
    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    for f in ["outbox.db", "outbox.db-wal", "agent.log"] {
        if let Ok(b) = std::fs::read(w.path(f)) {
            haystacks.push((f.into(), b));
        }
    }
    // What an operator can read: the dead letters and the audit trail.
    for what in [["queue", "dead-letters"], ["queue", "audit"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_posedge"))
            .args(what)
            .args(["--json", "--limit", "1000", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(out.status.success());
        haystacks.push((what.join(" "), out.stdout));
    }
    // The subscriber's filter also takes `_agent/status` and `_agent/audit`.
    for (i, p) in sub.seen().payloads.into_iter().enumerate() {
        haystacks.push((format!("mqtt payload {i}"), p));
    }
    assert!(haystacks.len() > 6);
    let found = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for (i, pan) in PANS.iter().enumerate() {
        let spaced = spaced(pan);
        for (name, hay) in &haystacks {
            for needle in [pan.as_bytes(), spaced.as_bytes()] {
                assert!(!found(hay, needle), "PAN {pan} found in {name}");
            }
            for view in digit_views(hay) {
                assert!(
                    !found(&view, pan.as_bytes()),
                    "PAN {pan} found, interrupted, in {name}"
                );
            }
            for (_, blob) in blobs.iter().filter(|(j, _)| *j == i) {
                assert!(
                    !found(hay, blob.as_bytes()),
                    "a blob holding {pan} found in {name}"
                );
            }
        }
    }
}
