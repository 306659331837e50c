//! The cloud side against real parts: PostgreSQL (a temp cluster started here), Mosquitto
//! with TLS and client certificates, agents and simulated registers as processes, and
//! `posedge cloud-sink` / `cloud-report` as the operator runs them.

mod common;

use common::{World, eventually, free_port, wait_for};
use posedge::cloud::pg::TempPostgres;
use posedge::sim::generate::{Generator, Profile};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_posedge");

/// Broker, PKI and database of one test.
struct Cloud {
    world: World,
    pg: TempPostgres,
}

impl Cloud {
    fn new() -> Cloud {
        let mut world = World::new();
        world.start_broker();
        let pg = TempPostgres::start(&world.path("pg"), free_port()).unwrap();
        Cloud { world, pg }
    }

    fn url(&self) -> String {
        self.pg.url("postgres")
    }

    /// A cloud-sink config; `sink_extra` and `gaps` are the bodies of those tables.
    fn sink_config(&self, name: &str, sink_extra: &str, gaps: &str) -> PathBuf {
        let (cert, key) = self.world.pki.client("cloud").unwrap();
        let path = self.world.path(&format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "[database]\nurl = \"{url}\"\n\n[broker]\nurl = \"mqtts://localhost:{port}\"\nca = \"{ca}\"\n\
                 cert = \"{cert}\"\nkey = \"{key}\"\nclient_id = \"{name}\"\nbackoff_floor_ms = 50\nbackoff_cap_ms = 500\n\n\
                 [sink]\ngroup = \"cloud\"\n{sink_extra}\n\n[gaps]\n{gaps}\n",
                url = self.url(),
                port = self.world.broker_port,
                ca = self.world.pki.ca.display(),
                cert = cert.display(),
                key = key.display(),
            ),
        )
        .unwrap();
        path
    }

    /// One row per line, columns split on `|`.
    fn sql(&self, query: &str) -> Vec<Vec<String>> {
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url())
            .args(["-c", query])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('|').map(String::from).collect())
            .collect()
    }

    fn count(&self, query: &str) -> i64 {
        self.sql(query)
            .first()
            .and_then(|r| r.first())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    }

    /// `cloud-report --json` for a day: (clean, report).
    fn report(&self, config: &Path, day: &str) -> (bool, Value) {
        let out = Command::new(BIN)
            .args(["cloud-report", "--json", "--day", day, "--config"])
            .arg(config)
            .output()
            .unwrap();
        let code = out.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "cloud-report failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            code == Some(0),
            serde_json::from_slice(&out.stdout).unwrap(),
        )
    }
}

/// `posedge cloud-sink` as a child process; SIGKILLed on drop.
struct Sink(Child);

impl Sink {
    /// Starts a sink and waits for the broker to acknowledge its three subscriptions:
    /// a shared subscription keeps nothing for a group before it exists.
    fn start(config: &Path, log: PathBuf) -> Sink {
        let subscribed = |log: &Path| {
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .matches("cloud-sink subscribed")
                .count()
        };
        let before = subscribed(&log);
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(BIN)
            .args(["cloud-sink", "--config"])
            .arg(config)
            .env("RUST_LOG", "posedge=debug")
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        let sink = Sink(child);
        eventually(Duration::from_secs(30), "cloud-sink subscribed", || {
            subscribed(&log) >= before + 3
        });
        sink
    }

