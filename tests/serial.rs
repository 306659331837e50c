//! Serial registers through real pseudo-terminals: the agent binary reads a pty the
//! simulated register drives, with stx_etx ACK/NAK, damaged frames and unplugs.

mod common;

use common::*;
use posedge::config::MqttVersion;
use posedge::sim::subscriber::Subscriber;
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A serial source on a pty link the simulator keeps current.
fn serial_source(name: &str, link: &Path, baud: u32, framing: &str, format: &str) -> String {
    format!(
        "[[source]]\nname = \"{name}\"\nkind = \"serial\"\ndevice = \"{}\"\nbaud = {baud}\n\
         framing = \"{framing}\"\nformat = \"{format}\"\ncurrency = \"EUR\"\nregister_id = \"reg-{name}\"\n\n",
        link.display()
    )
}

/// `posedge sim` on a pty behind `link`.
fn sim(link: &Path, register: &str, args: &[&str], ledger: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_posedge"))
        .args(["sim", "--pty", "--pty-link"])
        .arg(link)
        .args([
            "--register",
            register,
            "--store",
            "s1",
            "--answer-timeout-ms",
            "1000",
        ])
        .args(args)
        .arg("--ledger")
        .arg(ledger)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn report(child: Child) -> Value {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "sim failed");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap()
}

fn source<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no source {name} in {status}"))
}

/// One serial test at a time: each test's register replugs ptys, and pty numbers are
/// reused at once, so tests side by side would race for each other's freshly freed names.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial_test() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// A broker, and the agent with the given serial sources (beside its LAN source).
fn agent_with(w: &mut World, sources: &str) -> (std::path::PathBuf, Agent) {
    w.start_broker();
    let lan_port = free_port();
    let cfg = w.agent_config_with(lan_port, "", "", sources);
    let agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    (cfg, agent)
}

fn all_delivered(sub: &Subscriber, keys: &[String]) -> bool {
    let seen = sub.seen();
    keys.iter().all(|k| seen.by_key.contains_key(k))
}

#[test]
fn ten_thousand_frames_at_two_baud_rates_with_damaged_frames_nacked() {
    let _one = serial_test();
    let mut w = World::new();
    let (slow, fast) = (w.path("reg-slow"), w.path("reg-fast"));
    let sources = serial_source("slow", &slow, 9600, "lf", "ndjson")
        + &serial_source("fast", &fast, 115200, "stx_etx", "kv");
    let (cfg, _agent) = agent_with(&mut w, &sources);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let sub = w.subscriber(MqttVersion::V5);

    let (slow_ledger, fast_ledger) = (w.path("slow.ndjson"), w.path("fast.ndjson"));
    let a = sim(
        &slow,
        "reg-slow",
        &["--count", "10000", "--framing", "lf"],
        &slow_ledger,
    );
    let b = sim(
        &fast,
        "reg-fast",
        &[
            "--count",
            "10000",
            "--framing",
            "stx_etx",
            "--format",
            "kv",
            "--corrupt-every",
            "97",
        ],
        &fast_ledger,
    );
    let (a, b) = (report(a), report(b));
    assert_eq!(a["generated"], 10000);
    assert_eq!(b["acked"], 10000, "{b}");
    assert_eq!(
        b["nacked"], 0,
        "damaged frames are re-sent and then acked: {b}"
    );

    // lf has no acks: every line must still arrive, in order, exactly once.
    let expected: Vec<String> = std::fs::read_to_string(&slow_ledger)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["idempotency_key"].as_str().map(String::from))
        .collect();
    let acked = acked_keys(&fast_ledger);
    assert_eq!((expected.len(), acked.len()), (10000, 10000));
    let delivered = wait_for(Duration::from_secs(120), || {
        all_delivered(&sub, &expected) && all_delivered(&sub, &acked)
    });
    let seen = sub.seen();
    let missing = |keys: &[String]| {
        keys.iter()
            .filter(|k| !seen.by_key.contains_key(*k))
            .count()
    };
    assert!(
        delivered,
        "undelivered: {} of the lf lines, {} of the acked frames; status {}",
        missing(&expected),
        missing(&acked),
        status(&cfg)
    );
    let seen = sub.seen();
    assert_eq!(seen.duplicates(), 0);
    let keys: HashSet<&String> = expected.iter().chain(&acked).collect();
    assert_eq!(keys.len(), 20000);

    let st = status(&cfg);
    let fast_src = source(&st, "fast");
    let damaged = 10000 / 97;
    assert_eq!(fast_src["nacked"], damaged, "{fast_src}");
    assert_eq!(fast_src["dead_letters"], damaged, "{fast_src}");
}

#[test]
fn fifty_unplugs_lose_nothing_but_torn_frames_which_are_dead_lettered() {
    let _one = serial_test();
    let mut w = World::new();
    let link = w.path("reg-usb");
    let (cfg, _agent) = agent_with(
        &mut w,
        &serial_source("usb", &link, 115200, "stx_etx", "ndjson"),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let sub = w.subscriber(MqttVersion::V5);

    let ledger = w.path("usb.ndjson");
    let r = report(sim(
        &link,
        "reg-usb",
        &[
            "--count",
            "1000",
            "--framing",
            "stx_etx",
            "--unplug-every",
            "20",
        ],
        &ledger,
    ));
    assert_eq!(r["reconnects"], 50, "{r}");
    assert_eq!(r["acked"], 1000, "{r}");
    let acked = acked_keys(&ledger);
    eventually(
        Duration::from_secs(60),
        "every acked frame delivered",
        || all_delivered(&sub, &acked),
    );
    let st = status(&cfg);
    let src = source(&st, "usb");
    // The kernel drops what was unread at a hang-up; what arrived of a torn frame is
    // dead-lettered, never stored as an event, never lost silently.
    let torn = src["dead_letters"].as_u64().unwrap();
    assert!(torn <= 50, "{src}");
    let out = Command::new(env!("CARGO_BIN_EXE_posedge"))
        .args([
            "queue",
            "dead-letters",
            "--json",
            "--limit",
            "100",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    let letters: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(letters.len() as u64, torn);
    assert!(
        letters.iter().all(|l| l["reason"]
            .as_str()
            .unwrap_or("")
            .contains("torn by a disconnect")),
        "{letters:?}"
    );
    assert_eq!(sub.seen().unique(), 1000);
}

#[test]
fn a_raw_serial_print_stream_becomes_receipts_split_at_the_cut() {
    let _one = serial_test();
    let mut w = World::new();
    let link = w.path("printer-port");
    let (cfg, _agent) = agent_with(
        &mut w,
        &serial_source("receipts", &link, 38400, "raw", "escpos"),
    );
    let r = report(sim(
        &link,
        "reg-r",
        &["--count", "40", "--framing", "raw", "--format", "escpos"],
        &w.path("receipts.ndjson"),
    ));
    assert_eq!(r["generated"], 40, "{r}");
    eventually(Duration::from_secs(20), "every receipt recorded", || {
        source(&status(&cfg), "receipts")["received"] == 40
    });
    assert_eq!(source(&status(&cfg), "receipts")["dead_letters"], 0);
}
