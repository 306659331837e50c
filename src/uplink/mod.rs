//! The uplink: drains the outbox to the cloud broker over MQTT/TLS, QoS 1, deleting a row
//! only on the PUBACK of the packet that carried it.

pub mod backoff;
pub mod counters;
pub mod inflight;
pub mod session;
pub mod tls;

use crate::config::Config;
use crate::event::RowId;
use crate::ops::health::{BEAT_EVERY, Stage, sleep_beating};
use crate::outbox::{Outbox, queue};
use backoff::Backoff;
use counters::UplinkCounters;
use inflight::{Carried, Inflight, RecentAcks};
use serde_json::json;
use session::{Session, SessionEvent, SessionOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a broker may take to answer CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the retained status is refreshed while connected.
const STATUS_EVERY: Duration = Duration::from_secs(30);
/// Acknowledged rows handed to the writer in one delete transaction, at most every…
const DELETE_BATCH: usize = 512;
/// …this long.
const DELETE_EVERY: Duration = Duration::from_millis(20);
/// Audit entries read per query.
const AUDIT_BATCH: usize = 64;
/// How often an ongoing outage is summarised in the log.
const OUTAGE_SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Everything the uplink needs, derived from the config.
pub struct UplinkSettings {
    /// Connection options.
    pub session: SessionOptions,
    /// Topic prefix (`posedge/v1/{tenant}/{store}`).
    pub prefix: String,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// What the uplink counts, for the metrics endpoint.
    pub counters: Arc<UplinkCounters>,
}

/// Why the uplink could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum UplinkSetupError {
    /// The URL or a combination of keys is unusable.
    #[error("uplink: {0}")]
    Config(String),
    /// Certificates could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
}

impl UplinkSettings {
    /// Builds settings from a validated config, loading the TLS material.
    pub fn from_config(cfg: &Config) -> Result<Self, UplinkSetupError> {
        let u = &cfg.uplink;
        let (host, port, use_tls) = u.endpoint().map_err(UplinkSetupError::Config)?;
        let tls = if use_tls {
            let ca =
                u.ca.as_deref()
                    .ok_or_else(|| UplinkSetupError::Config("mqtts:// needs uplink.ca".into()))?;
            let client = u.cert.as_deref().zip(u.key.as_deref());
            Some(tls::client_config(ca, client)?)
        } else if u.insecure_plaintext {
            None
        } else {
            return Err(UplinkSetupError::Config(
                "plaintext MQTT needs insecure_plaintext = true".into(),
            ));
        };
        let prefix = cfg.prefix();
        let will = serde_json::to_vec(&json!({"state": "offline", "store_id": cfg.store_id}))
            .unwrap_or_default();
        Ok(UplinkSettings {
            session: SessionOptions {
                version: u.mqtt_version,
                host,
                port,
                client_id: cfg.client_id(),
                keep_alive: Duration::from_secs(u.keep_alive_s),
                tls,
                will: (format!("{prefix}/_agent/status"), will),
                max_inflight: u.max_inflight,
            },
            prefix,
            backoff: Backoff::new(u.backoff_floor(), u.backoff_cap()),
            counters: Arc::default(),
        })
    }
}

/// Acknowledged rows remembered across a reconnect (see [`RecentAcks`]); far more than
/// the deletes that can be in flight at once.
const RECENT_ACKS: usize = 1 << 14;

