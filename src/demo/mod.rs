//! `posedge demo`: broker, agent, registers and an uplink cut on one machine (DESIGN §8).

pub mod backlog;
pub mod bench;
pub mod broker;
pub mod certs;
pub mod decoders;
pub mod mosquitto;

use crate::config::{
    ByteSize, Config, LogConfig, MqttVersion, OutboxConfig, SourceConfig, SourceKind, UplinkConfig,
};
use crate::outbox::{queue, schema};
use crate::sim::generate::Profile;
use crate::sim::link_cut::LinkCut;
use crate::sim::register::{self, SimOptions};
use crate::sim::stats::percentile;
use crate::sim::subscriber::Subscriber;
use crate::uplink::session::SessionOptions;
use crate::uplink::tls;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `posedge demo` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Events per register.
    #[arg(long, default_value_t = 3000)]
    pub events: u64,
    /// Simulated LAN registers.
    #[arg(long, default_value_t = 2)]
    pub registers: u32,
    /// Events per second per register.
    #[arg(long, default_value_t = 250)]
    pub rate: u64,
    /// Seconds the uplink is cut.
    #[arg(long, default_value_t = 4)]
    pub cut_s: u64,
    /// MQTT protocol level for the agent (5 or 4).
    #[arg(long, default_value_t = 5)]
    pub mqtt_version: u8,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Setup failed.
    #[error("demo setup: {0}")]
    Setup(String),
}

fn setup<E: std::fmt::Display>(e: E) -> DemoError {
    DemoError::Setup(e.to_string())
}

fn free_port() -> Result<SocketAddr, DemoError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(setup)?;
    l.local_addr().map_err(setup)
}

