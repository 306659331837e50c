//! Printer tap source: relays a register's print stream to the real printer (see
//! [`printer_tap`]) and, from a copy, turns every receipt into a `receipt` event. The
//! copy side may fall behind or lose bytes; printing never waits for it.

use super::printer_tap::{self, TapConfig, TapEvent, TapStats};
use super::record;
use crate::clock::now_rfc3339;
use crate::decode::escpos::{self, Splitter};
use crate::ingest::{SourceContext, prepare};
use crate::outbox::Outbox;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// Chunks of print data buffered for the decoder; when full, copies are dropped (and the
/// gap noted), never the printing.
const COPIES: usize = 256;

/// Runs a TCP printer tap until the outbox closes.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<SourceContext>,
    outbox: Outbox,
    cfg: TapConfig,
    stats: Arc<TapStats>,
) {
    let (copies_tx, copies) = mpsc::channel(COPIES);
    // Never signalled: the tap lives as long as the agent.
    let (_shutdown, shutdown_rx) = watch::channel(false);
    let relay = tokio::spawn(printer_tap::serve(
        listener,
        cfg,
        copies_tx,
        stats.clone(),
        shutdown_rx,
    ));
    receipts(&ctx, &outbox, copies).await;
    relay.abort();
}

/// Where a serial printer tap's two ports are.
#[derive(Debug, Clone)]
pub struct SerialTap {
    /// The port the register prints to.
    pub register: std::path::PathBuf,
    /// The port the real printer hangs on.
    pub printer: std::path::PathBuf,
    /// Line speed of both.
    pub baud: u32,
}

/// Runs a serial printer tap (two ports) until the outbox closes: relays byte-exact
/// between the ports and records receipts from the copy. A lost port (unplug, printer
/// switched off) ends the relay; both ports are reopened after a pause.
pub async fn serve_serial(
    ctx: Arc<SourceContext>,
    outbox: Outbox,
    tap: SerialTap,
    stats: Arc<TapStats>,
) {
    let (copies_tx, copies) = mpsc::channel(COPIES);
    let name = ctx.origin.name.as_str().to_string();
    let relay = tokio::task::spawn_blocking(move || {
        let open = |p: &std::path::Path| serialport::new(p.to_string_lossy(), tap.baud).open();
        let mut logged = false;
        loop {
            let handle = match (open(&tap.register), open(&tap.printer)) {
                (Ok(r), Ok(p)) => {
                    printer_tap::spawn_serial_relay(r, p, copies_tx.clone(), stats.clone())
                }
                (r, p) => {
                    if !logged {
                        let e = r
                            .err()
                            .or(p.err())
                            .map(|e| e.to_string())
                            .unwrap_or_default();
                        tracing::warn!(source = %name, error = %e, "serial printer tap cannot open its ports; retrying every 2 s");
                        logged = true;
                    }
                    std::thread::sleep(std::time::Duration::from_secs(2));
                    continue;
                }
            };
            match handle {
                Ok(h) => {
                    logged = false;
                    tracing::info!(source = %name, "serial printer tap relaying");
                    while !h.is_finished() && !copies_tx.is_closed() {
                        std::thread::sleep(std::time::Duration::from_millis(200));
                    }
                    if let Err(e) = h.stop() {
                        tracing::warn!(source = %name, error = %e, "serial printer tap lost a port; reopening");
                    }
                }
                Err(e) => {
                    tracing::warn!(source = %name, error = %e, "serial printer tap cannot start")
                }
            }
            if copies_tx.is_closed() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_secs(2));
        }
    });
    receipts(&ctx, &outbox, copies).await;
    drop(relay);
}

/// Splits each connection's copy at paper cuts and submits every receipt.
pub async fn receipts(ctx: &SourceContext, outbox: &Outbox, mut copies: mpsc::Receiver<TapEvent>) {
    let opts = escpos::Options {
        default_code_page: ctx.options.code_page.unwrap_or_default(),
        ..Default::default()
    };
    let mut streams: HashMap<u64, Splitter> = HashMap::new();
    while let Some(ev) = copies.recv().await {
        let chunks = match ev {
            TapEvent::Opened { conn, peer } => {
                tracing::debug!(source = %ctx.origin.name, %peer, "register printing");
                streams.insert(conn, Splitter::new(&opts));
                continue;
            }
            TapEvent::Data { conn, bytes } => streams
                .entry(conn)
                .or_insert_with(|| Splitter::new(&opts))
                .push(&bytes),
            TapEvent::Gap { conn, lost_bytes } => {
                tracing::warn!(source = %ctx.origin.name, lost_bytes,
                    "receipt copy fell behind; printing was not affected, the receipt in progress is decoded from what arrived");
                streams.insert(conn, Splitter::new(&opts));
                continue;
            }
            TapEvent::Closed { conn } => streams
                .remove(&conn)
                .and_then(|mut s| s.finish())
                .into_iter()
                .collect(),
        };
        for chunk in chunks {
            let record = prepare(ctx, &chunk.bytes, &now_rfc3339());
            // Nobody waits for these commits: the printer already has its bytes.
            if let Err(e) = record::submit(ctx, outbox, record, false).await {
                tracing::error!(source = %ctx.origin.name, error = %e, "outbox closed; receipts are no longer recorded");
                return;
            }
        }
    }
}