/// Runs the uplink forever: connect, drain, reconnect with backoff.
pub async fn run(settings: UplinkSettings, outbox: Outbox, reader: queue::Reader) {
    let mut backoff = settings.backoff.clone();
    let mut recent_acks = RecentAcks::new(RECENT_ACKS);
    let mut delivered: Vec<RowId> = Vec::new();
    let mut outage: Option<(Instant, u64, Instant)> = None;
    loop {
        let mut session = Session::start(&settings.session);
        let result = drive(
            &mut session,
            &settings,
            &outbox,
            &reader,
            &mut recent_acks,
            &mut outage,
            &mut delivered,
        )
        .await;
        // Acks of the ended session still delete their rows.
        if !delivered.is_empty() {
            recent_acks.extend(delivered.iter().copied());
            outbox.delivered(std::mem::take(&mut delivered));
        }
        if outage.is_none() {
            // The session had connected: the next attempt starts from the floor.
            backoff.reset();
        }
        let reason = match result {
            Ok(()) => "session ended".to_string(),
            Err(e) => e,
        };
        outbox.link_state(false, reason.clone());
        settings
            .counters
            .connected
            .store(false, std::sync::atomic::Ordering::Relaxed);
        UplinkCounters::inc(&settings.counters.reconnects);
        match &mut outage {
            None => {
                tracing::warn!(error = %reason, broker = %settings.session.host, port = settings.session.port,
                    "uplink down; events stay queued in the outbox and are sent when the broker is reachable");
                outage = Some((Instant::now(), 1, Instant::now()));
            }
            Some((since, attempts, last_log)) => {
                *attempts += 1;
                if last_log.elapsed() >= OUTAGE_SUMMARY_EVERY {
                    tracing::warn!(error = %reason, attempts = *attempts, down_s = since.elapsed().as_secs(),
                        "uplink still down");
                    *last_log = Instant::now();
                } else {
                    tracing::debug!(error = %reason, "uplink reconnect failed");
                }
            }
        }
        sleep_beating(backoff.next_delay(), &outbox.health(), Stage::Uplink).await;
    }
}

async fn drive(
    session: &mut Session,
    settings: &UplinkSettings,
    outbox: &Outbox,
    reader: &queue::Reader,
    recent_acks: &mut RecentAcks,
    outage: &mut Option<(Instant, u64, Instant)>,
    delivered: &mut Vec<RowId>,
) -> Result<(), String> {
    let health = outbox.health();
    let mut beat = tokio::time::interval(BEAT_EVERY);
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        loop {
            tokio::select! {
                ev = session.next() => if ev? == SessionEvent::Connected {
                    return Ok::<(), String>(());
                },
                _ = beat.tick() => health.beat(Stage::Uplink),
            }
        }
    })
    .await
    .map_err(|_| format!("no CONNACK within {}s", CONNECT_TIMEOUT.as_secs()))??;
    match outage.take() {
        Some((since, attempts, _)) => tracing::info!(
            down_s = since.elapsed().as_secs(),
            attempts,
            "uplink restored; sending the queued events"
        ),
        None => tracing::info!(broker = %settings.session.host, "uplink connected"),
    }
    settings
        .counters
        .connected
        .store(true, std::sync::atomic::Ordering::Relaxed);
    outbox.link_state(
        true,
        format!(
            "connected to {}:{}",
            settings.session.host, settings.session.port
        ),
    );

    let window = usize::from(settings.session.max_inflight);
    let committed = outbox.committed();
    let mut inflight = Inflight::default();
    let mut cursor = RowId(0);
    let mut caught_up = false;
    // Audit entries are few; after every connect the unpublished ones go again.
    let mut audit_cursor = 0i64;
    let mut audit_caught_up = false;
    let mut status_tick = tokio::time::interval(STATUS_EVERY);
    let mut flush_tick = tokio::time::interval(DELETE_EVERY);
    let mut last_flush = Instant::now();
    loop {
        if !caught_up && inflight.len() <= window / 2 {
            let want = window - inflight.len();
            let rows = reader
                .queued_after(cursor, want)
                .map_err(|e| format!("reading the outbox: {e}"))?;
            caught_up = rows.len() < want;
            for r in rows {
                cursor = r.row;
                if recent_acks.contains(r.row) {
                    continue;
                }
                let topic = format!("{}/{}/{}", settings.prefix, r.register_id, r.event_type);
                session.publish(topic, r.payload.into(), false)?;
                UplinkCounters::inc(&settings.counters.publishes);
                inflight.handed(Carried::Event(r.row));
            }
        }
        if !audit_caught_up && inflight.len() < window {
            let entries = reader
                .unpublished_audit(audit_cursor, AUDIT_BATCH)
                .map_err(|e| format!("reading the audit trail: {e}"))?;
            audit_caught_up = entries.len() < AUDIT_BATCH;
            for a in entries {
                audit_cursor = a.id;
                let payload = serde_json::to_vec(&json!({
                    "id": a.id, "at": a.at, "actor": a.actor, "action": a.action,
                    "outcome": a.outcome, "detail": a.detail,
                }))
                .unwrap_or_default();
                session.publish(
                    format!("{}/_agent/audit", settings.prefix),
                    payload.into(),
                    false,
                )?;
                inflight.handed(Carried::Audit(a.id));
            }
        }
        tokio::select! {
            ev = session.next() => {
                handle(ev?, &mut inflight, outbox, delivered, &settings.counters)?;
                // Drain whatever else is ready without re-querying in between.
                while delivered.len() < window {
                    match session.try_next() {
                        Some(ev) => handle(ev?, &mut inflight, outbox, delivered, &settings.counters)?,
                        None => break,
                    }
                }
            }
            _ = committed.notified() => {
                caught_up = false;
                audit_caught_up = false;
            }
            _ = beat.tick() => health.beat(Stage::Uplink),
            _ = flush_tick.tick(), if !delivered.is_empty() => {}
            _ = status_tick.tick() => {
                let status = status_payload(reader);
                session.publish(format!("{}/_agent/status", settings.prefix), status.into(), true)?;
                inflight.handed(Carried::Status);
            }
        }
        // Deletes go to the writer in batches: one small transaction per PUBACK would
        // compete with ingest commits. A row acked but not yet deleted is in
        // `recent_acks`, so a reconnect does not send it again.
        if delivered.len() >= DELETE_BATCH
            || (!delivered.is_empty() && last_flush.elapsed() >= DELETE_EVERY)
        {
            recent_acks.extend(delivered.iter().copied());
            outbox.delivered(std::mem::take(delivered));
            last_flush = Instant::now();
        }
    }
}

