//! Printer tap: relays a POS register's printer connection byte for byte and copies the print
//! stream to the receipt decoder.
//!
//! One task per register connection connects to the printer first (on failure it drops the
//! register's socket at once: the register sees an offline printer), then pumps both directions
//! through fixed 16 KiB buffers, propagating half-closes; an error, idle timeout or shutdown closes
//! both. The copy path never awaits: after a chunk reached the printer the relay `try_reserve`s one
//! slot per pending event (`Opened`, a `Gap` for earlier drops) plus one for the `Data`; short of
//! that the chunk is dropped and counted. Pending events go first once slots free, so a `Gap`
//! always precedes the next `Data`. Only a final `Gap`/`Closed` may wait, in a detached task (at
//! most 1024 per process) after both sockets are closed. The serial relay shares the copy path.

use bytes::Bytes;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Relay buffer per direction: memory per connection stays fixed whatever the printer's speed.
const RELAY_BUF: usize = 16 * 1024;
/// At most one "printer unreachable" line per printer in this interval.
const UNREACHABLE_LOG_EVERY: Duration = Duration::from_secs(60);
/// Connections whose final events still wait for channel room; bounds memory if the decoder hangs.
const MAX_DEFERRED: usize = 1024;
/// Serial read/write timeout: how quickly the blocking threads notice `stop()`.
const SERIAL_POLL: Duration = Duration::from_millis(50);
/// The `peer` reported in `Opened` for serial relays, which have no socket address.
pub const SERIAL_PEER: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

/// Connection ids are unique per process, across all taps, TCP and serial alike.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);
/// Detached deliveries of final events currently waiting for the copy channel.
static DEFERRED: AtomicUsize = AtomicUsize::new(0);

/// What the tap hands to the receipt decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapEvent {
    /// A register connected and the printer answered (`peer` is [`SERIAL_PEER`] for serial relays).
    Opened {
        /// Connection id.
        conn: u64,
        /// The register's address.
        peer: SocketAddr,
    },
    /// Bytes the register sent and the printer accepted, in order.
    Data {
        /// Connection id.
        conn: u64,
        /// The chunk as relayed.
        bytes: Bytes,
    },
    /// Copies dropped since the last delivered `Data`: the decoder must resync at the next receipt.
    Gap {
        /// Connection id.
        conn: u64,
        /// Number of bytes missing from the copy.
        lost_bytes: u64,
    },
    /// The connection ended; no more events for `conn`.
    Closed {
        /// Connection id.
        conn: u64,
    },
}

impl TapEvent {
    /// The connection this event belongs to.
    pub fn conn(&self) -> u64 {
        match self {
            Self::Opened { conn, .. } | Self::Data { conn, .. } => *conn,
            Self::Gap { conn, .. } | Self::Closed { conn } => *conn,
        }
    }
}

/// Counters shared by all connections of a tap.
#[derive(Debug, Default)]
pub struct TapStats {
    /// Register connections accepted (including those whose printer was unreachable).
    pub connections: AtomicU64,
    /// Bytes relayed register → printer.
    pub bytes_to_printer: AtomicU64,
    /// Bytes relayed printer → register.
    pub bytes_to_register: AtomicU64,
    /// Bytes relayed but not copied to the decoder because the channel was full.
    pub copies_dropped_bytes: AtomicU64,
    /// Register connections closed because the printer could not be reached.
    pub printer_unreachable: AtomicU64,
}

/// Where the printer is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct TapConfig {
    /// The real printer, `host:port`.
    pub printer: String,
    /// How long to wait for the printer to accept a connection.
    pub connect_timeout: Duration,
    /// Silence in both directions after which a connection is closed.
    pub idle_timeout: Duration,
}

