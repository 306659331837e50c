//! One blocking reader thread per serial port, with unplug detection and reconnect.
//!
//! The thread owns the port: it resolves the device afresh before every open
//! (so a `/dev/serial/by-id` link or a USB match follows re-enumeration),
//! reads with a short timeout so a stop request is noticed, feeds the framer,
//! and reports everything as [`PortEvent`]s on a bounded channel.
//!
//! Backpressure: events go through a bounded [`SyncSender`]. When the consumer
//! is slow the thread stops reading, the kernel's tty buffer fills, and the
//! register is flow-controlled by the OS (or loses bytes if it has no flow
//! control — the same as any slow reader). A full channel is retried with
//! `try_send` every few milliseconds rather than a blocking `send`, so that
//! [`PortHandle::stop`] is still honoured while the consumer is stuck.
//!
//! Unplug as observed: when a USB adapter is pulled or a pty's master is
//! closed the kernel hangs the tty up; `poll` reports `POLLHUP`, which
//! `serialport` surfaces as an `io::ErrorKind::BrokenPipe` read error (a
//! plain `read(2)` would return 0, and the kernel discards whatever was still
//! in the input buffer). EOF, EIO/ENXIO/ENODEV (`ErrorKind::Other`) and the
//! device node vanishing are treated the same way: any read error other than a
//! timeout closes the port and starts the reconnect loop.

use std::fmt;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};
use tracing::{info, warn};

use super::framing::{Frame, Framer, Framing};
use super::usb::{self, Roots, UsbMatch};

/// Read timeout: bounds how long a stop request can go unnoticed while the line is idle.
const READ_TIMEOUT: Duration = Duration::from_millis(100);
/// Per-call wait for the line to accept output (hardware flow control can hold it off).
const WRITE_TIMEOUT: Duration = Duration::from_millis(200);
/// Total time one [`PortWriter::write`] may take before giving up; with [`WRITE_TIMEOUT`] and
/// [`READ_TIMEOUT`] it keeps [`PortHandle::stop`] under a second, as the reader needs the writer lock to close.
const WRITE_DEADLINE: Duration = Duration::from_millis(500);
/// Retry interval while the event channel is full.
const SEND_RETRY: Duration = Duration::from_millis(5);
/// How often an idle port checks that its device node still exists.
const VANISH_CHECK: Duration = Duration::from_secs(1);
/// A connection that lasted this long (or carried a record) resets the backoff; shorter,
/// silent ones keep escalating it so a device that opens and hangs up does not spin.
const STABLE_AFTER: Duration = Duration::from_secs(5);
/// Open failures between two summary log lines (also logged at least every [`SUMMARY_INTERVAL`]).
const SUMMARY_EVERY: u64 = 100;
/// Longest silence about a port that keeps failing to open.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);
/// Read buffer size; far above what a UART delivers in one read timeout.
const READ_BUF: usize = 4096;

/// What to open: a fixed path (symlinks followed afresh on each open) or a USB identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// A device path such as `/dev/ttyS0` or `/dev/serial/by-id/usb-...`.
    Path(PathBuf),
    /// A USB adapter found via sysfs, see [`usb::resolve`].
    Usb(UsbMatch),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Path(p) => write!(f, "{}", p.display()),
            Device::Usb(m) => write!(f, "usb {m}"),
        }
    }
}

/// Parity bit setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    /// No parity bit.
    #[default]
    None,
    /// Odd parity.
    Odd,
    /// Even parity.
    Even,
}

/// Flow control setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// No flow control.
    #[default]
    None,
    /// XON/XOFF in-band flow control.
    Software,
    /// RTS/CTS hardware flow control.
    Hardware,
}

/// Everything needed to open, frame and reconnect one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSettings {
    /// What to open.
    pub device: Device,
    /// Line speed in baud (ptys accept and ignore it).
    pub baud: u32,
    /// Data bits, 5 to 8.
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// Stop bits, 1 or 2.
    pub stop_bits: u8,
    /// Flow control.
    pub flow_control: Flow,
    /// How the byte stream is cut into records.
    pub framing: Framing,
    /// Largest accepted payload, see [`Framer::new`].
    pub max_frame: usize,
    /// Shortest wait before reopening.
    pub reopen_floor: Duration,
    /// Longest wait before reopening.
    pub reopen_cap: Duration,
}

