//! The simulated register on a serial line: a device path, or a pseudo-terminal it
//! creates (whose slave the agent opens). With `stx_etx` it waits for ACK/NAK like a real
//! register and re-sends a frame that got no answer or a NAK for a damaged frame; it can
//! damage frames and pull its own plug on purpose, to exercise the agent.

use super::generate::Generator;
use super::register::{Ledger, SimError, SimOptions, SimReport, meta, next_record};
use crate::source::serial::framing::{self, Framing};
use crate::source::serial::{ACK, NAK};
use serde_json::Value;
use serialport::{SerialPort, TTYPort};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the line is and how the register misbehaves.
#[derive(Debug, Clone)]
pub struct SerialTarget {
    /// A device to open; `None` creates a pseudo-terminal.
    pub device: Option<PathBuf>,
    /// With a pseudo-terminal: a symlink kept pointing at its current slave, the path to
    /// configure in the agent (a replug gives the pty a new /dev/pts name, as USB does).
    pub link: Option<PathBuf>,
    /// Line speed.
    pub baud: u32,
    /// Framing.
    pub framing: Framing,
    /// Corrupt the check byte of every n-th frame (stx_etx).
    pub corrupt_every: Option<u64>,
    /// With a pseudo-terminal: pull the plug halfway through every n-th frame.
    pub unplug_every: Option<u64>,
    /// How long to wait for ACK/NAK before re-sending.
    pub answer_timeout: Duration,
}

/// The line the register writes to; for a pty the slave stays open here too so the
/// master never reads EIO while the agent reopens.
struct Line {
    port: TTYPort,
    slave: Option<TTYPort>,
}

fn open(t: &SerialTarget, report: &mut SimReport) -> Result<Line, SimError> {
    let io = |e: serialport::Error| SimError::Ledger(std::io::Error::other(e.to_string()));
    if let Some(path) = &t.device {
        let port = serialport::new(path.to_string_lossy(), t.baud)
            .timeout(Duration::from_millis(50))
            .open_native()
            .map_err(io)?;
        return Ok(Line { port, slave: None });
    }
    let (mut master, slave) = TTYPort::pair().map_err(io)?;
    master.set_timeout(Duration::from_millis(50)).map_err(io)?;
    let name = slave
        .name()
        .ok_or_else(|| SimError::Ledger(std::io::Error::other("pty without a name")))?;
    match &t.link {
        Some(link) => relink(link, Path::new(&name))?,
        None if report.reconnects == 0 => println!("{name}"),
        None => {}
    }
    Ok(Line {
        port: master,
        slave: Some(slave),
    })
}

