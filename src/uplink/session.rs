//! One MQTT connection, MQTT 5 or 3.1.1, behind one small interface. A session is never
//! reused after an error: a fresh event loop per connection keeps rumqttc's packet ids
//! in step with [`super::inflight::Inflight`].

use crate::config::MqttVersion;
use bytes::Bytes;
use rumqttc::{TlsConfiguration, Transport};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the session needs to connect.
#[derive(Clone)]
pub struct SessionOptions {
    /// Protocol level.
    pub version: MqttVersion,
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id.
    pub client_id: String,
    /// Keep-alive.
    pub keep_alive: Duration,
    /// TLS client configuration; `None` only with `insecure_plaintext`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Last Will topic and payload (retained, QoS 1).
    pub will: (String, Vec<u8>),
    /// Publishes awaiting PUBACK at once.
    pub max_inflight: u16,
}

/// What happened on the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// The broker accepted the connection.
    Connected,
    /// A publish went on the wire with this packet id.
    Written(u16),
    /// PUBACK; `failure` holds the reason when the broker refused the message.
    PubAck {
        /// Packet id.
        pkid: u16,
        /// `None` on success.
        failure: Option<String>,
    },
    /// A message on a subscribed topic (a cloud command).
    Message {
        /// Topic it came on.
        topic: String,
        /// Payload.
        payload: Bytes,
    },
    /// Anything else.
    Other,
}

enum Client {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// One connection attempt and its lifetime. The event loop runs in its own task that is
/// never cancelled mid-poll; the session reads its events from a channel.
pub struct Session {
    client: Client,
    events: mpsc::Receiver<Result<SessionEvent, String>>,
    pump: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

fn transport(tls: &Option<Arc<rustls::ClientConfig>>) -> Transport {
    match tls {
        Some(cfg) => Transport::tls_with_config(TlsConfiguration::Rustls(cfg.clone())),
        None => Transport::tcp(),
    }
}

/// Forwards event-loop events until the first error, then ends.
async fn forward(
    tx: &mpsc::Sender<Result<SessionEvent, String>>,
    ev: Result<SessionEvent, String>,
) -> bool {
    let stop = ev.is_err();
    tx.send(ev).await.is_ok() && !stop
}

impl Session {
    /// Starts connecting in the background.
    pub fn start(o: &SessionOptions) -> Session {
        // Room for a whole window plus status messages, so publish never fails on a full
        // channel while the window has space.
        let cap = usize::from(o.max_inflight) + 16;
        let (tx, events) = mpsc::channel(cap.max(64));
        let (client, pump) = match o.version {
            MqttVersion::V4 => {
                let mut opts = rumqttc::MqttOptions::new(&o.client_id, &o.host, o.port);
                opts.set_keep_alive(o.keep_alive)
                    .set_clean_session(true)
                    .set_inflight(o.max_inflight)
                    .set_max_packet_size(1 << 20, 16 << 20)
                    .set_transport(transport(&o.tls))
                    .set_last_will(rumqttc::LastWill::new(
                        &o.will.0,
                        o.will.1.clone(),
                        rumqttc::QoS::AtLeastOnce,
                        true,
                    ));
                let (c, mut e) = rumqttc::AsyncClient::new(opts, cap);
                let task = tokio::spawn(async move {
                    while forward(&tx, e.poll().await.map(v4_event).map_err(|e| describe(&e))).await
                    {
                    }
                });
                (Client::V4(c), task)
            }
            MqttVersion::V5 => {
                use rumqttc::v5::mqttbytes::{QoS, v5::LastWill};
                let mut opts = rumqttc::v5::MqttOptions::new(&o.client_id, &o.host, o.port);
                opts.set_keep_alive(o.keep_alive)
                    .set_clean_start(true)
                    .set_outgoing_inflight_upper_limit(o.max_inflight)
                    .set_max_packet_size(Some(16 << 20))
                    .set_transport(transport(&o.tls))
                    .set_last_will(LastWill::new(
                        &o.will.0,
                        o.will.1.clone(),
                        QoS::AtLeastOnce,
                        true,
                        None,
                    ));
                let (c, mut e) = rumqttc::v5::AsyncClient::new(opts, cap);
                let task = tokio::spawn(async move {
                    while forward(&tx, e.poll().await.map(v5_event).map_err(|e| describe(&e))).await
                    {
                    }
                });
                (Client::V5(c), task)
            }
        };
        Session {
            client,
            events,
            pump,
        }
    }

