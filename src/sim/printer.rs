//! The simulated register printing receipts through a printer port (the agent's tap or a
//! real network printer): ESC/POS jobs, status bytes read back, one ledger line per
//! receipt with the hash of its bytes after redaction — what the agent's receipt event
//! carries in `source.raw_sha256`.

use super::generate::Generator;
use super::register::{Ledger, SimError, SimOptions, SimReport};
use crate::decode::escpos::CodePage;
use crate::ingest::hex;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Prints `count` receipts on one connection, then closes it.
pub async fn run(o: &SimOptions, printer: SocketAddr) -> Result<SimReport, SimError> {
    let mut ledger = Ledger::create(o.ledger.as_deref())?;
    let stream = TcpStream::connect(printer)
        .await
        .map_err(|e| SimError::Unreachable {
            addr: printer,
            secs: 0,
            last: e.to_string(),
        })?;
    let (mut rd, mut wr) = stream.into_split();
    // Drivers read status replies; draining them keeps the printer's side flowing.
    let status = tokio::spawn(async move {
        let mut buf = [0u8; 256];
        let mut got = 0u64;
        while let Ok(n @ 1..) = rd.read(&mut buf).await {
            got += n as u64;
        }
        got
    });
    let mut generator = Generator::new(o.seed, o.profile, &o.register_id, &o.business_day);
    let mut report = SimReport::default();
    let pace = (o.rate > 0).then(|| Duration::from_secs_f64(1.0 / o.rate as f64));
    let started = Instant::now();
    while report.generated < o.count {
        let ev = generator.next_event();
        let Some(job) = super::encode::receipt(&ev, CodePage::Cp858) else {
            report.skipped += 1;
            continue;
        };
        if let Some(p) = pace {
            tokio::time::sleep_until((started + p.mul_f64(report.generated as f64)).into()).await;
        }
        wr.write_all(&job).await?;
        report.generated += 1;
        let (clean, _) = crate::redact::redact_bytes(&job);
        ledger.line(&json!({
            "receipt_sha256": hex(&Sha256::digest(&clean)),
            "register_id": ev.get("register_id"),
            "pos_sequence": ev.get("pos_sequence"),
            "event_type": "receipt",
        }))?;
    }
    wr.shutdown().await?;
    let _ = status.await;
    ledger.flush()?;
    Ok(report)
}