impl PortSettings {
    /// 9600 8N1, no flow control, 4 KiB frames, reopen between 250 ms and 30 s.
    pub fn new(device: Device, framing: Framing) -> Self {
        PortSettings {
            device,
            baud: 9600,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
            flow_control: Flow::None,
            framing,
            max_frame: 4096,
            reopen_floor: Duration::from_millis(250),
            reopen_cap: Duration::from_secs(30),
        }
    }

    /// Check the values serialport cannot represent, before any thread is started.
    pub fn validate(&self) -> Result<(), String> {
        if self.baud == 0 {
            return Err("baud must be > 0".into());
        }
        if !(5..=8).contains(&self.data_bits) {
            return Err(format!("data_bits must be 5..=8, got {}", self.data_bits));
        }
        if !(1..=2).contains(&self.stop_bits) {
            return Err(format!("stop_bits must be 1 or 2, got {}", self.stop_bits));
        }
        if self.max_frame == 0 {
            return Err("max_frame must be > 0".into());
        }
        if self.reopen_floor.is_zero() {
            return Err("reopen_floor must be > 0".into());
        }
        if self.reopen_cap < self.reopen_floor {
            return Err(format!(
                "reopen_cap ({:?}) must be >= reopen_floor ({:?})",
                self.reopen_cap, self.reopen_floor
            ));
        }
        Ok(())
    }
}

/// What a port thread reports, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortEvent {
    /// (Re)connected; `path` is the canonical device path actually opened.
    Opened {
        /// The device node opened, symlinks resolved.
        path: PathBuf,
    },
    /// A record or a refused chunk from the framer.
    Frame(Frame),
    /// Bytes of a frame in progress lost to a disconnect (dead-letter as "torn by disconnect").
    Torn {
        /// The partial frame as received.
        raw: Vec<u8>,
    },
    /// The port was lost (EOF, hang-up, I/O error, device vanished); a reconnect follows.
    Closed {
        /// Human-readable cause.
        reason: String,
    },
}

