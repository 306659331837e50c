//! Logs under systemd: with JOURNAL_STREAM naming the agent's stderr, records go to the
//! journal socket with structured fields and priorities, and never carry card data. A
//! socket of our own stands in for journald at its fixed path; the test skips where a
//! real journald owns that path or the path cannot be created.

mod common;

use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

/// Fields of one record in journald's native protocol: `KEY=value\n`, or `KEY\n`, a
/// little-endian u64 length, the value and `\n` for values that may hold newlines.
fn fields(mut d: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Some(nl) = d.iter().position(|b| *b == b'\n') {
        let line = &d[..nl];
        if let Some(eq) = line.iter().position(|b| *b == b'=') {
            let (k, v) = (&line[..eq], &line[eq + 1..]);
            out.push((
                String::from_utf8_lossy(k).into(),
                String::from_utf8_lossy(v).into(),
            ));
            d = &d[nl + 1..];
        } else {
            let rest = &d[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let v = &rest[8..8 + len];
            out.push((
                String::from_utf8_lossy(line).into(),
                String::from_utf8_lossy(v).into(),
            ));
            d = &rest[8 + len + 1..];
        }
    }
    out
}

fn get<'a>(r: &'a [(String, String)], key: &str) -> Option<&'a str> {
    r.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn journal_records_carry_fields_priorities_and_no_card_data() {
    let dir = Path::new("/run/systemd/journal");
    let socket = dir.join("socket");
    if socket.exists() {
        let live = UnixDatagram::unbound().is_ok_and(|u| u.connect(&socket).is_ok());
        if live {
            println!("skipped: a journald owns {}", socket.display());
            return;
        }
        // Left by an earlier run of this test that stopped half-way.
        let _ = std::fs::remove_file(&socket);
    }
    if std::fs::create_dir_all(dir).is_err() {
        println!("skipped: cannot create {}", dir.display());
        return;
    }
    let journal = UnixDatagram::bind(&socket).unwrap();
    journal
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let w = World::new();
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "", "");
    let log = w.path("agent.log");
    std::fs::write(&log, "").unwrap();
    let meta = std::fs::metadata(&log).unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let _agent = Agent::start_with_env(&cfg, lan_port, log.clone(), &[("JOURNAL_STREAM", &stream)]);
    // A record the decoder refuses, with a card number in it.
    let mut reg = TcpStream::connect(lan(lan_port)).unwrap();
    reg.write_all(b"{\"event_type\":\"no_sale\" \"note\":\"4111111111111111\"}\n")
        .unwrap();

    let mut records: Vec<Vec<(String, String)>> = Vec::new();
    let mut raw = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 65536];
    let message = |r: &Vec<(String, String)>| get(r, "MESSAGE").unwrap_or("").to_string();
    while Instant::now() < end {
        if let Ok(n) = journal.recv(&mut buf) {
            raw.extend_from_slice(&buf[..n]);
            records.push(fields(&buf[..n]));
        }
        let has = |m: &str| records.iter().any(|r| message(r).contains(m));
        if has("record dead-lettered") && has("uplink down") {
            break;
        }
    }
    drop(journal);
    let _ = std::fs::remove_file(&socket);
    let dead = records
        .iter()
        .find(|r| message(r).contains("record dead-lettered"))
        .unwrap_or_else(|| panic!("no dead-letter record in the journal: {records:?}"));
    // INFO is journald's "notice" (5), WARN "warning" (4).
    assert_eq!(get(dead, "SOURCE"), Some("lan1"), "{dead:?}");
    assert_eq!(get(dead, "PRIORITY"), Some("5"), "{dead:?}");
    assert_eq!(get(dead, "SYSLOG_IDENTIFIER"), Some("posedge"), "{dead:?}");
    assert!(
        get(dead, "REASON").is_some_and(|r| r.contains("invalid JSON")),
        "{dead:?}"
    );
    let outage = records
        .iter()
        .find(|r| message(r).contains("uplink down"))
        .unwrap_or_else(|| panic!("no outage warning: {records:?}"));
    assert_eq!(get(outage, "PRIORITY"), Some("4"), "{outage:?}");
    assert!(get(outage, "ERROR").is_some(), "{outage:?}");
    assert!(
        !String::from_utf8_lossy(&raw).contains("4111111111111111"),
        "card data in the journal"
    );
    // Nothing went to stderr: the journal took it all.
    assert!(std::fs::read_to_string(&log).unwrap().trim().is_empty());
}
