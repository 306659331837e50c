//! Serial/USB registers: a blocking reader thread per port (framing, unplug detection,
//! reopen with backoff) feeding the same decode → redact → outbox path as the LAN.
//! With `stx_etx` framing each frame is answered ACK once durable, NAK when it went to
//! the dead letters.

pub mod framing;
pub mod port;
pub mod usb;

use super::record::{self, Queued};
use crate::clock::now_rfc3339;
use crate::ingest::{SourceContext, prepare, refused};
use crate::outbox::{Outbox, OutboxError};
use crate::source::printer_tap::{SERIAL_PEER, TapEvent};
use framing::{Frame, Framing};
use port::{PortEvent, PortSettings, PortWriter};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Positive acknowledgement (stx_etx).
pub const ACK: u8 = 0x06;
/// Negative acknowledgement (stx_etx).
pub const NAK: u8 = 0x15;

/// Port events buffered between the reader thread and the agent; beyond this the thread
/// stops reading and the OS buffer holds the register off.
const EVENTS: usize = 256;

/// Runs one serial source until the outbox closes: starts the port thread and turns its
/// frames into events, dead letters and ACK/NAK answers.
pub async fn serve(ctx: Arc<SourceContext>, outbox: Outbox, settings: PortSettings) {
    let name = ctx.origin.name.as_str().to_string();
    let framing = settings.framing;
    let (tx, rx) = std::sync::mpsc::sync_channel(EVENTS);
    let handle = match port::spawn(name.clone(), settings, usb::Roots::default(), tx) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(source = %name, error = %e, "serial source cannot start");
            return;
        }
    };
    let (events_tx, mut events) = mpsc::channel(EVENTS);
    // The reader thread's channel is std; one blocking task carries it into tokio.
    let forward = tokio::task::spawn_blocking(move || {
        while let Ok(ev) = rx.recv() {
            if events_tx.blocking_send(ev).is_err() {
                break;
            }
        }
    });
    let writer = handle.writer();
    let (answers_tx, answers_rx) = mpsc::channel::<Pending>(EVENTS);
    let answers = tokio::spawn(answer(ctx.clone(), writer, answers_rx));
    let alarm = format!("serial_disconnected:{name}");
    // raw: the port is a print stream (a printer port read directly); receipts are split
    // at paper cuts exactly as a printer tap splits them.
    let (raw_tx, raw_rx) = mpsc::channel(EVENTS);
    let receipts = (framing == Framing::Raw).then(|| {
        let (ctx, outbox) = (ctx.clone(), outbox.clone());
        tokio::spawn(async move { crate::source::printer::receipts(&ctx, &outbox, raw_rx).await })
    });
    let mut conn = 0u64;
    while let Some(ev) = events.recv().await {
        let raw = match (&receipts, &ev) {
            (None, _) => None,
            (Some(_), PortEvent::Opened { .. }) => {
                conn += 1;
                Some(TapEvent::Opened {
                    conn,
                    peer: SERIAL_PEER,
                })
            }
            (Some(_), PortEvent::Frame(Frame::Record(bytes))) => Some(TapEvent::Data {
                conn,
                bytes: bytes.clone().into(),
            }),
            (Some(_), PortEvent::Closed { .. }) => Some(TapEvent::Closed { conn }),
            (Some(_), _) => None,
        };
        if let Some(tap) = raw {
            if raw_tx.send(tap).await.is_err() {
                break;
            }
            if matches!(ev, PortEvent::Frame(_)) {
                continue;
            }
        }
        let (record, reply) = match ev {
            PortEvent::Opened { path } => {
                tracing::info!(source = %name, device = %path.display(), "serial port open");
                outbox.alarm(alarm.clone(), None);
                continue;
            }
            PortEvent::Closed { reason } => {
                tracing::warn!(source = %name, %reason,
                    "serial port lost; reopening with backoff (check the cable or USB adapter)");
                outbox.alarm(alarm.clone(), Some(format!("serial port lost: {reason}")));
                continue;
            }
            PortEvent::Torn { raw } => (
                refused(&ctx, &raw, |kept| {
                    format!(
                        "frame torn by a disconnect after {kept} bytes; the register must re-send it"
                    )
                }),
                false,
            ),
            PortEvent::Frame(Frame::Record(payload)) => (
                prepare(&ctx, &payload, &now_rfc3339()),
                framing == Framing::StxEtx,
            ),
            PortEvent::Frame(Frame::Bad { raw, reason }) => {
                // Noise between frames is kept for the record but not answered: the
                // register sent no frame to answer.
                let answer = framing == Framing::StxEtx && reason != framing::NOISE;
                (refused(&ctx, &raw, |_| reason), answer)
            }
        };
        let queued = match record::submit(&ctx, &outbox, record, reply).await {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(source = %name, error = %e, "outbox closed; serial source stops");
                break;
            }
        };
        if answers_tx.send(Pending { queued, reply }).await.is_err() {
            break;
        }
    }
    drop(answers_tx);
    drop(raw_tx);
    let _ = answers.await;
    if let Some(r) = receipts {
        let _ = r.await;
    }
    tokio::task::spawn_blocking(move || handle.stop());
    let _ = forward.await;
}

/// A submitted frame waiting for its commit, and whether the register gets an answer.
struct Pending {
    queued: Queued,
    reply: bool,
}

/// Writes ACK/NAK in frame order once each frame's commit resolved. A frame that could
/// not be made durable gets no answer: the register times out and re-sends it.
async fn answer(ctx: Arc<SourceContext>, writer: PortWriter, mut rx: mpsc::Receiver<Pending>) {
    while let Some(p) = rx.recv().await {
        let outcome = match p.queued.committed().await {
            Ok(o) => o,
            Err(OutboxError::Closed) => return,
            Err(e) => {
                tracing::warn!(source = %ctx.origin.name, error = %e, "frame not stored; no answer, the register will re-send");
                continue;
            }
        };
        if !p.reply {
            continue;
        }
        let byte = if outcome.accepted() { ACK } else { NAK };
        let writer = writer.clone();
        // A write can block briefly behind hardware flow control.
        let written = tokio::task::spawn_blocking(move || writer.write(&[byte])).await;
        if let Ok(Err(e)) = written {
            tracing::debug!(source = %ctx.origin.name, error = %e, "answer not written; the register will re-send");
        }
    }
}
