//! The outbox bounds of DESIGN §2.5: bytes waiting for the uplink and free disk.

use std::path::{Path, PathBuf};

/// Why ingest is paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pressure {
    /// Queued bytes reached `max_bytes`.
    QueueFull {
        /// Bytes waiting.
        pending: u64,
        /// The bound.
        max: u64,
    },
    /// Free disk under `min_free_disk`.
    DiskLow {
        /// Bytes free (filesystem plus SQLite free pages).
        free: u64,
        /// The floor.
        min: u64,
    },
}

impl std::fmt::Display for Pressure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pressure::QueueFull { pending, max } => write!(
                f,
                "outbox holds {pending} bytes, at its bound of {max}: acks are withheld until the uplink drains it (check the broker link)"
            ),
            Pressure::DiskLow { free, min } => write!(
                f,
                "only {free} bytes free on the outbox disk, below the floor of {min}: acks are withheld (free disk space)"
            ),
        }
    }
}

/// Checks the bounds; owned by the writer thread.
#[derive(Debug)]
pub struct SpaceGuard {
    dir: PathBuf,
    max_bytes: u64,
    min_free: u64,
}

impl SpaceGuard {
    /// Guards the filesystem holding `db`.
    pub fn new(db: &Path, max_bytes: u64, min_free: u64) -> Self {
        let dir = match db.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        SpaceGuard {
            dir,
            max_bytes,
            min_free,
        }
    }

    /// `None` when ingest may proceed. `reusable` is free space inside the database file.
    pub fn check(&self, pending: u64, reusable: u64) -> Option<Pressure> {
        if pending >= self.max_bytes {
            return Some(Pressure::QueueFull {
                pending,
                max: self.max_bytes,
            });
        }
        let free = free_disk(&self.dir).saturating_add(reusable);
        (free < self.min_free).then_some(Pressure::DiskLow {
            free,
            min: self.min_free,
        })
    }
}

/// Bytes available to unprivileged writers on the filesystem of `dir`; on error, report
/// plenty, because a failing statvfs must not stop trading (SQLite still reports a full
/// disk itself).
fn free_disk(dir: &Path) -> u64 {
    match rustix::fs::statvfs(dir) {
        Ok(s) => s.f_bavail.saturating_mul(s.f_frsize),
        Err(_) => u64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_bound_and_disk_floor() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("o.db");
        let g = SpaceGuard::new(&db, 100, 0);
        assert_eq!(g.check(99, 0), None);
        assert!(matches!(g.check(100, 0), Some(Pressure::QueueFull { .. })));
        let g = SpaceGuard::new(&db, 100, u64::MAX);
        assert!(matches!(g.check(0, 0), Some(Pressure::DiskLow { .. })));
    }
}
