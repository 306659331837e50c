//! Wires the stages for `posedge run`: outbox first, then sources, then the uplink.

use crate::config::{Config, Framing, SourceConfig, SourceKind};
use crate::event::{Origin, RegisterId, SourceName};
use crate::ingest::{KeyRule, SourceContext};
use crate::ops::health::BEAT_EVERY;
use crate::ops::{metrics, systemd};
use crate::outbox::{Outbox, OutboxError, schema};
use crate::source::printer_tap::TapConfig;
use crate::source::printer_tap::TapStats;
use crate::source::serial::port::{Device, PortSettings};
use crate::source::tcp::{self, Limits};
use crate::uplink::{self, UplinkSettings, UplinkSetupError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The outbox could not be opened.
    #[error("outbox {path}: {source}")]
    Outbox {
        /// Database path.
        path: String,
        /// Cause.
        source: OutboxError,
    },
    /// The uplink settings or certificates are unusable.
    #[error(transparent)]
    Uplink(#[from] UplinkSetupError),
    /// A key check-config would have refused.
    #[error("{key}: {message}")]
    Config {
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A listener could not bind.
    #[error("source {name}: cannot listen on {addr}: {source}")]
    Bind {
        /// Source name.
        name: String,
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// A configured source kind is not available in this build.
    #[error(
        "source {name}: {what} is not supported by this version of posedge; remove the source or upgrade"
    )]
    Unsupported {
        /// Source name.
        name: String,
        /// The key and value.
        what: String,
    },
    /// A reader connection could not be opened.
    #[error(transparent)]
    Reader(#[from] schema::SchemaError),
}

/// A started agent.
pub struct Running {
    /// The outbox handle.
    pub outbox: Outbox,
    /// Where each TCP source listens (the bound address, useful with port 0).
    pub listening: Vec<(String, SocketAddr)>,
    /// The writer thread; ends when every outbox handle is dropped.
    pub writer: std::thread::JoinHandle<()>,
}

/// Opens the outbox, binds every source and starts the uplink, all as tokio tasks.
pub async fn start(cfg: &Config) -> Result<Running, StartError> {
    if cfg.uplink.insecure_plaintext {
        tracing::warn!(
            "insecure_plaintext = true: events cross the network unencrypted; never use this outside a lab"
        );
    }
    let settings = UplinkSettings::from_config(cfg)?;
    let (outbox, writer) = Outbox::open(&cfg.outbox).map_err(|source| StartError::Outbox {
        path: cfg.outbox.path.display().to_string(),
        source,
    })?;
    let mut listening = Vec::new();
    let mut taps = Vec::new();
    let mapping = Arc::new(cfg.mapping_rules());
    let mut contexts = std::collections::HashMap::new();
    for s in &cfg.sources {
        let ctx = Arc::new(SourceContext {
            store_id: cfg.store_id.clone(),
            origin: Origin {
                name: SourceName::new(&s.name),
                kind: s.kind.as_str(),
                format: s.format().as_str(),
            },
            format: s.format(),
            default_register: s.register_id.as_deref().map(RegisterId::new),
            options: s.decode_options(),
            // Receipts are never re-sent, so two identical ones are two sales.
            keys: if s.kind == SourceKind::Printer {
                KeyRule::Unique
            } else {
                KeyRule::Content
            },
            mapping: mapping.clone(),
        });
        contexts.insert(s.name.clone(), ctx.clone());
        match s.kind {
            SourceKind::Serial => {
                let settings = serial_settings(s).map_err(|what| StartError::Unsupported {
                    name: s.name.clone(),
                    what,
                })?;
                tracing::info!(source = %s.name, device = %settings.device, framing = settings.framing.as_str(),
                    format = s.format().as_str(), "reading serial register");
                tokio::spawn(crate::source::serial::serve(ctx, outbox.clone(), settings));
            }
            SourceKind::Printer if s.listen.is_none() => {
                let (Some(register), Some(printer)) = (&s.device, &s.printer) else {
                    continue;
                };
                let tap = crate::source::printer::SerialTap {
                    register: register.clone(),
                    printer: printer.into(),
                    baud: s.baud.unwrap_or(9600),
                };
                tracing::info!(source = %s.name, register = %register.display(), printer = %printer, "serial printer tap");
                let stats = Arc::new(TapStats::default());
                taps.push((s.name.clone(), stats.clone()));
                tokio::spawn(crate::source::printer::serve_serial(
                    ctx,
                    outbox.clone(),
                    tap,
                    stats,
                ));
            }
            SourceKind::Tcp | SourceKind::Printer => {
                let Some(addr) = s.listen else { continue };
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind {
                        name: s.name.clone(),
                        addr,
                        source,
                    })?;
                let bound = listener.local_addr().unwrap_or(addr);
                listening.push((s.name.clone(), bound));
                if let (SourceKind::Printer, Some(printer)) = (s.kind, &s.printer) {
                    tracing::info!(source = %s.name, addr = %bound, printer = %printer, "printer tap listening");
                    let tap = TapConfig {
                        idle_timeout: Duration::from_secs(s.idle_timeout_s),
                        ..TapConfig::new(printer.clone())
                    };
                    let stats = Arc::new(TapStats::default());
                    taps.push((s.name.clone(), stats.clone()));
                    tokio::spawn(crate::source::printer::serve(
                        listener,
                        ctx,
                        outbox.clone(),
                        tap,
                        stats,
                    ));
                    continue;
                }
                let limits = Limits {
                    max_line: usize::try_from(s.max_line_bytes.0).unwrap_or(usize::MAX),
                    idle: Duration::from_secs(s.idle_timeout_s),
                    max_pending: s.max_pending_acks,
                    max_connections: 256,
                };
                tracing::info!(source = %s.name, addr = %bound, format = s.format().as_str(), "listening for registers");
                tokio::spawn(tcp::serve(listener, ctx, outbox.clone(), limits));
            }
        }
    }
    if let Some(m) = &cfg.metrics {
        let listener = tokio::net::TcpListener::bind(m.listen)
            .await
            .map_err(|source| StartError::Bind {
                name: "metrics".into(),
                addr: m.listen,
                source,
            })?;
        let bound = listener.local_addr().unwrap_or(m.listen);
        tracing::info!(addr = %bound, "serving Prometheus metrics on /metrics");
        listening.push(("metrics".into(), bound));
        let sources = Arc::new(metrics::Sources {
            reader: crate::outbox::queue::Reader::new(schema::open_reader(&cfg.outbox.path)?),
            uplink: settings.counters.clone(),
            taps,
        });
        tokio::spawn(metrics::serve(listener, sources));
    }
    let reader = crate::outbox::queue::Reader::new(schema::open_reader(&cfg.outbox.path)?);
    audit_start(cfg, &outbox, &reader);
    outbox.replay_with(contexts);
    tokio::spawn(uplink::run(settings, outbox.clone(), reader));
    // check-config validated both; a config that skipped it fails here, loudly.
    let zone = cfg.summary.zone().map_err(|message| StartError::Config {
        key: "summary.time_zone",
        message,
    })?;
    let cutoff = cfg
        .summary
        .cutoff_time()
        .map_err(|message| StartError::Config {
            key: "summary.cutoff",
            message,
        })?;
    tokio::spawn(crate::derive::day_close::run(
        outbox.clone(),
        crate::derive::day_close::Calendar::new(zone, cutoff),
        crate::derive::day_close::Store {
            tenant_id: cfg.tenant.clone(),
            store_id: cfg.store_id.clone(),
            time_zone: cfg.summary.time_zone.clone(),
            revise_for: std::time::Duration::from_secs(
                u64::from(cfg.outbox.retain_delivered_days) * 86_400,
            ),
        },
    ));
    Ok(Running {
        outbox,
        listening,
        writer,
    })
}

/// Audits the config the agent starts with (changed or not since the last start) and
/// the TLS material it loaded.
fn audit_start(cfg: &Config, outbox: &Outbox, reader: &crate::outbox::queue::Reader) {
    use crate::ops::audit::{Action, Actor, Entry, Outcome};
    let previous = reader.config_digest().ok().flatten();
    let (action, detail) = match previous {
        Some(p) if p != cfg.digest => (
            Action::ConfigChanged,
            format!(
                "sha256={} (was {p}); {} source(s)",
                cfg.digest,
                cfg.sources.len()
            ),
        ),
        _ => (
            Action::ConfigLoaded,
            format!("sha256={}; {} source(s)", cfg.digest, cfg.sources.len()),
        ),
    };
    outbox.audit(Entry::new(Actor::Agent, action, Outcome::Success, &detail));
    outbox.remember_config(cfg.digest.clone());
    let mut files = Vec::new();
    let mut soonest: Option<(time::OffsetDateTime, String)> = None;
    for (k, path) in [("ca", &cfg.uplink.ca), ("cert", &cfg.uplink.cert)] {
        let Some(path) = path else { continue };
        let certs = crate::uplink::tls::describe(path).unwrap_or_default();
        let about: Vec<String> = certs
            .iter()
            .map(|c| format!("{}, expires {}", c.subject, rfc3339(c.not_after)))
            .collect();
        files.push(format!("{k}={} ({})", path.display(), about.join("; ")));
        for c in certs {
            if soonest.as_ref().is_none_or(|(t, _)| c.not_after < *t) {
                soonest = Some((
                    c.not_after,
                    format!("{k} {} ({})", path.display(), c.subject),
                ));
            }
        }
    }
    if let Some(key) = &cfg.uplink.key {
        files.push(format!("key={}", key.display()));
    }
    if !files.is_empty() {
        outbox.audit(Entry::new(
            Actor::Agent,
            Action::CertificatesLoaded,
            Outcome::Success,
            &files.join(" "),
        ));
    }
    let left = soonest.map(|(t, what)| (t - time::OffsetDateTime::now_utc(), t, what));
    let alarm = match left {
        Some((left, t, what)) if left <= CERT_WARNING => {
            let message = if left.is_negative() {
                format!(
                    "{what} expired at {}: the broker will refuse the agent; install a new certificate",
                    rfc3339(t)
                )
            } else {
                format!(
                    "{what} expires at {} (in {} days): renew it before then",
                    rfc3339(t),
                    left.whole_days()
                )
            };
            tracing::warn!(%message, "certificate expiry");
            Some(message)
        }
        _ => None,
    };
    outbox.alarm("certificate_expiry".into(), alarm);
}

/// An uplink certificate this close to its end raises the `certificate_expiry` alarm.
const CERT_WARNING: time::Duration = time::Duration::days(30);

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Port settings of a serial source (validated by check-config).
fn serial_settings(s: &SourceConfig) -> Result<PortSettings, String> {
    let device = match (&s.device, &s.usb) {
        (Some(path), _) => Device::Path(path.clone()),
        (None, Some(usb)) => Device::Usb(usb.parse().map_err(|e| format!("usb = {usb:?}: {e}"))?),
        (None, None) => return Err("a serial source without device or usb".into()),
    };
    let mut p = PortSettings::new(device, s.framing.unwrap_or(Framing::Lf));
    p.baud = s.baud.unwrap_or(p.baud);
    p.data_bits = s.data_bits.unwrap_or(p.data_bits);
    p.parity = s.parity.unwrap_or(p.parity);
    p.stop_bits = s.stop_bits.unwrap_or(p.stop_bits);
    p.flow_control = s.flow_control.unwrap_or(p.flow_control);
    p.max_frame = usize::try_from(s.max_line_bytes.0).unwrap_or(usize::MAX);
    p.validate()?;
    Ok(p)
}

/// Tells systemd the agent is ready, then keeps its STATUS current and, while every
/// stage beats, pings its watchdog. Without `$NOTIFY_SOCKET` it does nothing.
pub async fn supervise(outbox: &Outbox, outbox_path: &std::path::Path) {
    let notifier = match systemd::Notifier::from_env() {
        Ok(Some(n)) => n,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot reach systemd's NOTIFY_SOCKET; no readiness or watchdog");
            return;
        }
    };
    let reader = match schema::open_reader(outbox_path) {
        Ok(c) => crate::outbox::queue::Reader::new(c),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the outbox for systemd STATUS");
            return;
        }
    };
    let status = || match reader.snapshot() {
        Ok(s) => systemd::status_text(
            s.outbox.pending,
            s.outbox.oldest_age_s,
            if s.uplink.connected { "up" } else { "down" },
        ),
        Err(e) => format!("STATUS=outbox unreadable: {e}"),
    };
    if let Err(e) = notifier.notify(&format!("READY=1\n{}", status())) {
        tracing::warn!(error = %e, "cannot notify systemd of readiness");
    }
    let watchdog = systemd::watchdog_period();
    // Half the watchdog period, as sd_watchdog_enabled(3) advises; STATUS alone every 10 s.
    let every = watchdog.map_or(Duration::from_secs(10), |w| {
        (w / 2).max(Duration::from_millis(100))
    });
    let health = outbox.health();
    let mut tick = tokio::time::interval(every);
    let mut stalled_logged = false;
    let mut last_status = std::time::Instant::now();
    loop {
        tick.tick().await;
        let mut message = String::new();
        if let Some(period) = watchdog {
            match health.stalled((period / 2).max(BEAT_EVERY * 3)) {
                None => {
                    message.push_str("WATCHDOG=1\n");
                    stalled_logged = false;
                }
                Some(stage) if !stalled_logged => {
                    tracing::error!(
                        ?stage,
                        "pipeline stage stopped making progress; withholding the watchdog ping so systemd restarts the agent"
                    );
                    stalled_logged = true;
                }
                Some(_) => {}
            }
        }
        if last_status.elapsed() >= Duration::from_secs(10) || watchdog.is_none() {
            message.push_str(&status());
            last_status = std::time::Instant::now();
        }
        if !message.is_empty() {
            let _ = notifier.notify(message.trim_end());
        }
    }
}
