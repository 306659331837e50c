//! The LAN source under bad input and a full disk budget: real sockets, the agent binary,
//! a real SQLite file.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

struct Register {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Register {
    fn connect(port: u16) -> Register {
        let stream = TcpStream::connect(lan(port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Register { stream, reader }
    }
    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }
    fn answer(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("answer {line:?}: {e}"))
    }
}

fn event(seq: u64) -> String {
    format!(
        "{{\"event_type\":\"no_sale\",\"register_id\":\"r1\",\"pos_sequence\":{seq},\"business_day\":\"2026-11-27\"}}\n"
    )
}

#[test]
fn bad_input_is_nacked_dead_lettered_and_never_stalls_others() {
    let w = World::new();
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "", "");
    let agent = Agent::start(&cfg, lan_port, w.path("agent.log"));

    // A silent client and a half-written line sit on the source the whole time.
    let _silent = TcpStream::connect(lan(lan_port)).unwrap();
    let mut vanishing = TcpStream::connect(lan(lan_port)).unwrap();
    vanishing
        .write_all(b"{\"event_type\":\"no_sale\",\"regi")
        .unwrap();

    let mut r = Register::connect(lan_port);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json\n".to_vec(), "invalid JSON"),
        (
            b"{\"event_type\":\"transaction\",\"register_id\":42}\n".to_vec(),
            "register_id must be a string",
        ),
        (
            b"{\"event_type\":\"transaction\",\"body\":[1]}\n".to_vec(),
            "body must be an object",
        ),
        (b"\x00\x01\xfe\xff garbage \x1b[0m\n".to_vec(), "not UTF-8"),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        r.send(line);
        let a = r.answer();
        assert_eq!(a["nack"], i as u64 + 1, "{a}");
        assert!(a["reason"].as_str().unwrap().contains(want), "{a}");
    }
    // 10 MB in one line: refused while reading, memory stays bounded.
    let rss_before = agent.rss_kib();
    let mut big = vec![b'7'; 10 << 20];
    big.push(b'\n');
    r.send(&big);
    let a = r.answer();
    assert_eq!(a["nack"], 5, "{a}");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("exceeds max_line_bytes"),
        "{a}"
    );
    let rss_after = agent.rss_kib();
    assert!(
        rss_after < rss_before + 8 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    // The same connection and another one keep working.
    r.send(event(1).as_bytes());
    let a = r.answer();
    assert_eq!(a["ack"], 6, "{a}");
    assert_eq!(a["seq"], 1);
    let mut other = Register::connect(lan_port);
    other.send(event(2).as_bytes());
    assert_eq!(other.answer()["ack"], 1);
    // Re-sending an unacked line is acked again with the original ids, not stored twice.
    r.send(event(1).as_bytes());
    let again = r.answer();
    assert_eq!(again["ack"], 7);
    assert_eq!(again["event_id"], a["event_id"]);
    assert_eq!(again["seq"], 1);

    drop(vanishing);
    eventually(
        Duration::from_secs(5),
        "the torn line in the dead letters",
        || status(&cfg)["outbox"]["dead_letters"] == 6,
    );
    let st = status(&cfg);
    assert_eq!(st["outbox"]["pending"], 2, "{st}");
    assert_eq!(st["sources"][0]["nacked"], 6, "{st}");
    // Operators read the reasons back, newest first, and the queue per register.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_posedge"))
        .args(["queue", "dead-letters", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let dead: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reasons: Vec<&str> = dead
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 6, "{dead}");
    assert!(reasons[0].contains("without a newline"), "{reasons:?}");
    assert!(reasons[5].contains("invalid JSON"), "{reasons:?}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_posedge"))
        .args(["queue", "list", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("r1 ") && l.contains(" 2 ")),
        "{table}"
    );
    // The silent client is closed by the idle timeout (5 s in this config).
    let mut silent = TcpStream::connect(lan(lan_port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        silent.read(&mut buf).unwrap_or(0),
        0,
        "idle connection must be closed"
    );
}

#[test]
fn outbox_bound_withholds_acks_and_recovers_when_drained() {
    let mut w = World::new();
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "max_bytes = \"1MiB\"", "");
    let _agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    let mut r = Register::connect(lan_port);
    r.stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    // ~1.2 KiB per event: the bound is reached after ~850 events.
    let pad = "x".repeat(1000);
    let mut acked = 0u64;
    let mut sent = 0u64;
    let withheld = loop {
        sent += 1;
        let line = format!(
            "{{\"event_type\":\"no_sale\",\"register_id\":\"r1\",\"pos_sequence\":{sent},\"ext\":{{\"pad\":\"{pad}\"}}}}\n"
        );
        r.send(line.as_bytes());
        let mut text = String::new();
        match r.reader.read_line(&mut text) {
            Ok(n) if n > 0 => acked += 1,
            _ => break sent,
        }
        assert!(sent < 5000, "the bound never engaged");
    };
    assert!(acked >= 700, "acked {acked} before the bound");
    let st = status(&cfg);
    let alarms = st["alarms"].as_array().unwrap();
    assert!(alarms.iter().any(|a| a["name"] == "outbox_full"), "{st}");
    // The uplink comes back and drains; the withheld line is acked and service resumes.
    w.start_broker();
    r.stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let a = r.answer();
    assert_eq!(a["ack"], withheld, "{a}");
    r.send(event(100_000).as_bytes());
    assert_eq!(r.answer()["ack"], withheld + 1);
    eventually(
        Duration::from_secs(30),
        "alarm cleared and queue drained",
        || {
            let st = status(&cfg);
            st["alarms"].as_array().is_some_and(|a| a.is_empty()) && st["outbox"]["pending"] == 0
        },
    );
}

#[test]
fn a_register_that_never_reads_its_acks_stalls_only_itself() {
    let w = World::new();
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "", "");
    let _agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    let mut greedy = TcpStream::connect(lan(lan_port)).unwrap();
    greedy
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    // A small receive buffer, as on a register's embedded TCP stack, so unread acks
    // fill it quickly.
    rustix::net::sockopt::set_socket_recv_buffer_size(&greedy, 4096).unwrap();
    // Pipelines far more than the ack window and never reads. Its unread acks fill the
    // kernel buffers (a few MB on loopback), then the agent stops reading from it and its
    // writes block until the write timeout.
    const LINES: u64 = 200_000;
    let writer = std::thread::spawn(move || {
        let mut sent = 0u64;
        for seq in 1..=LINES {
            let line = format!(
                "{{\"event_type\":\"no_sale\",\"register_id\":\"greedy\",\"pos_sequence\":{seq},\"ext\":{{\"pad\":\"{}\"}}}}\n",
                "p".repeat(200)
            );
            if greedy.write_all(line.as_bytes()).is_err() {
                break;
            }
            sent += 1;
        }
        (sent, greedy)
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut other = Register::connect(lan_port);
    other
        .stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    for seq in 1..=5 {
        other.send(event(seq).as_bytes());
        assert_eq!(other.answer()["ack"], seq);
    }
    let (sent, _greedy) = writer.join().unwrap();
    assert!(sent < LINES, "the greedy register was never back-pressured");
}