/// Why [`PortWriter::write`] failed.
#[derive(Debug, thiserror::Error)]
pub enum PortWriteError {
    /// The port is not connected right now (unplugged, reconnecting, or stopped).
    #[error("serial port {0} is not open")]
    NotOpen(String),
    /// The write itself failed or timed out.
    #[error("write to serial port {port} failed: {source}")]
    Io {
        /// Port name.
        port: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

struct Shared {
    name: String,
    stop: AtomicBool,
    /// A dup of the reader's fd while connected, so writers never touch a closed or reused fd.
    writer: Mutex<Option<TTYPort>>,
}

impl Shared {
    fn writer(&self) -> MutexGuard<'_, Option<TTYPort>> {
        // A panicking writer cannot leave the Option half-updated, so poison carries no meaning here.
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A cloneable handle for writing ACK/NAK to whatever port is currently open.
#[derive(Clone)]
pub struct PortWriter {
    shared: Arc<Shared>,
}

impl fmt::Debug for PortWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortWriter")
            .field("name", &self.shared.name)
            .finish()
    }
}

impl PortWriter {
    /// Write all of `bytes` to the open port, giving up after about 0.5 s; blocks the caller meanwhile.
    pub fn write(&self, bytes: &[u8]) -> Result<(), PortWriteError> {
        let mut guard = self.shared.writer();
        let Some(port) = guard.as_mut() else {
            return Err(PortWriteError::NotOpen(self.shared.name.clone()));
        };
        let io_err = |source| PortWriteError::Io {
            port: self.shared.name.clone(),
            source,
        };
        let deadline = Instant::now() + WRITE_DEADLINE;
        let mut rest = bytes;
        while !rest.is_empty() {
            match port.write(rest) {
                Ok(0) => return Err(io_err(io::ErrorKind::WriteZero.into())),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut && Instant::now() < deadline => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        Ok(())
    }
}

/// The running port thread; dropping it stops the thread too.
pub struct PortHandle {
    writer: PortWriter,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for PortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortHandle")
            .field("name", &self.writer.shared.name)
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl PortHandle {
    /// Write ACK/NAK bytes to the currently open port (error if not open).
    pub fn write(&self, bytes: &[u8]) -> Result<(), PortWriteError> {
        self.writer.write(bytes)
    }

    /// A cloneable writer that can outlive borrows of this handle (e.g. moved into tasks).
    pub fn writer(&self) -> PortWriter {
        self.writer.clone()
    }

    /// True once the thread has exited (stopped, or its event receiver was dropped).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stop the thread and wait for it (well under a second); the port is closed on return.
    pub fn stop(self) {
        drop(self);
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.writer.shared.stop.store(true, Ordering::SeqCst);
        // The thread may be parked in a backoff sleep or a full-channel retry.
        thread.thread().unpark();
        if thread.join().is_err() {
            warn!(port = %self.writer.shared.name, "serial port thread panicked");
        }
    }
}

impl Drop for PortHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Start the reader thread for one port; fails only on invalid settings or if the thread cannot start.
pub fn spawn(
    name: String,
    settings: PortSettings,
    roots: Roots,
    events: SyncSender<PortEvent>,
) -> io::Result<PortHandle> {
    settings
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("port {name}: {e}")))?;
    let shared = Arc::new(Shared {
        name: name.clone(),
        stop: AtomicBool::new(false),
        writer: Mutex::new(None),
    });
    let reader = Reader {
        framer: Framer::new(settings.framing, settings.max_frame),
        rng: seed(),
        failures: Failures::default(),
        records: 0,
        settings,
        roots,
        events,
        shared: shared.clone(),
    };
    let thread = thread::Builder::new()
        .name(format!("serial-{name}"))
        .spawn(move || reader.run())?;
    Ok(PortHandle {
        writer: PortWriter { shared },
        thread: Some(thread),
    })
}

/// Why the thread must leave its loops.
enum Halt {
    Stop,
    ReceiverGone,
}

enum ReadEnd {
    Closed(String),
    Halt(Halt),
}

/// Open-failure streak, so a missing device logs once and then periodic summaries.
#[derive(Default)]
struct Failures {
    count: u64,
    since: Option<Instant>,
    last_log: Option<Instant>,
}

impl Failures {
    fn failed(&mut self, port: &str, device: &Device, error: &str) {
        self.count += 1;
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        let due = match self.last_log {
            None => true,
            Some(t) => {
                self.count.is_multiple_of(SUMMARY_EVERY)
                    || now.duration_since(t) >= SUMMARY_INTERVAL
            }
        };
        if !due {
            return;
        }
        if self.count == 1 {
            warn!(port, %device, error, "serial port unavailable; retrying with backoff");
        } else {
            warn!(
                port,
                %device,
                attempts = self.count,
                secs = now.duration_since(since).as_secs(),
                last_error = error,
                "serial port still unavailable"
            );
        }
        self.last_log = Some(now);
    }

    fn opened(&mut self, port: &str, path: &Path) {
        if self.count > 0 {
            info!(port, path = %path.display(), failed_attempts = self.count, "serial port open");
        } else {
            info!(port, path = %path.display(), "serial port open");
        }
        *self = Failures::default();
    }
}

struct Reader {
    settings: PortSettings,
    roots: Roots,
    events: SyncSender<PortEvent>,
    shared: Arc<Shared>,
    framer: Framer,
    rng: u64,
    failures: Failures,
    /// Complete records read so far; a session that carried one was a real connection.
    records: u64,
}

impl Reader {
    fn run(mut self) {
        let name = self.shared.name.clone();
        let mut attempt: u32 = 0;
        loop {
            if self.stopping() {
                return;
            }
            match self.open() {
                Err(e) => {
                    self.failures.failed(&name, &self.settings.device, &e);
                }
                Ok((port, path)) => {
                    self.failures.opened(&name, &path);
                    let opened_at = Instant::now();
                    let records_before = self.records;
                    match self.session(port, path) {
                        Ok(()) => {}
                        Err(Halt::Stop) => return,
                        Err(Halt::ReceiverGone) => {
                            info!(port = %name, "event receiver dropped; serial port thread exits");
                            return;
                        }
                    }
                    // A register that talked, or a line that held, was a real connection:
                    // the next reopen starts from the floor, whatever came before.
                    if self.records > records_before || opened_at.elapsed() >= STABLE_AFTER {
                        attempt = 0;
                    }
                }
            }
            let delay = backoff_delay(
                self.settings.reopen_floor,
                self.settings.reopen_cap,
                attempt,
                self.next_rand(),
            );
            attempt = attempt.saturating_add(1);
            if !self.sleep(delay) {
                return;
            }
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    /// Sleep unless stopped first; false means stop.
    fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            thread::park_timeout(end - now);
        }
    }

