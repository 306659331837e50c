//! The single SQLite writer: group commit for ingest, deletes on PUBACK, state for
//! `posedge status`. One thread owns the write connection so commits never contend.

use super::archive_count::ArchiveBytes;
use super::checkpoint::{self, ResetRequest};
use super::handoff::Handoff;
use super::queue::QueuedMessage;
use super::replay;
use super::space::{Pressure, SpaceGuard};
use super::{Control, Ingest, OutboxError, Queued, Stored};
use crate::clock::now_ms;
use crate::event::{EventId, MessageRef, Part, RowId, Seq};
use crate::ops::audit;
use crate::ops::health::{BEAT_EVERY, Health, Stage};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Tunables the writer needs from the config.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// How long to gather a group after its first record.
    pub group_window: Duration,
    /// Most records per commit.
    pub max_group: usize,
    /// Delivered events older than this are pruned.
    pub retain: Duration,
    /// Byte bound of the delivered archive.
    pub archive_max_bytes: u64,
}

/// Per-source counter deltas, written in the same transaction as the rows they count.
#[derive(Default)]
struct Counts {
    received: i64,
    acked: i64,
    nacked: i64,
    dead_letters: i64,
    redacted: i64,
    integrity: i64,
}

pub(super) struct Writer {
    conn: Connection,
    cfg: WriterConfig,
    guard: SpaceGuard,
    pending_bytes: u64,
    /// Payload bytes of stored events that are not queued: the delivered archive.
    archive: ArchiveBytes,
    last_seq: HashMap<String, u64>,
    pressure: Option<Pressure>,
    /// Rows just committed, and the uplink's wake-up.
    handoff: Arc<Handoff>,
    health: Arc<Health>,
    last_prune: Instant,
    /// Decoding contexts by source name, for dead-letter replays.
    contexts: HashMap<String, Arc<crate::ingest::SourceContext>>,
    /// Raised by the checkpointer when the WAL should start over.
    wal_reset: ResetRequest,
    /// The `store_write_failed` alarm may be raised (true at start: a previous run may
    /// have left it), so the next good commit clears it, and only that one.
    write_failed_alarm: bool,
}

/// `agent_state` key of the digest of the config the agent last started with.
pub(crate) const CONFIG_DIGEST: &str = "config.sha256";
const HEARTBEAT: Duration = Duration::from_secs(2);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

impl Writer {
    pub(super) fn new(
        conn: Connection,
        archive: ArchiveBytes,
        cfg: WriterConfig,
        guard: SpaceGuard,
        handoff: Arc<Handoff>,
        health: Arc<Health>,
        wal_reset: ResetRequest,
    ) -> Result<Self, rusqlite::Error> {
        let pending_bytes: i64 =
            conn.query_row("SELECT COALESCE(SUM(bytes), 0) FROM outbox", [], |r| {
                r.get(0)
            })?;
        Ok(Writer {
            conn,
            cfg,
            guard,
            pending_bytes: u64::try_from(pending_bytes).unwrap_or(0),
            archive,
            last_seq: HashMap::new(),
            pressure: None,
            handoff,
            health,
            last_prune: Instant::now(),
            contexts: HashMap::new(),
            wal_reset,
            write_failed_alarm: true,
        })
    }

