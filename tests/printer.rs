//! The printer tap in the agent binary: byte-exact relay to a real TCP "printer" for
//! every fixture capture, status bytes back to the register, receipts recorded — also
//! while the uplink is down and the outbox is full.

mod common;

use common::*;
use posedge::config::MqttVersion;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

/// A printer on loopback: records each connection's bytes and answers every DLE EOT n
/// (0x10 0x04 n) with the status byte 0x12 ("online, no error").
fn fake_printer() -> (u16, mpsc::Receiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut s = s;
                let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    let before = got.len().saturating_sub(2);
                    got.extend_from_slice(&buf[..n]);
                    let asks = got[before..]
                        .windows(3)
                        .filter(|w| w[0] == 0x10 && w[1] == 0x04 && (1..=4).contains(&w[2]))
                        .count();
                    if asks > 0 && s.write_all(&vec![0x12; asks]).is_err() {
                        break;
                    }
                }
                let _ = tx.send(got);
            });
        }
    });
    (port, rx)
}

/// Prints `job` through the tap, asks for status once, and returns the status bytes.
fn print(tap: u16, job: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(lan(tap)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for chunk in job.chunks(1000) {
        s.write_all(chunk).unwrap();
    }
    s.write_all(&[0x10, 0x04, 0x01]).unwrap();
    let mut status = [0u8; 1];
    s.read_exact(&mut status).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    status.to_vec()
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    shared_fixtures("escpos")
}

fn relay_every_fixture(tap: u16, printer: &mpsc::Receiver<Vec<u8>>) {
    for (name, job) in fixtures() {
        let mut sent = job.clone();
        sent.extend_from_slice(&[0x10, 0x04, 0x01]);
        assert_eq!(print(tap, &job), [0x12], "{name}: status byte comes back");
        // Connections that carried nothing (the test's own port probe) are not jobs.
        let got = std::iter::from_fn(|| printer.recv_timeout(Duration::from_secs(10)).ok())
            .find(|g| !g.is_empty())
            .unwrap();
        assert_eq!(
            Sha256::digest(&got),
            Sha256::digest(&sent),
            "{name}: the printer got {} bytes, the register sent {}",
            got.len(),
            sent.len()
        );
    }
}

fn printer_source(tap: u16, printer: u16) -> String {
    format!(
        "[[source]]\nname = \"printer1\"\nkind = \"printer\"\nlisten = \"127.0.0.1:{tap}\"\n\
         printer = \"127.0.0.1:{printer}\"\nregister_id = \"reg-1\"\n"
    )
}

#[test]
fn relay_is_byte_exact_and_receipts_reach_the_cloud() {
    let mut w = World::new();
    w.start_broker();
    let (printer_port, printer) = fake_printer();
    let (lan_port, tap) = (free_port(), free_port());
    let cfg = w.agent_config_with(lan_port, "", "", &printer_source(tap, printer_port));
    let _agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    wait_port(tap, true, Duration::from_secs(10));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let sub = w.subscriber(MqttVersion::V5);

    relay_every_fixture(tap, &printer);
    if fixtures().is_empty() {
        return;
    }
    eventually(
        Duration::from_secs(30),
        "the logo receipt as an event",
        || {
            sub.seen().payloads.iter().any(|p| {
                let text = String::from_utf8_lossy(p);
                text.contains("\"event_type\":\"receipt\"") && text.contains("ExampleMart Ltd.")
            })
        },
    );
    let st = status(&cfg);
    let src = st["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "printer1")
        .cloned()
        .unwrap();
    // 31 captures hold a receipt (demo.bin holds 14); tsp-143_drawer is a Star command.
    assert!(src["received"].as_u64().unwrap() >= 40, "{src}");
    assert_eq!(src["dead_letters"], 0, "{src}");
}

#[test]
fn printing_never_waits_for_a_down_uplink_or_a_full_outbox() {
    let w = World::new();
    // No broker at all, and a free-disk floor no disk meets: the outbox refuses everything.
    let (printer_port, printer) = fake_printer();
    let (lan_port, tap) = (free_port(), free_port());
    let cfg = w.agent_config_with(lan_port, "", "", &printer_source(tap, printer_port));
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("min_free_disk = 0", "min_free_disk = \"999999GiB\""),
    )
    .unwrap();
    let _agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    wait_port(tap, true, Duration::from_secs(10));
    for _ in 0..3 {
        relay_every_fixture(tap, &printer);
    }
    if fixtures().is_empty() {
        return;
    }
    let st = status(&cfg);
    assert!(
        st["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "outbox_full"),
        "the outbox is full, yet every job printed byte-exact: {st}"
    );
}

#[test]
fn a_register_sees_an_unreachable_printer_as_offline() {
    let w = World::new();
    let dead_printer = free_port();
    let (lan_port, tap) = (free_port(), free_port());
    let cfg = w.agent_config_with(lan_port, "", "", &printer_source(tap, dead_printer));
    let agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    wait_port(tap, true, Duration::from_secs(10));
    let mut s = TcpStream::connect(lan(tap)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 8];
    // Closed at once, as a powered-off printer's port would refuse.
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    let log = || std::fs::read_to_string(&agent.log).unwrap_or_default();
    eventually(
        Duration::from_secs(5),
        "the unreachable printer logged",
        || log().contains("unreachable"),
    );
}
