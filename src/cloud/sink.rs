//! `posedge cloud-sink`: batches of received messages written to PostgreSQL, each message
//! acknowledged only after its batch committed (at-least-once into the database, made
//! exactly-once there by `event_id`), and the gap scanner asking stores to resync.

use super::config::CloudConfig;
use super::db::{self, DbError};
use super::link::{self, Inbound, Link, LinkError};
use super::store::{self, Received, Written};
use super::{gaps, message, schema};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Why the sink stopped.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The database failed; unacknowledged messages come again after a restart.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The broker connection could not be set up or used.
    #[error(transparent)]
    Link(#[from] LinkError),
}

/// Transactions lost to a deadlock or serialization conflict with another instance are
/// retried this often before the sink gives up.
const CONFLICT_RETRIES: u32 = 5;

/// Totals since start, logged now and then.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    /// Batches committed.
    pub batches: u64,
    /// What they wrote.
    pub written: Written,
}

/// Runs until `stop` resolves (or a fatal error): migrate, connect, store, scan gaps.
pub async fn run(
    cfg: &CloudConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Totals, SinkError> {
    let mut client = db::connect(&cfg.database.url).await?;
    let version = schema::migrate(&mut client).await?;
    let (link, mut inbound) = link::start(cfg)?;
    tracing::info!(schema = version, group = %cfg.sink.group, client_id = %cfg.client_id(), "cloud-sink running");
    let scanner = tokio::spawn(scan_gaps(cfg.clone(), link.clone()));
    let mut totals = Totals::default();
    let mut last_log = Instant::now();
    tokio::pin!(stop);
    let result = loop {
        let first = tokio::select! {
            m = inbound.recv() => m,
            _ = &mut stop => break Ok(()),
        };
        let Some(first) = first else {
            break Ok(());
        };
        let batch = gather(first, &mut inbound, cfg).await;
        match store_batch(&mut client, cfg, &batch).await {
            Ok(w) => {
                totals.batches += 1;
                add(&mut totals.written, w);
            }
            Err(e) => break Err(e),
        }
        for m in &batch {
            link.ack(&m.0).await?;
        }
        if last_log.elapsed() > Duration::from_secs(10) {
            last_log = Instant::now();
            tracing::info!(
                events = totals.written.events,
                inventory = totals.written.inventory,
                duplicates = totals.written.duplicates,
                rejected = totals.written.rejected,
                "cloud-sink stored"
            );
        }
    };
    scanner.abort();
    link.disconnect().await;
    result.map(|()| totals)
}

/// The first message and whatever else arrives within the batch window, up to the bound.
async fn gather(
    first: Inbound,
    inbound: &mut mpsc::UnboundedReceiver<Inbound>,
    cfg: &CloudConfig,
) -> Vec<(Inbound, Received)> {
    let layout = cfg.layout();
    let parse = |m: Inbound| {
        let topic = String::from_utf8_lossy(&m.publish.topic).into_owned();
        let payload = m.publish.payload.clone();
        let message = match layout.classify(&topic) {
            Some((key, feed)) => message::parse(key, feed, &payload),
            None => message::Message::Ignored,
        };
        (
            m,
            Received {
                topic,
                payload,
                message,
            },
        )
    };
    let mut batch = vec![parse(first)];
    let deadline = tokio::time::Instant::now() + cfg.sink.batch_wait();
    while batch.len() < cfg.sink.batch_max {
        match inbound.try_recv() {
            Ok(m) => batch.push(parse(m)),
            Err(_) => match tokio::time::timeout_at(deadline, inbound.recv()).await {
                Ok(Some(m)) => batch.push(parse(m)),
                _ => break,
            },
        }
    }
    batch
}

async fn store_batch(
    client: &mut tokio_postgres::Client,
    cfg: &CloudConfig,
    batch: &[(Inbound, Received)],
) -> Result<Written, SinkError> {
    let rows: Vec<&Received> = batch.iter().map(|(_, r)| r).collect();
    let mut attempt = 0;
    loop {
        match store::write(client, &rows).await {
            Ok(w) => return Ok(w),
            Err(DbError::Query(e)) if is_conflict(&e) && attempt < CONFLICT_RETRIES => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "batch conflicted with another instance; retrying");
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
            }
            Err(e) => {
                tracing::error!(error = %e, group = %cfg.sink.group, "cannot store a batch; stopping (unacknowledged messages come again)");
                return Err(e.into());
            }
        }
    }
}

fn is_conflict(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

fn add(a: &mut Written, b: Written) {
    a.events += b.events;
    a.inventory += b.inventory;
    a.duplicates += b.duplicates;
    a.other += b.other;
    a.rejected += b.rejected;
}

/// The gap scanner: its own connection, one pass every `scan_every_s`; requests go out
/// after the pass that recorded them committed.
async fn scan_gaps(cfg: CloudConfig, link: Link) {
    let mut tick = tokio::time::interval(Duration::from_secs(cfg.gaps.scan_every_s));
    let layout = cfg.layout();
    let mut client = None;
    loop {
        tick.tick().await;
        if client.is_none() {
            client = db::connect(&cfg.database.url)
                .await
                .inspect_err(|e| tracing::warn!(error = %e, "gap scanner cannot reach PostgreSQL"))
                .ok();
        }
        let Some(c) = client.as_mut() else { continue };
        match gaps::scan(c, &cfg.gaps).await {
            Ok(asks) => {
                for ask in asks {
                    let topic = layout.command_topic(&ask.key, "resync");
                    let payload = serde_json::to_vec(&ask.request).unwrap_or_default();
                    if let Err(e) = link.publish(topic, payload).await {
                        // Recorded as asked: it is asked again after retry_after_s.
                        tracing::warn!(error = %e, id = %ask.request.id, "cannot publish a resync request");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "gap scan failed; retrying");
                client = None;
            }
        }
    }
}