fn handle(
    ev: SessionEvent,
    inflight: &mut Inflight,
    outbox: &Outbox,
    delivered: &mut Vec<RowId>,
    counters: &UplinkCounters,
) -> Result<(), String> {
    match ev {
        SessionEvent::Written(pkid) => inflight.written(pkid).map_err(|e| e.to_string())?,
        SessionEvent::PubAck { pkid, failure } => {
            let (carried, rtt) = inflight.acked(pkid).map_err(|e| e.to_string())?;
            counters.rtt(rtt);
            match (carried, failure) {
                (Carried::Event(row), None) => {
                    UplinkCounters::inc(&counters.pubacks);
                    delivered.push(row);
                }
                (Carried::Event(row), Some(reason)) => {
                    UplinkCounters::inc(&counters.refused);
                    tracing::error!(row = row.0, %reason, "broker refused an event; moved to the dead letters");
                    outbox.rejected(row, reason);
                }
                (Carried::Status, Some(reason)) => {
                    tracing::warn!(%reason, "broker refused the status message")
                }
                (Carried::Status, None) => {}
                (Carried::Audit(id), None) => outbox.audit_published(vec![id]),
                (Carried::Audit(id), Some(reason)) => {
                    // Kept unpublished: it goes again after the next connect.
                    tracing::warn!(id, %reason, "broker refused an audit entry")
                }
            }
        }
        SessionEvent::Connected => return Err("unexpected second CONNACK".into()),
        SessionEvent::Other => {}
    }
    Ok(())
}

/// The retained `online` status: queue figures and per-source high-water marks.
fn status_payload(reader: &queue::Reader) -> Vec<u8> {
    let snap = reader.snapshot().ok();
    let marks: serde_json::Map<String, serde_json::Value> = snap
        .as_ref()
        .map(|s| {
            s.sources
                .iter()
                .map(|c| (c.name.clone(), json!(c.last_seq)))
                .collect()
        })
        .unwrap_or_default();
    serde_json::to_vec(&json!({
        "state": "online",
        "at": crate::clock::now_rfc3339(),
        "version": env!("CARGO_PKG_VERSION"),
        "pending": snap.as_ref().map(|s| s.outbox.pending),
        "oldest_age_s": snap.as_ref().and_then(|s| s.outbox.oldest_age_s),
        "watermarks": marks,
    }))
    .unwrap_or_default()
}
