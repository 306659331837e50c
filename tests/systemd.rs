//! The agent under a (fake) systemd: a datagram socket as NOTIFY_SOCKET receives READY
//! with STATUS, and WATCHDOG pings that stop while the outbox writer is wedged.

mod common;

use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Every notification received within `d`, with its arrival time.
fn collect(sock: &UnixDatagram, d: Duration) -> Vec<(Instant, String)> {
    let end = Instant::now() + d;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        sock.set_read_timeout(Some(
            end.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ))
        .unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            out.push((
                Instant::now(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            ));
        }
    }
    out
}

fn pings(msgs: &[(Instant, String)]) -> Vec<Instant> {
    msgs.iter()
        .filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn ready_status_and_a_watchdog_that_stops_when_the_writer_is_wedged() {
    let w = World::new();
    let notify = w.path("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "", "");
    let _agent = Agent::start_with_env(
        &cfg,
        lan_port,
        w.path("agent.log"),
        &[
            ("NOTIFY_SOCKET", notify.to_str().unwrap()),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    let first = collect(&sock, Duration::from_secs(3));
    let ready = first
        .iter()
        .find(|(_, m)| m.starts_with("READY=1"))
        .unwrap_or_else(|| panic!("no READY in {first:?}"));
    assert!(
        ready.1.contains("STATUS=0 event(s) queued; uplink down"),
        "{}",
        ready.1
    );
    assert!(pings(&first).len() >= 3, "pings every 0.5 s: {first:?}");

    // Another writer holds SQLite's write lock: the agent's commit waits (up to its 5 s
    // busy timeout), the writer stops beating, and the pings stop.
    let lock = rusqlite::Connection::open(w.path("outbox.db")).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut reg = TcpStream::connect(lan(lan_port)).unwrap();
    reg.write_all(b"{\"event_type\":\"no_sale\",\"pos_sequence\":1}\n")
        .unwrap();
    let (from, window) = (Instant::now(), Duration::from_secs(5));
    let wedged = collect(&sock, window);
    // Stalls are judged after 3 s without a beat; the commit waits 5 s.
    let mut edges = vec![from];
    edges.extend(pings(&wedged));
    edges.push(from + window);
    let longest_gap = edges
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(
        longest_gap >= Duration::from_millis(1500),
        "pings went on while the writer was stuck: {wedged:?}"
    );
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);

    // The stuck commit failed, so the register got no ack and sends the line again.
    let mut reg = TcpStream::connect(lan(lan_port)).unwrap();
    reg.write_all(b"{\"event_type\":\"no_sale\",\"pos_sequence\":1}\n")
        .unwrap();
    // Unwedged, the pings resume and STATUS counts the queued event.
    let after = collect(&sock, Duration::from_secs(12));
    assert!(pings(&after).len() >= 3, "{after:?}");
    assert!(
        after
            .iter()
            .any(|(_, m)| m.contains("STATUS=1 event(s) queued")),
        "{after:?}"
    );
}
