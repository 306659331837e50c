//! `posedge bench --backlog N`: the backlog rows of the budget (DESIGN §11). A week
//! offline is modelled by N events queued with the uplink down; then the agent starts
//! with them queued (time to systemd READY), and drains them to a subscriber (events/s
//! and RSS while draining).

use super::bench::{
    AgentProc, BenchArgs, BenchError, Rig, cpu_s, err, feed, free_port, lines, proc_kib, wait_until,
};
use crate::sim::subscriber::Subscriber;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Waits for the agent to listen on its LAN port.
async fn listening(lan: SocketAddr) -> Result<(), BenchError> {
    if wait_until(Duration::from_secs(30), || {
        std::net::TcpStream::connect(lan).is_ok()
    })
    .await
    {
        Ok(())
    } else {
        Err(BenchError::new("agent did not listen"))
    }
}

/// Runs the backlog measurement and prints its table.
pub async fn run(events: u64, args: &BenchArgs) -> Result<(), BenchError> {
    let rig = Rig::start(args.inflight)?;
    // Events, plus the few status and audit messages of `_agent` (a handful in a million).
    let sub = Subscriber::start(&rig.client("cloud")?, "posedge/v1/bench/store/+/+", false);
    if !wait_until(Duration::from_secs(10), || sub.seen().subscribed).await {
        return Err(BenchError::new("subscriber could not subscribe"));
    }
    let lan_port = free_port()?;
    let lan: SocketAddr = ([127, 0, 0, 1], lan_port).into();
    let cfg = rig.agent_config(lan_port)?;
    // The same agent with its uplink pointed at a port nobody listens on: offline.
    let dead = free_port()?;
    let online = std::fs::read_to_string(&cfg).map_err(err)?;
    let offline_cfg = rig.dir.path().join("offline.toml");
    let offline = online
        .lines()
        .map(|l| {
            if l.starts_with("url = ") {
                format!("url = \"mqtts://localhost:{dead}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&offline_cfg, offline).map_err(err)?;

    let registers = args.registers.max(1);
    let per = (events / u64::from(registers)).max(1);
    let total = per * u64::from(registers);
    eprintln!("generating {total} events …");
    let feed_lines = lines(registers, per, 11);

    eprintln!("queueing {total} events with the uplink down …");
    let agent = rig.spawn_agent(&offline_cfg, &[], None)?;
    listening(lan).await?;
    let start = Instant::now();
    let feeds: Vec<_> = feed_lines
        .into_iter()
        .map(|l| tokio::spawn(feed(lan, l, 512, None)))
        .collect();
    for f in feeds {
        f.await.map_err(err)??;
    }
    let queue_rate = total as f64 / start.elapsed().as_secs_f64();
    // A power cut, not a clean stop: every acked event must already be on disk.
    drop(agent);
    let db_bytes: u64 = ["outbox.db", "outbox.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(rig.dir.path().join(f)).ok())
        .map(|m| m.len())
        .sum();

    eprintln!("starting with the backlog queued, uplink up …");
    let notify_path = rig.dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).map_err(err)?;
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(err)?;
    let base = sub.total();
    let spawned = Instant::now();
    let agent: AgentProc =
        rig.spawn_agent(&cfg, &[("NOTIFY_SOCKET", notify_path.as_os_str())], None)?;
    let pid = agent.0.id();
    let ready_ms = tokio::task::spawn_blocking(move || -> Result<f64, BenchError> {
        let mut buf = [0u8; 4096];
        loop {
            let n = notify
                .recv(&mut buf)
                .map_err(|e| BenchError::new(format!("no READY from the agent: {e}")))?;
            if buf
                .get(..n)
                .unwrap_or_default()
                .split(|b| *b == b'\n')
                .any(|l| l == b"READY=1")
            {
                return Ok(spawned.elapsed().as_secs_f64() * 1000.0);
            }
        }
    })
    .await
    .map_err(err)??;
    let drain_start = Instant::now();
    let mut peak_rss = 0u64;
    let mut drained = false;
    while drain_start.elapsed() < Duration::from_secs(1800) {
        peak_rss = peak_rss.max(proc_kib(pid, "VmRSS:"));
        if sub.total() >= base + total {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !drained {
        return Err(BenchError::new(format!(
            "the subscriber got {} of {total} queued events",
            sub.total() - base
        )));
    }
    let drain_s = drain_start.elapsed().as_secs_f64();
    let drain_rate = total as f64 / drain_s;
    let cpu_per_event_us = cpu_s(pid) * 1e6 / total as f64;
    drop(agent);

    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    let mb = |kib: u64| kib as f64 / 1024.0;
    println!(
        "\n## posedge bench --backlog ({total} events, {registers} registers, TLS 1.3 + mTLS, QoS 1, one event per message)\n"
    );
    println!("| figure | measured | target | |");
    println!("|---|---|---|---|");
    println!(
        "| queued offline (acked, durable) | {queue_rate:.0} events/s, {:.0} MB on disk | | |",
        db_bytes as f64 / 1e6
    );
    println!(
        "| start with the backlog queued: spawn → READY | {ready_ms:.0} ms | ≤ 500 ms | {} |",
        verdict(ready_ms <= 500.0)
    );
    println!(
        "| backlog drain (READY → last event at the subscriber) | {drain_rate:.0} events/s in {drain_s:.1} s | ≥ 50000 (batched) | {} |",
        verdict(drain_rate >= 50_000.0)
    );
    println!(
        "| agent RSS while draining (peak of 100 ms samples) | {:.1} MB | ≤ 32 MB | {} |",
        mb(peak_rss),
        verdict(peak_rss <= 32 * 1024)
    );
    println!("| agent CPU per drained event | {cpu_per_event_us:.0} µs | | |");
    Ok(())
}
