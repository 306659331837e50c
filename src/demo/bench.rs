//! `posedge bench`: the project's benchmark (DESIGN §11). Every figure is measured against
//! ceilings taken in the same run on the same machine: a bare MQTT publisher without
//! persistence through the same Mosquitto, and bare SQLite inserts on the same disk.

use super::certs;
use super::mosquitto::Mosquitto;
use crate::config::MqttVersion;
use crate::sim::generate::{Generator, Profile};
use crate::sim::stats::percentile;
use crate::sim::subscriber::Subscriber;
use crate::uplink::session::{Session, SessionEvent, SessionOptions};
use crate::uplink::tls;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// `posedge bench` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Events in the throughput runs (ceiling and posedge each).
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Concurrent LAN registers feeding posedge.
    #[arg(long, default_value_t = 4)]
    pub registers: u32,
    /// Publishes in flight (posedge `max_inflight` and the bare publisher alike).
    #[arg(long, default_value_t = 256)]
    pub inflight: u16,
    /// Seconds of each paced latency run.
    #[arg(long, default_value_t = 5)]
    pub latency_s: u64,
    /// Only the decoder and redactor throughput (no broker, no agent).
    #[arg(long)]
    pub decoders: bool,
    /// Only the backlog figures: queue this many events offline, then measure the start
    /// with them queued (READY), the drain rate and the RSS while draining.
    #[arg(long, value_name = "EVENTS")]
    pub backlog: Option<u64>,
    /// Only the cloud side: cloud-sink ingest into PostgreSQL (one and two instances,
    /// `--events` events) and the end-of-day summary of 100,000 events.
    #[cfg(feature = "cloud")]
    #[arg(long, conflicts_with = "decoders")]
    pub cloud: bool,
    /// Runs the agent under this command (words split at spaces), e.g.
    /// `valgrind --tool=callgrind` to count its instructions on the fixed workload.
    #[arg(long)]
    pub agent_wrapper: Option<String>,
    /// Only the posedge end-to-end run: no ceilings, paced runs or decoder table.
    #[arg(long, conflicts_with = "latency_only")]
    pub e2e_only: bool,
    /// Only the paced latency runs on an idle agent, with their percentiles in full.
    #[arg(long)]
    pub latency_only: bool,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[error("bench: {0}")]
pub struct BenchError(String);

impl BenchError {
    /// An error saying `what`.
    pub fn new(what: impl Into<String>) -> BenchError {
        BenchError(what.into())
    }
}

pub(super) fn err<E: std::fmt::Display>(e: E) -> BenchError {
    BenchError(e.to_string())
}

pub(super) fn free_port() -> Result<u16, BenchError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(err)?;
    Ok(l.local_addr().map_err(err)?.port())
}

pub(super) fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) a process has used so far.
pub(super) fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may contain spaces, start after ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the state.
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12);
    ticks as f64 / 100.0
}

pub(super) async fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// Pre-generated NDJSON lines per register, so generation is not measured.
pub(super) fn lines(registers: u32, per_register: u64, seed: u64) -> Vec<Vec<Vec<u8>>> {
    (0..registers)
        .map(|r| {
            let mut g = Generator::new(seed, Profile::Retail, &format!("reg-{r}"), "2026-11-27");
            (0..per_register)
                .map(|_| {
                    let mut l = serde_json::to_vec(&g.next_event()).unwrap_or_default();
                    l.push(b'\n');
                    l
                })
                .collect()
        })
        .collect()
}

/// Bare SQLite ceiling: the same payloads inserted in WAL with `synchronous=FULL`, in
/// transactions of `group` rows.
fn sqlite_ceiling(dir: &Path, payloads: &[Vec<u8>], group: usize) -> Result<f64, BenchError> {
    let conn = rusqlite::Connection::open(dir.join("bare.db")).map_err(err)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB NOT NULL);",
    )
    .map_err(err)?;
    let start = Instant::now();
    for chunk in payloads.chunks(group.max(1)) {
        conn.execute_batch("BEGIN").map_err(err)?;
        {
            let mut st = conn
                .prepare_cached("INSERT INTO t (payload) VALUES (?1)")
                .map_err(err)?;
            for p in chunk {
                st.execute([p]).map_err(err)?;
            }
        }
        conn.execute_batch("COMMIT").map_err(err)?;
    }
    Ok(payloads.len() as f64 / start.elapsed().as_secs_f64())
}

