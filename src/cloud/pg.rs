//! A throw-away PostgreSQL cluster (Debian's server binaries) in a temp dir on a loopback
//! port, for the tests and the benchmark (feature `demo`). PostgreSQL refuses to run as
//! root, so under root it runs as the `postgres` user.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running cluster; stopped (fast shutdown) on drop.
pub struct TempPostgres {
    child: Option<Child>,
    bin: PathBuf,
    sock: PathBuf,
    /// Loopback port.
    pub port: u16,
}

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// No server binaries.
    #[error(
        "no PostgreSQL server binaries under /usr/lib/postgresql (install them with `apt-get install postgresql`)"
    )]
    NotInstalled,
    /// A step failed.
    #[error("temp PostgreSQL: {0}")]
    Step(String),
}

fn step<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> PgError + '_ {
    move |e| PgError::Step(format!("{what}: {e}"))
}

/// The newest installed server's `bin` directory.
fn bin_dir() -> Result<PathBuf, PgError> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| PgError::NotInstalled)?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b).ok_or(PgError::NotInstalled)
}

/// uid and gid of the `postgres` user when we are root.
fn run_as() -> Result<Option<(u32, u32)>, PgError> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the effective user.
    let euid = std::fs::metadata("/proc/self")
        .map_err(step("reading /proc/self"))?
        .uid();
    if euid != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(step("reading /etc/passwd"))?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"postgres"))
        .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))
        .map(Some)
        .ok_or_else(|| PgError::Step("running as root and there is no postgres user".into()))
}

fn command(bin: &Path, program: &str, user: Option<(u32, u32)>) -> Command {
    let mut c = Command::new(bin.join(program));
    if let Some((uid, gid)) = user {
        c.uid(uid).gid(gid);
    }
    c
}

impl TempPostgres {
    /// initdb into `dir/pgdata` (trust auth, user `postgres`) and start on `port`.
    pub fn start(dir: &Path, port: u16) -> Result<TempPostgres, PgError> {
        let bin = bin_dir()?;
        let user = run_as()?;
        let data = dir.join("pgdata");
        let sock = dir.join("pgsock");
        for d in [dir, &sock] {
            std::fs::create_dir_all(d).map_err(step("creating the data dir"))?;
            if let Some((uid, gid)) = user {
                std::os::unix::fs::chown(d, Some(uid), Some(gid)).map_err(step("chown"))?;
            }
        }
        let out = command(&bin, "initdb", user)
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .output()
            .map_err(step("initdb"))?;
        if !out.status.success() {
            return Err(PgError::Step(format!(
                "initdb: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let log = std::fs::File::create(dir.join("postgres.log")).map_err(step("log file"))?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.join("postgres.log"), Some(uid), Some(gid))
                .map_err(step("chown"))?;
        }
        // A test database: durability off (fsync), so the disk does not set the pace.
        let child = command(&bin, "postgres", user)
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&sock)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=50"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(step("starting postgres"))?;
        let mut pg = TempPostgres {
            child: Some(child),
            bin,
            sock,
            port,
        };
        // Generous, for several cloud tests starting servers at once on a loaded 2-core
        // machine (30 s ran out there); a server that fails exits, which is seen at once.
        pg.wait_ready(Duration::from_secs(120), &dir.join("postgres.log"))?;
        Ok(pg)
    }

    fn wait_ready(&mut self, within: Duration, log: &Path) -> Result<(), PgError> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                let log = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(PgError::Step(format!(
                    "postgres exited ({status}) before it was ready on port {}: {}",
                    self.port,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                )));
            }
            // Asked on this server's own socket directory: on 127.0.0.1 another server
            // holding the port would answer for it.
            let ok = Command::new(self.bin.join("pg_isready"))
                .arg("-h")
                .arg(&self.sock)
                .args(["-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(PgError::Step(format!(
            "not ready on port {} within {within:?}",
            self.port
        )))
    }

    /// A connection string for `database`, over the cluster's Unix socket (no loopback
    /// TCP for other programs on the machine to disturb).
    pub fn url(&self, database: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={database}",
            self.sock.display(),
            self.port
        )
    }

    /// The server's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGINT is PostgreSQL's fast shutdown: backends end, no crash recovery next time.
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }
}
