//! Hands one prepared record to the outbox and waits for the durable outcome of every
//! part of it: what every source does between reading a record and answering it.

use crate::ingest::{Prepared, PreparedRecord, SourceContext};
use crate::outbox::{self, Outbox, OutboxError, Stored};

/// The queued parts of one record, not yet committed.
pub struct Queued(Vec<Part>);

enum Part {
    Event(outbox::Pending<Stored>),
    DeadLetter(String, outbox::Pending<i64>),
}

/// The committed outcome of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Events stored, in record order.
    pub events: Vec<Stored>,
    /// Reasons of the parts that went to the dead letters.
    pub rejected: Vec<String>,
}

impl Outcome {
    /// True when the record produced at least one event: the source acknowledges it.
    pub fn accepted(&self) -> bool {
        !self.events.is_empty()
    }
}

/// Queues every part of `record` in order. `answers` says whether the source will
/// acknowledge it (counted as acked/nacked).
pub async fn submit(
    ctx: &SourceContext,
    outbox: &Outbox,
    record: PreparedRecord,
    answers: bool,
) -> Result<Queued, OutboxError> {
    // The record's redactions are counted once, with its first part.
    let mut redacted = record.redactions.total();
    let mut parts = Vec::with_capacity(record.items.len());
    for item in record.items {
        let count = std::mem::take(&mut redacted);
        parts.push(match item {
            Prepared::Event(event) => Part::Event(outbox.submit(event, count, answers).await?),
            Prepared::Rejected(letter) => {
                let reason = letter.reason.clone();
                tracing::info!(source = %ctx.origin.name, %reason, "record dead-lettered");
                let rx = outbox
                    .submit_dead_letter(ctx.origin.name.clone(), letter, count, answers)
                    .await?;
                Part::DeadLetter(reason, rx)
            }
        });
    }
    Ok(Queued(parts))
}

impl Queued {
    /// Waits for every part's commit.
    pub async fn committed(self) -> Result<Outcome, OutboxError> {
        let mut out = Outcome {
            events: Vec::new(),
            rejected: Vec::new(),
        };
        for part in self.0 {
            match part {
                Part::Event(rx) => out.events.push(rx.await.map_err(|_| OutboxError::Closed)??),
                Part::DeadLetter(reason, rx) => {
                    rx.await.map_err(|_| OutboxError::Closed)??;
                    out.rejected.push(reason);
                }
            }
        }
        Ok(out)
    }
}