    /// Runs until every sender is gone.
    pub(super) fn run(
        mut self,
        mut ingest: mpsc::Receiver<Queued>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "outbox writer cannot start its timer runtime");
                return;
            }
        };
        rt.block_on(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            let mut beat = tokio::time::interval(BEAT_EVERY);
            self.refresh_pressure();
            let mut ingest_open = true;
            let mut control_open = true;
            while ingest_open || control_open {
                // Once per turn: a commit stuck in the disk stops the beats.
                self.health.beat(Stage::Writer);
                let accepting = self.pressure.is_none() && ingest_open;
                tokio::select! {
                    biased;
                    c = control.recv(), if control_open => match c {
                        Some(c) => {
                            let mut batch = vec![c];
                            while let Ok(c) = control.try_recv() {
                                batch.push(c);
                            }
                            self.apply_controls(batch);
                            if self.pressure.is_some() {
                                self.refresh_pressure();
                            }
                            self.reset_wal_if_asked();
                        }
                        None => control_open = false,
                    },
                    m = ingest.recv(), if accepting => match m {
                        Some(first) => {
                            let group = self.gather(first, &mut ingest);
                            self.commit_group(group);
                            self.refresh_pressure();
                            self.reset_wal_if_asked();
                        }
                        None => ingest_open = false,
                    },
                    _ = beat.tick() => {}
                    _ = tick.tick() => {
                        self.refresh_pressure();
                        self.heartbeat();
                        self.replay_requested();
                        if self.archive_over_bound() {
                            self.shed_archive();
                        }
                        if self.last_prune.elapsed() >= PRUNE_EVERY {
                            self.prune_delivered();
                            self.prune_audit();
                        }
                    }
                }
            }
        });
    }

    /// The group of `first`: everything queued by the end of the window, up to
    /// `max_group`. The window runs from when `first` was queued, so a record that waited
    /// through the previous commit is not made to wait a whole window more; under load,
    /// when commits take longer than the window, groups form from what queued meanwhile.
    /// The writer sleeps through the window and then takes what has queued, instead of
    /// waking for every record that arrives: a wakeup of this thread per record was a
    /// context switch per event.
    fn gather(&mut self, first: Queued, rx: &mut mpsc::Receiver<Queued>) -> Vec<Ingest> {
        let mut group = vec![first.record];
        let left = (first.at + self.cfg.group_window).saturating_duration_since(Instant::now());
        if !left.is_zero() {
            // tokio's timer counts whole milliseconds and rounds up, which made the 2 ms
            // window 3 ms and more; this thread runs nothing else meanwhile, so it sleeps
            // itself (the heartbeat intervals just fire after the commit).
            std::thread::sleep(left);
        }
        while group.len() < self.cfg.max_group {
            match rx.try_recv() {
                Ok(m) => group.push(m.record),
                Err(_) => break,
            }
        }
        group
    }

    /// Between commits, once the acks are out: what the checkpointer asked for.
    fn reset_wal_if_asked(&self) {
        if self.wal_reset.take() {
            checkpoint::finish(&self.conn);
        }
    }

    fn commit_group(&mut self, group: Vec<Ingest>) {
        match write_group(&mut self.conn, &self.last_seq, group) {
            Ok(mut done) => {
                for reply in std::mem::take(&mut done.replies) {
                    reply.send();
                }
                self.absorb(done);
                if self.write_failed_alarm {
                    self.clear_alarm("store_write_failed");
                    self.write_failed_alarm = false;
                }
            }
            Err(e) => {
                // Nothing of the group is durable. Dropping the reply senders tells every
                // waiting source so; nobody is acked and the registers re-send.
                self.last_seq.clear();
                tracing::error!(error = %e, "outbox commit failed; the group is not acked and will be re-sent by the registers");
                self.set_alarm("store_write_failed", &format!("outbox commit failed: {e}"));
                self.write_failed_alarm = true;
            }
        }
    }

    fn apply_controls(&mut self, batch: Vec<Control>) {
        let now = now_ms();
        // Deliveries and state need no fsync of their own: if power fails before the next
        // fsync'd commit, a delivered row is simply sent again (a duplicate, never a loss).
        // Ingest commits, and any batch holding an audit entry, stay `synchronous=FULL`.
        // Batches with an audit entry commit with a full fsync; they, and new summaries,
        // wake the uplink.
        let audited = batch.iter().any(|c| {
            matches!(
                c,
                Control::Audit(_)
                    | Control::ConfigDigest(_)
                    | Control::Resync { .. }
                    | Control::Summary(_)
            )
        });
        let mut answers = Vec::new();
        if !audited {
            let _ = self.conn.execute_batch("PRAGMA synchronous=NORMAL");
        }
        let mut requeued = 0u64;
        let result = (|| -> Result<u64, rusqlite::Error> {
            let tx = self.conn.transaction()?;
            let mut freed = 0u64;
            let mut acked_any = false;
            for c in batch {
                match c {
                    Control::Delivered(messages) => {
                        // A row's two messages are acked one after the other, so they
                        // mostly arrive in one batch and the row goes in one delete.
                        let mut rows: std::collections::BTreeMap<i64, i64> = Default::default();
                        for m in messages {
                            *rows.entry(m.row.0).or_default() |= m.part.bit();
                        }
                        for (id, bits) in rows {
                            freed += clear_parts(&tx, id, bits)?;
                        }
                        acked_any = true;
                    }
                    Control::Rejected { message, reason } => {
                        let part = message.part.bit();
                        tx.prepare_cached(
                            "INSERT INTO dead_letters (source, register_id, reason, raw, received_at_ms)
                             SELECT CASE ?4 WHEN 2 THEN source || ?5 ELSE source END, register_id, ?2,
                                    CASE ?4 WHEN 2 THEN derived ELSE payload END, ?3
                             FROM events WHERE id = ?1",
                        )?
                        .execute(params![
                            message.row.0,
                            reason,
                            now,
                            part,
                            crate::ingest::DERIVED_LANE_SUFFIX
                        ])?;
                        tx.prepare_cached(
                            "INSERT INTO source_stats (source, dead_letters)
                             SELECT CASE ?2 WHEN 2 THEN source || ?3 ELSE source END, 1 FROM events WHERE id = ?1
                             ON CONFLICT(source) DO UPDATE SET dead_letters = dead_letters + 1",
                        )?
                        .execute(params![message.row.0, part, crate::ingest::DERIVED_LANE_SUFFIX])?;
                        freed += clear_parts(&tx, message.row.0, part)?;
                    }
                    Control::Link { connected, detail } => {
                        set_state(
                            &tx,
                            "uplink.connected",
                            if connected { "true" } else { "false" },
                        )?;
                        set_state(&tx, "uplink.detail", &detail)?;
                        set_state(&tx, "uplink.since_ms", &now.to_string())?;
                    }
                    Control::Alarm { name, message } => match message {
                        Some(m) => upsert_alarm(&tx, &name, &m, now)?,
                        None => {
                            tx.execute("DELETE FROM alarms WHERE name = ?1", [name])?;
                        }
                    },
                    Control::Audit(entry) => insert_audit(&tx, &entry, now)?,
                    Control::ConfigDigest(digest) => set_state(&tx, CONFIG_DIGEST, &digest)?,
                    Control::Contexts(contexts) => self.contexts = contexts,
                    Control::AuditPublished(ids) => {
                        for id in ids {
                            tx.prepare_cached("UPDATE audit SET published = 1 WHERE id = ?1")?
                                .execute([id])?;
                        }
                    }
                    Control::Resync { request, reply } => {
                        let done = super::resync::requeue(&tx, &request)?;
                        let entry = audit::Entry::new(
                            audit::Actor::Cloud,
                            audit::Action::CommandReceived,
                            audit::Outcome::Success,
                            &format!(
                                "resync {} of {} seq {}–{}: {} queued again, {} already queued, missing {:?}",
                                request.id,
                                request.source,
                                request.from_seq,
                                request.to_seq,
                                done.requeued(),
                                done.already_queued,
                                done.missing
                            ),
                        );
                        insert_audit(&tx, &entry, now)?;
                        requeued += done.bytes;
                        answers.push((reply, done));
                    }
                    Control::Summary(sum) => {
                        tx.prepare_cached(
                            "INSERT INTO summaries (business_day, revision, closed, payload, through_id, computed_at_ms, published)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
                             ON CONFLICT(business_day) DO UPDATE SET revision = excluded.revision,
                               closed = excluded.closed, payload = excluded.payload,
                               through_id = excluded.through_id, computed_at_ms = excluded.computed_at_ms,
                               published = 0
                             WHERE excluded.revision > summaries.revision",
                        )?
                        .execute(params![
                            sum.business_day,
                            sum.revision as i64,
                            sum.closed,
                            sum.payload,
                            sum.through_id,
                            now
                        ])?;
                    }
                    Control::SummaryPublished {
                        business_day,
                        revision,
                    } => {
                        tx.prepare_cached(
                            "UPDATE summaries SET published = 1 WHERE business_day = ?1 AND revision = ?2",
                        )?
                        .execute(params![business_day, revision as i64])?;
                    }
                }
            }
            if acked_any {
                set_state(&tx, "uplink.last_puback_ms", &now.to_string())?;
            }
            tx.commit()?;
            if audited {
                self.handoff.committed().notify_one();
            }
            Ok(freed)
        })();
        if let Err(e) = self.conn.execute_batch("PRAGMA synchronous=FULL") {
            // Never acknowledge anything on a connection that might not fsync.
            tracing::error!(error = %e, "cannot restore synchronous=FULL; stopping the writer");
            std::process::abort();
        }
        match result {
            Ok(freed) => {
                self.pending_bytes = self.pending_bytes.saturating_sub(freed) + requeued;
                self.archive.add(freed as i64 - requeued as i64);
                for (reply, done) in answers {
                    let _ = reply.send(Ok(done));
                }
            }
            // The rows stay queued and are re-sent: a duplicate, never a loss.
            Err(e) => {
                tracing::error!(error = %e, "outbox could not record deliveries; they will be re-sent");
                for (reply, _) in answers {
                    let _ = reply.send(Err(format!("the outbox could not queue them: {e}")));
                }
            }
        }
    }

    fn refresh_pressure(&mut self) {
        let reusable = self.reusable_bytes();
        let now = self.guard.check(self.pending_bytes, reusable);
        let now = match now {
            Some(Pressure::DiskLow { .. }) if self.prune_delivered() > 0 => {
                self.guard.check(self.pending_bytes, self.reusable_bytes())
            }
            other => other,
        };
        match (&self.pressure, &now) {
            (None, Some(p)) => {
                tracing::warn!(pressure = %p, "outbox bound reached");
                self.set_alarm("outbox_full", &p.to_string());
            }
            (Some(_), None) => {
                tracing::info!(
                    pending_bytes = self.pending_bytes,
                    "outbox back under its bounds; acks resume"
                );
                self.clear_alarm("outbox_full");
            }
            _ => {}
        }
        self.pressure = now;
    }

    fn reusable_bytes(&self) -> u64 {
        // Asked after every commit: the statement is kept.
        self.conn
            .prepare_cached(
                "SELECT (SELECT freelist_count FROM pragma_freelist_count) * (SELECT page_size FROM pragma_page_size)",
            )
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .unwrap_or(0)
    }

    /// Drops delivered events past retention (but not those of a business day whose
    /// summary is not final yet), and under disk pressure the oldest delivered events
    /// regardless of age: the archive yields before ingest does.
    fn prune_delivered(&mut self) -> usize {
        self.last_prune = Instant::now();
        let cutoff = now_ms() - self.cfg.retain.as_millis() as i64;
        let under_pressure = matches!(self.pressure, Some(Pressure::DiskLow { .. }));
        let result = if under_pressure {
            self.delete_delivered("1", [])
        } else {
            self.delete_delivered(
                "e.received_at_ms < ?1 AND (e.business_day IS NULL OR e.business_day IN
                   (SELECT business_day FROM summaries WHERE closed IS NOT NULL))",
                [cutoff],
            )
        };
        let _ = self.conn.execute(
            "DELETE FROM summaries WHERE published = 1 AND computed_at_ms < ?1 AND NOT EXISTS
               (SELECT 1 FROM events e WHERE e.business_day = summaries.business_day)",
            [cutoff],
        );
        match result {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(events = n, "pruned delivered events from the archive");
                }
                n
            }
            Err(e) => {
                tracing::warn!(error = %e, "pruning delivered events failed");
                0
            }
        }
    }

    /// Whether the archive is known to be over its byte bound (not until it is sized).
    fn archive_over_bound(&mut self) -> bool {
        self.archive
            .get()
            .is_some_and(|b| b > self.cfg.archive_max_bytes)
    }

    /// Keeps the archive under its byte bound: the oldest delivered events go first, and
    /// the loss of resync reach is audited.
    fn shed_archive(&mut self) {
        let before = self.archive.get().unwrap_or(0);
        let mut n = 0;
        while self.archive_over_bound() {
            match self.delete_delivered("1", []) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => {
                    tracing::warn!(error = %e, "shedding the delivered archive failed");
                    return;
                }
            }
        }
        if n > 0 {
            let detail = format!(
                "{n} delivered events pruned: the archive held {before} bytes, its bound is {} (outbox.archive_max_bytes); resync cannot reach them any more",
                self.cfg.archive_max_bytes
            );
            tracing::info!(events = n, bytes_before = before, "{detail}");
            let entry = audit::Entry::new(
                audit::Actor::Agent,
                audit::Action::ArchiveShed,
                audit::Outcome::Success,
                &detail,
            );
            if let Err(e) = insert_audit(&self.conn, &entry, now_ms()) {
                tracing::warn!(error = %e, "could not audit the archive shed");
            }
        }
    }

    /// Deletes up to 10,000 of the oldest delivered events matching `filter` and takes
    /// their bytes off the archive's count.
    ///
    /// The newest event is never deleted: SQLite gives a new row the highest id plus
    /// one, so with it gone the next events would get ids the uplink and the day close
    /// have already read past (they read by id), and would wait for a reconnect.
    fn delete_delivered<P: rusqlite::Params>(
        &mut self,
        filter: &str,
        params: P,
    ) -> rusqlite::Result<usize> {
        let sql = format!(
            concat!(
                "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE {filter}
               AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.id = e.id)
               AND e.id < (SELECT max(id) FROM events) ORDER BY e.id LIMIT 10000)
             RETURNING ",
                row_bytes_sql!()
            ),
            filter = filter
        );
        let sizes = self
            .conn
            .prepare(&sql)?
            .query_map(params, |r| r.get::<_, i64>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let bytes: u64 = sizes.iter().map(|b| u64::try_from(*b).unwrap_or(0)).sum();
        self.archive.add(-(bytes as i64));
        Ok(sizes.len())
    }

    /// Replays the dead letters operators asked for: the source's decoder, mapping and
    /// redactor run again over the stored bytes; what decodes now is stored like any
    /// ingest (new `seq`, same idempotency rules) and the letter removed.
    fn replay_requested(&mut self) {
        if self.contexts.is_empty() || self.pressure.is_some() {
            return;
        }
        let letters = match replay::take_requests(&self.conn) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read dead-letter replay requests");
                return;
            }
        };
        for letter in letters {
            let outcome = match self.contexts.get(&letter.source).cloned() {
                None => Err(format!("source {} is no longer configured", letter.source)),
                Some(ctx) => self.store_replayed(&ctx, &letter.raw),
            };
            if let Err(e) = replay::finish(&self.conn, &letter, outcome) {
                tracing::warn!(error = %e, id = letter.id, "cannot record a dead-letter replay");
            }
        }
    }

    fn store_replayed(
        &mut self,
        ctx: &crate::ingest::SourceContext,
        raw: &[u8],
    ) -> Result<usize, String> {
        let prepared = crate::ingest::prepare(ctx, raw, &crate::clock::now_rfc3339());
        let mut group = Vec::new();
        for item in prepared.items {
            match item {
                crate::ingest::Prepared::Event(event) => {
                    // Nobody waits for these replies; the audit entry tells the operator.
                    let (reply, _) = tokio::sync::oneshot::channel();
                    group.push(Ingest::Event {
                        event,
                        redacted: 0,
                        acks: false,
                        reply,
                    });
                }
                crate::ingest::Prepared::Rejected(letter) => return Err(letter.reason),
            }
        }
        let n = group.len();
        match write_group(&mut self.conn, &self.last_seq, group) {
            Ok(done) => {
                self.absorb(done);
                Ok(n)
            }
            Err(e) => {
                self.last_seq.clear();
                Err(format!("outbox commit failed: {e}"))
            }
        }
    }

    /// Takes in what a committed group did: its seqs and bytes, and its rows for the
    /// uplink, which it wakes.
    fn absorb(&mut self, done: GroupDone) {
        self.last_seq.extend(done.seqs);
        self.pending_bytes += done.added;
        if done.added > 0 {
            self.handoff.push(done.handed);
            self.handoff.committed().notify_one();
        }
    }

    /// Keeps the audit trail within its bounds: published entries past retention go,
    /// then the oldest beyond the row cap (published or not), which is itself audited.
    fn prune_audit(&mut self) {
        let cutoff = now_ms() - audit::RETAIN.as_millis() as i64;
        let aged = self.conn.execute(
            "DELETE FROM audit WHERE published = 1 AND at_ms < ?1",
            [cutoff],
        );
        let capped = self.conn.execute(
            "DELETE FROM audit WHERE id IN (SELECT id FROM audit ORDER BY id DESC LIMIT -1 OFFSET ?1)",
            [audit::MAX_ROWS],
        );
        match (aged, capped) {
            (Ok(_), Ok(0)) => {}
            (Ok(_), Ok(n)) => {
                let entry = audit::Entry::new(
                    audit::Actor::Agent,
                    audit::Action::AuditPruned,
                    audit::Outcome::Success,
                    &format!(
                        "{n} oldest audit entries removed to stay within {} rows",
                        audit::MAX_ROWS
                    ),
                );
                if let Err(e) = insert_audit(&self.conn, &entry, now_ms()) {
                    tracing::warn!(error = %e, "cannot record the audit pruning");
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "pruning the audit trail failed")
            }
        }
    }

    fn heartbeat(&mut self) {
        let now = now_ms().to_string();
        let pid = std::process::id().to_string();
        let r = set_state(&self.conn, "agent.heartbeat_ms", &now)
            .and_then(|_| set_state(&self.conn, "agent.pid", &pid));
        if let Err(e) = r {
            tracing::warn!(error = %e, "cannot write the status heartbeat");
        }
    }

    fn set_alarm(&mut self, name: &str, message: &str) {
        if let Err(e) = upsert_alarm(&self.conn, name, message, now_ms()) {
            tracing::warn!(error = %e, alarm = name, "cannot record alarm");
        }
    }

    fn clear_alarm(&mut self, name: &str) {
        let _ = self
            .conn
            .prepare_cached("DELETE FROM alarms WHERE name = ?1")
            .and_then(|mut s| s.execute([name]));
    }
}