    fn kill9(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One store: an agent with two LAN registers (`reg-1` on lane `lan1`, `reg-2` on `lan2`).
struct Store {
    id: String,
    ports: [u16; 2],
    _agent: common::Agent,
}

impl Store {
    fn start(cloud: &Cloud, id: &str) -> Store {
        let dir = cloud.world.path(id);
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = cloud.world.pki.client("agent").unwrap();
        let ports = [free_port(), free_port()];
        let config = dir.join("posedge.toml");
        std::fs::write(
            &config,
            format!(
                "tenant = \"t1\"\nstore_id = \"{id}\"\n\n[outbox]\npath = \"{db}\"\nmin_free_disk = 0\n\n\
                 [uplink]\nurl = \"mqtts://localhost:{port}\"\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n\
                 client_id = \"agent-{id}\"\nbackoff_floor_ms = 50\nbackoff_cap_ms = 500\nkeep_alive_s = 5\n\n\
                 [[source]]\nname = \"lan1\"\nkind = \"tcp\"\nlisten = \"127.0.0.1:{p1}\"\nregister_id = \"reg-1\"\n\n\
                 [[source]]\nname = \"lan2\"\nkind = \"tcp\"\nlisten = \"127.0.0.1:{p2}\"\nregister_id = \"reg-2\"\n",
                db = dir.join("outbox.db").display(),
                port = cloud.world.broker_port,
                ca = cloud.world.pki.ca.display(),
                cert = cert.display(),
                key = key.display(),
                p1 = ports[0],
                p2 = ports[1],
            ),
        )
        .unwrap();
        let agent = common::Agent::start(&config, ports[0], dir.join("agent.log"));
        common::wait_port(ports[1], true, Duration::from_secs(10));
        Store {
            id: id.to_string(),
            ports,
            _agent: agent,
        }
    }

    /// Starts both registers' day (`count` events each, the last a till close).
    fn trade(&self, day: &str, count: u64, seed: u64) -> Vec<Child> {
        (0..2)
            .map(|i| {
                Command::new(BIN)
                    .args(["sim", "--tcp", &format!("127.0.0.1:{}", self.ports[i])])
                    .args([
                        "--register",
                        &format!("reg-{}", i + 1),
                        "--business-day",
                        day,
                    ])
                    .args(["--count", &count.to_string(), "--seed", &seed.to_string()])
                    .args(["--store", &self.id, "--close-day", "--window", "32"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect()
    }
}

/// Waits for simulated registers; returns the events they had acked.
fn acked(sims: Vec<Child>) -> u64 {
    sims.into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "sim failed");
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            report["acked"].as_u64().unwrap()
        })
        .sum()
}

fn day(n: u32) -> String {
    // Days ahead of the machine's clock: no cut-off closes them, only the registers.
    format!("2030-01-{:02}", n + 1)
}

/// Waits until the report for `day` is clean and covers `stores` stores; panics with it
/// otherwise.
fn clean_report(cloud: &Cloud, config: &Path, day: &str, stores: usize, within: Duration) -> Value {
    let mut last = Value::Null;
    let clean = wait_for(within, || {
        let (clean, report) = cloud.report(config, day);
        let covered = report["stores"].as_array().map_or(0, Vec::len) == stores;
        last = report;
        clean && covered
    });
    assert!(clean, "report for {day} not clean: {last:#}");
    last
}

/// Every event once: as many rows as acked, no idempotency key twice.
fn assert_each_once(cloud: &Cloud, expected: u64) {
    let n = cloud.count("SELECT count(*) FROM events");
    assert_eq!(n, expected as i64, "events in PostgreSQL");
    let keys = cloud.count("SELECT count(DISTINCT idempotency_key) FROM events");
    assert_eq!(keys, n, "an idempotency key stored twice");
}

#[test]
fn three_stores_ten_days_land_once_and_reconcile_to_the_cent() {
    let cloud = Cloud::new();
    let config = cloud.sink_config("sink-a", "", "grace_s = 30");
    let _sink = Sink::start(&config, cloud.world.path("sink-a.log"));
    let stores: Vec<Store> = ["s1", "s2", "s3"]
        .iter()
        .map(|id| Store::start(&cloud, id))
        .collect();
    let mut total = 0;
    for d in 0..10 {
        let sims: Vec<Child> = stores
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.trade(&day(d), 24, u64::from(d) * 10 + i as u64))
            .collect();
        total += acked(sims);
    }
    assert_eq!(total, 3 * 2 * 10 * 24);
    eventually(Duration::from_secs(60), "every event in PostgreSQL", || {
        cloud.count("SELECT count(*) FROM events") >= total as i64
    });
    for d in 0..10 {
        let report = clean_report(&cloud, &config, &day(d), 3, Duration::from_secs(30));
        let per_store = report["stores"].as_array().unwrap();
        assert_eq!(per_store.len(), 3, "{report:#}");
        for s in per_store {
            assert_eq!(s["events_received"], 2 * 24, "{s:#}");
            assert_eq!(s["summary_closed"], "registers", "{s:#}");
        }
    }
    assert_each_once(&cloud, total);
    // The money, added up in SQL straight from the stored payloads (completed sales and
    // returns add, post-voids take back, training counts nowhere), against each latest
    // summary: to the cent, per store, day and currency.
    let db = cloud.sql(
        "SELECT store_id, business_day, payload->'body'->>'currency',
                sum(CASE WHEN payload->'body'->>'status' = 'completed' THEN 1
                         WHEN payload->'body'->>'status' = 'voided'
                          AND payload->'body'->'links' @> '[{\"reason\": \"post_void\"}]' THEN -1
                         ELSE 0 END * (payload->'body'->'totals'->>'grand')::bigint)
         FROM events
         WHERE event_type = 'transaction' AND NOT COALESCE((payload->'flags'->>'training')::boolean, false)
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    );
    let summaries = cloud.sql(
        "SELECT store_id, business_day, m.key, (m.value->>'grand')::bigint
         FROM latest_summaries, jsonb_each(payload->'store'->'money') AS m ORDER BY 1, 2, 3",
    );
    assert!(db.len() >= 30, "{db:?}");
    assert_eq!(db, summaries, "grand totals per store, day and currency");
}

#[test]
fn a_gap_is_detected_resynced_from_the_archive_and_the_report_is_clean() {
    let cloud = Cloud::new();
    // The broker forgets a dead sink's session after a second, so what the store
    // publishes while no sink runs is lost on the way: a real gap.
    let config = cloud.sink_config(
        "sink-gap",
        "session_expiry_s = 1",
        "grace_s = 1\nscan_every_s = 1\nretry_after_s = 5",
    );
    let sink = Sink::start(&config, cloud.world.path("sink-gap.log"));
    let store = Store::start(&cloud, "s1");
    let mut total = acked(store.trade(&day(0), 30, 1));
    eventually(Duration::from_secs(30), "day 1 stored", || {
        cloud.count("SELECT count(*) FROM events") == total as i64
    });
    sink.kill9();
    std::thread::sleep(Duration::from_secs(3));
    total += acked(store.trade(&day(1), 30, 2));
    // The store's outbox is empty again: the broker took them, nobody got them.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(cloud.count("SELECT count(*) FROM events"), 60);
    let _sink = Sink::start(&config, cloud.world.path("sink-gap.log"));
    total += acked(store.trade(&day(2), 30, 3));
    for d in 0..3 {
        clean_report(&cloud, &config, &day(d), 1, Duration::from_secs(60));
    }
    assert_each_once(&cloud, total);
    let asked = cloud.sql(
        "SELECT source, from_seq, to_seq, outcome, reply->>'requeued' FROM resync_requests ORDER BY 1, 2",
    );
    // Both lanes and their inventory lanes had a hole of day 2's events.
    let lanes: Vec<&str> = asked.iter().map(|r| r[0].as_str()).collect();
    assert!(
        lanes.contains(&"lan1") && lanes.contains(&"lan2"),
        "{asked:?}"
    );
    for r in &asked {
        assert_eq!(r[3], "ok", "{asked:?}");
        let span: u64 = r[2].parse::<u64>().unwrap() - r[1].parse::<u64>().unwrap() + 1;
        assert_eq!(r[4], span.to_string(), "requeued all of {r:?}");
    }
    // The scanner closes filled gaps on its next pass.
    eventually(Duration::from_secs(10), "every gap closed", || {
        cloud.count("SELECT count(*) FROM gaps WHERE state <> 'closed'") == 0
    });
    assert!(cloud.count("SELECT count(*) FROM gaps") >= 2);
    // Not asked in a loop: once per lane, or twice when the hole grew (the retained
    // summary named day 2's end before day 3's events showed the rest).
    let per_lane = cloud.sql("SELECT source, count(*) FROM resync_requests GROUP BY 1 ORDER BY 1");
    assert_eq!(per_lane.len(), 4, "{per_lane:?}");
    assert!(
        per_lane.iter().all(|r| r[1] == "1" || r[1] == "2"),
        "{per_lane:?}"
    );
}

#[test]
fn two_sinks_share_the_load_and_a_sigkill_loses_or_doubles_nothing() {
    let cloud = Cloud::new();
    let gaps = "grace_s = 10\nscan_every_s = 1\nretry_after_s = 10";
    let a_cfg = cloud.sink_config("sink-a", "batch_max = 50", gaps);
    let b_cfg = cloud.sink_config("sink-b", "batch_max = 50", gaps);
    let a = Sink::start(&a_cfg, cloud.world.path("sink-a.log"));
    let _b = Sink::start(&b_cfg, cloud.world.path("sink-b.log"));
    let store = Store::start(&cloud, "s1");
    // Let both subscribe before the stream starts.
    std::thread::sleep(Duration::from_secs(1));
    let sims = store.trade(&day(0), 1500, 7);
    eventually(Duration::from_secs(60), "the stream under way", || {
        cloud.count("SELECT count(*) FROM events") >= 600
    });
    a.kill9();
    let at_kill = cloud.count("SELECT count(*) FROM events");
    let total = acked(sims);
    assert!(at_kill < total as i64, "killed after the stream ended");
    // The killed instance comes back under its client id (as systemd restarts it) and
    // gets what it had not acknowledged; anything else the gap scanner fetches.
    let _a = Sink::start(&a_cfg, cloud.world.path("sink-a.log"));
    eventually(Duration::from_secs(60), "every event in PostgreSQL", || {
        cloud.count("SELECT count(*) FROM events") >= total as i64
    });
    clean_report(&cloud, &a_cfg, &day(0), 1, Duration::from_secs(30));
    assert_each_once(&cloud, total);
    let ledger_keys = cloud.count(
        "SELECT count(*) FROM (SELECT idempotency_key FROM events GROUP BY 1 HAVING count(*) > 1) d",
    );
    assert_eq!(ledger_keys, 0);
    let logs = |name: &str| std::fs::read_to_string(cloud.world.path(name)).unwrap_or_default();
    assert!(
        logs("sink-b.log").contains("cloud-sink connected"),
        "sink-b never connected"
    );
}

/// Stock change per SKU (or `dept:<department>`), in thousandths, from the simulator's own
/// events: completed transactions move their counted lines (a sale of 2 is −2, a return
/// line of −1 is +1), a post-void gives its sale's lines back, voided lines and the lines
/// voiding them move nothing, training and other statuses move nothing.
fn expected_stock(events: &[Value]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for e in events {
        let body = &e["body"];
        if e["event_type"] != "transaction" || e["flags"]["training"] == true {
            continue;
        }
        let links = body["links"].as_array().cloned().unwrap_or_default();
        let sign = match body["status"].as_str() {
            Some("completed") => -1,
            Some("voided") if links.iter().any(|l| l["reason"] == "post_void") => 1,
            _ => continue,
        };
        for line in body["lines"].as_array().into_iter().flatten() {
            if line["kind"] != "item" || line["void"] == true || line.get("voids_line").is_some() {
                continue;
            }
            let key = match line["sku"].as_str() {
                Some(sku) => sku.to_string(),
                None => format!("dept:{}", line["department"].as_str().unwrap()),
            };
            *out.entry(key).or_default() += sign * milli(line["quantity"].as_str().unwrap());
        }
    }
    out.retain(|_, v| *v != 0);
    out
}

fn milli(q: &str) -> i64 {
    let (neg, q) = q.strip_prefix('-').map_or((false, q), |r| (true, r));
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    let frac = format!("{frac:0<3}");
    let v = int.parse::<i64>().unwrap() * 1000 + frac[..3].parse::<i64>().unwrap();
    if neg { -v } else { v }
}

#[test]
fn inventory_deltas_sum_to_the_stock_change_the_registers_rang_up() {
    let cloud = Cloud::new();
    let config = cloud.sink_config("sink-inv", "", "");
    let _sink = Sink::start(&config, cloud.world.path("sink-inv.log"));
    let store = Store::start(&cloud, "s1");
    let count = 300;
    let mut sent = Vec::new();
    for (d, seed) in [(0, 11), (1, 12)] {
        acked(store.trade(&day(d), count, seed));
        // The same seed regenerates exactly what each register sent.
        for reg in ["reg-1", "reg-2"] {
            let mut g = Generator::new(seed, Profile::Retail, reg, &day(d));
            sent.extend((0..count - 1).map(|_| g.next_event()));
        }
    }
    let expected = expected_stock(&sent);
    let kinds = |what: &str| {
        sent.iter()
            .filter(|e| match what {
                "return" => e["body"]["kind"] == "return" && e["body"]["status"] == "completed",
                "post_void" => e["body"]["links"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|l| l["reason"] == "post_void")),
                _ => e["body"]["lines"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|l| l["void"] == true)),
            })
            .count()
    };
    assert!(
        kinds("return") > 0 && kinds("post_void") > 0 && kinds("line_void") > 0,
        "the run holds partial returns, post-voids and line voids"
    );
    for d in 0..2 {
        clean_report(&cloud, &config, &day(d), 1, Duration::from_secs(60));
    }
    let stored: BTreeMap<String, i64> = cloud
        .sql(
            "SELECT COALESCE(sku, 'dept:' || department), (sum(quantity) * 1000)::bigint
             FROM inventory_movements GROUP BY 1 HAVING sum(quantity) <> 0 ORDER BY 1",
        )
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap()))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(stored, expected, "stock change per SKU");
    let reasons = cloud.sql("SELECT DISTINCT reason FROM inventory_movements ORDER BY 1");
    assert_eq!(
        reasons,
        vec![
            vec!["post_void".to_string()],
            vec!["return".into()],
            vec!["sale".into()]
        ]
    );
}

