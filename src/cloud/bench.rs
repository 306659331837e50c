//! `posedge bench --cloud`: cloud-sink ingest into PostgreSQL with one instance and with
//! two on the shared subscription, and the end-of-day summary's computation time, against
//! a local Mosquitto (TLS, client certificates) and a throw-away PostgreSQL cluster.

use super::config::CloudConfig;
use super::pg::TempPostgres;
use super::topic::StoreKey;
use crate::config::MqttVersion;
use crate::demo::certs;
use crate::demo::mosquitto::Mosquitto;
use crate::derive::summary::DaySummary;
use crate::sim::generate::{Generator, Profile};
use crate::uplink::session::{Session, SessionEvent, SessionOptions};
use std::path::Path;
use std::time::{Duration, Instant};

/// Why the cloud benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[error("bench --cloud: {0}")]
pub struct CloudBenchError(String);

fn err<E: std::fmt::Display>(e: E) -> CloudBenchError {
    CloudBenchError(e.to_string())
}

fn free_port() -> Result<u16, CloudBenchError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(err)?;
    Ok(l.local_addr().map_err(err)?.port())
}

const DAY: &str = "2030-06-01";

/// `n` simulated events of two registers as a store publishes them: (topic, payload).
pub fn store_messages(key: &StoreKey, n: u64) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::with_capacity(n as usize);
    for (lane, reg) in [("lan1", "reg-1"), ("lan2", "reg-2")] {
        let mut g = Generator::new(1, Profile::Retail, reg, DAY);
        for seq in 1..=n / 2 {
            let mut e = g.next_event();
            e["schema"] = crate::event::SCHEMA.into();
            e["event_id"] = uuid::Uuid::now_v7().to_string().into();
            e["store_id"] = key.store.clone().into();
            e["source"] = serde_json::json!({"name": lane, "kind": "tcp", "format": "ndjson"});
            e["seq"] = seq.into();
            e["idempotency_key"] = format!("{}|{reg}|{DAY}|{seq}", key.store).into();
            e["received_at"] = crate::clock::now_rfc3339().into();
            let topic = format!(
                "posedge/v1/{}/{}/{reg}/{}",
                key.tenant,
                key.store,
                e["event_type"].as_str().unwrap_or("transaction")
            );
            out.push((topic, serde_json::to_vec(&e).unwrap_or_default()));
        }
    }
    out
}

async fn publish_all(
    opts: &SessionOptions,
    msgs: &[(String, Vec<u8>)],
) -> Result<(), CloudBenchError> {
    let mut session = Session::start(opts);
    while session.next().await.map_err(err)? != SessionEvent::Connected {}
    let window = usize::from(opts.max_inflight);
    let (mut next, mut outstanding) = (0usize, 0usize);
    while next < msgs.len() || outstanding > 0 {
        while outstanding < window && next < msgs.len() {
            let (topic, payload) = &msgs[next];
            session
                .publish(topic.clone(), payload.clone().into(), false)
                .map_err(err)?;
            next += 1;
            outstanding += 1;
        }
        if let SessionEvent::PubAck { .. } = session.next().await.map_err(err)? {
            outstanding -= 1;
        }
    }
    session.disconnect().await;
    Ok(())
}

async fn count(client: &tokio_postgres::Client) -> Result<i64, CloudBenchError> {
    Ok(client
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .map_err(err)?
        .get(0))
}

