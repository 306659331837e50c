//! The uplink: drains the outbox to the cloud broker over MQTT/TLS, QoS 1, deleting a row
//! only on the PUBACK of the packet that carried it.

pub mod backoff;
pub mod counters;
pub mod inflight;
pub mod session;
pub mod tls;

use crate::config::Config;
use crate::event::{MessageRef, RowId};
use crate::ops::audit;
use crate::ops::health::{BEAT_EVERY, Stage, sleep_beating};
use crate::outbox::{Outbox, queue, resync};
use backoff::Backoff;
use counters::UplinkCounters;
use inflight::{Carried, Inflight, RecentAcks};
use serde_json::json;
use session::{Session, SessionEvent, SessionOptions};
use std::collections::VecDeque;
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
/// How often the uplink looks for end-of-day summaries to publish.
const SUMMARY_EVERY: Duration = Duration::from_secs(2);
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

/// What outlives a session: the rows acknowledged recently, the resync outcomes of the
/// writer not yet handled (with the sender the command handler hands out), and the
/// command replies not yet handed to the MQTT client.
struct Across {
    recent_acks: RecentAcks,
    resynced_tx: tokio::sync::mpsc::UnboundedSender<Resynced>,
    resynced: tokio::sync::mpsc::UnboundedReceiver<Resynced>,
    replies: VecDeque<Reply>,
}

/// A command reply waiting for room in the in-flight window.
struct Reply {
    id: String,
    body: serde_json::Value,
}

