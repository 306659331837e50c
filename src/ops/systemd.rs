//! The systemd notification protocol (sd_notify): READY, STATUS and WATCHDOG datagrams
//! to `$NOTIFY_SOCKET`. Written out because it is one datagram per message and a crate
//! would add nothing but a dependency.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// A connection to the service manager, when the agent runs under one.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    target: Target,
}

#[derive(Debug)]
enum Target {
    Path(PathBuf),
    #[cfg(target_os = "linux")]
    Abstract(Vec<u8>),
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`; `None` when not started by systemd with `Type=notify`.
    pub fn from_env() -> io::Result<Option<Self>> {
        let Some(addr) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        let bytes = addr.as_encoded_bytes();
        let target = match bytes.strip_prefix(b"@") {
            #[cfg(target_os = "linux")]
            Some(name) => Target::Abstract(name.to_vec()),
            #[cfg(not(target_os = "linux"))]
            Some(_) => return Ok(None),
            None => Target::Path(PathBuf::from(addr)),
        };
        Ok(Some(Notifier {
            socket: UnixDatagram::unbound()?,
            target,
        }))
    }

    /// Sends one notification, e.g. `READY=1\nSTATUS=…`.
    pub fn notify(&self, message: &str) -> io::Result<()> {
        match &self.target {
            Target::Path(p) => self.socket.send_to(message.as_bytes(), p).map(|_| ()),
            #[cfg(target_os = "linux")]
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                self.socket
                    .send_to_addr(message.as_bytes(), &addr)
                    .map(|_| ())
            }
        }
    }
}

/// The watchdog period systemd expects (`WatchdogSec=`), when it is for this process.
pub fn watchdog_period() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// A STATUS line as `systemctl status` shows it (one line, no newlines).
pub fn status_text(pending: u64, oldest_age_s: Option<u64>, link: &str) -> String {
    let age = oldest_age_s.map_or(String::new(), |a| format!(", oldest {a}s"));
    format!("STATUS={pending} event(s) queued{age}; uplink {link}").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            target: Target::Path(path),
        };
        n.notify("READY=1").unwrap();
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        assert_eq!(
            status_text(3, Some(9), "up"),
            "STATUS=3 event(s) queued, oldest 9s; uplink up"
        );
    }
}