/// A reply to send once the group's commit succeeded.
enum Reply {
    Event(
        tokio::sync::oneshot::Sender<Result<Stored, OutboxError>>,
        Stored,
    ),
    DeadLetter(tokio::sync::oneshot::Sender<Result<i64, OutboxError>>, i64),
}

impl Reply {
    fn send(self) {
        // A source that hung up no longer needs its answer; the row is durable anyway.
        match self {
            Reply::Event(tx, stored) => drop(tx.send(Ok(stored))),
            Reply::DeadLetter(tx, id) => drop(tx.send(Ok(id))),
        }
    }
}

/// What one committed group did.
struct GroupDone {
    added: u64,
    replies: Vec<Reply>,
    seqs: HashMap<String, u64>,
    /// The stored rows' messages, for the uplink once the group has committed.
    handed: Vec<QueuedMessage>,
}

/// Writes one group in one transaction. On error nothing is committed and the caller
/// drops the group's reply senders.
fn write_group(
    conn: &mut Connection,
    cache: &HashMap<String, u64>,
    group: Vec<Ingest>,
) -> Result<GroupDone, rusqlite::Error> {
    let now = now_ms();
    let tx = conn.transaction()?;
    let mut done = GroupDone {
        added: 0,
        replies: Vec::with_capacity(group.len()),
        seqs: HashMap::new(),
        handed: Vec::with_capacity(group.len() * 2),
    };
    let mut counts: HashMap<String, Counts> = HashMap::new();
    for msg in group {
        match msg {
            Ingest::Event {
                event,
                redacted,
                acks,
                reply,
            } => {
                let source = event.source.as_str().to_string();
                let c = counts.entry(source.clone()).or_default();
                c.received += 1;
                c.redacted += i64::from(redacted);
                c.acked += i64::from(acks);
                let flagged = event.integrity_flagged;
                let stored = insert_event(&tx, cache, &mut done, event, now)?;
                if !stored.duplicate && flagged {
                    counts.entry(source).or_default().integrity += 1;
                }
                done.replies.push(Reply::Event(reply, stored));
            }
            Ingest::DeadLetter {
                source,
                letter,
                redacted,
                nacks,
                reply,
            } => {
                let c = counts.entry(source.as_str().to_string()).or_default();
                c.received += 1;
                c.redacted += i64::from(redacted);
                c.nacked += i64::from(nacks);
                c.dead_letters += 1;
                tx.prepare_cached(
                    "INSERT INTO dead_letters (source, register_id, reason, raw, received_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    source.as_str(),
                    letter.register_id.as_ref().map(|r| r.as_str()),
                    letter.reason,
                    letter.raw,
                    now
                ])?;
                done.replies
                    .push(Reply::DeadLetter(reply, tx.last_insert_rowid()));
            }
        }
    }
    for (source, last) in &done.seqs {
        tx.prepare_cached(
            "INSERT INTO source_seq (source, last_seq) VALUES (?1, ?2)
             ON CONFLICT(source) DO UPDATE SET last_seq = excluded.last_seq",
        )?
        .execute(params![source, *last as i64])?;
    }
    for (source, c) in &counts {
        tx.prepare_cached(
            "INSERT INTO source_stats (source, received, acked, nacked, dead_letters, redacted, integrity_flags)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(source) DO UPDATE SET
               received = received + excluded.received, acked = acked + excluded.acked,
               nacked = nacked + excluded.nacked, dead_letters = dead_letters + excluded.dead_letters,
               redacted = redacted + excluded.redacted,
               integrity_flags = integrity_flags + excluded.integrity_flags",
        )?
        .execute(params![
            source,
            c.received,
            c.acked,
            c.nacked,
            c.dead_letters,
            c.redacted,
            c.integrity
        ])?;
    }
    tx.commit()?;
    Ok(done)
}

