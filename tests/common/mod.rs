//! Real parts for the whole-agent tests: Mosquitto with TLS/mTLS, the posedge binary as a
//! child process, a cloud subscriber, and the simulated register.
#![allow(dead_code)]

use posedge::config::MqttVersion;
use posedge::demo::certs::{self, Pki};
use posedge::demo::mosquitto::Mosquitto;
use posedge::sim::subscriber::Subscriber;
use posedge::uplink::session::SessionOptions;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_port(port: u16, up: bool, within: Duration) {
    let end = Instant::now() + within;
    while Instant::now() < end {
        let open = TcpStream::connect(("127.0.0.1", port)).is_ok();
        if open == up {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "port {port} did not become {}",
        if up { "open" } else { "closed" }
    );
}

/// A test world: temp dir, PKI, a Mosquitto that requires client certificates.
pub struct World {
    pub dir: tempfile::TempDir,
    // Kept for post-mortems when POSEDGE_KEEP_TEST_DIR is set.
    pub pki: Pki,
    pub broker_port: u16,
    broker: Option<Mosquitto>,
}

impl World {
    pub fn new() -> World {
        let mut dir = tempfile::tempdir().unwrap();
        if std::env::var_os("POSEDGE_KEEP_TEST_DIR").is_some() {
            dir.disable_cleanup(true);
            eprintln!("test dir kept: {}", dir.path().display());
        }
        let pki = certs::generate(dir.path(), "test-ca", &["agent", "cloud"]).unwrap();
        World {
            dir,
            pki,
            broker_port: free_port(),
            broker: None,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn start_broker(&mut self) {
        match &mut self.broker {
            Some(m) => m.restart().unwrap(),
            None => {
                let m = Mosquitto::start(
                    self.dir.path(),
                    self.broker_port,
                    &self.pki.ca,
                    &self.pki.server.0,
                    &self.pki.server.1,
                )
                .unwrap();
                self.broker = Some(m);
            }
        }
    }

    /// A graceful stop; sessions survive into the next start.
    pub fn stop_broker(&mut self) {
        if let Some(m) = &mut self.broker {
            m.stop();
        }
    }

    /// Writes an agent config; `extra` is appended to the `[uplink]`-less top.
    pub fn agent_config(&self, lan_port: u16, outbox_extra: &str, uplink_extra: &str) -> PathBuf {
        self.agent_config_with(lan_port, outbox_extra, uplink_extra, "")
    }

    /// An agent config with more `[[source]]` tables after the LAN source.
    pub fn agent_config_with(
        &self,
        lan_port: u16,
        outbox_extra: &str,
        uplink_extra: &str,
        sources: &str,
    ) -> PathBuf {
        let (cert, key) = self.pki.client("agent").unwrap();
        let path = self.path("posedge.toml");
        std::fs::write(
            &path,
            format!(
                "tenant = \"t1\"\nstore_id = \"s1\"\n\n[outbox]\npath = \"{db}\"\nmin_free_disk = 0\n{outbox_extra}\n\n\
                 [uplink]\nurl = \"mqtts://localhost:{port}\"\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n\
                 backoff_floor_ms = 50\nbackoff_cap_ms = 500\nkeep_alive_s = 5\n{uplink_extra}\n\n\
                 [[source]]\nname = \"lan1\"\nkind = \"tcp\"\nlisten = \"127.0.0.1:{lan_port}\"\nregister_id = \"reg-default\"\nidle_timeout_s = 5\n\n{sources}",
                db = self.path("outbox.db").display(),
                port = self.broker_port,
                ca = self.pki.ca.display(),
                cert = cert.display(),
                key = key.display()
            ),
        )
        .unwrap();
        path
    }

    pub fn subscriber(&self, version: MqttVersion) -> Subscriber {
        self.subscriber_on(version, "posedge/v1/t1/s1/+/+")
    }

    /// A cloud subscriber on `filter`, keeping payloads.
    pub fn subscriber_on(&self, version: MqttVersion, filter: &str) -> Subscriber {
        let (cert, key) = self.pki.client("cloud").unwrap();
        let opts = SessionOptions {
            version,
            host: "localhost".into(),
            port: self.broker_port,
            client_id: format!("cloud-{}", self.broker_port),
            keep_alive: Duration::from_secs(5),
            tls: Some(
                posedge::uplink::tls::client_config(&self.pki.ca, Some((cert, key))).unwrap(),
            ),
            will: (String::new(), Vec::new()),
            max_inflight: 100,
        };
        let sub = Subscriber::start(&opts, filter, true);
        eventually(Duration::from_secs(10), "subscriber subscribed", || {
            sub.seen().subscribed
        });
        sub
    }
}

/// The agent binary as a child process; SIGKILLed on drop.
pub struct Agent {
    child: Child,
    pub log: PathBuf,
}

impl Agent {
    pub fn start(config: &Path, lan_port: u16, log: PathBuf) -> Agent {
        Agent::start_with_env(config, lan_port, log, &[])
    }

    /// Started with extra environment variables (e.g. systemd's NOTIFY_SOCKET).
    pub fn start_with_env(
        config: &Path,
        lan_port: u16,
        log: PathBuf,
        env: &[(&str, &str)],
    ) -> Agent {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_posedge"));
        child
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "posedge=debug")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(out);
        // An agent outliving a killed test run would keep polling its stale pty link and
        // could open a pty a later test's register is using.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            child.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))
                .map_err(std::io::Error::from)
            });
        }
        let child = child.spawn().unwrap();
        wait_port(lan_port, true, Duration::from_secs(10));
        Agent { child, log }
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `posedge status --json` of a config.
pub fn status(config: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_posedge"))
        .args(["status", "--json", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls `f` until it holds (true) or time runs out (false).
pub fn wait_for(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Waits until `f` holds or panics with `what`.
pub fn eventually(within: Duration, what: &str, f: impl FnMut() -> bool) {
    assert!(wait_for(within, f), "timed out waiting for: {what}");
}

pub fn lan(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Acked idempotency keys from a sim ledger.
pub fn acked_keys(ledger: &Path) -> Vec<String> {
    std::fs::read_to_string(ledger)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["acked"] == true)
        .filter_map(|v| v["idempotency_key"].as_str().map(String::from))
        .collect()
}

/// The shared real-world fixtures of a kind (`escpos`, `poslog`) as (name, bytes), sorted;
/// empty with a note when `shared/` is not beside the checkout.
pub fn shared_fixtures(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/fixtures/real").join(kind))
        .chain([PathBuf::from("/work/shared/fixtures/real").join(kind)])
        .find(|p| p.is_dir());
    let Some(dir) = dir else {
        println!("skipped: shared/fixtures/real/{kind} not found");
        return Vec::new();
    };
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    all.sort();
    all
}

/// The audit trail as `posedge queue audit --json` lists it.
pub fn audit_rows(cfg: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_posedge"))
        .args(["queue", "audit", "--json", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A simulated LAN register: retail profile, seed 7, store s1, NDJSON, a ledger.
pub fn sim(
    lan_port: u16,
    register: &str,
    count: u64,
    rate: u64,
    ledger: PathBuf,
) -> posedge::sim::register::SimOptions {
    posedge::sim::register::SimOptions {
        connect: lan(lan_port),
        count,
        seed: 7,
        profile: posedge::sim::generate::Profile::Retail,
        register_id: register.into(),
        business_day: "2026-11-27".into(),
        rate,
        window: 32,
        store_id: "s1".into(),
        ledger: Some(ledger),
        give_up_after: Duration::from_secs(60),
        format: posedge::config::Format::Ndjson,
        close_day: false,
    }
}