/// Points `link` at `target` atomically (a new symlink renamed over the old one).
fn relink(link: &Path, target: &Path) -> std::io::Result<()> {
    let tmp = link.with_extension("tmp-link");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

/// Sends `count` events over the line; blocking (run it on its own thread).
pub fn run(o: &SimOptions, t: &SerialTarget) -> Result<SimReport, SimError> {
    let mut ledger = Ledger::create(o.ledger.as_deref())?;
    let mut generator = Generator::new(o.seed, o.profile, &o.register_id, &o.business_day);
    let mut report = SimReport::default();
    let mut line = open(t, &mut report)?;
    let pace = (o.rate > 0).then(|| Duration::from_secs_f64(1.0 / o.rate as f64));
    let started = Instant::now();
    let answers = t.framing == Framing::StxEtx;
    while report.generated < o.count {
        if let Some(p) = pace {
            let due = started + p.mul_f64(report.generated as f64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let (ev, payload) = next_record(&mut generator, o, &mut report);
        let sent = meta(&o.store_id, &ev);
        report.generated += 1;
        let n = report.generated;
        let frame = framing::encode(t.framing, &payload);
        if t.unplug_every.is_some_and(|k| n % k == 0) && t.device.is_none() {
            // Half a frame, then the plug: the agent must dead-letter exactly this.
            let _ = write_fully(&mut line.port, &frame[..frame.len() / 2]);
            let _ = line.port.flush();
            drop(line);
            std::thread::sleep(Duration::from_millis(20));
            line = open(t, &mut report)?;
            report.reconnects += 1;
        }
        let mut damaged = t.corrupt_every.is_some_and(|k| n % k == 0) && answers;
        let mut tries = 0u32;
        let first_try = Instant::now();
        let outcome = loop {
            tries += 1;
            let mut bytes = frame.clone();
            if damaged && let Some(last) = bytes.last_mut() {
                // A wrong check byte that is no STX, so the framer sees one bad frame.
                *last ^= if *last ^ 0x55 == framing::STX {
                    0x66
                } else {
                    0x55
                };
            }
            // Only the first copy is damaged; a re-send is what the register meant.
            let after_damaged =
                tries == 2 && t.corrupt_every.is_some_and(|k| n % k == 0) && answers;
            let was_damaged = std::mem::take(&mut damaged);
            if tries > 1 {
                report.resent += 1;
            }
            // Answers to an earlier frame must not count for this one; an answer to an
            // earlier copy of this same frame does (the agent stores it once).
            if tries == 1 || after_damaged {
                let _ = line.port.clear(serialport::ClearBuffer::Input);
            }
            let sent_at = Instant::now();
            if write_fully(&mut line.port, &bytes).is_err() {
                // The line is gone (a real device unplugged): reopen and re-send.
                std::thread::sleep(Duration::from_millis(50));
                line = open(t, &mut report)?;
                continue;
            }
            if !answers {
                break None;
            }
            match wait_answer(&mut line.port, t.answer_timeout) {
                Some(ACK) => {
                    report
                        .ack_latency_us
                        .push(sent_at.elapsed().as_micros() as u64);
                    break Some(true);
                }
                Some(_) if was_damaged => {}
                Some(_) => break Some(false),
                // Like a register, keep re-sending while the agent is away (reopening a
                // port, busy); give up only after --give-up-s of silence.
                None if first_try.elapsed() > o.give_up_after => {
                    return Err(SimError::Unreachable {
                        addr: ([0, 0, 0, 0], 0).into(),
                        secs: o.give_up_after.as_secs(),
                        last: "no ACK/NAK on the serial line".into(),
                    });
                }
                None => {}
            }
        };
        match outcome {
            Some(true) => report.acked += 1,
            Some(false) => report.nacked += 1,
            None => {}
        }
        ledger.write(sent, outcome == Some(true), &Value::Null)?;
    }
    ledger.flush()?;
    drain(&mut line);
    Ok(report)
}

/// Waits until the agent has read everything written: closing a pty (or a USB adapter)
/// throws away what the other side has not read yet.
fn drain(line: &mut Line) {
    let end = Instant::now() + Duration::from_secs(30);
    std::thread::sleep(Duration::from_millis(50));
    match &line.slave {
        Some(slave) => {
            // The kernel pushes the master's output to the slave in bursts, so the queue
            // reads empty between bursts: only a second of empty means drained.
            let mut empty_since = Instant::now();
            while Instant::now() < end && empty_since.elapsed() < Duration::from_secs(1) {
                if slave.bytes_to_read().is_ok_and(|n| n > 0) {
                    empty_since = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        None => {
            let _ = line.port.flush();
        }
    }
}

/// Writes all of `bytes`, waiting while the line is full: a write timeout means the
/// reader is slow (or not there yet), not that the line is gone.
fn write_fully(port: &mut TTYPort, mut bytes: &[u8]) -> std::io::Result<()> {
    use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
    while !bytes.is_empty() {
        match port.write(bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if matches!(e.kind(), TimedOut | WouldBlock | Interrupted) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The first ACK or NAK byte within `timeout` (other bytes are line noise).
fn wait_answer(port: &mut TTYPort, timeout: Duration) -> Option<u8> {
    let end = Instant::now() + timeout;
    let mut buf = [0u8; 64];
    while Instant::now() < end {
        match port.read(&mut buf) {
            Ok(n) => {
                if let Some(b) = buf[..n].iter().find(|b| **b == ACK || **b == NAK) {
                    return Some(*b);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    None
}