/// The messages posedge publishes for `lines`, built by its own ingest stage: each event
/// as stored (agent-owned fields stamped) and its derived messages (inventory), with
/// their topics. The ceiling publishes exactly these, so it and posedge move the same
/// bytes in the same number of messages.
fn published_messages(lines: &[Vec<Vec<u8>>]) -> Vec<(String, Vec<u8>)> {
    let ctx = super::decoders::context(crate::config::Format::Ndjson);
    let at = crate::clock::now_rfc3339();
    let mut seq = 0u64;
    let mut out = Vec::new();
    for line in lines.iter().flatten() {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        for item in crate::ingest::prepare(&ctx, line, &at).items {
            let crate::ingest::Prepared::Event(mut event) = item else {
                continue;
            };
            let derived = event.derived.take().map(|d| *d);
            for e in std::iter::once(event).chain(derived) {
                seq += 1;
                let topic = format!(
                    "posedge/v1/bench/ceiling/{}/{}",
                    e.register_id.as_str(),
                    e.event_type
                );
                let payload = e.finish(
                    &crate::event::EventId::new_v7(),
                    crate::event::Seq::new(seq),
                );
                out.push((topic, payload));
            }
        }
    }
    out
}

/// Bare MQTT ceiling: one client publishing `messages` QoS 1 over TLS, no persistence,
/// counted at the subscriber; events per second, for `events` events.
async fn mqtt_ceiling(
    opts: &SessionOptions,
    sub: &Subscriber,
    messages: &[(String, Vec<u8>)],
    events: u64,
) -> Result<f64, BenchError> {
    let mut session = Session::start(opts);
    loop {
        if session.next().await.map_err(err)? == SessionEvent::Connected {
            break;
        }
    }
    let count = |s: &Subscriber| {
        let seen = s.seen();
        seen.total + seen.derived
    };
    let base = count(sub);
    let n = messages.len() as u64;
    let window = usize::from(opts.max_inflight);
    let start = Instant::now();
    let mut next = 0usize;
    let mut outstanding = 0usize;
    while next < messages.len() || outstanding > 0 {
        while outstanding < window && next < messages.len() {
            let (topic, payload) = &messages[next];
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
    if !wait_until(Duration::from_secs(120), || count(sub) >= base + n).await {
        return Err(BenchError(
            "the subscriber did not receive the ceiling run".into(),
        ));
    }
    let rate = events as f64 / start.elapsed().as_secs_f64();
    session.disconnect().await;
    Ok(rate)
}

/// Waits until the agent uses under 5 % of a core over half a second, at most `within`;
/// false when it never did.
async fn settle(pid: u32, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        let before = cpu_s(pid);
        tokio::time::sleep(Duration::from_millis(500)).await;
        if cpu_s(pid) - before < 0.025 {
            return true;
        }
    }
    false
}

/// The paced runs: ack latencies (µs) of one register at 1,000 events/s, then the agent →
/// subscriber latencies (ms) of one register at 100 events/s.
async fn paced(
    lan: SocketAddr,
    sub: &Subscriber,
    seconds: u64,
) -> Result<(Vec<i64>, Vec<i64>), BenchError> {
    eprintln!("paced latency runs …");
    let n1000 = 1000 * seconds;
    let lines1000 = lines(1, n1000, 2).into_iter().next().unwrap_or_default();
    let ack1000 = feed(lan, lines1000, 512, Some(Duration::from_millis(1))).await?;
    let n100 = 100 * seconds;
    let skip = sub.latency_count();
    let lines100 = lines(1, n100, 3).into_iter().next().unwrap_or_default();
    feed(lan, lines100, 512, Some(Duration::from_millis(10))).await?;
    wait_until(Duration::from_secs(10), || {
        sub.latency_count() >= skip + n100 as usize
    })
    .await;
    Ok((ack1000, sub.latencies_since(skip)))
}

/// One LAN register pushing `lines` with up to `window` unacked; returns ack latencies (µs).
pub(super) async fn feed(
    addr: SocketAddr,
    lines: Vec<Vec<u8>>,
    window: usize,
    pace: Option<Duration>,
) -> Result<Vec<i64>, BenchError> {
    let stream = TcpStream::connect(addr).await.map_err(err)?;
    stream.set_nodelay(true).map_err(err)?;
    let (rd, mut wr) = stream.into_split();
    let sent: Arc<Mutex<VecDeque<Instant>>> = Arc::new(Mutex::new(VecDeque::new()));
    let permits = Arc::new(tokio::sync::Semaphore::new(window));
    let n = lines.len();
    let (s2, p2) = (sent.clone(), permits.clone());
    let reader = tokio::spawn(async move {
        let mut rd = BufReader::new(rd).lines();
        let mut lat = Vec::with_capacity(n);
        while lat.len() < n {
            match rd.next_line().await {
                Ok(Some(l)) if l.starts_with("{\"ack\"") => {
                    if let Some(t) = s2.lock().await.pop_front() {
                        lat.push(t.elapsed().as_micros() as i64);
                    }
                    p2.add_permits(1);
                }
                _ => {
                    return Err(BenchError(
                        "register connection ended before every ack".into(),
                    ));
                }
            }
        }
        Ok(lat)
    });
    let start = Instant::now();
    for (i, l) in lines.into_iter().enumerate() {
        if let Some(p) = pace {
            tokio::time::sleep_until((start + p * i as u32).into()).await;
        }
        permits.acquire().await.map_err(err)?.forget();
        sent.lock().await.push_back(Instant::now());
        wr.write_all(&l).await.map_err(err)?;
    }
    reader.await.map_err(err)?
}

/// The broker, certificates and temp dir every bench run shares.
pub(super) struct Rig {
    /// Temp dir holding certificates, configs and databases.
    pub(super) dir: tempfile::TempDir,
    pki: certs::Pki,
    port: u16,
    /// Publishes in flight for every client, so the ceiling and posedge compare fairly.
    inflight: u16,
    _broker: Mosquitto,
}

impl Rig {
    /// Certificates and Mosquitto with TLS and mTLS on a free loopback port.
    pub(super) fn start(inflight: u16) -> Result<Rig, BenchError> {
        let dir = tempfile::tempdir().map_err(err)?;
        let pki =
            certs::generate(dir.path(), "bench-ca", &["agent", "cloud", "bare"]).map_err(err)?;
        let port = free_port()?;
        let broker = Mosquitto::start(dir.path(), port, &pki.ca, &pki.server.0, &pki.server.1)
            .map_err(err)?;
        Ok(Rig {
            dir,
            pki,
            port,
            inflight,
            _broker: broker,
        })
    }

    /// Session options for the client certificate `name`.
    pub(super) fn client(&self, name: &str) -> Result<SessionOptions, BenchError> {
        let (c, k) = self
            .pki
            .client(name)
            .ok_or_else(|| BenchError(format!("no {name} cert")))?;
        Ok(SessionOptions {
            version: MqttVersion::V5,
            host: "localhost".into(),
            port: self.port,
            client_id: format!("bench-{name}"),
            keep_alive: Duration::from_secs(30),
            tls: Some(tls::client_config(&self.pki.ca, Some((c, k))).map_err(err)?),
            will: ("posedge/v1/bench/will".into(), Vec::new()),
            max_inflight: self.inflight,
        })
    }

    /// An agent config with one LAN source on `lan_port`, uplink to this broker.
    pub(super) fn agent_config(&self, lan_port: u16) -> Result<std::path::PathBuf, BenchError> {
        let (c, k) = self
            .pki
            .client("agent")
            .ok_or_else(|| BenchError("no agent cert".into()))?;
        let cfg = self.dir.path().join("posedge.toml");
        std::fs::write(
            &cfg,
            format!(
                "tenant = \"bench\"\nstore_id = \"store\"\n[outbox]\npath = \"{db}\"\nmin_free_disk = 0\nmax_bytes = \"4GiB\"\n\
                 [uplink]\nurl = \"mqtts://localhost:{port}\"\nca = \"{ca}\"\ncert = \"{c}\"\nkey = \"{k}\"\nmax_inflight = {inf}\n\
                 [[source]]\nname = \"lan\"\nkind = \"tcp\"\nlisten = \"127.0.0.1:{lan_port}\"\nmax_pending_acks = 4096\n[log]\nlevel = \"warn\"\n",
                db = self.dir.path().join("outbox.db").display(),
                port = self.port,
                ca = self.pki.ca.display(),
                c = c.display(),
                k = k.display(),
                inf = self.inflight,
            ),
        )
        .map_err(err)?;
        Ok(cfg)
    }

    /// This binary as `posedge run --config cfg`, under `wrapper` (words split at
    /// spaces, e.g. `valgrind --tool=callgrind`) when given; stopped on drop.
    pub(super) fn spawn_agent(
        &self,
        cfg: &Path,
        env: &[(&str, &std::ffi::OsStr)],
        wrapper: Option<&str>,
    ) -> Result<AgentProc, BenchError> {
        let exe = std::env::current_exe().map_err(err)?;
        let wrapper: Vec<&str> = wrapper
            .map(|w| w.split_whitespace().collect())
            .unwrap_or_default();
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.args(["run", "--config"])
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Ok(AgentProc(cmd.spawn().map_err(err)?))
    }
}

/// The agent as a child process, killed on drop.
pub(super) struct AgentProc(pub(super) Child);

impl AgentProc {
    /// Stops the agent with SIGTERM, as an operator would, so that a wrapper such as
    /// valgrind or perf writes its report; killed if it does not stop within 5 minutes
    /// (valgrind's slow-down stretches the last summary pass the agent waits for).
    fn stop(mut self) {
        let Some(pid) = rustix::process::Pid::from_raw(self.0.id() as i32) else {
            return;
        };
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let end = Instant::now() + Duration::from_secs(300);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs every measurement and prints the report table.
pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    if args.decoders {
        print_decoders();
        return Ok(());
    }
    #[cfg(feature = "cloud")]
    if args.cloud {
        return crate::cloud::bench::run(args.events).await.map_err(err);
    }
    if let Some(events) = args.backlog {
        return super::backlog::run(events, &args).await;
    }
    let rig = Rig::start(args.inflight)?;
    let client = |name: &str| rig.client(name);
    let sub = Subscriber::start(&client("cloud")?, "posedge/v1/bench/#", false);
    if !wait_until(Duration::from_secs(10), || sub.seen().subscribed).await {
        return Err(BenchError("subscriber could not subscribe".into()));
    }
    let per = (args.events / u64::from(args.registers.max(1))).max(1);
    eprintln!("generating {} events …", per * u64::from(args.registers));
    let feed_lines = lines(args.registers.max(1), per, 1);
    let payloads: Vec<Vec<u8>> = feed_lines
        .iter()
        .flatten()
        .map(|l| l[..l.len() - 1].to_vec())
        .collect();
    let avg = payloads.iter().map(Vec::len).sum::<usize>() / payloads.len().max(1);

    eprintln!("ceilings: bare SQLite inserts, bare MQTT publisher …");
    let (sqlite, ceiling) = if args.e2e_only {
        (f64::NAN, f64::NAN)
    } else {
        (
            sqlite_ceiling(rig.dir.path(), &payloads, 256)?,
            mqtt_ceiling(
                &client("bare")?,
                &sub,
                &published_messages(&feed_lines),
                payloads.len() as u64,
            )
            .await?,
        )
    };

    let lan_port = free_port()?;
    let cfg = rig.agent_config(lan_port)?;
    let agent = rig.spawn_agent(&cfg, &[], args.agent_wrapper.as_deref())?;
    let pid = agent.0.id();
    let lan: SocketAddr = ([127, 0, 0, 1], lan_port).into();
    // Under valgrind the agent takes a while to start.
    let start_within = Duration::from_secs(if args.agent_wrapper.is_none() {
        10
    } else {
        120
    });
    if !wait_until(start_within, || std::net::TcpStream::connect(lan).is_ok()).await {
        return Err(BenchError("agent did not listen".into()));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = proc_kib(pid, "VmRSS:");
    if args.latency_only {
        let (mut ack1000, mut cloud100) = paced(lan, &sub, args.latency_s).await?;
        agent.stop();
        let ms = |us: i64| us as f64 / 1000.0;
        println!("\n| paced run | p50 | p90 | p99 | max |\n|---|---|---|---|---|");
        let [a50, a90, a99, amax] = [0.5, 0.9, 0.99, 1.0].map(|p| ms(percentile(&mut ack1000, p)));
        println!(
            "| ack at 1000 events/s | {a50:.2} ms | {a90:.2} ms | {a99:.2} ms | {amax:.2} ms |"
        );
        let [c50, c90, c99, cmax] = [0.5, 0.9, 0.99, 1.0].map(|p| percentile(&mut cloud100, p));
        println!(
            "| agent → subscriber at 100 events/s | {c50} ms | {c90} ms | {c99} ms | {cmax} ms |"
        );
        return Ok(());
    }

    eprintln!("posedge end to end: {} registers …", args.registers);
    let base = sub.total();
    // The ceiling run's derived messages reached the same subscriber.
    let derived_base = sub.seen().derived;
    let total = per * u64::from(args.registers);
    let cpu_before = cpu_s(pid);
    let start = Instant::now();
    let feeds: Vec<_> = feed_lines
        .into_iter()
        .map(|l| tokio::spawn(feed(lan, l, 512, None)))
        .collect();
    let mut ack_all = Vec::new();
    for f in feeds {
        ack_all.extend(f.await.map_err(err)??);
    }
    let ingest_rate = total as f64 / start.elapsed().as_secs_f64();
    if !wait_until(Duration::from_secs(300), || sub.total() >= base + total).await {
        return Err(BenchError(
            "the subscriber did not receive every event".into(),
        ));
    }
    let e2e = total as f64 / start.elapsed().as_secs_f64();
    let cpu_per_event_us = (cpu_s(pid) - cpu_before) * 1e6 / total as f64;
    let peak_rss = proc_kib(pid, "VmHWM:");
    let derived = sub.seen().derived - derived_base;
    if args.e2e_only {
        agent.stop();
        println!(
            "\n{total} events ({derived} derived messages too) end to end in {:.2} s: {e2e:.0} events/s, agent CPU {cpu_per_event_us:.1} µs/event",
            start.elapsed().as_secs_f64()
        );
        return Ok(());
    }

    // The paced runs measure latency at a steady 1,000 and 100 events/s, not in the
    // burst's wake: the agent first finishes what the burst left (deletes, checkpoints,
    // the day's summary revision), and the time that takes is reported.
    let settle_start = Instant::now();
    let settled = settle(pid, Duration::from_secs(60)).await;
    let settle_s = settle_start.elapsed().as_secs_f64();
    let (mut ack1000, mut cloud100) = paced(lan, &sub, args.latency_s).await?;
    let after_rss = proc_kib(pid, "VmRSS:");
    agent.stop();

    let ms = |us: i64| us as f64 / 1000.0;
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    let ratio = e2e / ceiling;
    let p99_ack = ms(percentile(&mut ack1000, 0.99));
    let p99_cloud = percentile(&mut cloud100, 0.99);
    println!(
        "\n## posedge bench ({} events of ~{avg} B, {} registers, TLS 1.3 + mTLS, QoS 1, Mosquitto on loopback)\n",
        total, args.registers
    );
    println!("| figure | measured | target | |");
    println!("|---|---|---|---|");
    println!(
        "| ceiling: bare SQLite inserts (WAL, synchronous=FULL, 256/commit) | {sqlite:.0} rows/s | | |"
    );
    println!(
        "| ceiling: bare MQTT publisher (no persistence), the messages posedge publishes | {ceiling:.0} events/s | | |"
    );
    println!(
        "| posedge derived messages (inventory) published besides the {total} events | {derived} | | |"
    );
    println!("| posedge ingest (acked, durable) | {ingest_rate:.0} events/s | | |");
    println!(
        "| posedge end to end (TCP in → durable → subscriber) | {e2e:.0} events/s | ≥ 20000 | {} |",
        verdict(e2e >= 20_000.0)
    );
    println!("| agent CPU per event (user + system) | {cpu_per_event_us:.0} µs | | |");
    println!(
        "| ratio to the MQTT ceiling | {ratio:.2} | ≥ 0.70 | {} |",
        verdict(ratio >= 0.7)
    );
    println!(
        "| ack latency under full load p50 / p99 | {:.2} / {:.2} ms | | |",
        ms(percentile(&mut ack_all, 0.5)),
        ms(percentile(&mut ack_all, 0.99))
    );
    println!(
        "| agent busy after the burst (until its CPU falls under 5 %) | {settle_s:.1} s{} | | |",
        if settled { "" } else { ", not settled" }
    );
    println!(
        "| ack latency at 1000 events/s p50 / p99 | {:.2} / {p99_ack:.2} ms | p99 ≤ 10 ms | {} |",
        ms(percentile(&mut ack1000, 0.5)),
        verdict(p99_ack <= 10.0)
    );
    println!(
        "| agent → subscriber latency at 100 events/s p50 / p99 | {} / {p99_cloud} ms | p99 ≤ 25 ms | {} |",
        percentile(&mut cloud100, 0.5),
        verdict(p99_cloud <= 25)
    );
    println!(
        "| agent RSS idle | {:.1} MB | ≤ 16 MB | {} |",
        idle_rss as f64 / 1024.0,
        verdict(idle_rss <= 16 * 1024)
    );
    println!(
        "| agent peak RSS (whole run) | {:.1} MB | | |",
        peak_rss as f64 / 1024.0
    );
    println!(
        "| agent RSS after the run | {:.1} MB | | |",
        after_rss as f64 / 1024.0
    );
    print_decoders();
    Ok(())
}

fn print_decoders() {
    eprintln!("decoder and redactor throughput (one core) …");
    let rates = super::decoders::measure(Duration::from_millis(700));
    println!("\n### Decoders and redactor (one core, in process)\n");
    print!("{}", super::decoders::table(&rates));
}
