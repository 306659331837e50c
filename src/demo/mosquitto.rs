//! Debian's Mosquitto as a child process with TLS and required client certificates: the
//! interop broker of the tests and the benchmark.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Mosquitto; killed on drop.
pub struct Mosquitto {
    child: Option<Child>,
    conf: PathBuf,
    /// Loopback port it listens on.
    pub port: u16,
}

/// Why Mosquitto could not start.
#[derive(Debug, thiserror::Error)]
pub enum MosquittoError {
    /// The binary is missing or the config could not be written.
    #[error("cannot start mosquitto (install it with `apt-get install mosquitto`): {0}")]
    Spawn(#[from] std::io::Error),
    /// It did not open its port.
    #[error("mosquitto did not listen on port {0} within 10 s (see {1})")]
    NotListening(u16, String),
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn wait(port: u16, open: bool) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if port_open(port) == open {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

impl Mosquitto {
    /// Writes a config into `dir` (persistence and log there too) and starts the broker.
    pub fn start(
        dir: &Path,
        port: u16,
        ca: &Path,
        cert: &Path,
        key: &Path,
    ) -> Result<Mosquitto, MosquittoError> {
        Self::start_with(dir, port, (ca, cert, key), "")
    }

    /// Like [`Mosquitto::start`], with `extra` lines appended to the config (an ACL, say).
    pub fn start_with(
        dir: &Path,
        port: u16,
        (ca, cert, key): (&Path, &Path, &Path),
        extra: &str,
    ) -> Result<Mosquitto, MosquittoError> {
        let conf = dir.join("mosquitto.conf");
        // `user root` keeps a root-started broker from dropping to a user that cannot
        // write the private temp dir; persistence lets a graceful restart keep sessions.
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nuser root\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n\
                 require_certificate true\ntls_version tlsv1.2\nallow_anonymous true\n\
                 persistence true\npersistence_location {dir}/\nmax_inflight_messages 1000\n\
                 max_queued_messages 1000000\nlog_dest file {dir}/mosquitto.log\nlog_type error\nlog_type warning\n{extra}\n",
                ca = ca.display(),
                cert = cert.display(),
                key = key.display(),
                dir = dir.display()
            ),
        )?;
        let mut m = Mosquitto {
            child: None,
            conf,
            port,
        };
        m.restart()?;
        Ok(m)
    }

    /// Starts it again after [`Mosquitto::stop`].
    pub fn restart(&mut self) -> Result<(), MosquittoError> {
        if self.child.is_some() {
            return Ok(());
        }
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        if !wait(self.port, true) {
            return Err(MosquittoError::NotListening(
                self.port,
                self.conf.display().to_string(),
            ));
        }
        Ok(())
    }

    /// A graceful stop (SIGTERM): Mosquitto saves its sessions, as a real restart does.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
            wait(self.port, false);
        }
    }

    /// True while the process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