/// A burst of resync commands (more replies than the agent's MQTT client queue holds, so
/// its session drops mid-burst) still delivers every requeued event and leaves the store's
/// outbox empty: the outcomes of the writer outlive the session.
#[test]
fn a_burst_of_resync_commands_leaves_nothing_stuck_in_the_store() {
    use posedge::uplink::session::{Session, SessionEvent, SessionOptions};
    let cloud = Cloud::new();
    let config = cloud.sink_config("sink-burst", "", "grace_s = 600");
    let _sink = Sink::start(&config, cloud.world.path("sink-burst.log"));
    let store = Store::start(&cloud, "s1");
    let total = acked(store.trade(&day(0), 100, 5));
    eventually(Duration::from_secs(30), "the day stored", || {
        cloud.count("SELECT count(*) FROM events") == total as i64
    });
    let (cert, key) = cloud.world.pki.client("cloud").unwrap();
    let opts = SessionOptions {
        version: posedge::config::MqttVersion::V5,
        host: "localhost".into(),
        port: cloud.world.broker_port,
        client_id: "burst".into(),
        keep_alive: Duration::from_secs(5),
        tls: Some(
            posedge::uplink::tls::client_config(&cloud.world.pki.ca, Some((cert, key))).unwrap(),
        ),
        will: ("posedge/v1/t1/burst/_agent/status".into(), Vec::new()),
        max_inflight: 1000,
    };
    let commands = 800u64;
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut session = Session::start(&opts);
        while session.next().await.unwrap() != SessionEvent::Connected {}
        session
            .subscribe("posedge/v1/t1/s1/_agent/reply/+".into())
            .unwrap();
        let (mut acked, mut sent, mut replies) = (0, 0, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while acked < commands || replies < commands {
            while sent < commands && sent - acked < 500 {
                let lane = if sent % 2 == 0 { "lan1" } else { "lan2" };
                let seq = sent / 2 % 50 + 1;
                let body = serde_json::json!({"id": format!("b-{sent}"), "source": lane,
                    "from_seq": seq, "to_seq": seq + 1});
                session
                    .publish(
                        "posedge/v1/t1/s1/_agent/cmd/resync".into(),
                        serde_json::to_vec(&body).unwrap().into(),
                        false,
                    )
                    .unwrap();
                sent += 1;
            }
            match tokio::time::timeout_at(deadline, session.next()).await {
                Ok(Ok(SessionEvent::PubAck { .. })) => acked += 1,
                Ok(Ok(SessionEvent::Message { .. })) => replies += 1,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("the cloud's session failed: {e}"),
                Err(_) => panic!("{acked} commands acked, {replies} of {commands} replies"),
            }
        }
        session.disconnect().await;
    });
    let status = || common::status(&cloud.world.path("s1/posedge.toml"));
    eventually(
        Duration::from_secs(60),
        "the store's outbox empty again",
        || status()["outbox"]["pending"] == 0,
    );
    // The requeued events came again and were absorbed as duplicates.
    eventually(Duration::from_secs(20), "duplicates absorbed", || {
        cloud.count("SELECT COALESCE(sum(count), 0) FROM duplicates") >= 100
    });
    assert_each_once(&cloud, total);
    // Replies, requeued events and status all waited for room in the MQTT client's
    // queue: the burst never cost the agent its session.
    let log = std::fs::read_to_string(cloud.world.path("s1/agent.log")).unwrap();
    assert!(
        !log.contains("uplink down"),
        "the burst dropped the session:\n{}",
        log.lines()
            .filter(|l| l.contains("uplink"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_server_that_cannot_start_is_reported_at_once_with_its_log() {
    let world = World::new();
    let port = free_port();
    let _first = TempPostgres::start(&world.path("pg1"), port).unwrap();
    let started = std::time::Instant::now();
    let Err(e) = TempPostgres::start(&world.path("pg2"), port) else {
        panic!("a second server on port {port} started");
    };
    let msg = e.to_string();
    assert!(msg.contains("exited"), "{msg}");
    assert!(msg.contains(&port.to_string()), "{msg}");
    // Long before the readiness wait would run out.
    assert!(started.elapsed() < Duration::from_secs(60), "{msg}");
}