/// Ingest with `instances` sinks into a fresh database: events/s from the first publish
/// to the last row committed.
async fn ingest(
    dir: &Path,
    pg: &TempPostgres,
    broker: (u16, &certs::Pki),
    instances: usize,
    msgs: &[(String, Vec<u8>)],
) -> Result<f64, CloudBenchError> {
    // Not named "bench…": the backends' process titles carry the database name.
    let db = format!("ingest{instances}");
    let admin = super::db::connect(&pg.url("postgres")).await.map_err(err)?;
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .map_err(err)?;
    let (port, pki) = broker;
    let (cert, key) = pki.client("cloud").ok_or_else(|| err("no cloud cert"))?;
    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..instances {
        let text = format!(
            "[database]\nurl = \"{url}\"\n[broker]\nurl = \"mqtts://localhost:{port}\"\nca = \"{ca}\"\n\
             cert = \"{cert}\"\nkey = \"{key}\"\nclient_id = \"bench-sink-{instances}-{i}\"\n\
             [sink]\ngroup = \"bench{instances}\"\nsession_expiry_s = 0\n",
            url = pg.url(&db),
            ca = pki.ca.display(),
            cert = cert.display(),
            key = key.display(),
        );
        let cfg = CloudConfig::from_toml(&text, dir).map_err(|p| err(format!("{p:?}")))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        stops.push(tx);
        tasks.push(tokio::spawn(async move {
            super::sink::run(&cfg, async {
                let _ = rx.await;
            })
            .await
        }));
    }
    // Every instance subscribed before the stream starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let client = super::db::connect(&pg.url(&db)).await.map_err(err)?;
    let publisher = SessionOptions {
        version: MqttVersion::V5,
        host: "localhost".into(),
        port,
        client_id: format!("bench-store-{instances}"),
        keep_alive: Duration::from_secs(30),
        tls: Some(crate::uplink::tls::client_config(&pki.ca, pki.client("agent")).map_err(err)?),
        will: ("posedge/v1/bench/s1/_agent/status".into(), Vec::new()),
        max_inflight: 256,
    };
    let start = Instant::now();
    let n = msgs.len() as i64;
    let pub_task = {
        let msgs = msgs.to_vec();
        tokio::spawn(async move { publish_all(&publisher, &msgs).await })
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last_log = Instant::now();
    while count(&client).await? < n {
        if pub_task.is_finished() && count(&client).await? < n {
            // A failed publisher ends the run with its error below.
            tokio::time::sleep(Duration::from_secs(2)).await;
            if count(&client).await? < n {
                pub_task.await.map_err(err)??;
                return Err(err("the publisher finished but not every event was stored"));
            }
        }
        if Instant::now() > deadline || tasks.iter().any(|t| t.is_finished()) {
            return Err(err("the sinks did not store every event (see the log)"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if last_log.elapsed() > Duration::from_secs(5) {
            last_log = Instant::now();
            tracing::debug!(stored = count(&client).await?, of = n, "bench waiting");
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    pub_task.await.map_err(err)??;
    for s in stops {
        let _ = s.send(());
    }
    for t in tasks {
        t.await.map_err(err)?.map_err(err)?;
    }
    Ok(rate)
}

/// Runs the cloud benchmark and prints a markdown table.
pub async fn run(events: u64) -> Result<(), CloudBenchError> {
    let dir = tempfile::tempdir().map_err(err)?;
    let pki = certs::generate(dir.path(), "bench-ca", &["agent", "cloud"]).map_err(err)?;
    let port = free_port()?;
    let _broker =
        Mosquitto::start(dir.path(), port, &pki.ca, &pki.server.0, &pki.server.1).map_err(err)?;
    let pg = TempPostgres::start(&dir.path().join("pg"), free_port()?).map_err(err)?;
    let key = StoreKey {
        tenant: "bench".into(),
        store: "s1".into(),
    };
    // A failed run says what PostgreSQL logged.
    let with_log = |e: CloudBenchError| {
        let log = std::fs::read_to_string(dir.path().join("pg/postgres.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        CloudBenchError(format!("{} (PostgreSQL log: {})", e.0, tail.join(" / ")))
    };
    let msgs = store_messages(&key, events);
    let one = ingest(dir.path(), &pg, (port, &pki), 1, &msgs)
        .await
        .map_err(with_log)?;
    let msgs2 = store_messages(&key, events);
    let two = ingest(dir.path(), &pg, (port, &pki), 2, &msgs2)
        .await
        .map_err(with_log)?;

    // The summary of one day of `events` events: in memory as the agent computes it, and
    // from PostgreSQL as cloud-report does.
    let n = 100_000u64;
    let payloads = store_messages(&key, n);
    let start = Instant::now();
    let mut s = DaySummary::default();
    for (i, (_, p)) in payloads.iter().enumerate() {
        s.add("lan1", i as u64 + 1, p);
    }
    let in_memory = start.elapsed();
    let client = super::db::connect(&pg.url("ingest1")).await.map_err(err)?;
    let start = Instant::now();
    let from_db = super::report::from_events(&client, &key, DAY)
        .await
        .map_err(err)?;
    let report_time = start.elapsed();
    println!("| figure | measured |");
    println!("|---|---|");
    println!(
        "| cloud-sink ingest into PostgreSQL, 1 instance ({events} events) | {one:.0} events/s |"
    );
    println!(
        "| cloud-sink ingest into PostgreSQL, 2 instances, shared subscription | {two:.0} events/s |"
    );
    println!(
        "| end-of-day summary of {n} events (DaySummary::add, in memory) | {:.0} ms ({} events counted) |",
        in_memory.as_secs_f64() * 1000.0,
        s.store.events
    );
    println!(
        "| the same from PostgreSQL (cloud-report's side, {} stored events) | {:.0} ms |",
        from_db.store.events,
        report_time.as_secs_f64() * 1000.0
    );
    Ok(())
}
