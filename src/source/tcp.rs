//! LAN registers: NDJSON over TCP with one ack or nack line per input line (DESIGN §6).
//!
//! Each connection reads, decodes and submits lines without waiting for earlier acks
//! (up to `max_pending_acks`), and a second task writes the answers in line order. A
//! register that stops reading its acks only stalls itself.

use super::lines::{self, Line};
use super::record::{self, Outcome, Queued};
use crate::clock::now_rfc3339;
use crate::event::SourceName;
use crate::ingest::{SourceContext, prepare, refused};
use crate::outbox::{Outbox, OutboxError};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest line.
    pub max_line: usize,
    /// Silence after which a connection is closed.
    pub idle: Duration,
    /// Lines awaiting their answer at once.
    pub max_pending: usize,
    /// Connections at once.
    pub max_connections: usize,
}

/// Accepts registers until the listener fails.
pub async fn serve(listener: TcpListener, ctx: Arc<SourceContext>, outbox: Outbox, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(source = %ctx.origin.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(source = %ctx.origin.name, %peer, max = limits.max_connections,
                "connection refused: too many register connections on this source");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let outbox = outbox.clone();
        tokio::spawn(async move {
            tracing::debug!(source = %ctx.origin.name, %peer, "register connected");
            connection(stream, &ctx, outbox, limits).await;
            tracing::debug!(source = %ctx.origin.name, %peer, "register disconnected");
            drop(permit);
        });
    }
}

/// The answer for one line, once its commit resolves.
enum Answer {
    Record(u64, Queued),
    /// Nothing durable: close without answering so the register re-sends.
    Fail(OutboxError),
}

impl Answer {
    /// The answer line, or the reason to close the connection instead.
    async fn resolve(self) -> Result<String, OutboxError> {
        match self {
            Answer::Record(line, queued) => Ok(answer_line(line, &queued.committed().await?)),
            Answer::Fail(e) => Err(e),
        }
    }
}

/// A line's answer being resolved.
type Resolving = Pin<Box<dyn Future<Output = Result<String, OutboxError>> + Send>>;

/// Polls once without waiting: `Some` when the answer is already there.
fn ready_now(f: &mut Resolving) -> Option<Result<String, OutboxError>> {
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => None,
    }
}

/// Answers bigger than this are written without looking for more.
const ANSWER_BATCH: usize = 16 * 1024;

/// Writes the answers in line order. Answers already resolved when one is written (a
/// commit group answers many lines of a connection at once) go out in the same write,
/// so a group costs one syscall and one wakeup of the register instead of one per line;
/// an answer never waits for a later line's commit.
async fn write_answers(mut rx: mpsc::Receiver<Answer>, mut wr: OwnedWriteHalf, name: SourceName) {
    let mut text = String::new();
    let mut next: Option<Resolving> = None;
    loop {
        let first = match next.take() {
            Some(f) => f,
            None => match rx.recv().await {
                Some(a) => Box::pin(a.resolve()),
                None => break,
            },
        };
        let mut result = first.await.map(|t| text.push_str(&t));
        while result.is_ok() && text.len() < ANSWER_BATCH {
            let Ok(a) = rx.try_recv() else { break };
            let mut f: Resolving = Box::pin(a.resolve());
            match ready_now(&mut f) {
                Some(r) => result = r.map(|t| text.push_str(&t)),
                None => {
                    next = Some(f);
                    break;
                }
            }
        }
        // What resolved before a failure is durable and still answered.
        if !text.is_empty() && wr.write_all(text.as_bytes()).await.is_err() {
            return;
        }
        text.clear();
        if let Err(e) = result {
            tracing::warn!(source = %name, error = %e, "closing register connection without ack; it will re-send");
            return;
        }
    }
    let _ = wr.shutdown().await;
}

/// DESIGN §6: `ack` once every part of the line is durable and at least one event came
/// of it (a record holding several events lists them all), `nack` when all of it went
/// to the dead letters.
fn answer_line(line: u64, outcome: &Outcome) -> String {
    let Some(first) = outcome.events.first() else {
        let reason = serde_json::Value::String(outcome.rejected.join("; "));
        return format!("{{\"nack\":{line},\"reason\":{reason}}}\n");
    };
    let mut text = format!(
        "{{\"ack\":{line},\"event_id\":\"{}\",\"seq\":{}",
        first.event_id,
        first.seq.get()
    );
    if outcome.events.len() > 1 {
        let all: Vec<_> = outcome
            .events
            .iter()
            .map(|e| serde_json::json!({"event_id": e.event_id.as_str(), "seq": e.seq.get()}))
            .collect();
        text.push_str(&format!(",\"events\":{}", serde_json::Value::from(all)));
    }
    if !outcome.rejected.is_empty() {
        text.push_str(&format!(
            ",\"rejected\":{}",
            serde_json::json!(outcome.rejected)
        ));
    }
    text.push_str("}\n");
    text
}

async fn connection(stream: TcpStream, ctx: &Arc<SourceContext>, outbox: Outbox, limits: Limits) {
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let (tx, rx) = mpsc::channel::<Answer>(limits.max_pending);
    let answers = tokio::spawn(write_answers(rx, wr, ctx.origin.name.clone()));
    let mut n: u64 = 0;
    loop {
        let read =
            tokio::time::timeout(limits.idle, lines::read_line(&mut rd, limits.max_line)).await;
        let line = match read {
            Err(_) => {
                tracing::info!(source = %ctx.origin.name, idle_s = limits.idle.as_secs(), "closing silent register connection");
                break;
            }
            Ok(Err(e)) => {
                tracing::debug!(source = %ctx.origin.name, error = %e, "register connection read error");
                break;
            }
            Ok(Ok(Line::Eof)) => break,
            Ok(Ok(l)) => l,
        };
        n += 1;
        // Decoded here and queued before the next line is read: records of one register
        // reach the outbox in the order the register sent them.
        let pending = submit(n, line, ctx, &outbox, limits.max_line).await;
        let failed = matches!(pending, Answer::Fail(_));
        if tx.send(pending).await.is_err() || failed {
            break;
        }
    }
    drop(tx);
    let _ = answers.await;
}

async fn submit(n: u64, line: Line, ctx: &SourceContext, outbox: &Outbox, max: usize) -> Answer {
    let record = match line {
        Line::Complete(raw) => prepare(ctx, &raw, &now_rfc3339()),
        Line::TooLong { prefix, len } => refused(ctx, &prefix, |kept| {
            format!("line of {len} bytes exceeds max_line_bytes ({max}); first {kept} bytes kept")
        }),
        Line::Truncated(partial) => refused(ctx, &partial, |kept| {
            format!(
                "connection closed after {kept} bytes without a newline; the register must re-send"
            )
        }),
        Line::Eof => return Answer::Fail(OutboxError::Closed),
    };
    match record::submit(ctx, outbox, record, true).await {
        Ok(queued) => Answer::Record(n, queued),
        Err(e) => Answer::Fail(e),
    }
}
