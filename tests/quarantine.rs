//! Corruption never stops trading (DESIGN §2.6): a store damaged while the agent was
//! down is moved aside at the next start, what can be read of it is delivered, the
//! registers keep trading with `seq` going on, and the quarantine is audited and alarmed
//! until the operator takes the file away.

mod common;

use common::*;
use posedge::config::MqttVersion;
use posedge::sim::register;
use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

const FIRST: u64 = 1500;
const SECOND: u64 = 200;

fn alarm_names(cfg: &std::path::Path) -> Vec<String> {
    status(cfg)["alarms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_corrupt_store_is_quarantined_salvaged_and_trading_goes_on() {
    let mut w = World::new();
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "", "");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();

    // Offline trading fills the store; then the agent dies and the disk damages it.
    let agent = Agent::start(&cfg, lan_port, w.path("agent-1.log"));
    let o = sim(lan_port, "reg-q", FIRST, 0, w.path("ledger-1"));
    let report = rt.block_on(async move { register::run(&o).await }).unwrap();
    assert_eq!(report.acked, FIRST, "{report:?}");
    agent.kill9();
    let db = w.path("outbox.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    }
    let len = std::fs::metadata(&db).unwrap().len();
    let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    f.seek(SeekFrom::Start(len / 2 / 4096 * 4096)).unwrap();
    f.write_all(&[0xA5; 2 * 4096]).unwrap();
    f.sync_all().unwrap();
    drop(f);

    w.start_broker();
    let sub = w.subscriber(MqttVersion::V5);
    let _agent = Agent::start(&cfg, lan_port, w.path("agent-2.log"));

    // The damaged file is kept, and the start says so in the audit trail and an alarm.
    let kept: Vec<_> = std::fs::read_dir(w.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("outbox.db.quarantined-") && !n.ends_with("-wal"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    eventually(Duration::from_secs(10), "quarantine alarm", || {
        alarm_names(&cfg).contains(&"outbox_quarantined".to_string())
    });
    eventually(Duration::from_secs(10), "quarantine audited", || {
        audit_rows(&cfg)
            .iter()
            .any(|r| r["action"] == "database_quarantined")
    });
    let audit = audit_rows(&cfg);
    let q = audit
        .iter()
        .find(|r| r["action"] == "database_quarantined")
        .unwrap();
    let detail = q["detail"].as_str().unwrap();
    let salvaged: u64 = detail
        .split("salvaged ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no salvage count in {detail}"));
    let unreadable: u64 = detail
        .split("; ")
        .last()
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no unreadable count in {detail}"));
    // Two damaged pages lose the rows on them, not the store.
    assert!(
        unreadable > 0 && salvaged < FIRST && salvaged > FIRST / 2,
        "{detail}"
    );

    // Trading goes on, and seq goes on above every seq the damaged store handed out.
    let ledger2 = w.path("ledger-2");
    let mut o = sim(lan_port, "reg-q2", SECOND, 0, ledger2.clone());
    o.seed = 8;
    let report = rt.block_on(async move { register::run(&o).await }).unwrap();
    assert_eq!(report.acked, SECOND, "{report:?}");

    // Salvaged rows are events, each with the inventory message stored in its row.
    let delivered_of = |register: &str, schema: &str| -> std::collections::HashSet<String> {
        sub.seen()
            .payloads
            .iter()
            .filter_map(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
            .filter(|v| v["register_id"] == register && v["schema"] == schema)
            .filter_map(|v| v["idempotency_key"].as_str().map(str::to_string))
            .collect()
    };
    let new = acked_keys(&ledger2);
    let with_inventory: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM events WHERE register_id = 'reg-q' AND derived IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(with_inventory > 0);
    eventually(
        Duration::from_secs(60),
        "salvaged and new events delivered",
        || {
            let seen = sub.seen();
            delivered_of("reg-q", "posedge.event/1").len() as u64 == salvaged
                && delivered_of("reg-q", "posedge.inventory/1").len() as i64 == with_inventory
                && new.iter().all(|k| seen.by_key.contains_key(k))
        },
    );
    let seen = sub.seen();
    let new_seqs: Vec<u64> = seen
        .payloads
        .iter()
        .filter_map(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
        .filter(|v| v["register_id"] == "reg-q2" && v["schema"] == "posedge.event/1")
        .filter_map(|v| v["seq"].as_u64())
        .collect();
    assert_eq!(new_seqs.len() as u64, SECOND);
    // The inventory lane's counter came through the salvage too.
    let inventory_seqs = |register: &str| -> Vec<u64> {
        seen.payloads
            .iter()
            .filter_map(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
            .filter(|v| v["register_id"] == register && v["schema"] == "posedge.inventory/1")
            .filter_map(|v| v["seq"].as_u64())
            .collect()
    };
    let (old, later) = (inventory_seqs("reg-q"), inventory_seqs("reg-q2"));
    assert!(
        later.iter().min() > old.iter().max(),
        "an inventory seq was handed out twice"
    );
    assert!(
        new_seqs.iter().all(|s| *s > FIRST),
        "a seq was handed out twice: {:?}",
        new_seqs.iter().min()
    );

    // Once the operator has taken the file away, the next start clears the alarm.
    drop(_agent);
    for name in std::fs::read_dir(w.dir.path()).unwrap().flatten() {
        if name.file_name().to_string_lossy().contains(".quarantined-") {
            std::fs::remove_file(name.path()).unwrap();
        }
    }
    let _agent = Agent::start(&cfg, lan_port, w.path("agent-3.log"));
    eventually(Duration::from_secs(10), "alarm cleared", || {
        !alarm_names(&cfg).contains(&"outbox_quarantined".to_string())
    });
}