    /// Hands a QoS 1 publish to the client without waiting.
    pub fn publish(&self, topic: String, payload: Bytes, retain: bool) -> Result<(), String> {
        match &self.client {
            Client::V4(c) => c
                .try_publish(topic, rumqttc::QoS::AtLeastOnce, retain, payload)
                .map_err(|e| e.to_string()),
            Client::V5(c) => c
                .try_publish(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    retain,
                    payload,
                )
                .map_err(|e| e.to_string()),
        }
    }

    /// Subscribes at QoS 1 without waiting (after every connect: sessions are clean).
    pub fn subscribe(&self, filter: String) -> Result<(), String> {
        match &self.client {
            Client::V4(c) => c
                .try_subscribe(filter, rumqttc::QoS::AtLeastOnce)
                .map_err(|e| e.to_string()),
            Client::V5(c) => c
                .try_subscribe(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
                .map_err(|e| e.to_string()),
        }
    }

    /// The next event; an error ends the session.
    pub async fn next(&mut self) -> Result<SessionEvent, String> {
        self.events
            .recv()
            .await
            .unwrap_or_else(|| Err("connection task ended".into()))
    }

    /// The next event if one is ready.
    pub fn try_next(&mut self) -> Option<Result<SessionEvent, String>> {
        self.events.try_recv().ok()
    }

    /// Sends DISCONNECT (best effort; the will is not published on a clean disconnect).
    pub async fn disconnect(&mut self) {
        let _ = match &self.client {
            Client::V4(c) => c.try_disconnect().map_err(|e| e.to_string()),
            Client::V5(c) => c.try_disconnect().map_err(|e| e.to_string()),
        };
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while self.next().await.is_ok() {}
        })
        .await;
    }
}

fn v4_event(ev: rumqttc::Event) -> SessionEvent {
    use rumqttc::{Event, Outgoing, Packet};
    match ev {
        Event::Incoming(Packet::ConnAck(_)) => SessionEvent::Connected,
        Event::Incoming(Packet::PubAck(a)) => SessionEvent::PubAck {
            pkid: a.pkid,
            failure: None,
        },
        Event::Incoming(Packet::Publish(p)) => SessionEvent::Message {
            topic: p.topic,
            payload: p.payload,
        },
        Event::Outgoing(Outgoing::Publish(pkid)) => SessionEvent::Written(pkid),
        _ => SessionEvent::Other,
    }
}

fn v5_event(ev: rumqttc::v5::Event) -> SessionEvent {
    use rumqttc::Outgoing;
    use rumqttc::v5::Event;
    use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
    match ev {
        Event::Incoming(Packet::ConnAck(_)) => SessionEvent::Connected,
        Event::Incoming(Packet::PubAck(a)) => {
            let failure = match a.reason {
                PubAckReason::Success | PubAckReason::NoMatchingSubscribers => None,
                other => Some(format!(
                    "broker refused the message: {other:?}{}",
                    a.properties
                        .and_then(|p| p.reason_string)
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default()
                )),
            };
            SessionEvent::PubAck {
                pkid: a.pkid,
                failure,
            }
        }
        Event::Incoming(Packet::Publish(p)) => SessionEvent::Message {
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            payload: p.payload,
        },
        Event::Outgoing(Outgoing::Publish(pkid)) => SessionEvent::Written(pkid),
        _ => SessionEvent::Other,
    }
}

/// Error text with the underlying cause, e.g. the TLS verification failure.
fn describe(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