impl TapConfig {
    /// Config for `printer` (`host:port`) with the default timeouts: 3 s connect, 5 min idle.
    pub fn new(printer: impl Into<String>) -> Self {
        Self {
            printer: printer.into(),
            connect_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Serves registers on `listener` until `shutdown` becomes true (or its sender is dropped), then
/// closes every open connection and returns.
pub async fn serve(
    listener: TcpListener,
    cfg: TapConfig,
    copies: mpsc::Sender<TapEvent>,
    stats: Arc<TapStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let cfg = Arc::new(cfg);
    let log = Arc::new(UnreachableLog::default());
    let for_conns = shutdown.clone();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown_signalled(&mut shutdown) => break,
            Some(res) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = res {
                    tracing::error!(printer = %cfg.printer, error = %e, "printer tap connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((register, peer)) => {
                    stats.connections.fetch_add(1, Ordering::Relaxed);
                    conns.spawn(connection(register, peer, cfg.clone(), copies.clone(), stats.clone(),
                        log.clone(), for_conns.clone()));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(printer = %cfg.printer, error = %e, "printer tap accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Adds `n` bytes to a counter.
fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

/// Resolves once shutdown is requested; a dropped sender counts, since nobody could request it later.
async fn shutdown_signalled(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Why the printer could not be reached; worded for the operator's log line.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("connection refused")]
    Refused,
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error("{0}")]
    Io(io::Error),
}

async fn connect_printer(cfg: &TapConfig) -> Result<TcpStream, ConnectError> {
    let connect = TcpStream::connect(cfg.printer.as_str());
    match tokio::time::timeout(cfg.connect_timeout, connect).await {
        Err(_) => Err(ConnectError::TimedOut(cfg.connect_timeout)),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Err(ConnectError::Refused),
        Ok(Err(e)) => Err(ConnectError::Io(e)),
        Ok(Ok(s)) => Ok(s),
    }
}

/// Rate limit for the "printer unreachable" warning of one printer.
#[derive(Default)]
struct UnreachableLog(Mutex<UnreachableState>);

#[derive(Default)]
struct UnreachableState {
    last_line: Option<Instant>,
    unreported: u64,
    warned: bool,
}

impl UnreachableLog {
    /// Counts a failure; logs it with the count if no line was logged this minute. Returns that count.
    fn failed(&self, printer: &str, err: &ConnectError, now: Instant) -> Option<u64> {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        s.unreported += 1;
        if s.last_line
            .is_some_and(|t| now.duration_since(t) < UNREACHABLE_LOG_EVERY)
        {
            return None;
        }
        let attempts = std::mem::take(&mut s.unreported);
        s.last_line = Some(now);
        s.warned = true;
        drop(s);
        tracing::warn!(
            printer,
            attempts,
            "printer {printer} unreachable: {err}; the register will see \
            the printer as offline. Check that the printer is on, online and reachable from this agent \
            at {printer} ({attempts} failed attempt(s) since the last report)"
        );
        Some(attempts)
    }

    /// Notes a successful connect: one line after an outage that was warned about.
    fn reachable(&self, printer: &str) {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !s.warned {
            return;
        }
        s.warned = false;
        let missed = std::mem::take(&mut s.unreported);
        drop(s);
        tracing::info!(
            printer,
            "printer {printer} reachable again ({missed} more failed attempt(s) since the last warning)"
        );
    }
}

/// How a relayed connection ended, for the log.
enum End {
    Done,
    Idle,
    Shutdown,
    Failed(&'static str, io::Error),
}

async fn connection(
    register: TcpStream,
    peer: SocketAddr,
    cfg: Arc<TapConfig>,
    copies: mpsc::Sender<TapEvent>,
    stats: Arc<TapStats>,
    log: Arc<UnreachableLog>,
    mut shutdown: watch::Receiver<bool>,
) {
    let printer = tokio::select! {
        r = connect_printer(&cfg) => r,
        () = shutdown_signalled(&mut shutdown) => return,
    };
    let printer = match printer {
        Ok(p) => p,
        Err(e) => {
            // Close before logging: the register should learn "offline" as fast as without the tap.
            drop(register);
            stats.printer_unreachable.fetch_add(1, Ordering::Relaxed);
            log.failed(&cfg.printer, &e, Instant::now());
            return;
        }
    };
    log.reachable(&cfg.printer);
    // Status replies are a few bytes that drivers wait for: Nagle would only add latency.
    let _ = register.set_nodelay(true);
    let _ = printer.set_nodelay(true);
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(conn, %peer, printer = %cfg.printer, "register connected through printer tap");
    let mut sink = CopySink::new(conn, copies, stats.clone(), peer);
    let idle = cfg.idle_timeout;
    match relay(register, printer, &mut sink, &stats, idle, &mut shutdown).await {
        End::Done => tracing::debug!(conn, %peer, "printer tap connection finished"),
        End::Idle => {
            tracing::info!(conn, %peer, idle = ?cfg.idle_timeout, "printer tap connection idle, closed")
        }
        End::Shutdown => tracing::debug!(conn, %peer, "printer tap connection closed for shutdown"),
        End::Failed(dir, e) => {
            tracing::debug!(conn, %peer, error = %e, "printer tap {dir} failed, both sides closed")
        }
    }
    sink.close();
}

/// Pumps both directions until both saw EOF; an error, idle timeout or shutdown ends both at once.
async fn relay(
    mut register: TcpStream,
    mut printer: TcpStream,
    sink: &mut CopySink,
    stats: &TapStats,
    idle: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    let (mut reg_r, mut reg_w) = register.split();
    let (mut prn_r, mut prn_w) = printer.split();
    let mut up_buf = vec![0u8; RELAY_BUF];
    let mut down_buf = vec![0u8; RELAY_BUF];
    let start = Instant::now();
    // Milliseconds after `start` of the last byte moved either way; an atomic keeps the task Send.
    let last = AtomicU64::new(0);
    let up = pump(&mut reg_r, &mut prn_w, &mut up_buf, start, &last, |c| {
        add(&stats.bytes_to_printer, c.len());
        sink.data(c);
    });
    let down = pump(&mut prn_r, &mut reg_w, &mut down_buf, start, &last, |c| {
        add(&stats.bytes_to_register, c.len())
    });
    tokio::pin!(up, down);
    let (mut up_open, mut down_open) = (true, true);
    let deadline = || start + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
    while up_open || down_open {
        tokio::select! {
            r = &mut up, if up_open => match r {
                Ok(()) => up_open = false,
                Err(e) => return End::Failed("register → printer", e),
            },
            r = &mut down, if down_open => match r {
                Ok(()) => down_open = false,
                Err(e) => return End::Failed("printer → register", e),
            },
            () = tokio::time::sleep_until(deadline()) => {
                // Traffic may have moved the deadline while we slept: only a past one is real silence.
                if deadline() <= Instant::now() {
                    return End::Idle;
                }
            }
            () = shutdown_signalled(shutdown) => return End::Shutdown,
        }
    }
    End::Done
}

/// Copies `from` to `to` until EOF, then half-closes `to`; `on_chunk` sees each chunk once written.
async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    buf: &mut [u8],
    start: Instant,
    last: &AtomicU64,
    mut on_chunk: impl FnMut(&[u8]),
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let touch = || last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    loop {
        let n = from.read(buf).await?;
        if n == 0 {
            to.shutdown().await?;
            return Ok(());
        }
        touch();
        let mut off = 0;
        while off < n {
            // Written piecewise so a printer that drains slowly still counts as traffic.
            let w = to.write(&buf[off..n]).await?;
            if w == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            off += w;
            touch();
        }
        on_chunk(&buf[..n]);
    }
}

/// The copy side of one connection; every method returns without waiting.
struct CopySink {
    conn: u64,
    tx: mpsc::Sender<TapEvent>,
    stats: Arc<TapStats>,
    /// `Opened` not yet delivered.
    unopened: Option<SocketAddr>,
    /// Bytes dropped since the last delivered `Data`, to report in a `Gap`.
    lost: u64,
}

impl CopySink {
    fn new(conn: u64, tx: mpsc::Sender<TapEvent>, stats: Arc<TapStats>, peer: SocketAddr) -> Self {
        let (unopened, lost) = (Some(peer), 0);
        let mut sink = Self {
            conn,
            tx,
            stats,
            unopened,
            lost,
        };
        sink.offer(None);
        sink
    }

    fn data(&mut self, chunk: &[u8]) {
        self.offer(Some(chunk));
    }

    /// Sends what is pending and then `chunk`, in order, as far as free slots allow; drops `chunk`
    /// unless a slot for it is left after everything pending before it.
    fn offer(&mut self, chunk: Option<&[u8]>) {
        let (tx, conn, lost_bytes) = (&self.tx, self.conn, self.lost);
        let open_slot = self
            .unopened
            .and_then(|peer| Some((tx.try_reserve().ok()?, peer)));
        let opened = self.unopened.is_none() || open_slot.is_some();
        let gap_slot = (opened && lost_bytes > 0)
            .then(|| tx.try_reserve().ok())
            .flatten();
        let ready = opened && (lost_bytes == 0 || gap_slot.is_some());
        let data_slot = (ready && chunk.is_some())
            .then(|| tx.try_reserve().ok())
            .flatten();
        // Permits enqueue in the order they are used, so this order is the decoder's order.
        if let Some((permit, peer)) = open_slot {
            permit.send(TapEvent::Opened { conn, peer });
            self.unopened = None;
        }
        if let Some(permit) = gap_slot {
            permit.send(TapEvent::Gap { conn, lost_bytes });
            self.lost = 0;
        }
        let Some(chunk) = chunk else { return };
        if let Some(permit) = data_slot {
            let bytes = Bytes::copy_from_slice(chunk);
            permit.send(TapEvent::Data { conn, bytes });
        } else {
            self.lost += chunk.len() as u64;
            add(&self.stats.copies_dropped_bytes, chunk.len());
        }
    }

    /// Sends the final events now if they fit, else hands them to a detached delivery.
    fn close(self) {
        let (conn, lost_bytes) = (self.conn, self.lost);
        let opened = self.unopened.map(|peer| TapEvent::Opened { conn, peer });
        let gap = (lost_bytes > 0).then_some(TapEvent::Gap { conn, lost_bytes });
        let mut events = opened
            .into_iter()
            .chain(gap)
            .chain([TapEvent::Closed { conn }]);
        while let Some(ev) = events.next() {
            match self.tx.try_send(ev) {
                Ok(()) => {}
                // The decoder is gone: nobody to tell.
                Err(TrySendError::Closed(_)) => return,
                Err(TrySendError::Full(ev)) => {
                    let rest: Vec<_> = std::iter::once(ev).chain(events).collect();
                    defer(self.tx, self.conn, rest);
                    return;
                }
            }
        }
    }
}

/// One slot of [`MAX_DEFERRED`]; released on drop, also when a runtime shutdown cancels the task.
struct DeferredSlot;

impl DeferredSlot {
    fn take() -> Option<Self> {
        if DEFERRED.fetch_add(1, Ordering::AcqRel) >= MAX_DEFERRED {
            DEFERRED.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Self)
    }
}

impl Drop for DeferredSlot {
    fn drop(&mut self) {
        DEFERRED.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Delivers `events` in order once the channel has room, off the relay's path.
fn defer(tx: mpsc::Sender<TapEvent>, conn: u64, events: Vec<TapEvent>) {
    let Some(slot) = DeferredSlot::take() else {
        tracing::warn!(
            conn,
            "copy channel full and {MAX_DEFERRED} closed connections already wait for it; \
            the decoder will not see this connection close"
        );
        return;
    };
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let _slot = slot;
            for ev in events {
                if tx.send(ev).await.is_err() {
                    break;
                }
            }
        });
        return;
    }
    // Serial relay threads have no runtime: a short-lived thread may block instead.
    let spawned = std::thread::Builder::new()
        .name("printer-tap-close".into())
        .spawn(move || {
            let _slot = slot;
            for ev in events {
                if tx.blocking_send(ev).is_err() {
                    break;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(conn, error = %e, "could not start a thread; the decoder will not see this connection close");
    }
}

/// Why a serial relay stopped on its own or could not start.
#[derive(Debug, thiserror::Error)]
pub enum SerialRelayError {
    /// A port could not be configured or cloned.
    #[error("serial port setup failed: {0}")]
    Setup(#[from] serialport::Error),
    /// A relay thread could not be started.
    #[error("could not start serial relay thread: {0}")]
    Thread(io::Error),
    /// Reading or writing a port failed (for example, a USB adapter was unplugged).
    #[error("serial relay {direction} failed: {source}")]
    Io {
        /// Which direction failed.
        direction: &'static str,
        /// The port's error.
        #[source]
        source: io::Error,
    },
    /// A relay thread panicked.
    #[error("serial relay thread panicked")]
    Panicked,
}

/// A running serial relay; [`stop`](Self::stop) ends it (dropping the handle also stops it, without waiting).
pub struct SerialRelayHandle {
    conn: u64,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<(), SerialRelayError>>>,
}

impl SerialRelayHandle {
    /// The connection id used in this relay's [`TapEvent`]s.
    pub fn conn(&self) -> u64 {
        self.conn
    }

    /// True once both threads ended, i.e. a port failed (see [`stop`](Self::stop) for why).
    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    /// Stops both threads and waits for them (≈50 ms; use `spawn_blocking` from async code); returns the first failure.
    pub fn stop(mut self) -> Result<(), SerialRelayError> {
        self.stop.store(true, Ordering::Release);
        let mut result = Ok(());
        for t in self.threads.drain(..) {
            let r = t.join().unwrap_or(Err(SerialRelayError::Panicked));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

impl Drop for SerialRelayHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Relays a serial register to a serial printer byte for byte, copying register → printer to `copies`.
pub fn spawn_serial_relay(
    mut register_port: Box<dyn serialport::SerialPort>,
    mut printer_port: Box<dyn serialport::SerialPort>,
    copies: mpsc::Sender<TapEvent>,
    stats: Arc<TapStats>,
) -> Result<SerialRelayHandle, SerialRelayError> {
    // Set before cloning: each clone caches its own timeout.
    register_port.set_timeout(SERIAL_POLL)?;
    printer_port.set_timeout(SERIAL_POLL)?;
    let register_w = register_port.try_clone()?;
    let printer_w = printer_port.try_clone()?;
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    stats.connections.fetch_add(1, Ordering::Relaxed);
    type Relay = JoinHandle<Result<(), SerialRelayError>>;
    fn spawn<F>(name: &str, f: F) -> io::Result<Relay>
    where
        F: FnOnce() -> Result<(), SerialRelayError> + Send + 'static,
    {
        std::thread::Builder::new().name(name.into()).spawn(f)
    }

    let (up_stop, up_stats) = (stop.clone(), stats.clone());
    let up = spawn("printer-tap-up", move || {
        // Created here so that a thread that never started never announced an `Opened`.
        let mut sink = CopySink::new(conn, copies, up_stats.clone(), SERIAL_PEER);
        let r = serial_pump(
            register_port,
            printer_w,
            "register → printer",
            &up_stop,
            |c| {
                add(&up_stats.bytes_to_printer, c.len());
                sink.data(c);
            },
        );
        sink.close();
        r
    })
    .map_err(SerialRelayError::Thread)?;
    let mut handle = SerialRelayHandle {
        conn,
        stop: stop.clone(),
        threads: vec![up],
    };
    let down = spawn("printer-tap-down", move || {
        serial_pump(
            printer_port,
            register_w,
            "printer → register",
            &stop,
            |c| add(&stats.bytes_to_register, c.len()),
        )
    });
    match down {
        Ok(down) => handle.threads.push(down),
        Err(e) => {
            let _ = handle.stop();
            return Err(SerialRelayError::Thread(e));
        }
    }
    Ok(handle)
}

/// Blocking copy loop of one serial direction; a failure stops the other direction too.
fn serial_pump(
    mut from: Box<dyn serialport::SerialPort>,
    mut to: Box<dyn serialport::SerialPort>,
    direction: &'static str,
    stop: &AtomicBool,
    mut on_chunk: impl FnMut(&[u8]),
) -> Result<(), SerialRelayError> {
    // Timeouts are how the loop polls `stop`; EINTR is not a failure either.
    use io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
    let retry = |e: &io::Error| matches!(e.kind(), TimedOut | WouldBlock | Interrupted);
    let fail = |source: io::Error| {
        stop.store(true, Ordering::Release);
        Err(SerialRelayError::Io { direction, source })
    };
    let mut buf = vec![0u8; RELAY_BUF];
    while !stop.load(Ordering::Acquire) {
        let n = match from.read(&mut buf) {
            // After poll said readable, 0 bytes means the line hung up.
            Ok(0) => return fail(io::Error::new(io::ErrorKind::UnexpectedEof, "port hung up")),
            Ok(n) => n,
            Err(e) if retry(&e) => continue,
            Err(e) => return fail(e),
        };
        let mut off = 0;
        while off < n {
            if stop.load(Ordering::Acquire) {
                return Ok(());
            }
            match to.write(&buf[off..n]) {
                Ok(0) => return fail(io::ErrorKind::WriteZero.into()),
                Ok(w) => off += w,
                Err(e) if retry(&e) => {}
                Err(e) => return fail(e),
            }
        }
        on_chunk(&buf[..n]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;
    use std::time::Instant as StdInstant;
    use tokio::sync::mpsc::Receiver;

    const T: Duration = Duration::from_secs(20);
    const DLE_EOT_1: [u8; 3] = [0x10, 0x04, 0x01];

    /// xorshift64*: deterministic chunk sizes and payloads without a rand dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    fn sha(b: &[u8]) -> [u8; 32] {
        Sha256::digest(b).into()
    }

    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    async fn within<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(T, f).await.expect("timed out")
    }

    async fn read_to_eof(r: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
        let mut got = Vec::new();
        within(r.read_to_end(&mut got)).await.expect("read");
        got
    }

    /// Counts DLE EOT n requests across chunk boundaries, as the fake printers answer them.
    #[derive(Default)]
    struct StatusScan(u8);
    impl StatusScan {
        fn feed(&mut self, data: &[u8]) -> usize {
            let mut found = 0;
            for &b in data {
                found += usize::from(self.0 == 2);
                self.0 = match (self.0, b) {
                    (1, 0x04) => 2,
                    (0 | 1, 0x10) => 1,
                    _ => 0,
                };
            }
            found
        }
    }

    fn fixtures() -> Option<Vec<(String, Vec<u8>)>> {
        let all = crate::fixtures::all("escpos");
        (!all.is_empty()).then_some(all)
    }

    /// A printer on 127.0.0.1 that records each connection, answers DLE EOT n with 0x12, and
    /// stops reading (a jammed printer) on connections starting with "STAL".
    async fn fake_printer() -> (SocketAddr, mpsc::UnboundedReceiver<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (tx, rx) = mpsc::unbounded_channel();
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let (mut got, mut buf, mut scan) = (vec![], vec![0u8; 4096], StatusScan(0));
                    while let Ok(n @ 1..) = s.read(&mut buf).await {
                        got.extend_from_slice(&buf[..n]);
                        if got.starts_with(b"STAL") {
                            std::future::pending::<()>().await;
                        }
                        if s.write_all(&vec![0x12; scan.feed(&buf[..n])])
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                    let _ = tx.send(got);
                });
            }
        });
        (addr, rx)
    }

    struct Tap {
        addr: SocketAddr,
        stats: Arc<TapStats>,
        events: Option<Receiver<TapEvent>>,
        _stop: watch::Sender<bool>,
    }

    async fn start_tap(printer: SocketAddr, cap: usize, idle: Duration, connect: Duration) -> Tap {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let stats = Arc::new(TapStats::default());
        let (tx, events) = mpsc::channel(cap);
        let (stop, stop_rx) = watch::channel(false);
        let (printer, connect_timeout, idle_timeout) = (printer.to_string(), connect, idle);
        let cfg = TapConfig {
            printer,
            connect_timeout,
            idle_timeout,
        };
        tokio::spawn(serve(l, cfg, tx, stats.clone(), stop_rx));
        Tap {
            addr,
            stats,
            events: Some(events),
            _stop: stop,
        }
    }

    /// Writes `data` in random chunks of 1..=max bytes.
    async fn send_chunked(
        w: &mut (impl AsyncWrite + Unpin),
        data: &[u8],
        rng: &mut Rng,
        max: usize,
    ) {
        let mut off = 0;
        while off < data.len() {
            let n = (1 + rng.below(max)).min(data.len() - off);
            w.write_all(&data[off..off + n])
                .await
                .expect("register write");
            off += n;
        }
    }

    /// Per connection: peer, copied bytes, bytes reported in gaps, event kinds in order.
    #[derive(Default)]
    struct Seen(Option<SocketAddr>, Vec<u8>, u64, String);
    type Log = HashMap<u64, Seen>;

    /// Adds `ev` to `log`; true for `Closed`.
    fn record(log: &mut Log, ev: TapEvent) -> bool {
        let e = log.entry(ev.conn()).or_default();
        let kind = match ev {
            TapEvent::Opened { peer, .. } => (e.0 = Some(peer), 'O').1,
            TapEvent::Data { bytes, .. } => (e.1.extend_from_slice(&bytes), 'D').1,
            TapEvent::Gap { lost_bytes, .. } => (e.2 += lost_bytes, 'G').1,
            TapEvent::Closed { .. } => 'C',
        };
        e.3.push(kind);
        kind == 'C'
    }

    async fn collect(mut rx: Receiver<TapEvent>, mut log: Log, closes: usize) -> Log {
        let mut seen = 0;
        while seen < closes {
            let ev = within(rx.recv()).await.expect("channel open");
            seen += usize::from(record(&mut log, ev));
        }
        log
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixtures_relay_byte_exact_with_status_and_copies() {
        let Some(files) = fixtures() else {
            return println!("skipping: fixtures/real/escpos not found");
        };
        let (printer, mut printed) = fake_printer().await;
        let mut tap = start_tap(printer, 1024, T, T).await;
        let events = tap.events.take().expect("events");
        let collector = tokio::spawn(collect(events, Log::new(), files.len()));
        let (mut rng, mut sent_by_peer) = (Rng(0x5EED_F00D), HashMap::new());
        for (name, file) in &files {
            // Like a driver: ask for status and wait for the answer before printing.
            let job = [&DLE_EOT_1[..], file].concat();
            let expected_status = StatusScan(0).feed(&job);
            let mut s = TcpStream::connect(tap.addr).await.expect("connect tap");
            sent_by_peer.insert(s.local_addr().expect("addr"), job.clone());
            s.write_all(&DLE_EOT_1).await.expect("write");
            let mut first = [0u8; 1];
            within(s.read_exact(&mut first)).await.expect("status");
            assert_eq!(first, [0x12], "{name}");
            let (mut r, mut w) = s.into_split();
            let reader = tokio::spawn(async move { read_to_eof(&mut r).await });
            send_chunked(&mut w, &job[3..], &mut rng, 4096).await;
            w.shutdown().await.expect("shutdown");
            let status = within(reader).await.expect("join");
            let got = within(printed.recv()).await.expect("printer");
            assert_eq!(sha(&got), sha(&job), "{name}: printer bytes differ");
            assert_eq!(
                status,
                vec![0x12; expected_status - 1],
                "{name}: status replies"
            );
        }
        let log = within(collector).await.expect("join");
        assert_eq!(log.len(), files.len());
        for Seen(peer, copied, gaps, kinds) in log.values() {
            let job = &sent_by_peer[&peer.expect("opened")];
            assert_eq!((sha(copied), *gaps), (sha(job), 0), "copy of {peer:?}");
            assert!(kinds.starts_with('O') && kinds.ends_with('C'), "{kinds}");
        }
        let total: usize = sent_by_peer.values().map(Vec::len).sum();
        assert_eq!(get(&tap.stats.bytes_to_printer), total as u64);
        assert_eq!(get(&tap.stats.copies_dropped_bytes), 0);
    }

    /// Prints 1 MiB while nobody reads a channel of `cap`, then starts reading and prints a tail;
    /// returns the event kinds seen and the bytes reported lost.
    async fn full_channel(cap: usize) -> (String, u64) {
        let (printer, mut printed) = fake_printer().await;
        let mut tap = start_tap(printer, cap, T, T).await;
        let mut rng = Rng(cap as u64 + 7);
        // The trailing status request doubles as "the printer has everything before it".
        let mut body = [rng.bytes(1 << 20), DLE_EOT_1.to_vec()].concat();
        let mut status = vec![0u8; StatusScan(0).feed(&body)];
        let mut s = TcpStream::connect(tap.addr).await.expect("connect");
        let (t0, (mut r, mut w)) = (StdInstant::now(), s.split());
        send_chunked(&mut w, &body, &mut rng, 16 * 1024).await;
        within(r.read_exact(&mut status)).await.expect("status");
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "printing waited: {:?}",
            t0.elapsed()
        );
        assert!(get(&tap.stats.copies_dropped_bytes) > 0);

        // The consumer starts: it empties the channel, so the tail finds room again.
        let (mut rx, mut log) = (tap.events.take().expect("events"), Log::new());
        for _ in 0..cap {
            record(&mut log, within(rx.recv()).await.expect("event"));
        }
        let collector = tokio::spawn(collect(rx, log, 1));
        let tail = rng.bytes(4096);
        w.write_all(&tail).await.expect("tail");
        w.shutdown().await.expect("shutdown");
        read_to_eof(&mut r).await;
        body.extend_from_slice(&tail);
        assert_eq!(
            sha(&within(printed.recv()).await.expect("printer")),
            sha(&body)
        );
        let log = within(collector).await.expect("join");
        let Seen(_, copied, gaps, kinds) = log.into_values().next().expect("one connection");
        // Nothing vanishes unannounced: every byte was either copied or reported in a Gap.
        assert_eq!(copied.len() as u64 + gaps, body.len() as u64);
        assert_eq!(gaps, get(&tap.stats.copies_dropped_bytes));
        assert!(kinds.starts_with('O') && kinds.ends_with('C'), "{kinds}");
        (kinds, gaps)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_copy_channel_never_blocks_printing() {
        let (kinds, gaps) = full_channel(1).await;
        // The one slot held Opened; once the consumer reads, the Gap comes next.
        assert!(gaps > 0 && kinds.starts_with("OG"), "{kinds}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn copy_stream_resumes_after_gap() {
        let (kinds, _) = full_channel(2).await;
        // Opened + first chunk filled the channel; copies resume only behind a Gap.
        let rest = kinds
            .strip_prefix("OD")
            .unwrap_or_else(|| panic!("{kinds}"));
        let gap = rest.find('G').unwrap_or_else(|| panic!("no gap: {kinds}"));
        assert!(
            !rest[..gap].contains('D') && rest[gap..].contains('D'),
            "{kinds}"
        );
    }

    /// Connects a register and returns how long until the tap closed it.
    async fn closed_after(tap: &Tap, limit: Duration) -> Duration {
        let mut s = TcpStream::connect(tap.addr).await.expect("connect tap");
        let (t0, mut b) = (StdInstant::now(), [0u8; 1]);
        let r = tokio::time::timeout(limit, s.read(&mut b))
            .await
            .expect("closed in time");
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
        t0.elapsed()
    }

    #[tokio::test]
    async fn printer_refusing_closes_register_at_once() {
        let dead = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let printer = dead.local_addr().expect("addr");
        drop(dead);
        let mut tap = start_tap(printer, 8, T, Duration::from_secs(3)).await;
        for _ in 0..2 {
            closed_after(&tap, Duration::from_secs(1)).await;
        }
        assert_eq!(get(&tap.stats.printer_unreachable), 2);
        let events = tap.events.as_mut().expect("events");
        assert!(
            events.try_recv().is_err(),
            "no events for a connection that never printed"
        );
    }

    #[tokio::test]
    async fn printer_not_answering_times_out_and_closes_register() {
        // A listener whose accept queue is full drops SYNs: connecting hangs like an absent host.
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(([127, 0, 0, 1], 0).into()).expect("bind");
        let jammed = sock.listen(1).expect("listen");
        let printer = jammed.local_addr().expect("addr");
        let mut held = Vec::new();
        for _ in 0..16 {
            let wait = Duration::from_millis(300);
            match tokio::time::timeout(wait, TcpStream::connect(printer)).await {
                Ok(s) => held.push(s.expect("connect")),
                Err(_) => break,
            }
        }
        if held.len() == 16 {
            return println!("skipping: could not fill the accept queue on this kernel");
        }
        let tap = start_tap(printer, 8, T, Duration::from_millis(500)).await;
        let took = closed_after(&tap, Duration::from_secs(2)).await;
        assert!(
            took >= Duration::from_millis(400),
            "closed before the connect timeout: {took:?}"
        );
        assert_eq!(get(&tap.stats.printer_unreachable), 1);
    }

    #[test]
    fn unreachable_warning_is_rate_limited() {
        let (log, t0, e) = (
            UnreachableLog::default(),
            Instant::now(),
            ConnectError::Refused,
        );
        assert_eq!(log.failed("p:9100", &e, t0), Some(1));
        assert_eq!(log.failed("p:9100", &e, t0 + Duration::from_secs(1)), None);
        assert_eq!(log.failed("p:9100", &e, t0 + Duration::from_secs(59)), None);
        assert_eq!(
            log.failed("p:9100", &e, t0 + UNREACHABLE_LOG_EVERY),
            Some(3)
        );
    }

    /// A tap in front of a printer socket the test drives by hand; returns (register, printer).
    async fn manual_pair(idle: Duration) -> (TcpStream, TcpStream, Tap) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let tap = start_tap(l.local_addr().expect("addr"), 8, idle, T).await;
        let reg = TcpStream::connect(tap.addr).await.expect("connect");
        let prn = within(l.accept()).await.expect("accept").0;
        (reg, prn, tap)
    }

    #[tokio::test]
    async fn register_half_close_reaches_printer_and_status_still_flows_back() {
        let (mut reg, mut prn, _tap) = manual_pair(T).await;
        reg.write_all(b"job").await.expect("write");
        reg.shutdown().await.expect("register half-close");
        assert_eq!(read_to_eof(&mut prn).await, b"job");
        prn.write_all(b"\x12late status")
            .await
            .expect("printer still writes");
        drop(prn);
        assert_eq!(read_to_eof(&mut reg).await, b"\x12late status");
    }

    #[tokio::test]
    async fn printer_half_close_reaches_register_and_data_still_flows_forward() {
        let (mut reg, mut prn, _tap) = manual_pair(T).await;
        prn.write_all(b"\x12").await.expect("write");
        prn.shutdown().await.expect("printer half-close");
        assert_eq!(read_to_eof(&mut reg).await, b"\x12");
        reg.write_all(b"more print data")
            .await
            .expect("register still writes");
        reg.shutdown().await.expect("shutdown");
        assert_eq!(read_to_eof(&mut prn).await, b"more print data");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn twenty_registers_at_once_and_a_jammed_one_blocks_nobody() {
        let (printer, mut printed) = fake_printer().await;
        let tap = start_tap(printer, 4096, T, T).await;
        // A register whose printer stopped reading: buffers fill up and it stays stuck.
        let mut jammed = TcpStream::connect(tap.addr).await.expect("connect");
        let jam = tokio::spawn(async move {
            let mut chunk = vec![0x55; 64 * 1024];
            chunk[..4].copy_from_slice(b"STAL");
            // Writes until every buffer on the way is full, then stays blocked.
            while jammed.write_all(&chunk).await.is_ok() {}
        });
        let (mut jobs, mut sent) = (JoinSet::new(), Vec::new());
        for i in 0..20 {
            let mut rng = Rng(1000 + i);
            let job = [rng.bytes(64 * 1024), vec![0x10, 0x04, 0x02]].concat();
            sent.push(sha(&job));
            let addr = tap.addr;
            jobs.spawn(async move {
                let (mut r, mut w) = TcpStream::connect(addr)
                    .await
                    .expect("connect")
                    .into_split();
                let reader = tokio::spawn(async move { read_to_eof(&mut r).await });
                send_chunked(&mut w, &job, &mut rng, 8192).await;
                w.shutdown().await.expect("shutdown");
                let status = reader.await.expect("join");
                assert_eq!(status.len(), StatusScan(0).feed(&job));
            });
        }
        within(async {
            while let Some(r) = jobs.join_next().await {
                r.expect("register task");
            }
        })
        .await;
        let mut got = Vec::new();
        for _ in 0..20 {
            got.push(sha(&within(printed.recv()).await.expect("printer")));
        }
        got.sort();
        sent.sort();
        assert_eq!(got, sent);
        assert!(
            !jam.is_finished(),
            "the jammed register should still be stuck"
        );
        jam.abort();
    }

    #[tokio::test]
    async fn idle_connection_is_closed() {
        let (mut reg, mut prn, _tap) = manual_pair(Duration::from_millis(300)).await;
        // Traffic every 100 ms keeps it open well past the idle timeout.
        let mut b = [0u8; 1];
        for i in 0..8u8 {
            reg.write_all(&[i]).await.expect("write");
            within(prn.read_exact(&mut b))
                .await
                .expect("printer gets byte");
            assert_eq!(b, [i]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let t0 = StdInstant::now();
        let r = within(reg.read(&mut b)).await;
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(150) && took < Duration::from_secs(3),
            "{took:?}"
        );
        let r = within(prn.read(&mut b)).await;
        assert!(matches!(r, Ok(0) | Err(_)), "printer side too: {r:?}");
    }

    #[test]
    fn serial_relay_byte_exact_over_pty_pairs() {
        let (reg_master, reg_slave) = serialport::TTYPort::pair().expect("pty A");
        let (mut prn_master, prn_slave) = serialport::TTYPort::pair().expect("pty B");
        let mut rng = Rng(42);
        let mut data: Vec<u8> = (0..16)
            .flat_map(|_| [rng.bytes(8192), DLE_EOT_1.into()].concat())
            .collect();
        fixtures()
            .into_iter()
            .flatten()
            .for_each(|(_, f)| data.extend(f));
        let expected_status = StatusScan(0).feed(&data);
        let stats = Arc::new(TapStats::default());
        let (tx, mut rx) = mpsc::channel(1 << 14);
        let (reg_port, prn_port) = (Box::new(reg_slave), Box::new(prn_slave));
        let handle = spawn_serial_relay(reg_port, prn_port, tx, stats.clone()).expect("relay");
        let deadline = StdInstant::now() + T;
        let retry = |e: &io::Error| {
            matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
            )
        };

        let want = data.len();
        let printer = std::thread::spawn(move || {
            let (mut got, mut buf, mut scan) = (Vec::new(), vec![0u8; 4096], StatusScan(0));
            while got.len() < want && StdInstant::now() < deadline {
                match prn_master.read(&mut buf) {
                    Ok(n) => {
                        got.extend_from_slice(&buf[..n]);
                        prn_master
                            .write_all(&vec![0x12; scan.feed(&buf[..n])])
                            .expect("status");
                    }
                    Err(e) if retry(&e) => {}
                    Err(e) => panic!("printer read: {e}"),
                }
            }
            // Keep the master: closing it is a hang-up for the relay, which may still owe status.
            (got, prn_master)
        });
        let (mut reg_writer, to_send) =
            (reg_master.try_clone_native().expect("clone"), data.clone());
        let register = std::thread::spawn(move || {
            let mut off = 0;
            while off < to_send.len() && StdInstant::now() < deadline {
                let n = (1 + rng.below(3000)).min(to_send.len() - off);
                match reg_writer.write(&to_send[off..off + n]) {
                    Ok(w) => off += w,
                    Err(e) if retry(&e) => {}
                    Err(e) => panic!("register write: {e}"),
                }
            }
        });
        let (mut reg_reader, mut status, mut buf) = (reg_master, Vec::new(), [0u8; 256]);
        while status.len() < expected_status && StdInstant::now() < deadline {
            match reg_reader.read(&mut buf) {
                Ok(n) => status.extend_from_slice(&buf[..n]),
                Err(e) if retry(&e) => {}
                Err(e) => panic!("register read: {e}"),
            }
        }
        register.join().expect("register thread");
        let (got, _prn_master) = printer.join().expect("printer thread");
        let conn = handle.conn();
        handle.stop().expect("relay ended cleanly");
        assert_eq!(sha(&got), sha(&data), "printer bytes differ");
        assert_eq!(status, vec![0x12; expected_status]);
        assert_eq!(get(&stats.bytes_to_register), expected_status as u64);
        let mut log = Log::new();
        while let Ok(ev) = rx.try_recv() {
            record(&mut log, ev);
        }
        let Seen(peer, copied, gaps, kinds) = &log[&conn];
        assert_eq!(
            (*peer, sha(copied), *gaps),
            (Some(SERIAL_PEER), sha(&data), 0)
        );
        assert_eq!(
            kinds.chars().filter(|&k| k != 'D').collect::<String>(),
            "OC"
        );
    }
}
