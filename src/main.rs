//! The `posedge` command line: parse, dispatch, map errors to exit codes. Nothing else.

#![forbid(unsafe_code)]

use anyhow::Context;
use clap::{Parser, Subcommand};
use posedge::config::{Config, ConfigError};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc: per-thread heaps, so an event built on a source task and freed by the
/// writer costs no arena lock (glibc malloc/free were a sixth of the agent's CPU).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "posedge",
    version,
    about = "Store-edge agent: register events durable in SQLite, forwarded over MQTT/TLS"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the agent in the foreground.
    Run {
        /// Config file.
        #[arg(long, default_value = "/etc/posedge/posedge.toml")]
        config: PathBuf,
    },
    /// Validate a config file; problems name the key and the line.
    CheckConfig {
        /// Config file.
        file: PathBuf,
    },
    /// Queue depth, link state, counters and alarms.
    Status {
        /// Config file (to find the outbox).
        #[arg(long, default_value = "/etc/posedge/posedge.toml")]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Outbox administration (read-only in this version).
    Queue {
        #[command(subcommand)]
        what: QueueCmd,
        /// Config file (to find the outbox).
        #[arg(long, default_value = "/etc/posedge/posedge.toml", global = true)]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Dry run: decode files as a source would, print events (NDJSON) and rejections.
    Decode {
        /// ndjson | poslog | naxml | kv | escpos.
        #[arg(long)]
        format: posedge::config::Format,
        /// Register id for records that carry none.
        #[arg(long)]
        register: Option<String>,
        /// ISO 4217 currency for records that name none.
        #[arg(long)]
        currency: Option<String>,
        /// The printer's code page at power-on (escpos), e.g. cp850.
        #[arg(long)]
        code_page: Option<String>,
        /// Apply this config's mapping rules, as for the source named by --source.
        #[arg(long, requires = "source")]
        config: Option<PathBuf>,
        /// The source whose mapping rules apply (with --config).
        #[arg(long, requires = "config")]
        source: Option<String>,
        /// Files to decode.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// The simulated register (DESIGN §7).
    Sim(Box<posedge_cli::SimArgs>),
    /// The whole path on one machine: broker, agent, registers, an uplink cut.
    #[cfg(feature = "demo")]
    Demo(posedge::demo::DemoArgs),
    /// The benchmark: ceilings and posedge end to end through a local Mosquitto.
    #[cfg(feature = "demo")]
    Bench(posedge::demo::bench::BenchArgs),
    /// The reference cloud consumer: store feeds from a shared MQTT 5 subscription into
    /// PostgreSQL, with gap tracking and resync requests.
    #[cfg(feature = "cloud")]
    CloudSink {
        /// Cloud config file (see examples/cloud-sink.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Reconcile one business day: each store's events in PostgreSQL against its summary;
    /// exits 1 when anything differs.
    #[cfg(feature = "cloud")]
    CloudReport {
        /// Cloud config file (its [database]).
        #[arg(long)]
        config: PathBuf,
        /// Business day, YYYY-MM-DD.
        #[arg(long)]
        day: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum QueueCmd {
    /// Events waiting for the uplink, per register.
    List,
    /// Records refused by the decoders or the broker, newest first, with their reasons.
    DeadLetters {
        /// How many to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Decode dead letters again (after a fix or a new mapping rule): the running agent
    /// does it within seconds; each outcome is in `posedge queue audit`.
    Replay {
        /// Dead letter ids (see `posedge queue dead-letters`).
        #[arg(long = "id", required_unless_present = "all")]
        ids: Vec<i64>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
    /// Delete dead letters for good (audited).
    Purge {
        /// Dead letter ids.
        #[arg(long = "id", required_unless_present = "all")]
        ids: Vec<i64>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Confirm: purged letters cannot be replayed.
        #[arg(long, required = true)]
        yes: bool,
    },
    /// The audit trail (config, certificates, commands, pruning), newest last.
    Audit {
        /// How many to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

mod posedge_cli {
    use posedge::sim::generate::Profile;
    use std::net::SocketAddr;
    use std::path::PathBuf;

    /// `posedge sim` arguments.
    #[derive(clap::Args)]
    pub struct SimArgs {
        /// Agent TCP source to connect to (NDJSON or kv lines, acks awaited).
        #[arg(long, visible_alias = "connect", default_value = "127.0.0.1:7878")]
        pub tcp: SocketAddr,
        /// Send over this serial device instead.
        #[arg(long, conflicts_with_all = ["pty", "printer"])]
        pub serial: Option<PathBuf>,
        /// Create a pseudo-terminal and send over it; prints the slave's path (or keeps
        /// --pty-link pointing at it).
        #[arg(long, conflicts_with = "printer")]
        pub pty: bool,
        /// With --pty: a symlink kept pointing at the current pty slave.
        #[arg(long, requires = "pty")]
        pub pty_link: Option<PathBuf>,
        /// Print ESC/POS receipts to this printer port (the agent's tap) instead.
        #[arg(long)]
        pub printer: Option<SocketAddr>,
        /// ndjson | poslog | kv | escpos.
        #[arg(long, default_value = "ndjson")]
        pub format: posedge::config::Format,
        /// Serial framing: lf | stx_etx.
        #[arg(long, default_value = "lf")]
        pub framing: String,
        /// Serial line speed.
        #[arg(long, default_value_t = 9600)]
        pub baud: u32,
        /// stx_etx: damage the check byte of every n-th frame (the register re-sends on NAK).
        #[arg(long)]
        pub corrupt_every: Option<u64>,
        /// --pty: pull the plug halfway through every n-th frame.
        #[arg(long)]
        pub unplug_every: Option<u64>,
        /// stx_etx: milliseconds to wait for ACK/NAK before re-sending a frame.
        #[arg(long, default_value_t = 2000)]
        pub answer_timeout_ms: u64,
        /// Events to send.
        #[arg(long, default_value_t = 100)]
        pub count: u64,
        /// Seed; the same seed sends the same events.
        #[arg(long, default_value_t = 1)]
        pub seed: u64,
        /// retail | restaurant.
        #[arg(long, default_value = "retail")]
        pub profile: Profile,
        /// Register id.
        #[arg(long, default_value = "reg-1")]
        pub register: String,
        /// Business day (YYYY-MM-DD).
        #[arg(long, default_value = "2026-11-27")]
        pub business_day: String,
        /// Make the last event a till close, ending the register's business day
        #[arg(long)]
        pub close_day: bool,
        /// Events per second; 0 sends as fast as acks allow.
        #[arg(long, default_value_t = 0)]
        pub rate: u64,
        /// Lines sent ahead of their acks (burst size).
        #[arg(long, default_value_t = 64)]
        pub window: usize,
        /// Store id (for the idempotency keys in the ledger).
        #[arg(long, default_value = "store-1")]
        pub store: String,
        /// Write one JSON line per event: key, acked, event_id, seq.
        #[arg(long)]
        pub ledger: Option<PathBuf>,
        /// Give up when the agent is unreachable this many seconds.
        #[arg(long, default_value_t = 120)]
        pub give_up_s: u64,
        /// Register clock skew in seconds (negative: behind): occurred_at is the wall clock
        /// plus this, instead of the simulated clock of the business day.
        #[arg(long, allow_hyphen_values = true)]
        pub clock_skew_s: Option<i64>,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let is_config = e.chain().any(|c| c.downcast_ref::<ConfigError>().is_some());
            eprintln!("posedge: {e:#}");
            if is_config {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// `directives` is an EnvFilter default such as `posedge=info,warn`; RUST_LOG overrides it.
/// Under systemd (stderr is the journal stream) events go to the journal with their
/// fields as journal fields (SOURCE, REGISTER, EVENT_ID, SEQ, ERROR, …) and priorities
/// from their levels; elsewhere they are human-readable lines on stderr.
fn init_logs(directives: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(directives));
    let journal = stderr_is_journal()
        .then(|| tracing_journald::layer().ok())
        .flatten()
        // Unprefixed fields, so `journalctl SOURCE=lane2` works; none of ours collides
        // with journald's own (theirs are upper-case or start with `_`).
        .map(|l| {
            l.with_syslog_identifier("posedge".into())
                .with_field_prefix(None)
        });
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match journal {
        Some(layer) => registry.with(layer).try_init(),
        None => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
}

/// systemd sets JOURNAL_STREAM to the device and inode of the journal socket it connected
/// to stderr (systemd.exec(5)); a redirected stderr keeps the variable but not the inode.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some((dev, ino)) = std::env::var("JOURNAL_STREAM").ok().and_then(|v| {
        v.split_once(':')
            .map(|(d, i)| (d.parse::<u64>(), i.parse::<u64>()))
    }) else {
        return false;
    };
    let fd = std::os::fd::AsFd::as_fd(&std::io::stderr())
        .try_clone_to_owned()
        .ok()
        .map(std::fs::File::from);
    matches!((dev, ino, fd.and_then(|f| f.metadata().ok())),
        (Ok(d), Ok(i), Some(m)) if m.dev() == d && m.ino() == i)
}

/// A read-only connection to the outbox named in a config file.
fn open_outbox(config: &std::path::Path) -> anyhow::Result<rusqlite::Connection> {
    let cfg = Config::load(config)?;
    posedge::outbox::schema::open_reader(&cfg.outbox.path).with_context(|| {
        format!(
            "no outbox at {} (has the agent ever run?)",
            cfg.outbox.path.display()
        )
    })
}

/// A writable outbox connection for operator commands (the agent may be running: SQLite
/// serialises the writes).
fn open_outbox_for_writing(config: &std::path::Path) -> anyhow::Result<rusqlite::Connection> {
    let cfg = Config::load(config)?;
    posedge::outbox::schema::open_writer(&cfg.outbox.path)
        .with_context(|| format!("cannot open the outbox at {}", cfg.outbox.path.display()))
}

fn selection(ids: Vec<i64>, all: bool) -> posedge::outbox::replay::Selection {
    if all {
        posedge::outbox::replay::Selection::All
    } else {
        posedge::outbox::replay::Selection::Ids(ids)
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::Run { config } => {
            let cfg = Config::load(&config)?;
            init_logs(&format!("posedge={},warn", cfg.log.level));
            runtime()?.block_on(async {
                let running = posedge::agent::start(&cfg).await?;
                tracing::info!(outbox = %running.outbox.path().display(), "posedge running");
                tokio::select! {
                    _ = posedge::agent::supervise(&running.outbox, &cfg.outbox.path) => {
                        wait_for_signal().await
                    }
                    _ = wait_for_signal() => {}
                }
                tracing::info!("stopping; queued events stay in the outbox");
                Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
            })
        }
        Cmd::CheckConfig { file } => {
            let cfg = Config::load(&file)?;
            println!(
                "{}: ok ({} source(s), uplink {}, outbox {})",
                file.display(),
                cfg.sources.len(),
                cfg.uplink.url,
                cfg.outbox.path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Queue { what, config, json } => {
            let text = match what {
                QueueCmd::Replay { ids, all } => {
                    let conn = open_outbox_for_writing(&config)?;
                    let by = posedge::outbox::replay::operator();
                    let n = posedge::outbox::replay::request(&conn, &selection(ids, all), &by)
                        .context("queueing the replay")?;
                    format!(
                        "replay of {n} dead letter(s) requested; the running agent does it within a few seconds (see `posedge queue audit`)"
                    )
                }
                QueueCmd::Purge { ids, all, .. } => {
                    let conn = open_outbox_for_writing(&config)?;
                    let by = posedge::outbox::replay::operator();
                    let n = posedge::outbox::replay::purge(&conn, &selection(ids, all), &by)
                        .context("purging dead letters")?;
                    format!("{n} dead letter(s) deleted (audited)")
                }
                QueueCmd::List => {
                    let conn = open_outbox(&config)?;
                    let rows = posedge::outbox::queue::queued_by_register(&conn)
                        .context("reading the outbox")?;
                    if json {
                        serde_json::to_string_pretty(&rows)?
                    } else {
                        posedge::ops::status::queue_table(&rows)
                    }
                }
                QueueCmd::DeadLetters { limit } => {
                    let conn = open_outbox(&config)?;
                    let rows = posedge::outbox::queue::dead_letters(&conn, limit)
                        .context("reading the outbox")?;
                    if json {
                        serde_json::to_string_pretty(&rows)?
                    } else {
                        posedge::ops::status::dead_letter_table(&rows)
                    }
                }
                QueueCmd::Audit { limit } => {
                    let conn = open_outbox(&config)?;
                    let rows = posedge::outbox::queue::recent_audit(&conn, limit)
                        .context("reading the audit trail")?;
                    if json {
                        serde_json::to_string_pretty(&rows)?
                    } else {
                        posedge::ops::status::audit_table(&rows)
                    }
                }
            };
            println!("{}", text.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Status { config, json } => {
            let conn = open_outbox(&config)?;
            let snap = posedge::outbox::queue::snapshot(&conn).context("reading the outbox")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&snap)?);
            } else {
                print!("{}", posedge::ops::status::table(&snap));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Decode {
            format,
            register,
            currency,
            code_page,
            config,
            source,
            files,
        } => {
            let mapping = match (config, source) {
                (Some(config), Some(source)) => {
                    let cfg = Config::load(&config)?;
                    Some(posedge::ops::dry_run::MappingFor {
                        rules: cfg.mapping_rules(),
                        source,
                    })
                }
                _ => None,
            };
            let default_currency = match currency.as_deref().map(str::parse).transpose() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("posedge: --currency: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let code_page = match code_page
                .as_deref()
                .map(|c| posedge::decode::escpos::CodePage::from_name(c).ok_or(c))
            {
                None => None,
                Some(Ok(p)) => Some(p),
                Some(Err(c)) => {
                    eprintln!("posedge: --code-page: {c:?} is not a known code page");
                    return Ok(ExitCode::from(2));
                }
            };
            let options = posedge::decode::Options {
                default_currency,
                code_page,
            };
            let (out, err) = (std::io::stdout(), std::io::stderr());
            let summary = posedge::ops::dry_run::run(
                format,
                register.as_deref(),
                options,
                mapping,
                &files,
                &mut out.lock(),
                &mut err.lock(),
            )?;
            eprintln!(
                "{} event(s), {} rejected, {} card data redaction(s)",
                summary.events, summary.rejected, summary.redacted
            );
            Ok(if summary.rejected == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Sim(a) => {
            init_logs("posedge=info,warn");
            let framing = match a
                .framing
                .parse::<posedge::source::serial::framing::Framing>()
            {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("posedge: --framing: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            posedge::sim::register::set_clock_skew_s(a.clock_skew_s);
            let opts = posedge::sim::register::SimOptions {
                connect: a.tcp,
                count: a.count,
                seed: a.seed,
                profile: a.profile,
                register_id: a.register,
                business_day: a.business_day,
                rate: a.rate,
                window: a.window.max(1),
                store_id: a.store,
                ledger: a.ledger,
                give_up_after: std::time::Duration::from_secs(a.give_up_s),
                format: a.format,
                close_day: a.close_day,
            };
            let report = if a.serial.is_some() || a.pty {
                let target = posedge::sim::serial::SerialTarget {
                    device: a.serial,
                    link: a.pty_link,
                    baud: a.baud,
                    framing,
                    corrupt_every: a.corrupt_every,
                    unplug_every: a.unplug_every,
                    answer_timeout: std::time::Duration::from_millis(a.answer_timeout_ms),
                };
                posedge::sim::serial::run(&opts, &target)?
            } else if let Some(printer) = a.printer {
                runtime()?.block_on(posedge::sim::printer::run(&opts, printer))?
            } else {
                runtime()?.block_on(posedge::sim::register::run(&opts))?
            };
            println!("{}", serde_json::to_string(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "demo")]
        Cmd::Demo(args) => {
            // The embedded broker logs every client disconnect as an error; the demo cuts links
            // on purpose, so only posedge speaks.
            init_logs("posedge=warn,off");
            let ok = runtime()?.block_on(posedge::demo::run(args))?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        #[cfg(feature = "cloud")]
        Cmd::CloudSink { config } => {
            let cfg = posedge::cloud::config::CloudConfig::load(&config)?;
            init_logs("posedge=info,warn");
            let totals = runtime()?.block_on(posedge::cloud::sink::run(&cfg, wait_for_signal()))?;
            tracing::info!(
                batches = totals.batches,
                events = totals.written.events,
                duplicates = totals.written.duplicates,
                "cloud-sink stopped"
            );
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "cloud")]
        Cmd::CloudReport { config, day, json } => {
            if day.len() != 10 || day.parse::<jiff::civil::Date>().is_err() {
                eprintln!("posedge: --day {day:?} must be a date YYYY-MM-DD");
                return Ok(ExitCode::from(2));
            }
            let cfg = posedge::cloud::config::CloudConfig::load(&config)?;
            let report =
                runtime()?.block_on(posedge::cloud::report::run(&cfg.database.url, &day))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", posedge::cloud::report::text(&report));
            }
            Ok(if report.clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        #[cfg(feature = "demo")]
        Cmd::Bench(args) => {
            init_logs("posedge=warn,off");
            runtime()?.block_on(posedge::demo::bench::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
