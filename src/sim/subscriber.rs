//! A cloud-side subscriber for the demo, the tests and the benchmark: counts what actually
//! arrived at the broker, by idempotency key, and how late.

use crate::clock::now_ms;
use crate::uplink::session::SessionOptions;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the subscriber has seen.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Deliveries per idempotency key.
    pub by_key: HashMap<String, u32>,
    /// Order of arrival per register: `(register, pos_sequence)`.
    pub order: Vec<(String, u64)>,
    /// Publish → arrival latency in ms (agent `received_at` to now).
    pub latency_ms: Vec<i64>,
    /// Raw payloads, when kept.
    pub payloads: Vec<Vec<u8>>,
    /// Messages that were not events (status and the like).
    pub other: u64,
    /// The subscription has been acknowledged at least once.
    pub subscribed: bool,
    /// Every message received except derived feeds, events or not.
    pub total: u64,
    /// Derived-feed messages (inventory), counted apart.
    pub derived: u64,
}

impl Seen {
    /// Distinct keys.
    pub fn unique(&self) -> usize {
        self.by_key.len()
    }
    /// Deliveries beyond the first.
    pub fn duplicates(&self) -> u64 {
        self.by_key
            .values()
            .map(|&n| u64::from(n.saturating_sub(1)))
            .sum()
    }
}

/// A running subscriber.
pub struct Subscriber {
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Subscriber {
    /// Subscribes to `filter` with the connection settings in `o` (its will is ignored).
    pub fn start(o: &SessionOptions, filter: &str, keep_payloads: bool) -> Subscriber {
        let mut opts = MqttOptions::new(&o.client_id, &o.host, o.port);
        // A persistent session, as a real cloud consumer has: the broker keeps its messages
        // while it reconnects, including across a graceful broker restart.
        opts.set_keep_alive(o.keep_alive)
            .set_max_packet_size(Some(16 << 20))
            .set_clean_start(false)
            .set_session_expiry_interval(Some(3600));
        if let Some(tls) = &o.tls {
            opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                tls.clone(),
            )));
        }
        let (client, mut el) = AsyncClient::new(opts, 64);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        let filter = filter.to_string();
        let task = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.subscribe(filter.clone(), QoS::AtLeastOnce).await;
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        s.lock().unwrap_or_else(|e| e.into_inner()).subscribed = true;
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let mut seen = s.lock().unwrap_or_else(|e| e.into_inner());
                        record(&mut seen, &p.payload, keep_payloads);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
                }
            }
        });
        Subscriber { seen, task }
    }

    /// A copy of what has been seen so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Messages received so far.
    pub fn total(&self) -> u64 {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).total
    }

    /// Latencies recorded after the first `skip`, in ms.
    pub fn latencies_since(&self, skip: usize) -> Vec<i64> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.latency_ms
            .get(skip..)
            .map(<[i64]>::to_vec)
            .unwrap_or_default()
    }

    /// Latencies recorded so far.
    pub fn latency_count(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .latency_ms
            .len()
    }

    /// Distinct events so far.
    pub fn unique(&self) -> usize {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).unique()
    }
}

/// The few members the subscriber looks at; the rest is skipped without allocating, so
/// the subscriber does not dominate the benchmark it measures.
#[derive(serde::Deserialize)]
struct Probe<'a> {
    #[serde(borrow)]
    schema: Option<Cow<'a, str>>,
    #[serde(borrow)]
    idempotency_key: Option<Cow<'a, str>>,
    #[serde(borrow)]
    register_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pos_sequence: Option<&'a RawValue>,
    #[serde(borrow)]
    received_at: Option<Cow<'a, str>>,
}

fn record(seen: &mut Seen, payload: &[u8], keep: bool) {
    if keep {
        seen.payloads.push(payload.to_vec());
    }
    let Ok(p) = serde_json::from_slice::<Probe>(payload) else {
        seen.total += 1;
        seen.other += 1;
        return;
    };
    // Derived feeds (inventory) carry their own schema and keys; they are not events.
    if p.schema
        .as_deref()
        .is_some_and(|s| s != crate::event::SCHEMA)
    {
        seen.derived += 1;
        return;
    }
    seen.total += 1;
    let Some(key) = p.idempotency_key else {
        seen.other += 1;
        return;
    };
    *seen.by_key.entry(key.into_owned()).or_default() += 1;
    if let (Some(r), Some(Ok(n))) = (
        p.register_id,
        p.pos_sequence.map(|r| r.get().parse::<u64>()),
    ) {
        seen.order.push((r.into_owned(), n));
    }
    if let Some(t) = p.received_at
        && let Ok(at) =
            time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
    {
        let at_ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
        seen.latency_ms.push(now_ms() - at_ms);
    }
}
