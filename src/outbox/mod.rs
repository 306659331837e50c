//! The durable queue: SQLite in WAL mode with `synchronous=FULL`, one writer thread with
//! group commit, readers for the uplink and `posedge status`.

/// SQL for the bytes of an `events` row's messages (the event and its derived message);
/// `outbox.bytes` and the archive's byte count are in these.
macro_rules! row_bytes_sql {
    () => {
        "(length(payload) + coalesce(length(derived), 0))"
    };
}

/// SQL for the `outbox.parts` of an `events` row queued with all of its messages.
macro_rules! row_parts_sql {
    () => {
        "(CASE WHEN derived IS NULL THEN 1 ELSE 3 END)"
    };
}

mod archive_count;
mod checkpoint;
pub mod handoff;
pub mod quarantine;
pub mod queue;
pub mod replay;
pub mod resync;
pub mod schema;
pub mod space;
mod writer;

pub use writer::WriterConfig;

use crate::config::OutboxConfig;
use crate::event::{EventId, MessageRef, PendingEvent, Seq, SourceName};
use crate::ingest::DeadLetter;
use crate::ops::health::Health;
use space::SpaceGuard;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// An event's identity once it is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The persisted UUIDv7.
    pub event_id: EventId,
    /// The per-source sequence number.
    pub seq: Seq,
    /// True when the idempotency key was already stored (a register re-send).
    pub duplicate: bool,
}

/// Outbox failures as seen by a source.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboxError {
    /// The group holding the record did not commit.
    #[error("the outbox could not commit: {0}")]
    Write(String),
    /// The writer has stopped (agent shutting down or the commit failed).
    #[error("the outbox is not accepting records")]
    Closed,
    /// Opening the database failed.
    #[error(transparent)]
    Open(Arc<schema::SchemaError>),
    /// The start check found a corrupt store and could not set it aside.
    #[error(transparent)]
    Quarantine(Arc<quarantine::QuarantineError>),
}

/// A record on its way to the writer, with when it was queued: its group's window
/// counts from then, not from when the writer got to it.
pub(crate) struct Queued {
    at: std::time::Instant,
    record: Ingest,
}

pub(crate) enum Ingest {
    Event {
        event: PendingEvent,
        redacted: u32,
        acks: bool,
        reply: oneshot::Sender<Result<Stored, OutboxError>>,
    },
    DeadLetter {
        source: SourceName,
        letter: DeadLetter,
        redacted: u32,
        nacks: bool,
        reply: oneshot::Sender<Result<i64, OutboxError>>,
    },
}

pub(crate) enum Control {
    Delivered(Vec<MessageRef>),
    Rejected {
        message: MessageRef,
        reason: String,
    },
    Link {
        connected: bool,
        detail: String,
    },
    Alarm {
        name: String,
        message: Option<String>,
    },
    /// The sources' decoding contexts, for dead-letter replays.
    Contexts(std::collections::HashMap<String, Arc<crate::ingest::SourceContext>>),
    /// Store an audit entry.
    Audit(crate::ops::audit::Entry),
    /// Remember the running config's digest.
    ConfigDigest(String),
    /// The broker acknowledged these audit entries.
    AuditPublished(Vec<i64>),
    /// Queue archived events again for the cloud; the outcome goes back on `reply`.
    Resync {
        request: resync::Request,
        reply: oneshot::Sender<Result<resync::Done, String>>,
    },
    /// Store a newly computed end-of-day summary (unpublished).
    Summary(StoredSummary),
    /// The broker acknowledged this revision of a day's summary.
    SummaryPublished {
        business_day: String,
        revision: u64,
    },
}

/// A computed end-of-day summary as stored and published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSummary {
    /// Day (YYYY-MM-DD).
    pub business_day: String,
    /// Publication counter of the day.
    pub revision: u64,
    /// `registers` or `cutoff` once final.
    pub closed: Option<String>,
    /// The `posedge.summary/1` JSON.
    pub payload: Vec<u8>,
    /// Highest `events.id` it includes.
    pub through_id: i64,
}

/// What a source waits on: the outcome of one queued record, resolved at its commit.
pub type Pending<T> = oneshot::Receiver<Result<T, OutboxError>>;