    fn send(&self, event: PortEvent) -> Result<(), Halt> {
        let mut event = event;
        loop {
            match self.events.try_send(event) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(_)) => return Err(Halt::ReceiverGone),
                Err(TrySendError::Full(back)) => {
                    if self.stopping() {
                        return Err(Halt::Stop);
                    }
                    event = back;
                    thread::park_timeout(SEND_RETRY);
                }
            }
        }
    }

    fn resolve(&self) -> Result<PathBuf, String> {
        let path = match &self.settings.device {
            Device::Path(p) => p.clone(),
            Device::Usb(m) => usb::resolve(m, &self.roots).map_err(|e| e.to_string())?,
        };
        // Canonical each time: a by-id or test symlink may now point at a new node.
        fs::canonicalize(&path).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn open(&self) -> Result<(TTYPort, PathBuf), String> {
        let path = self.resolve()?;
        let Some(path_str) = path.to_str() else {
            return Err(format!("{} is not valid UTF-8", path.display()));
        };
        let s = &self.settings;
        let data_bits = match s.data_bits {
            5 => serialport::DataBits::Five,
            6 => serialport::DataBits::Six,
            7 => serialport::DataBits::Seven,
            _ => serialport::DataBits::Eight,
        };
        let stop_bits = match s.stop_bits {
            2 => serialport::StopBits::Two,
            _ => serialport::StopBits::One,
        };
        let parity = match s.parity {
            Parity::None => serialport::Parity::None,
            Parity::Odd => serialport::Parity::Odd,
            Parity::Even => serialport::Parity::Even,
        };
        let flow = match s.flow_control {
            Flow::None => serialport::FlowControl::None,
            Flow::Software => serialport::FlowControl::Software,
            Flow::Hardware => serialport::FlowControl::Hardware,
        };
        let port = serialport::new(path_str, s.baud)
            .data_bits(data_bits)
            .stop_bits(stop_bits)
            .parity(parity)
            .flow_control(flow)
            .timeout(READ_TIMEOUT)
            // TIOCEXCL + flock: a second agent or a stray `cat` must not split the byte stream.
            .exclusive(true)
            .open_native()
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        Ok((port, path))
    }

    /// One connection: announce it, read until it drops, report the loss.
    fn session(&mut self, mut port: TTYPort, path: PathBuf) -> Result<(), Halt> {
        let name = self.shared.name.clone();
        match port.try_clone_native() {
            Ok(mut w) => {
                if let Err(e) = w.set_timeout(WRITE_TIMEOUT) {
                    warn!(port = %name, error = %e, "cannot set write timeout");
                }
                *self.shared.writer() = Some(w);
            }
            Err(e) => {
                warn!(port = %name, error = %e, "cannot clone port for writing; ACKs will fail")
            }
        }
        let end = match self.send(PortEvent::Opened { path: path.clone() }) {
            Ok(()) => self.read_loop(&mut port, &path),
            Err(h) => ReadEnd::Halt(h),
        };
        // Writers must lose their fd before the port goes away.
        self.shared.writer().take();
        drop(port);
        let torn = self.framer.torn();
        match end {
            ReadEnd::Closed(reason) => {
                warn!(port = %name, path = %path.display(), reason, "serial port closed");
                if let Some(raw) = torn {
                    self.send(PortEvent::Torn { raw })?;
                }
                self.send(PortEvent::Closed { reason })
            }
            ReadEnd::Halt(h) => {
                // Shutting down: hand over the partial frame if there is room, never wait for it.
                if let Some(raw) = torn {
                    let _ = self.events.try_send(PortEvent::Torn { raw });
                }
                Err(h)
            }
        }
    }

    fn read_loop(&mut self, port: &mut TTYPort, path: &Path) -> ReadEnd {
        let mut buf = [0u8; READ_BUF];
        let mut last_check = Instant::now();
        loop {
            if self.stopping() {
                return ReadEnd::Halt(Halt::Stop);
            }
            match port.read(&mut buf) {
                Ok(0) => return ReadEnd::Closed("end of file: device closed".into()),
                Ok(n) => {
                    for frame in self.framer.push(&buf[..n]) {
                        if matches!(frame, Frame::Record(_)) {
                            self.records += 1;
                        }
                        if let Err(h) = self.send(PortEvent::Frame(frame)) {
                            return ReadEnd::Halt(h);
                        }
                    }
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::TimedOut
                    | io::ErrorKind::Interrupted
                    | io::ErrorKind::WouldBlock => {
                        if last_check.elapsed() >= VANISH_CHECK {
                            last_check = Instant::now();
                            if let Some(reason) = self.moved_or_vanished(path) {
                                return ReadEnd::Closed(reason);
                            }
                        }
                    }
                    io::ErrorKind::BrokenPipe => {
                        return ReadEnd::Closed(
                            "hang-up (POLLHUP): device unplugged or other end closed".into(),
                        );
                    }
                    _ => return ReadEnd::Closed(format!("read error: {e}")),
                },
            }
        }
    }

    /// Why the open node is no longer the configured device, if it is not. A by-id link
    /// (or a USB match) that now resolves elsewhere means the adapter came back under a
    /// new name while the old node lingered, or the old name was handed to another
    /// device: reading on would capture someone else's line and leave this register
    /// unanswered.
    fn moved_or_vanished(&self, open: &Path) -> Option<String> {
        if fs::symlink_metadata(open).is_err() {
            return Some("device vanished".into());
        }
        match self.resolve() {
            Ok(now) if now != open => Some(format!(
                "{} now resolves to {}: device replaced",
                self.settings.device,
                now.display()
            )),
            _ => None,
        }
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64: jitter only needs to decorrelate ports, not be unpredictable.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// A per-thread random seed without a rand dependency: std's hasher keys are randomly seeded.
fn seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish() | 1
}

/// Full-jitter exponential backoff: uniform in `[floor, min(cap, floor * 2^attempt)]`.
fn backoff_delay(floor: Duration, cap: Duration, attempt: u32, rnd: u64) -> Duration {
    let cap = cap.max(floor);
    let ceiling = floor.saturating_mul(1u32 << attempt.min(31)).min(cap);
    let span = u64::try_from((ceiling - floor).as_nanos()).unwrap_or(u64::MAX);
    floor + Duration::from_nanos(rnd % span.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::super::framing::{ETX, STX, encode};
    use super::super::usb::tests::FakeTree;
    use super::*;
    use std::os::unix::fs::symlink;
    use std::sync::mpsc::{Receiver, sync_channel};

    const WAIT: Duration = Duration::from_secs(5);

    struct Pty {
        master: TTYPort,
        /// Kept open so `bytes_to_read` can tell when the reader has drained the line.
        slave: TTYPort,
        path: PathBuf,
    }

    fn pty() -> Pty {
        let (master, slave) = TTYPort::pair().unwrap();
        let path = fs::canonicalize(slave.name().unwrap()).unwrap();
        Pty {
            master,
            slave,
            path,
        }
    }

    impl Pty {
        fn send(&mut self, bytes: &[u8]) {
            self.master.write_all(bytes).unwrap();
        }

        /// Wait until everything written has been consumed by the reader thread.
        fn drained(&self) {
            // The master→slave flip buffer is pushed by a kernel worker; give it a moment first.
            thread::sleep(Duration::from_millis(30));
            let end = Instant::now() + WAIT;
            while self.slave.bytes_to_read().unwrap() > 0 {
                assert!(Instant::now() < end, "reader never drained the pty");
                thread::sleep(Duration::from_millis(5));
            }
        }

        fn read_master(&mut self, n: usize) -> Vec<u8> {
            let mut got = Vec::new();
            let end = Instant::now() + WAIT;
            let mut buf = [0u8; 64];
            while got.len() < n && Instant::now() < end {
                match self.master.read(&mut buf) {
                    Ok(k) => got.extend_from_slice(&buf[..k]),
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                    Err(e) => panic!("master read: {e}"),
                }
            }
            got
        }
    }

    /// Atomically re-point `link` at `target`, as udev does with by-id links.
    fn point(link: &Path, target: &Path) {
        let tmp = link.with_extension("tmp");
        let _ = fs::remove_file(&tmp);
        symlink(target, &tmp).unwrap();
        fs::rename(&tmp, link).unwrap();
    }

    fn settings(device: Device, framing: Framing, baud: u32) -> PortSettings {
        PortSettings {
            baud,
            max_frame: 256,
            reopen_floor: Duration::from_millis(5),
            reopen_cap: Duration::from_millis(50),
            ..PortSettings::new(device, framing)
        }
    }

    fn next(rx: &Receiver<PortEvent>) -> PortEvent {
        rx.recv_timeout(WAIT).expect("no event in time")
    }

    fn expect_opened(rx: &Receiver<PortEvent>) -> PathBuf {
        match next(rx) {
            PortEvent::Opened { path } => path,
            other => panic!("expected Opened, got {other:?}"),
        }
    }

    fn expect_record(rx: &Receiver<PortEvent>) -> Vec<u8> {
        match next(rx) {
            PortEvent::Frame(Frame::Record(r)) => r,
            other => panic!("expected a record, got {other:?}"),
        }
    }

    fn expect_closed(rx: &Receiver<PortEvent>) -> String {
        match next(rx) {
            PortEvent::Closed { reason } => reason,
            other => panic!("expected Closed, got {other:?}"),
        }
    }

    #[test]
    fn backoff_stays_between_floor_and_cap_and_grows() {
        let floor = Duration::from_millis(100);
        let cap = Duration::from_secs(3);
        let mut rng = 0x1234_5678_9abc_def1u64;
        for attempt in 0..100 {
            for _ in 0..50 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let d = backoff_delay(floor, cap, attempt, rng);
                assert!(d >= floor && d <= cap, "{d:?}");
                let ceiling = floor.saturating_mul(1 << attempt.min(31)).min(cap);
                assert!(d <= ceiling);
            }
        }
        assert_eq!(backoff_delay(floor, cap, 0, u64::MAX), floor);
        assert_eq!(backoff_delay(floor, cap, 40, 2_900_000_000), cap);
        assert_eq!(backoff_delay(floor, cap, 2, 300_000_000), floor * 4);
    }

    #[test]
    fn invalid_settings_are_refused_before_spawning() {
        let (tx, _rx) = sync_channel(1);
        let mut s = settings(Device::Path("/dev/null".into()), Framing::Lf, 9600);
        s.data_bits = 9;
        let err = spawn("p".into(), s, Roots::default(), tx).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("data_bits"), "{err}");
    }

    #[test]
    fn frames_flow_and_acks_reach_the_register_at_both_bauds() {
        for (baud, framing) in [(9600, Framing::StxEtx), (115_200, Framing::Lf)] {
            let dir = tempfile::tempdir().unwrap();
            let link = dir.path().join("register");
            let mut p = pty();
            point(&link, &p.path);
            let (tx, rx) = sync_channel(16);
            let h = spawn(
                "reg".into(),
                settings(Device::Path(link.clone()), framing, baud),
                Roots::default(),
                tx,
            )
            .unwrap();
            assert_eq!(expect_opened(&rx), p.path);
            let stream: Vec<u8> = [&b"SALE 1"[..], b"SALE 2", b"VOID 1"]
                .iter()
                .flat_map(|x| encode(framing, x))
                .collect();
            // Awkward chunking: the framer must not care how the bytes arrive.
            for chunk in stream.chunks(5) {
                p.send(chunk);
                thread::sleep(Duration::from_millis(2));
            }
            assert_eq!(expect_record(&rx), b"SALE 1");
            assert_eq!(expect_record(&rx), b"SALE 2");
            assert_eq!(expect_record(&rx), b"VOID 1");
            h.write(&[0x06]).unwrap();
            h.writer().write(&[0x15, 0x06]).unwrap();
            assert_eq!(p.read_master(3), vec![0x06, 0x15, 0x06]);
            let t = Instant::now();
            h.stop();
            assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        }
    }

    #[test]
    fn unplug_reports_torn_and_closed_then_replug_follows_the_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("by-id-register");
        let mut a = pty();
        point(&link, &a.path);
        let (tx, rx) = sync_channel(16);
        let h = spawn(
            "reg".into(),
            settings(Device::Path(link.clone()), Framing::StxEtx, 9600),
            Roots::default(),
            tx,
        )
        .unwrap();
        assert_eq!(expect_opened(&rx), a.path);
        a.send(&encode(Framing::StxEtx, b"whole"));
        a.send(&[STX, b'h', b'a', b'l']);
        assert_eq!(expect_record(&rx), b"whole");
        a.drained();
        drop(a);
        match next(&rx) {
            PortEvent::Torn { raw } => assert_eq!(raw, vec![STX, b'h', b'a', b'l']),
            other => panic!("expected Torn, got {other:?}"),
        }
        let reason = expect_closed(&rx);
        assert!(reason.contains("hang-up"), "{reason}");
        assert!(matches!(h.write(b"x"), Err(PortWriteError::NotOpen(_))));

        let mut b = pty();
        point(&link, &b.path);
        assert_eq!(expect_opened(&rx), b.path);
        b.send(&encode(Framing::StxEtx, b"after replug"));
        assert_eq!(expect_record(&rx), b"after replug");
        h.write(&[0x06]).unwrap();
        assert_eq!(b.read_master(1), vec![0x06]);
        h.stop();
    }

