//! The delivered archive's byte bound (`outbox.archive_max_bytes`) through the whole
//! agent: delivered events beyond it are pruned oldest first and the prune is audited,
//! both as deliveries grow it and at a start that finds it over a lowered bound (the
//! archive is then sized from a snapshot off the writer thread), and events after a shed
//! that emptied it are still delivered.

mod common;

use common::*;
use posedge::sim::register;
use std::path::Path;
use std::time::Duration;

const EVENTS: u64 = 400;

/// (message bytes of delivered events still stored, with their derived messages; events
/// still queued; lowest `seq`).
fn archive(db: &Path) -> (i64, i64, i64) {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    c.query_row(
        "SELECT (SELECT COALESCE(SUM(length(payload) + coalesce(length(derived), 0)), 0) FROM events e
                 WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.id = e.id)),
                (SELECT count(*) FROM outbox),
                (SELECT COALESCE(MIN(seq), 0) FROM events WHERE source = 'lan1')",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

fn sheds(cfg: &Path) -> usize {
    audit_rows(cfg)
        .iter()
        .filter(|r| r["action"] == "archive_shed")
        .count()
}

#[test]
fn the_archive_keeps_to_its_bound_as_it_grows_and_when_a_start_finds_it_over() {
    let mut w = World::new();
    w.start_broker();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let lan_port = free_port();
    let db = w.path("outbox.db");

    // A bound well above the archive: everything delivered stays.
    let cfg = w.agent_config(lan_port, "archive_max_bytes = \"8MiB\"", "");
    let agent = Agent::start(&cfg, lan_port, w.path("agent-1.log"));
    let o = sim(lan_port, "reg-a", EVENTS, 0, w.path("ledger"));
    let report = rt.block_on(async move { register::run(&o).await }).unwrap();
    assert_eq!(report.acked, EVENTS, "{report:?}");
    eventually(Duration::from_secs(30), "every event delivered", || {
        archive(&db).1 == 0
    });
    let (full, _, first) = archive(&db);
    assert_eq!(first, 1, "nothing pruned under a roomy bound");
    assert!(full > 64 << 10, "the archive holds {full} bytes");
    assert_eq!(sheds(&cfg), 0);
    drop(agent);

    // The next start finds the archive over a lowered bound with no new deliveries:
    // only the count taken at start can tell.
    let bound = full / 4;
    let cfg = w.agent_config(lan_port, &format!("archive_max_bytes = {bound}"), "");
    let agent = Agent::start(&cfg, lan_port, w.path("agent-2.log"));
    eventually(Duration::from_secs(20), "the archive shed at start", || {
        sheds(&cfg) == 1
    });
    // It sheds up to 10,000 of the oldest per step: here, all of them.
    let (kept, queued, _) = archive(&db);
    assert_eq!(queued, 0);
    assert!(kept <= bound, "{kept} bytes kept over a bound of {bound}");
    let shed = audit_rows(&cfg)
        .into_iter()
        .find(|r| r["action"] == "archive_shed")
        .unwrap();
    assert!(
        shed["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("held {full} bytes")),
        "the start sized the archive exactly: {shed}"
    );

    // Deliveries grow it past the bound again: the running count sheds once more.
    let o = sim(lan_port, "reg-b", EVENTS, 0, w.path("ledger-2"));
    let report = rt.block_on(async move { register::run(&o).await }).unwrap();
    assert_eq!(report.acked, EVENTS, "{report:?}");
    // Delivery spans several of the writer's ticks, so it may shed more than once.
    eventually(
        Duration::from_secs(30),
        "shed again after deliveries",
        || {
            let (kept, queued, _) = archive(&db);
            queued == 0 && sheds(&cfg) >= 2 && kept <= bound
        },
    );

    // The running agent has shed every delivered event it could: the next ones must
    // still get ids past those its uplink and day close have already read, or they sit
    // unsent until a reconnect.
    let o = sim(lan_port, "reg-c", EVENTS, 0, w.path("ledger-3"));
    let report = rt.block_on(async move { register::run(&o).await }).unwrap();
    assert_eq!(report.acked, EVENTS, "{report:?}");
    eventually(
        Duration::from_secs(30),
        "events after a full shed delivered",
        || archive(&db).1 == 0,
    );
    drop(agent);
}
