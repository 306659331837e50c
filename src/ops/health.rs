//! Liveness of the pipeline's long-running stages, for the systemd watchdog: each stage
//! beats while it is being scheduled and not blocked; a stage that stops beating is
//! wedged, and the agent stops telling systemd it is alive.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A stage whose liveness is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The outbox writer thread.
    Writer,
    /// The uplink task.
    Uplink,
}

/// Last beat of each stage, in milliseconds since the agent started.
#[derive(Debug)]
pub struct Health {
    start: Instant,
    writer: AtomicU64,
    uplink: AtomicU64,
}

/// How often stages beat when idle; stalls are judged against a multiple of it.
pub const BEAT_EVERY: Duration = Duration::from_secs(1);

impl Health {
    /// Every stage counted alive now.
    pub fn new() -> Arc<Self> {
        Arc::new(Health {
            start: Instant::now(),
            writer: AtomicU64::new(0),
            uplink: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn slot(&self, stage: Stage) -> &AtomicU64 {
        match stage {
            Stage::Writer => &self.writer,
            Stage::Uplink => &self.uplink,
        }
    }

    /// Records that `stage` is running.
    pub fn beat(&self, stage: Stage) {
        self.slot(stage).store(self.now_ms(), Ordering::Relaxed);
    }

    /// The first stage silent for longer than `limit`, if any.
    pub fn stalled(&self, limit: Duration) -> Option<Stage> {
        let now = self.now_ms();
        let limit = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        [Stage::Writer, Stage::Uplink]
            .into_iter()
            .find(|s| now.saturating_sub(self.slot(*s).load(Ordering::Relaxed)) > limit)
    }
}

/// Sleeps for `d` while beating for `stage`, so a long backoff does not read as a stall.
pub async fn sleep_beating(d: Duration, health: &Health, stage: Stage) {
    let until = tokio::time::Instant::now() + d;
    loop {
        health.beat(stage);
        let now = tokio::time::Instant::now();
        if now >= until {
            return;
        }
        tokio::time::sleep_until(until.min(now + BEAT_EVERY)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_stage_is_reported() {
        let h = Health::new();
        h.beat(Stage::Writer);
        h.beat(Stage::Uplink);
        assert_eq!(h.stalled(Duration::from_secs(5)), None);
        std::thread::sleep(Duration::from_millis(30));
        h.beat(Stage::Uplink);
        assert_eq!(h.stalled(Duration::from_millis(20)), Some(Stage::Writer));
    }
}