/// Runs the demo and prints its summary; true when nothing was lost.
pub async fn run(args: DemoArgs) -> Result<bool, DemoError> {
    let dir = tempfile::tempdir().map_err(setup)?;
    let pki = certs::generate(dir.path(), "demo-ca", &["agent", "cloud"]).map_err(setup)?;
    let (v5, v4) = (free_port()?, free_port()?);
    broker::start(v5, v4, &pki.ca, &pki.server.0, &pki.server.1).map_err(setup)?;
    let broker_addr = if args.mqtt_version == 4 { v4 } else { v5 };
    let link = LinkCut::start("127.0.0.1:0".parse().map_err(setup)?, broker_addr)
        .await
        .map_err(setup)?;
    let (agent_cert, agent_key) = pki.client("agent").ok_or_else(|| setup("no agent cert"))?;
    let cfg = Config {
        tenant: "demo".into(),
        store_id: "store-1".into(),
        topic_prefix: "posedge/v1/{tenant}/{store}".into(),
        outbox: OutboxConfig {
            path: dir.path().join("outbox.db"),
            min_free_disk: ByteSize(0),
            ..OutboxConfig::default()
        },
        uplink: UplinkConfig {
            url: format!("mqtts://localhost:{}", link.addr.port()),
            ca: Some(pki.ca.clone()),
            cert: Some(agent_cert.to_path_buf()),
            key: Some(agent_key.to_path_buf()),
            mqtt_version: if args.mqtt_version == 4 {
                MqttVersion::V4
            } else {
                MqttVersion::V5
            },
            client_id: None,
            keep_alive_s: 5,
            backoff_floor_ms: 200,
            backoff_cap_ms: 2000,
            max_inflight: 256,
            insecure_plaintext: false,
        },
        sources: vec![SourceConfig {
            listen: Some("127.0.0.1:0".parse().map_err(setup)?),
            idle_timeout_s: 60,
            ..SourceConfig::new("lan", SourceKind::Tcp)
        }],
        metrics: None,
        log: LogConfig::default(),
        summary: crate::config::SummaryConfig::default(),
        mapping: Vec::new(),
        digest: "built-in demo config".into(),
    };
    let (cloud_cert, cloud_key) = pki.client("cloud").ok_or_else(|| setup("no cloud cert"))?;
    let sub_opts = SessionOptions {
        version: MqttVersion::V5,
        host: "localhost".into(),
        port: v5.port(),
        client_id: "demo-cloud".into(),
        keep_alive: Duration::from_secs(10),
        tls: Some(tls::client_config(&pki.ca, Some((cloud_cert, cloud_key))).map_err(setup)?),
        will: (String::new(), Vec::new()),
        max_inflight: 100,
    };
    let subscriber = Subscriber::start(&sub_opts, "posedge/v1/demo/store-1/+/+", false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let running = crate::agent::start(&cfg).await.map_err(setup)?;
    let lan = running
        .listening
        .first()
        .map(|(_, a)| *a)
        .ok_or_else(|| setup("no listener"))?;
    println!(
        "posedge demo: broker (TLS, rumqttd) on {v5}, agent listening on {lan}, uplink through a cuttable link"
    );

    let started = Instant::now();
    let mut sims = Vec::new();
    for r in 0..args.registers {
        let o = SimOptions {
            connect: lan,
            count: args.events,
            seed: 42,
            profile: if r % 2 == 0 {
                Profile::Retail
            } else {
                Profile::Restaurant
            },
            register_id: format!("reg-{}", r + 1),
            business_day: "2026-11-27".into(),
            rate: args.rate,
            window: 64,
            store_id: "store-1".into(),
            ledger: Some(dir.path().join(format!("ledger-{r}.ndjson"))),
            give_up_after: Duration::from_secs(30),
            format: crate::config::Format::Ndjson,
            close_day: false,
        };
        sims.push(tokio::spawn(async move { register::run(&o).await }));
    }
    let reader = queue::Reader::new(schema::open_reader(&cfg.outbox.path).map_err(setup)?);
    let run_s = args.events as f64 / args.rate.max(1) as f64;
    let cut_at = Duration::from_secs_f64(run_s / 3.0);
    let mut peak = 0u64;
    let mut cut_done = false;
    while sims.iter().any(|s| !s.is_finished()) {
        if !cut_done && started.elapsed() >= cut_at {
            println!(
                "  {:>5.1}s  cutting the uplink for {}s …",
                started.elapsed().as_secs_f64(),
                args.cut_s
            );
            link.cut();
            let l = link.clone();
            let cut_s = args.cut_s;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(cut_s)).await;
                l.restore();
            });
            cut_done = true;
        }
        if let Ok(s) = reader.snapshot() {
            peak = peak.max(s.outbox.pending);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "  {:>5.1}s  registers done; waiting for the backlog to drain",
        started.elapsed().as_secs_f64()
    );
    let mut generated = 0;
    let mut acked_keys = HashSet::new();
    let mut ack_lat = Vec::new();
    for s in sims {
        let report = s.await.map_err(setup)?.map_err(setup)?;
        generated += report.generated;
        ack_lat.extend(report.ack_latency_us.iter().map(|&u| u as i64));
    }
    for r in 0..args.registers {
        let text = std::fs::read_to_string(dir.path().join(format!("ledger-{r}.ndjson")))
            .map_err(setup)?;
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).map_err(setup)?;
            if v["acked"] == true
                && let Some(k) = v["idempotency_key"].as_str()
            {
                acked_keys.insert(k.to_string());
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = subscriber.seen();
        if acked_keys.iter().all(|k| seen.by_key.contains_key(k)) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut seen = subscriber.seen();
    let lost = acked_keys
        .iter()
        .filter(|k| !seen.by_key.contains_key(*k))
        .count();
    let snap = reader.snapshot().map_err(setup)?;
    let redacted: u64 = snap.sources.iter().map(|s| s.redacted).sum();
    println!(
        "\nposedge demo summary ({:.1}s)",
        started.elapsed().as_secs_f64()
    );
    println!("  generated:          {generated}");
    println!("  acked:              {}", acked_keys.len());
    println!("  peak backlog:       {peak}");
    println!("  delivered (unique): {}", seen.unique());
    println!("  duplicates:         {}", seen.duplicates());
    println!("  lost:               {lost}");
    println!(
        "  ack latency:        p50 {:.2} ms, p99 {:.2} ms",
        percentile(&mut ack_lat, 0.5) as f64 / 1000.0,
        percentile(&mut ack_lat, 0.99) as f64 / 1000.0
    );
    println!(
        "  cloud latency:      p50 {} ms, p99 {} ms (includes the outage)",
        percentile(&mut seen.latency_ms, 0.5),
        percentile(&mut seen.latency_ms, 0.99)
    );
    println!("  PANs redacted:      {redacted}");
    println!("  dead letters:       {}", snap.outbox.dead_letters);
    Ok(lost == 0)
}
