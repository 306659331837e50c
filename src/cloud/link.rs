//! The sink's MQTT 5 connection: a persistent session (so a restarted instance gets what
//! it had not acknowledged), the shared subscriptions, and manual acknowledgements sent
//! only after the message's PostgreSQL transaction has committed.

use super::config::CloudConfig;
use crate::uplink::backoff::Backoff;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Why the broker connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The URL or TLS files are unusable.
    #[error("broker: {0}")]
    Setup(String),
    /// rumqttc refused a request (its queue is gone: the event loop ended).
    #[error("broker client: {0}")]
    Client(String),
}

/// A received message and the connection it came on.
pub struct Inbound {
    /// The connection's number (increases with every CONNACK).
    pub connection: u64,
    /// The message.
    pub publish: Publish,
}

/// The handle the sink acknowledges and publishes through.
#[derive(Clone)]
pub struct Link {
    client: AsyncClient,
    connection: Arc<AtomicU64>,
}

impl Link {
    /// Acknowledges a message, unless its connection has since dropped: a packet id of
    /// an old connection could name another message on the new one; the broker resends
    /// the unacknowledged message instead (stored again as a duplicate, absorbed).
    pub async fn ack(&self, m: &Inbound) -> Result<bool, LinkError> {
        if m.connection != self.connection.load(Ordering::Acquire) {
            return Ok(false);
        }
        self.client
            .ack(&m.publish)
            .await
            .map_err(|e| LinkError::Client(e.to_string()))?;
        Ok(true)
    }

    /// Publishes a command at QoS 1 (not retained).
    pub async fn publish(&self, topic: String, payload: Vec<u8>) -> Result<(), LinkError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| LinkError::Client(e.to_string()))?;
        Ok(())
    }

    /// Sends DISCONNECT (best effort).
    pub async fn disconnect(&self) {
        let _ = self.client.disconnect().await;
    }
}

/// The topic filters: events, inventory, status and replies through the shared group;
/// summaries on a plain subscription too, since retained messages are not delivered to
/// shared subscriptions (every instance stores them; revisions are idempotent).
pub fn filters(cfg: &CloudConfig) -> Vec<String> {
    let root = cfg.layout().any_store();
    let group = &cfg.sink.group;
    vec![
        format!("$share/{group}/{root}/+/+"),
        format!("$share/{group}/{root}/_agent/reply/+"),
        format!("{root}/_agent/summary/+"),
    ]
}

/// Connects in the background; messages arrive on the receiver. The event loop
/// reconnects with backoff for as long as the receiver lives.
pub fn start(cfg: &CloudConfig) -> Result<(Link, mpsc::UnboundedReceiver<Inbound>), LinkError> {
    let b = &cfg.broker;
    let (host, port, tls) = b.endpoint().map_err(LinkError::Setup)?;
    let mut opts = MqttOptions::new(cfg.client_id(), host, port);
    opts.set_keep_alive(Duration::from_secs(b.keep_alive_s))
        .set_clean_start(false)
        .set_session_expiry_interval(Some(cfg.sink.session_expiry_s))
        .set_receive_maximum(Some(cfg.sink.receive_maximum))
        .set_manual_acks(true)
        .set_max_packet_size(Some(16 << 20))
        .set_outgoing_inflight_upper_limit(b.max_inflight);
    if tls {
        let ca =
            b.ca.as_deref()
                .ok_or_else(|| LinkError::Setup("mqtts:// needs broker.ca".into()))?;
        let client = b.cert.as_deref().zip(b.key.as_deref());
        let config = crate::uplink::tls::client_config(ca, client)
            .map_err(|e| LinkError::Setup(e.to_string()))?;
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
    } else {
        tracing::warn!("insecure_plaintext: the broker connection is not encrypted");
    }
    // The event loop must never wait on the sink: it is what drains the acks the sink
    // queues. The broker sends at most `receive_maximum` unacknowledged messages, which
    // bounds the inbound channel; the request queue has room for all their acks.
    let cap = usize::from(cfg.sink.receive_maximum) + 256;
    let (client, mut eventloop) = AsyncClient::new(opts, cap);
    let (tx, rx) = mpsc::unbounded_channel();
    let connection = Arc::new(AtomicU64::new(0));
    let link = Link {
        client: client.clone(),
        connection: connection.clone(),
    };
    let filters = filters(cfg);
    let mut backoff = Backoff::new(b.backoff_floor(), b.backoff_cap());
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    connection.fetch_add(1, Ordering::AcqRel);
                    backoff.reset();
                    tracing::info!(
                        session_present = ack.session_present,
                        "cloud-sink connected"
                    );
                    for f in &filters {
                        if let Err(e) = client.try_subscribe(f.clone(), QoS::AtLeastOnce) {
                            tracing::warn!(filter = %f, error = %e, "cannot subscribe");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let m = Inbound {
                        connection: connection.load(Ordering::Acquire),
                        publish,
                    };
                    if tx.send(m).is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    // Shared subscriptions keep nothing for a group before it exists:
                    // until this, a store's events pass by (and come back by resync).
                    tracing::info!(reasons = ?ack.return_codes, "cloud-sink subscribed");
                }
                Ok(_) => {}
                Err(e) => {
                    if tx.is_closed() {
                        return;
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "broker connection lost");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    });
    Ok((link, rx))
}
