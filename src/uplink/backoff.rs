//! Reconnect delays: exponential growth with full jitter, so a fleet of stores that lost
//! the same broker does not reconnect in lock-step.

use rand::Rng;
use std::time::Duration;

/// Exponential backoff with full jitter between zero and a growing bound.
#[derive(Debug, Clone)]
pub struct Backoff {
    floor: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// Bounds start at `floor` and double up to `cap`.
    pub fn new(floor: Duration, cap: Duration) -> Self {
        Backoff {
            floor,
            cap: cap.max(floor),
            attempt: 0,
        }
    }

    /// The bound for the current attempt.
    pub fn bound(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.floor.saturating_mul(factor).min(self.cap)
    }

    /// The next delay: uniform in [0, bound]; advances the attempt counter.
    pub fn next_delay(&mut self) -> Duration {
        let bound = self.bound();
        self.attempt = self.attempt.saturating_add(1);
        let ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=ms))
    }

    /// A connection succeeded: start again from the floor.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let bounds: Vec<u64> = (0..6)
            .map(|_| {
                let bound = b.bound().as_millis() as u64;
                assert!(b.next_delay() <= Duration::from_millis(bound));
                bound
            })
            .collect();
        assert_eq!(bounds, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.bound(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut b = Backoff::new(Duration::from_millis(1000), Duration::from_millis(1000));
        let delays: std::collections::HashSet<_> = (0..50).map(|_| b.next_delay()).collect();
        assert!(
            delays.len() > 10,
            "full jitter must spread delays: {delays:?}"
        );
    }
}
