//! The durability promise end to end: real Mosquitto (TLS + mTLS), the agent binary,
//! SIGKILLs at random moments, broker outages and restarts mid-drain.

mod common;

use common::*;
use posedge::config::MqttVersion;
use posedge::sim::register;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::time::Duration;

/// First arrivals per register must come in register order; re-sends may repeat.
fn assert_register_order(order: &[(String, u64)]) {
    let mut seen: HashMap<&str, std::collections::HashSet<u64>> = HashMap::new();
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (r, p) in order {
        if seen.entry(r).or_default().insert(*p) {
            let prev = last.insert(r, *p).unwrap_or(0);
            assert!(
                *p > prev,
                "register {r}: pos_sequence {p} arrived after {prev}"
            );
        }
    }
}

/// Events per simulated register: at 200/s the registers keep sending through every kill.
const PER_REGISTER: u64 = 2500;

#[test]
fn every_acked_event_reaches_the_cloud_through_outages_and_kills() {
    let mut w = World::new();
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "", "");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    w.start_broker();
    let sub = w.subscriber(MqttVersion::V5);
    w.stop_broker();
    let log = w.path("agent.log");
    let mut agent = Agent::start(&cfg, lan_port, log.clone());
    let ledgers = [w.path("ledger-a"), w.path("ledger-b")];
    let sims: Vec<_> = ["reg-a", "reg-b"]
        .iter()
        .zip(&ledgers)
        .map(|(r, l)| {
            let o = sim(lan_port, r, PER_REGISTER, 200, l.clone());
            rt.spawn(async move { register::run(&o).await })
        })
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let mut broker_up = false;
    let mut kills = 0;
    // Even rounds kill while the broker is down (ingest only), odd rounds while it is up
    // and the agent drains; every other up-phase restarts the broker mid-drain.
    for round in 0..22 {
        let want_up = round % 2 == 1;
        if want_up && !broker_up {
            w.start_broker();
            broker_up = true;
        } else if !want_up && broker_up {
            w.stop_broker();
            broker_up = false;
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(100..500)));
        if round % 4 == 3 {
            w.stop_broker();
            w.start_broker();
            std::thread::sleep(Duration::from_millis(rng.random_range(50..200)));
        }
        agent.kill9();
        kills += 1;
        agent = Agent::start(&cfg, lan_port, log.clone());
    }
    if !broker_up {
        w.start_broker();
    }
    for s in sims {
        let report = rt.block_on(s).unwrap().unwrap();
        assert_eq!(report.acked, PER_REGISTER, "{report:?}");
        // The kills landed while the registers were sending, not after.
        assert!(report.reconnects >= 15, "{report:?}");
    }
    let acked: Vec<String> = ledgers.iter().flat_map(|l| acked_keys(l)).collect();
    assert_eq!(acked.len() as u64, 2 * PER_REGISTER);
    let ok = wait_for(Duration::from_secs(90), || {
        let seen = sub.seen();
        acked.iter().all(|k| seen.by_key.contains_key(k))
    });
    let seen = sub.seen();
    assert!(
        ok,
        "missing {} of {}; status {}",
        acked
            .iter()
            .filter(|k| !seen.by_key.contains_key(*k))
            .count(),
        acked.len(),
        status(&cfg)
    );
    let seen = sub.seen();
    let missing = acked
        .iter()
        .filter(|k| !seen.by_key.contains_key(*k))
        .count();
    assert_eq!(missing, 0);
    assert_eq!(
        seen.unique() as u64,
        2 * PER_REGISTER,
        "no event the registers did not send"
    );
    eprintln!(
        "kills {kills}, delivered {}, duplicates {}",
        seen.unique(),
        seen.duplicates()
    );
    // Duplicates are allowed only for what was in flight at a kill or a broker restart.
    assert!(
        seen.duplicates() <= (kills as u64 + 6) * 256,
        "duplicates: {}",
        seen.duplicates()
    );
    assert_register_order(&seen.order);
    assert!(kills >= 20);
    let st = status(&cfg);
    eventually(Duration::from_secs(10), "outbox empty", || {
        status(&cfg)["outbox"]["pending"] == 0
    });
    assert_eq!(st["sources"][0]["name"], "lan1");
    assert_eq!(
        st["sources"][0]["last_seq"],
        2 * PER_REGISTER,
        "seq is gapless across kills: {st}"
    );
}

#[test]
fn order_per_register_is_kept_across_reconnects() {
    let mut w = World::new();
    w.start_broker();
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "", "mqtt_version = 4");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let sub = w.subscriber(MqttVersion::V4);
    std::thread::sleep(Duration::from_millis(300));
    let _agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    let ledger = w.path("ledger");
    let o = sim(lan_port, "reg-o", 2000, 1000, ledger.clone());
    let job = rt.spawn(async move { register::run(&o).await });
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(400));
        w.stop_broker();
        std::thread::sleep(Duration::from_millis(300));
        w.start_broker();
    }
    rt.block_on(job).unwrap().unwrap();
    let acked = acked_keys(&ledger);
    let ok = wait_for(Duration::from_secs(60), || {
        let seen = sub.seen();
        acked.iter().all(|k| seen.by_key.contains_key(k))
    });
    let seen = sub.seen();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|k| !seen.by_key.contains_key(*k))
        .collect();
    assert!(
        ok,
        "missing {} of {}: first {:?} last {:?}; status {}",
        missing.len(),
        acked.len(),
        missing.first(),
        missing.last(),
        status(&cfg)
    );
    assert_eq!(seen.unique(), 2000);
    assert_register_order(&seen.order);
}