/// Runs the uplink forever: connect, drain, reconnect with backoff.
pub async fn run(settings: UplinkSettings, outbox: Outbox, reader: queue::Reader) {
    let mut backoff = settings.backoff.clone();
    let mut delivered: Vec<MessageRef> = Vec::new();
    let mut outage: Option<(Instant, u64, Instant)> = None;
    // Resync outcomes outlive a session: one that ends (a reconnect) before the writer's
    // answer arrives must still forget the requeued rows in `recent_acks`, or the next
    // session would skip them for good; the reply then goes on the next session.
    let (resynced_tx, resynced) = tokio::sync::mpsc::unbounded_channel();
    let mut across = Across {
        recent_acks: RecentAcks::new(RECENT_ACKS),
        resynced_tx,
        resynced,
        replies: VecDeque::new(),
    };
    loop {
        let mut session = Session::start(&settings.session);
        let result = drive(
            &mut session,
            &settings,
            &outbox,
            &reader,
            &mut across,
            &mut outage,
            &mut delivered,
        )
        .await;
        // Acks of the ended session still delete their rows.
        if !delivered.is_empty() {
            across.recent_acks.extend(delivered.iter().copied());
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
    across: &mut Across,
    outage: &mut Option<(Instant, u64, Instant)>,
    delivered: &mut Vec<MessageRef>,
) -> Result<(), String> {
    let Across {
        recent_acks,
        resynced_tx,
        resynced,
        replies,
    } = across;
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

    session.subscribe(format!("{}/_agent/cmd/+", settings.prefix))?;
    let mut summaries_sent = std::collections::HashSet::new();
    // Summaries are a daily feed: looked for at connect and then every few seconds, not
    // on the event path.
    let mut summaries_due = true;
    let mut summary_tick = tokio::time::interval(SUMMARY_EVERY);
    let window = usize::from(settings.session.max_inflight);
    let handoff = outbox.handoff();
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
            // A row holds one or two messages.
            let want = (window - inflight.len()).div_ceil(2);
            // Rows just committed come from memory when they follow the cursor; the
            // store is read for anything else, and to see that nothing else waits.
            let (queued, from_store) = match handoff.after(cursor, want) {
                Some(q) => (q, false),
                None => (
                    reader
                        .queued_after(cursor, want)
                        .map_err(|e| format!("reading the outbox: {e}"))?,
                    true,
                ),
            };
            let mut rows = 0;
            for q in queued {
                if q.message.row != cursor {
                    rows += 1;
                    cursor = q.message.row;
                }
                if recent_acks.contains(q.message) {
                    continue;
                }
                let topic = format!("{}/{}/{}", settings.prefix, q.register_id, q.event_type);
                session.publish(topic, q.payload.into(), false)?;
                UplinkCounters::inc(&settings.counters.publishes);
                inflight.handed(Carried::Event(q.message));
            }
            caught_up = from_store && rows < want;
        }
        // Everything published waits in the MQTT client's bounded queue until it is
        // written, so nothing is handed over past the window: a full queue fails the
        // publish, and with it the session.
        if !audit_caught_up && inflight.len() < window {
            let limit = AUDIT_BATCH.min(window - inflight.len());
            let entries = reader
                .unpublished_audit(audit_cursor, limit)
                .map_err(|e| format!("reading the audit trail: {e}"))?;
            audit_caught_up = entries.len() < limit;
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
        if summaries_due && inflight.len() < window {
            summaries_due = false;
            let due = reader
                .unpublished_summaries()
                .map_err(|e| format!("reading the summaries: {e}"))?;
            for (day, revision, payload) in due {
                if inflight.len() >= window {
                    summaries_due = true;
                    break;
                }
                let Some(day_num) = day_number(&day) else {
                    continue;
                };
                if summaries_sent.insert((day_num, revision)) {
                    let topic = format!("{}/_agent/summary/{day}", settings.prefix);
                    session.publish(topic, payload.into(), true)?;
                    inflight.handed(Carried::Summary {
                        day: day_num,
                        revision,
                    });
                }
            }
        }
        while inflight.len() < window
            && let Some(r) = replies.front()
        {
            // Taken off only once handed over: a failed publish leaves it for the next
            // session.
            publish_reply(settings, session, &mut inflight, r)?;
            replies.pop_front();
        }
        tokio::select! {
            ev = session.next() => {
                let mut ctx = Dispatch { outbox, inflight: &mut inflight, delivered, resynced: resynced_tx, replies, counters: &settings.counters };
                ctx.on(ev?)?;
                // Drain whatever else is ready without re-querying in between.
                while ctx.delivered.len() < window {
                    match session.try_next() {
                        Some(ev) => ctx.on(ev?)?,
                        None => break,
                    }
                }
            }
            _ = handoff.committed().notified() => {
                caught_up = false;
                audit_caught_up = false;
            }
            Some((request, outcome)) = resynced.recv() => {
                if let Ok(done) = &outcome {
                    if let Some(first) = done.messages.first() {
                        // The rows lie behind the cursor: start over from the oldest.
                        cursor = RowId(cursor.0.min(first.row.0 - 1));
                        caught_up = false;
                    }
                    recent_acks.forget(done.messages.iter().copied());
                }
                replies.push_back(reply(&request, outcome));
            }
            _ = beat.tick() => health.beat(Stage::Uplink),
            _ = summary_tick.tick() => summaries_due = true,
            _ = flush_tick.tick(), if !delivered.is_empty() => {}
            _ = status_tick.tick(), if inflight.len() < window => {
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

/// Where the session's events go: PUBACKs to the outbox, messages to the command handler.
struct Dispatch<'a> {
    outbox: &'a Outbox,
    inflight: &'a mut Inflight,
    delivered: &'a mut Vec<MessageRef>,
    resynced: &'a tokio::sync::mpsc::UnboundedSender<Resynced>,
    replies: &'a mut VecDeque<Reply>,
    counters: &'a UplinkCounters,
}

impl Dispatch<'_> {
    fn on(&mut self, ev: SessionEvent) -> Result<(), String> {
        match ev {
            SessionEvent::Message { topic, payload } => {
                command(&topic, &payload, self.outbox, self.resynced, self.replies);
                Ok(())
            }
            ev => handle(
                ev,
                self.inflight,
                self.outbox,
                self.delivered,
                self.counters,
            ),
        }
    }
}

fn handle(
    ev: SessionEvent,
    inflight: &mut Inflight,
    outbox: &Outbox,
    delivered: &mut Vec<MessageRef>,
    counters: &UplinkCounters,
) -> Result<(), String> {
    match ev {
        SessionEvent::Written(pkid) => inflight.written(pkid).map_err(|e| e.to_string())?,
        SessionEvent::PubAck { pkid, failure } => {
            let (carried, rtt) = inflight.acked(pkid).map_err(|e| e.to_string())?;
            counters.rtt(rtt);
            match (carried, failure) {
                (Carried::Event(message), None) => {
                    UplinkCounters::inc(&counters.pubacks);
                    delivered.push(message);
                }
                (Carried::Event(message), Some(reason)) => {
                    UplinkCounters::inc(&counters.refused);
                    tracing::error!(row = message.row.0, part = ?message.part, %reason,
                        "broker refused an event; moved to the dead letters");
                    outbox.rejected(message, reason);
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
                (Carried::Summary { day, revision }, None) => {
                    outbox.summary_published(day_text(day), revision)
                }
                (Carried::Summary { day, .. }, Some(reason)) => {
                    tracing::warn!(day = %day_text(day), %reason, "broker refused a summary; it goes again after the next connect")
                }
                (Carried::Reply, None) => {}
                (Carried::Reply, Some(reason)) => {
                    tracing::warn!(%reason, "broker refused a command reply")
                }
            }
        }
        SessionEvent::Connected => return Err("unexpected second CONNACK".into()),
        SessionEvent::Message { .. } | SessionEvent::Other => {}
    }
    Ok(())
}

/// A business day (YYYY-MM-DD) as YYYYMMDD, small enough to travel in [`Carried`].
fn day_number(day: &str) -> Option<u32> {
    let digits: String = day.chars().filter(|c| *c != '-').collect();
    (digits.len() == 8).then(|| digits.parse().ok()).flatten()
}

fn day_text(n: u32) -> String {
    format!("{:04}-{:02}-{:02}", n / 10_000, n / 100 % 100, n % 100)
}

/// A resync asked for and what the writer did with it.
type Resynced = (resync::Request, Result<resync::Done, String>);

/// A message on `…/_agent/cmd/{name}`. Only the cloud's own client may publish there
/// (broker ACL); every command is audited, and a refused one is answered too when it
/// names an id.
fn command(
    topic: &str,
    payload: &[u8],
    outbox: &Outbox,
    resynced: &tokio::sync::mpsc::UnboundedSender<Resynced>,
    replies: &mut VecDeque<Reply>,
) {
    let name = topic.rsplit('/').next().unwrap_or_default();
    let refuse = |why: String| {
        tracing::warn!(command = name, reason = %why, "cloud command refused");
        outbox.audit(audit::Entry::new(
            audit::Actor::Cloud,
            audit::Action::CommandReceived,
            audit::Outcome::Failure,
            &format!("{name}: {why}"),
        ));
    };
    if name != "resync" {
        refuse("unknown command (this agent knows: resync)".into());
        return;
    }
    match resync::Request::parse(payload) {
        Ok(request) => {
            tracing::info!(id = %request.id, source = %request.source, from = request.from_seq,
                to = request.to_seq, "cloud asked to resync");
            let rx = outbox.resync(request.clone());
            let tx = resynced.clone();
            tokio::spawn(async move {
                let outcome = rx
                    .await
                    .unwrap_or_else(|_| Err("the outbox writer stopped".into()));
                let _ = tx.send((request, outcome));
            });
        }
        Err(e) => {
            refuse(e.to_string());
            // Answer when the request names a usable id, so the cloud is not left waiting.
            let id = serde_json::from_slice::<serde_json::Value>(payload)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
                .filter(|id| crate::config::is_topic_safe(id));
            if let Some(id) = id {
                let body = json!({"id": id, "command": "resync", "outcome": "refused", "detail": e.to_string()});
                replies.push_back(Reply { id, body });
            }
        }
    }
}

/// The reply to a resync the writer has done (or refused).
fn reply(request: &resync::Request, outcome: Result<resync::Done, String>) -> Reply {
    let mut body = json!({
        "id": request.id, "command": "resync", "source": request.source,
        "from_seq": request.from_seq, "to_seq": request.to_seq,
    });
    match outcome {
        Ok(done) => {
            body["outcome"] = json!(if done.missing.is_empty() {
                "ok"
            } else {
                "partial"
            });
            body["requeued"] = json!(done.requeued());
            body["already_queued"] = json!(done.already_queued);
            body["missing"] = json!(done.missing);
        }
        Err(e) => {
            body["outcome"] = json!("refused");
            body["detail"] = json!(e);
        }
    }
    Reply {
        id: request.id.clone(),
        body,
    }
}

fn publish_reply(
    settings: &UplinkSettings,
    session: &Session,
    inflight: &mut Inflight,
    reply: &Reply,
) -> Result<(), String> {
    let topic = format!("{}/_agent/reply/{}", settings.prefix, reply.id);
    session.publish(
        topic,
        serde_json::to_vec(&reply.body).unwrap_or_default().into(),
        false,
    )?;
    inflight.handed(Carried::Reply);
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
