//! What the uplink counts for the metrics endpoint: publishes, PUBACKs, refusals,
//! reconnects and the PUBACK round trip. Atomics, so the drain loop never waits on a scrape.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Uplink counters, shared with the metrics endpoint.
#[derive(Debug, Default)]
pub struct UplinkCounters {
    /// Events handed to the MQTT client.
    pub publishes: AtomicU64,
    /// Successful PUBACKs of events.
    pub pubacks: AtomicU64,
    /// PUBACKs with a failure reason (event moved to the dead letters).
    pub refused: AtomicU64,
    /// Connection attempts after the first.
    pub reconnects: AtomicU64,
    /// Connected to the broker now.
    pub connected: AtomicBool,
    /// Sum of PUBACK round trips, microseconds.
    pub rtt_us_sum: AtomicU64,
    /// Round trips summed.
    pub rtt_count: AtomicU64,
}

impl UplinkCounters {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one PUBACK round trip.
    pub fn rtt(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.rtt_us_sum.fetch_add(us, Ordering::Relaxed);
        self.rtt_count.fetch_add(1, Ordering::Relaxed);
    }
}