/// Handle to the outbox, cheap to clone; the writer thread stops when all handles drop.
#[derive(Clone)]
pub struct Outbox {
    ingest: mpsc::Sender<Queued>,
    control: mpsc::UnboundedSender<Control>,
    handoff: Arc<handoff::Handoff>,
    health: Arc<Health>,
    path: PathBuf,
}

/// Records waiting for the writer at once; beyond this, sources wait (back-pressure).
const INGEST_QUEUE: usize = 8192;

impl Outbox {
    /// Opens (creating and migrating) the database and starts the writer thread.
    pub fn open(cfg: &OutboxConfig) -> Result<(Outbox, std::thread::JoinHandle<()>), OutboxError> {
        let quarantined =
            quarantine::check(&cfg.path).map_err(|e| OutboxError::Quarantine(Arc::new(e)))?;
        let conn = schema::open_writer(&cfg.path).map_err(|e| OutboxError::Open(Arc::new(e)))?;
        let handoff = Arc::new(handoff::Handoff::default());
        let health = Health::new();
        let guard = SpaceGuard::new(&cfg.path, cfg.max_bytes.0, cfg.min_free_disk.0);
        let wcfg = WriterConfig {
            group_window: Duration::from_millis(cfg.group_commit_ms),
            max_group: cfg.max_group,
            retain: Duration::from_secs(u64::from(cfg.retain_delivered_days) * 86_400),
            archive_max_bytes: cfg.archive_max_bytes.0,
        };
        let wal_reset = checkpoint::ResetRequest::default();
        // Pinned before the writer's first commit.
        let archive = archive_count::ArchiveBytes::count(&cfg.path)?;
        let writer = writer::Writer::new(
            conn,
            archive,
            wcfg,
            guard,
            handoff.clone(),
            health.clone(),
            wal_reset.clone(),
        )
        .map_err(|e| {
            OutboxError::Open(Arc::new(schema::SchemaError::Sqlite {
                path: cfg.path.display().to_string(),
                source: e,
            }))
        })?;
        let (ingest, ingest_rx) = mpsc::channel(INGEST_QUEUE);
        let (control, control_rx) = mpsc::unbounded_channel();
        let checkpointer =
            schema::open_checkpointer(&cfg.path).map_err(|e| OutboxError::Open(Arc::new(e)))?;
        let alive = Arc::new(());
        let weak = Arc::downgrade(&alive);
        std::thread::Builder::new()
            .name("outbox-checkpoint".into())
            .spawn(move || checkpoint::run(checkpointer, weak, wal_reset))
            .map_err(|e| OutboxError::Write(format!("cannot start the checkpoint thread: {e}")))?;
        let handle = std::thread::Builder::new()
            .name("outbox-writer".into())
            .spawn(move || {
                writer.run(ingest_rx, control_rx);
                // The checkpointer stops with the writer.
                drop(alive);
            })
            .map_err(|e| OutboxError::Write(format!("cannot start the writer thread: {e}")))?;
        let outbox = Outbox {
            ingest,
            control,
            handoff,
            health,
            path: cfg.path.clone(),
        };
        outbox.report_quarantine(quarantined);
        Ok((outbox, handle))
    }

    /// Audits a quarantine done at this start, and keeps the alarm raised for as long
    /// as quarantined files lie next to the store.
    fn report_quarantine(&self, done: Option<quarantine::Quarantined>) {
        use crate::ops::audit::{Action, Actor, Entry, Outcome};
        if let Some(q) = done {
            let s = &q.salvaged;
            self.audit(Entry::new(
                Actor::Agent,
                Action::DatabaseQuarantined,
                Outcome::Success,
                &format!(
                    "{} moved to {} ({}); salvaged {} events ({} queued again), {} dead letters, {} audit entries; {} rows unreadable",
                    self.path.display(),
                    q.moved_to.display(),
                    q.reason,
                    s.events,
                    s.requeued,
                    s.dead_letters,
                    s.audit,
                    s.unreadable
                ),
            ));
        }
        let kept = quarantine::leftovers(&self.path);
        let message = kept.last().map(|newest| {
            format!(
                "{} quarantined store file(s) next to the outbox, newest {}: keep them for support, then move them out of the state directory",
                kept.len(),
                newest.display()
            )
        });
        self.alarm("outbox_quarantined".into(), message);
    }