/// The next `seq` of a lane: one past the last that this group or an earlier commit
/// handed out. It is taken only once `done.seqs` records it.
fn next_seq(
    tx: &Connection,
    cache: &HashMap<String, u64>,
    done: &GroupDone,
    lane: &str,
) -> Result<Seq, rusqlite::Error> {
    let last = match done.seqs.get(lane).or_else(|| cache.get(lane)) {
        Some(n) => *n,
        None => tx
            .prepare_cached("SELECT last_seq FROM source_seq WHERE source = ?1")?
            .query_row([lane], |r| r.get::<_, i64>(0))
            .optional()?
            .map(|n| u64::try_from(n).unwrap_or(0))
            .unwrap_or(0),
    };
    Ok(Seq::new(last).next())
}

/// Inserts one event, with its derived message in the same row, each on its own `seq`
/// lane. A key already stored answers with the original identity and consumes no `seq`
/// (nor stores the derived message again).
fn insert_event(
    tx: &Connection,
    cache: &HashMap<String, u64>,
    done: &mut GroupDone,
    mut event: crate::event::PendingEvent,
    now: i64,
) -> Result<Stored, rusqlite::Error> {
    let source = event.source.as_str().to_string();
    let seq = next_seq(tx, cache, done, &source)?;
    let lane = crate::ingest::derived_lane(&event.source);
    let derived = match event.derived.take() {
        Some(d) => {
            let seq = next_seq(tx, cache, done, lane.as_str())?;
            Some((seq, d.finish(&EventId::new_v7(), seq)))
        }
        None => None,
    };
    let event_id = EventId::new_v7();
    let key = event.idempotency_key.as_str().to_string();
    let register = event.register_id.as_str().to_string();
    let event_type = event.event_type.clone();
    let business_day = event.business_day.clone();
    let figures = event.day_figures.take();
    let payload = event.finish(&event_id, seq);
    // The unique key does the de-duplication lookup as part of the insert.
    let inserted = tx
        .prepare_cached(
            "INSERT INTO events (event_id, idempotency_key, source, seq, register_id, event_type, payload, received_at_ms, business_day, day_figures, derived_seq, derived)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT(idempotency_key) DO NOTHING",
        )?
        .execute(params![
            event_id.as_str(),
            key,
            source,
            seq.get() as i64,
            register,
            event_type,
            payload,
            now,
            business_day,
            figures.as_ref().map(|f| f.as_bytes()),
            derived.as_ref().map(|(s, _)| s.get() as i64),
            derived.as_ref().map(|(_, p)| p),
        ])?;
    if inserted == 0 {
        // A register re-sent a record it had no ack for: answer with the original
        // identity, store nothing, consume no seq.
        let (id, seq) = tx
            .prepare_cached("SELECT event_id, seq FROM events WHERE idempotency_key = ?1")?
            .query_row([&key], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
        return Ok(Stored {
            event_id: EventId::from_stored(id),
            seq: Seq::new(u64::try_from(seq).unwrap_or(0)),
            duplicate: true,
        });
    }
    done.seqs.insert(source, seq.get());
    let mut parts = Part::Event.bit();
    let mut bytes = payload.len();
    if let Some((seq, p)) = &derived {
        done.seqs.insert(lane.as_str().to_string(), seq.get());
        parts |= Part::Derived.bit();
        bytes += p.len();
    }
    let row = tx.last_insert_rowid();
    tx.prepare_cached("INSERT INTO outbox (id, bytes, parts) VALUES (?1, ?2, ?3)")?
        .execute(params![row, bytes as i64, parts])?;
    done.added += bytes as u64;
    let message = |part| MessageRef {
        row: RowId(row),
        part,
    };
    done.handed.push(QueuedMessage {
        message: message(Part::Event),
        register_id: register.clone(),
        event_type,
        payload,
    });
    if let Some((_, payload)) = derived {
        done.handed.push(QueuedMessage {
            message: message(Part::Derived),
            register_id: register,
            event_type: crate::ingest::DERIVED_EVENT_TYPE.into(),
            payload,
        });
    }
    Ok(Stored {
        event_id,
        seq,
        duplicate: false,
    })
}

/// Marks these messages of a row as gone from the outbox (`bits` of `outbox.parts`). The
/// row leaves once none of its messages wait any more; its bytes, then freed, are the
/// result.
fn clear_parts(tx: &Connection, id: i64, bits: i64) -> Result<u64, rusqlite::Error> {
    let freed: Option<i64> = tx
        .prepare_cached("DELETE FROM outbox WHERE id = ?1 AND parts & ~?2 = 0 RETURNING bytes")?
        .query_row([id, bits], |r| r.get(0))
        .optional()?;
    if let Some(bytes) = freed {
        return Ok(u64::try_from(bytes).unwrap_or(0));
    }
    tx.prepare_cached("UPDATE outbox SET parts = parts & ~?2 WHERE id = ?1")?
        .execute([id, bits])?;
    Ok(0)
}

fn set_state(conn: &Connection, key: &str, value: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO agent_state (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

pub(super) fn insert_audit(
    conn: &Connection,
    e: &audit::Entry,
    now: i64,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO audit (at_ms, actor, action, outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        now,
        e.actor.as_str(),
        e.action.as_str(),
        e.outcome.as_str(),
        e.detail()
    ])?;
    Ok(())
}

fn upsert_alarm(
    conn: &Connection,
    name: &str,
    message: &str,
    now: i64,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO alarms (name, message, since_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET message = excluded.message",
    )?
    .execute(params![name, message, now])?;
    Ok(())
}