    #[test]
    fn a_link_repointed_while_the_old_node_lives_moves_the_reader_to_the_new_device() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("by-id-register");
        let mut a = pty();
        point(&link, &a.path);
        let (tx, rx) = sync_channel(16);
        let h = spawn(
            "reg".into(),
            settings(Device::Path(link.clone()), Framing::Lf, 9600),
            Roots::default(),
            tx,
        )
        .unwrap();
        assert_eq!(expect_opened(&rx), a.path);
        // The old node stays alive (it now belongs to someone else): only the link says
        // where this register went.
        let mut b = pty();
        point(&link, &b.path);
        let reason = expect_closed(&rx);
        assert!(reason.contains("device replaced"), "{reason}");
        assert_eq!(expect_opened(&rx), b.path);
        b.send(b"on the new device\n");
        assert_eq!(expect_record(&rx), b"on the new device");
        a.send(b"not ours\n");
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the old node is no longer read"
        );
        h.stop();
    }

    #[test]
    fn twenty_unplug_replug_cycles_lose_only_torn_frames() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("register");
        let (tx, rx) = sync_channel(8);
        let mut handle = None;
        let mut sent = Vec::new();
        let mut got = Vec::new();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for cycle in 0..20u64 {
            let mut p = pty();
            point(&link, &p.path);
            if handle.is_none() {
                handle = Some(
                    spawn(
                        "reg".into(),
                        settings(Device::Path(link.clone()), Framing::StxEtx, 115_200),
                        Roots::default(),
                        tx.clone(),
                    )
                    .unwrap(),
                );
            }
            assert_eq!(expect_opened(&rx), p.path, "cycle {cycle}");
            let count = 1 + rand(12);
            let mut stream = Vec::new();
            for i in 0..count {
                let payload = format!("c{cycle}-f{i}-{}", "x".repeat(rand(40) as usize));
                stream.extend(encode(Framing::StxEtx, payload.as_bytes()));
                sent.push(payload.into_bytes());
            }
            let half: Vec<u8> = if cycle % 2 == 1 {
                let full = encode(Framing::StxEtx, format!("torn{cycle}").as_bytes());
                full[..1 + rand(full.len() as u64 - 2) as usize].to_vec()
            } else {
                Vec::new()
            };
            stream.extend(&half);
            let mut rest = &stream[..];
            while !rest.is_empty() {
                let k = (1 + rand(64) as usize).min(rest.len());
                p.send(&rest[..k]);
                rest = &rest[k..];
            }
            for _ in 0..count {
                got.push(expect_record(&rx));
            }
            p.drained();
            drop(p);
            if !half.is_empty() {
                match next(&rx) {
                    PortEvent::Torn { raw } => assert_eq!(raw, half, "cycle {cycle}"),
                    other => panic!("cycle {cycle}: expected Torn, got {other:?}"),
                }
            }
            expect_closed(&rx);
        }
        assert_eq!(got, sent);
        let t = Instant::now();
        drop(handle);
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(rx.try_recv().is_err(), "no stray events");
    }

    #[test]
    fn usb_match_opens_the_tty_found_in_sysfs() {
        let t = FakeTree::new();
        t.add_usb_serial("ttyUSB0", "1-1", "0403", "6001", Some("REG1"));
        let mut p = pty();
        // The fake /dev node stands in for the kernel's: make it lead to a real pty.
        let node = t.roots.dev.join("ttyUSB0");
        fs::remove_file(&node).unwrap();
        symlink(&p.path, &node).unwrap();
        t.add_by_id("usb-FTDI_FT232R_USB_UART_REG1-if00-port0", "ttyUSB0");
        let (tx, rx) = sync_channel(4);
        let h = spawn(
            "usb-reg".into(),
            settings(
                Device::Usb("0403:6001:REG1".parse().unwrap()),
                Framing::Lf,
                19_200,
            ),
            t.roots.clone(),
            tx,
        )
        .unwrap();
        assert_eq!(expect_opened(&rx), p.path);
        p.send(b"TOTAL 12.50\r\n");
        assert_eq!(expect_record(&rx), b"TOTAL 12.50");
        h.stop();
    }

    #[test]
    fn raw_printer_tap_passes_bytes_through() {
        let mut p = pty();
        let (tx, rx) = sync_channel(64);
        let h = spawn(
            "printer".into(),
            settings(Device::Path(p.path.clone()), Framing::Raw, 9600),
            Roots::default(),
            tx,
        )
        .unwrap();
        expect_opened(&rx);
        let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        p.send(&data);
        let mut got = Vec::new();
        while got.len() < data.len() {
            got.extend(expect_record(&rx));
        }
        assert_eq!(got, data);
        h.stop();
    }

    #[test]
    fn stop_is_prompt_when_backpressured_or_backing_off() {
        // Consumer never reads: the thread must be parked in the full-channel retry.
        let mut p = pty();
        let (tx, rx) = sync_channel(1);
        let h = spawn(
            "stuck".into(),
            settings(Device::Path(p.path.clone()), Framing::Lf, 9600),
            Roots::default(),
            tx,
        )
        .unwrap();
        for i in 0..50 {
            p.send(format!("line {i}\n").as_bytes());
        }
        thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        h.stop();
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        drop(rx);

        // Device absent and a long backoff: stop must cut the sleep short.
        let (tx, _rx) = sync_channel(1);
        let mut s = settings(
            Device::Path("/nonexistent/ttyUSB9".into()),
            Framing::Lf,
            9600,
        );
        s.reopen_floor = Duration::from_secs(10);
        s.reopen_cap = Duration::from_secs(60);
        let h = spawn("absent".into(), s, Roots::default(), tx).unwrap();
        thread::sleep(Duration::from_millis(100));
        assert!(matches!(h.write(b"x"), Err(PortWriteError::NotOpen(_))));
        let t = Instant::now();
        h.stop();
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }

    #[test]
    fn thread_exits_when_the_receiver_is_dropped() {
        let mut p = pty();
        let (tx, rx) = sync_channel(1);
        let h = spawn(
            "orphan".into(),
            settings(Device::Path(p.path.clone()), Framing::Lf, 9600),
            Roots::default(),
            tx,
        )
        .unwrap();
        expect_opened(&rx);
        drop(rx);
        p.send(b"one\n");
        let end = Instant::now() + WAIT;
        while !h.is_finished() {
            assert!(Instant::now() < end, "thread did not exit");
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn bad_frames_are_reported_not_dropped() {
        let mut p = pty();
        let (tx, rx) = sync_channel(8);
        let h = spawn(
            "reg".into(),
            settings(Device::Path(p.path.clone()), Framing::StxEtx, 9600),
            Roots::default(),
            tx,
        )
        .unwrap();
        expect_opened(&rx);
        p.send(&[STX, b'a', ETX, 0x00]);
        p.send(&encode(Framing::StxEtx, b"good"));
        match next(&rx) {
            PortEvent::Frame(Frame::Bad { raw, reason }) => {
                assert_eq!(raw, vec![STX, b'a', ETX, 0x00]);
                assert!(reason.starts_with("LRC mismatch"), "{reason}");
            }
            other => panic!("expected Bad, got {other:?}"),
        }
        assert_eq!(expect_record(&rx), b"good");
        h.stop();
    }
}