    /// Queues an event for the writer and returns the receiver of its outcome, which
    /// resolves once its group has committed. Records queued in order commit in order,
    /// which keeps per-register order. `acks` says whether the source acknowledges it.
    pub async fn submit(
        &self,
        event: PendingEvent,
        redacted: u32,
        acks: bool,
    ) -> Result<Pending<Stored>, OutboxError> {
        self.queue(|reply| Ingest::Event {
            event,
            redacted,
            acks,
            reply,
        })
        .await
    }

    /// Queues a dead letter; the receiver resolves once it has committed.
    pub async fn submit_dead_letter(
        &self,
        source: SourceName,
        letter: DeadLetter,
        redacted: u32,
        nacks: bool,
    ) -> Result<Pending<i64>, OutboxError> {
        self.queue(|reply| Ingest::DeadLetter {
            source,
            letter,
            redacted,
            nacks,
            reply,
        })
        .await
    }

    async fn queue<T>(
        &self,
        record: impl FnOnce(oneshot::Sender<Result<T, OutboxError>>) -> Ingest,
    ) -> Result<Pending<T>, OutboxError> {
        let (reply, rx) = oneshot::channel();
        self.ingest
            .send(Queued {
                at: std::time::Instant::now(),
                record: record(reply),
            })
            .await
            .map_err(|_| OutboxError::Closed)?;
        Ok(rx)
    }

    /// The broker acknowledged these messages: a row leaves the outbox once all of its
    /// messages have.
    pub fn delivered(&self, messages: Vec<MessageRef>) {
        let _ = self.control.send(Control::Delivered(messages));
    }

    /// The broker refused this message for good: it moves to the dead letters.
    pub fn rejected(&self, message: MessageRef, reason: String) {
        let _ = self.control.send(Control::Rejected { message, reason });
    }

    /// Records the uplink state for `posedge status`.
    pub fn link_state(&self, connected: bool, detail: String) {
        let _ = self.control.send(Control::Link { connected, detail });
    }

    /// Raises (`Some`) or clears (`None`) a named alarm.
    pub fn alarm(&self, name: String, message: Option<String>) {
        let _ = self.control.send(Control::Alarm { name, message });
    }

    /// Records an audit entry (committed with `synchronous=FULL`, then published).
    pub fn audit(&self, entry: crate::ops::audit::Entry) {
        let _ = self.control.send(Control::Audit(entry));
    }

    /// Hands the writer the sources' decoding contexts, so it can replay dead letters.
    pub fn replay_with(
        &self,
        contexts: std::collections::HashMap<String, Arc<crate::ingest::SourceContext>>,
    ) {
        let _ = self.control.send(Control::Contexts(contexts));
    }

    /// Remembers the digest of the config now running (compared at the next start).
    pub fn remember_config(&self, sha256: String) {
        let _ = self.control.send(Control::ConfigDigest(sha256));
    }

    /// Marks audit entries the broker acknowledged.
    pub fn audit_published(&self, ids: Vec<i64>) {
        let _ = self.control.send(Control::AuditPublished(ids));
    }

    /// Asks the writer to queue archived events again (the cloud's `resync`); the
    /// receiver yields what was queued, or why nothing could be.
    pub fn resync(
        &self,
        request: resync::Request,
    ) -> oneshot::Receiver<Result<resync::Done, String>> {
        let (reply, rx) = oneshot::channel();
        let _ = self.control.send(Control::Resync { request, reply });
        rx
    }

    /// Stores a computed end-of-day summary for the uplink to publish.
    pub fn summary(&self, s: StoredSummary) {
        let _ = self.control.send(Control::Summary(s));
    }

    /// The broker acknowledged a summary revision.
    pub fn summary_published(&self, business_day: String, revision: u64) {
        let _ = self.control.send(Control::SummaryPublished {
            business_day,
            revision,
        });
    }

    /// Liveness of the writer and the uplink, for the watchdog.
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Rows just committed, handed to the uplink from memory, and its wake-up.
    pub fn handoff(&self) -> Arc<handoff::Handoff> {
        self.handoff.clone()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests;
