//! The TOML configuration model and its validation.
//!
//! Parsing happens in two passes: serde (with `deny_unknown_fields`) catches unknown keys
//! and wrong types, then [`Config::validate`] checks values that serde cannot (files that
//! must exist, ranges, cross-key rules). Every problem names the key and its line, because
//! the person reading it is editing a file on a store box over a remote shell.

pub use crate::source::serial::framing::Framing;
pub use crate::source::serial::port::{Flow, Parity};
use crate::source::serial::usb::UsbMatch;
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `uplink.ca` or `source[1].listen`.
    pub key: String,
    /// 1-based line in the file, when the key is present in it.
    pub line: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid config.
    #[error("{path} has {} problem(s):\n{}", problems.len(), render(problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<ConfigProblem>,
    },
}

fn render(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A byte quantity written as an integer or as "512MiB", "10MB", "4KiB".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses "512MiB", "1GB", "4096".
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a size such as \"512MiB\""))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            other => {
                return Err(format!(
                    "unknown size unit {other:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
                ));
            }
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Text(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
            write!(f, "{}GiB", b >> 30)
        } else if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
            write!(f, "{}MiB", b >> 20)
        } else if b >= 1 << 10 && b.is_multiple_of(1 << 10) {
            write!(f, "{}KiB", b >> 10)
        } else {
            write!(f, "{b}B")
        }
    }
}

/// The whole agent configuration (DESIGN §5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Tenant (retail chain) identifier, part of every topic.
    pub tenant: String,
    /// This store's identifier, stamped on every event.
    pub store_id: String,
    /// MQTT topic prefix; `{tenant}` and `{store}` are substituted.
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    /// The durable queue.
    #[serde(default)]
    pub outbox: OutboxConfig,
    /// The link to the cloud broker.
    pub uplink: UplinkConfig,
    /// Where register events come from.
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
    /// Prometheus endpoint.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The end-of-day summary: the store's time zone and business-day cut-off.
    #[serde(default)]
    pub summary: SummaryConfig,
    /// Mapping rules applied to decoded events before redaction and storage.
    #[serde(default, rename = "mapping")]
    pub mapping: Vec<crate::mapping::RuleSpec>,
    /// sha256 of the config text, for the audit trail (not a key).
    #[serde(skip)]
    pub digest: String,
}

fn default_topic_prefix() -> String {
    "posedge/v1/{tenant}/{store}".into()
}

/// `[outbox]`: the SQLite store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Database file; its directory must exist and be writable.
    #[serde(default = "default_outbox_path")]
    pub path: PathBuf,
    /// Byte bound of events waiting for the uplink; at the bound acks are withheld.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// Free-disk floor; below it acks are withheld.
    #[serde(default = "default_min_free_disk")]
    pub min_free_disk: ByteSize,
    /// How long after a group's first record was queued the writer commits it (milliseconds).
    #[serde(default = "default_group_commit_ms")]
    pub group_commit_ms: u64,
    /// Most events in one commit.
    #[serde(default = "default_max_group")]
    pub max_group: usize,
    /// How long delivered events are kept for resends and de-duplication (days).
    #[serde(default = "default_retain_days")]
    pub retain_delivered_days: u32,
    /// Byte bound of the delivered archive; the oldest delivered events go first.
    #[serde(default = "default_archive_max_bytes")]
    pub archive_max_bytes: ByteSize,
}

fn default_archive_max_bytes() -> ByteSize {
    ByteSize(256 << 20)
}

/// `[summary]`: when a business day closes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryConfig {
    /// IANA time zone of the store ("Europe/Berlin"); the cut-off is local time there.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Local time ("HH:MM") at which a business day closes if its registers have not all
    /// closed it; before noon it closes the previous day (a 04:00 cut-off closes the
    /// evening before).
    #[serde(default = "default_cutoff")]
    pub cutoff: String,
}

fn default_time_zone() -> String {
    "UTC".into()
}
fn default_cutoff() -> String {
    "04:00".into()
}

impl Default for SummaryConfig {
    fn default() -> Self {
        SummaryConfig {
            time_zone: default_time_zone(),
            cutoff: default_cutoff(),
        }
    }
}

impl SummaryConfig {
    /// The store's time zone.
    pub fn zone(&self) -> Result<jiff::tz::TimeZone, String> {
        jiff::tz::TimeZone::get(&self.time_zone)
            .map_err(|e| format!("{:?} is not an IANA time zone: {e}", self.time_zone))
    }

    /// The cut-off as a local time of day.
    pub fn cutoff_time(&self) -> Result<jiff::civil::Time, String> {
        let bad = || format!("{:?} must be a local time HH:MM", self.cutoff);
        let (h, m) = self.cutoff.split_once(':').ok_or_else(bad)?;
        let (h, m) = (
            h.parse::<i8>().map_err(|_| bad())?,
            m.parse::<i8>().map_err(|_| bad())?,
        );
        jiff::civil::Time::new(h, m, 0, 0).map_err(|_| bad())
    }
}

fn default_outbox_path() -> PathBuf {
    "/var/lib/posedge/outbox.db".into()
}
fn default_max_bytes() -> ByteSize {
    ByteSize(512 << 20)
}
fn default_min_free_disk() -> ByteSize {
    ByteSize(256 << 20)
}
fn default_group_commit_ms() -> u64 {
    2
}
fn default_max_group() -> usize {
    2048
}
fn default_retain_days() -> u32 {
    7
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            path: default_outbox_path(),
            max_bytes: default_max_bytes(),
            min_free_disk: default_min_free_disk(),
            group_commit_ms: default_group_commit_ms(),
            max_group: default_max_group(),
            retain_delivered_days: default_retain_days(),
            archive_max_bytes: default_archive_max_bytes(),
        }
    }
}

/// MQTT protocol level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttVersion {
    /// MQTT 3.1.1 (protocol level 4).
    V4,
    /// MQTT 5.
    V5,
}

impl<'de> Deserialize<'de> for MqttVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u8::deserialize(d)? {
            4 | 3 => Ok(MqttVersion::V4),
            5 => Ok(MqttVersion::V5),
            n => Err(serde::de::Error::custom(format!(
                "mqtt_version must be 5 or 4 (3.1.1), not {n}"
            ))),
        }
    }
}

/// `[uplink]`: the cloud broker connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UplinkConfig {
    /// `mqtts://host:port`, or `mqtt://host:port` with `insecure_plaintext = true`.
    pub url: String,
    /// CA bundle (PEM) the broker certificate must chain to.
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM) for mTLS.
    pub cert: Option<PathBuf>,
    /// Client private key (PEM) for mTLS.
    pub key: Option<PathBuf>,
    /// 5 (default) or 4 (= 3.1.1).
    #[serde(default = "default_mqtt_version")]
    pub mqtt_version: MqttVersion,
    /// MQTT client id; default `posedge-{tenant}-{store}`.
    pub client_id: Option<String>,
    /// Keep-alive interval in seconds.
    #[serde(default = "default_keep_alive")]
    pub keep_alive_s: u64,
    /// First reconnect delay bound (milliseconds).
    #[serde(default = "default_backoff_floor")]
    pub backoff_floor_ms: u64,
    /// Largest reconnect delay bound (milliseconds).
    #[serde(default = "default_backoff_cap")]
    pub backoff_cap_ms: u64,
    /// Publishes awaiting PUBACK at once.
    #[serde(default = "default_max_inflight")]
    pub max_inflight: u16,
    /// Allow `mqtt://` without TLS. Never in production.
    #[serde(default)]
    pub insecure_plaintext: bool,
}

fn default_mqtt_version() -> MqttVersion {
    MqttVersion::V5
}
fn default_keep_alive() -> u64 {
    30
}
fn default_backoff_floor() -> u64 {
    500
}
fn default_backoff_cap() -> u64 {
    60_000
}
fn default_max_inflight() -> u16 {
    256
}

/// Where a source gets its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// LAN register speaking NDJSON over TCP with per-line acks.
    Tcp,
    /// Serial/USB register.
    Serial,
    /// Printer tap.
    Printer,
}

impl SourceKind {
    /// Name used in events and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Tcp => "tcp",
            SourceKind::Serial => "serial",
            SourceKind::Printer => "printer",
        }
    }
}

/// Payload format of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON event per line.
    Ndjson,
    /// ARTS POSLog XML.
    Poslog,
    /// NAXML.
    Naxml,
    /// key=value journal lines.
    Kv,
    /// ESC/POS receipt stream.
    Escpos,
}

impl Format {
    /// Name used in events and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Ndjson => "ndjson",
            Format::Poslog => "poslog",
            Format::Naxml => "naxml",
            Format::Kv => "kv",
            Format::Escpos => "escpos",
        }
    }
}

/// One `[[source]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique name, used in `seq`, metrics and topics.
    pub name: String,
    /// tcp | serial | printer.
    pub kind: SourceKind,
    /// Listen address for tcp and printer sources.
    pub listen: Option<SocketAddr>,
    /// Payload format; escpos for printer taps, ndjson otherwise when unset.
    #[serde(default)]
    pub format: Option<Format>,
    /// Register id used when the input carries none.
    pub register_id: Option<String>,
    /// Longest accepted line; longer lines are nacked while reading.
    #[serde(default = "default_max_line")]
    pub max_line_bytes: ByteSize,
    /// A connection silent for this long is closed (seconds).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_s: u64,
    /// Lines of one connection waiting for their ack at once.
    #[serde(default = "default_pipeline")]
    pub max_pending_acks: usize,
    /// Serial device path.
    pub device: Option<PathBuf>,
    /// USB match `VID:PID[:serial]`.
    pub usb: Option<String>,
    /// Serial baud rate.
    pub baud: Option<u32>,
    /// Serial data bits (5–8).
    pub data_bits: Option<u8>,
    /// Serial parity: none | odd | even.
    pub parity: Option<Parity>,
    /// Serial stop bits: 1 | 2.
    pub stop_bits: Option<u8>,
    /// Serial flow control: none | software | hardware.
    pub flow_control: Option<Flow>,
    /// Serial framing.
    pub framing: Option<Framing>,
    /// The real printer a printer tap relays to.
    pub printer: Option<String>,
    /// ISO 4217 currency for records that name none (kv, naxml, poslog).
    pub currency: Option<String>,
    /// The printer's code page at power-on (escpos): cp437, cp850, cp858, cp1252, …
    pub code_page: Option<String>,
}

impl SourceConfig {
    /// A source with every optional key at its default.
    pub fn new(name: &str, kind: SourceKind) -> Self {
        SourceConfig {
            name: name.into(),
            kind,
            listen: None,
            format: None,
            register_id: None,
            max_line_bytes: default_max_line(),
            idle_timeout_s: default_idle_timeout(),
            max_pending_acks: default_pipeline(),
            device: None,
            usb: None,
            baud: None,
            data_bits: None,
            parity: None,
            stop_bits: None,
            flow_control: None,
            framing: None,
            printer: None,
            currency: None,
            code_page: None,
        }
    }

    /// The payload format in force.
    pub fn format(&self) -> Format {
        match (self.format, self.kind) {
            (Some(f), _) => f,
            (None, SourceKind::Printer) => Format::Escpos,
            (None, _) => Format::Ndjson,
        }
    }

    /// Decoder settings of this source (validated by `check-config`).
    pub fn decode_options(&self) -> crate::decode::Options {
        crate::decode::Options {
            default_currency: self.currency.as_deref().and_then(|c| c.parse().ok()),
            code_page: self
                .code_page
                .as_deref()
                .and_then(crate::decode::escpos::CodePage::from_name),
        }
    }
}

fn default_max_line() -> ByteSize {
    ByteSize(1 << 20)
}
fn default_idle_timeout() -> u64 {
    300
}
fn default_pipeline() -> usize {
    256
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Local address of the Prometheus endpoint.
    pub listen: SocketAddr,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// error | warn | info | debug | trace.
    #[serde(default = "default_level")]
    pub level: String,
}

fn default_level() -> String {
    "info".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_level(),
        }
    }
}

impl UplinkConfig {
    /// Host, port and whether TLS is used, from `url`.
    pub fn endpoint(&self) -> Result<(String, u16, bool), String> {
        let (tls, rest) = if let Some(r) = self.url.strip_prefix("mqtts://") {
            (true, r)
        } else if let Some(r) = self.url.strip_prefix("mqtt://") {
            (false, r)
        } else {
            return Err(format!(
                "{:?} must start with mqtts:// (or mqtt:// with insecure_plaintext = true)",
                self.url
            ));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("port {p:?} in {:?} is not a number", self.url))?,
            ),
            None => (rest, if tls { 8883 } else { 1883 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 {
            return Err(format!("{:?} has no host or a zero port", self.url));
        }
        Ok((host.to_string(), port, tls))
    }

    /// Reconnect backoff floor.
    pub fn backoff_floor(&self) -> Duration {
        Duration::from_millis(self.backoff_floor_ms)
    }

    /// Reconnect backoff cap.
    pub fn backoff_cap(&self) -> Duration {
        Duration::from_millis(self.backoff_cap_ms)
    }

    /// Problems of this broker connection table, as (`{table}.{key}`, message): the
    /// agent's `[uplink]` and the cloud sink's `[broker]` are checked alike.
    pub fn problems(&self, table: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bad = |key: &str, message: String| out.push((format!("{table}.{key}"), message));
        let u = self;
        match u.endpoint() {
            Err(e) => bad("url", e),
            Ok((_, _, false)) if !u.insecure_plaintext => bad(
                "url",
                "mqtt:// is plaintext; use mqtts:// or set insecure_plaintext = true explicitly"
                    .into(),
            ),
            Ok((_, _, true)) => {
                if u.ca.is_none() {
                    bad(
                        "ca",
                        "mqtts:// needs the CA bundle that signs the broker's certificate".into(),
                    );
                }
                if u.cert.is_some() != u.key.is_some() {
                    bad(
                        "cert",
                        "cert and key must be given together for mTLS".into(),
                    );
                }
            }
            Ok(_) => {}
        }
        for (key, path) in [("ca", &u.ca), ("cert", &u.cert), ("key", &u.key)] {
            if let Some(p) = path
                && !p.is_file()
            {
                bad(key, format!("file {} does not exist", p.display()));
            }
        }
        if !(5..=3600).contains(&u.keep_alive_s) {
            bad("keep_alive_s", format!("{} must be 5–3600", u.keep_alive_s));
        }
        if u.backoff_floor_ms == 0 {
            bad("backoff_floor_ms", "must be at least 1".into());
        }
        if u.backoff_cap_ms < u.backoff_floor_ms {
            bad(
                "backoff_cap_ms",
                format!(
                    "{} is below backoff_floor_ms ({})",
                    u.backoff_cap_ms, u.backoff_floor_ms
                ),
            );
        }
        if u.max_inflight == 0 {
            bad("max_inflight", "must be 1–65535".into());
        }
        if let Some(id) = &u.client_id
            && (id.is_empty() || id.len() > 128)
        {
            bad("client_id", "must be 1–128 characters".into());
        }
        out
    }
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path.parent().unwrap_or(Path::new("."))).map_err(|problems| {
            ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            }
        })
    }

    /// The compiled mapping rules (validated when the config was loaded).
    pub fn mapping_rules(&self) -> crate::mapping::Rules {
        crate::mapping::Rules::compile(&self.mapping).unwrap_or_default()
    }

    /// Parses and validates config text; relative paths resolve against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Config, Vec<ConfigProblem>> {
        let (mut config, locator) = parse_located::<Config>(text)?;
        config.resolve_paths(base);
        config.digest =
            crate::ingest::hex(&<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
        let problems = config.problems(&locator);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.outbox.path);
        for p in [
            &mut self.uplink.ca,
            &mut self.uplink.cert,
            &mut self.uplink.key,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
    }

    /// The MQTT topic prefix with tenant and store filled in.
    pub fn prefix(&self) -> String {
        self.topic_prefix
            .replace("{tenant}", &self.tenant)
            .replace("{store}", &self.store_id)
    }

    /// The MQTT client id.
    pub fn client_id(&self) -> String {
        self.uplink
            .client_id
            .clone()
            .unwrap_or_else(|| format!("posedge-{}-{}", self.tenant, self.store_id))
    }

    fn problems(&self, loc: &Locator) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        let mut bad = |key: &str, message: String| {
            out.push(ConfigProblem {
                key: key.to_string(),
                line: loc.line_of_key(key),
                message,
            })
        };
        if let Err(errors) = crate::mapping::Rules::compile(&self.mapping) {
            for (key, message) in errors {
                bad(&key, message);
            }
        }
        let names: Vec<&str> = self.sources.iter().map(|s| s.name.as_str()).collect();
        for (key, message) in
            crate::mapping::unknown_sources(&self.mapping, &|n| names.contains(&n))
        {
            bad(&key, message);
        }
        for (key, value) in [("tenant", &self.tenant), ("store_id", &self.store_id)] {
            if !is_topic_safe(value) {
                bad(
                    key,
                    format!("{value:?} must be 1–64 characters of A–Z a–z 0–9 _ - ."),
                );
            }
        }
        let o = &self.outbox;
        if o.max_bytes.0 < 1 << 20 {
            bad(
                "outbox.max_bytes",
                format!("{} is below the 1MiB minimum", o.max_bytes),
            );
        }
        if o.group_commit_ms > 100 {
            bad(
                "outbox.group_commit_ms",
                format!("{} ms would delay every ack; use 0–100", o.group_commit_ms),
            );
        }
        if !(1..=100_000).contains(&o.max_group) {
            bad(
                "outbox.max_group",
                format!("{} must be 1–100000", o.max_group),
            );
        }
        if o.retain_delivered_days > 366 {
            bad(
                "outbox.retain_delivered_days",
                format!("{} must be 0–366", o.retain_delivered_days),
            );
        }
        if let Err(e) = self.summary.zone() {
            bad("summary.time_zone", e);
        }
        if let Err(e) = self.summary.cutoff_time() {
            bad("summary.cutoff", e);
        }
        match o.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => bad(
                "outbox.path",
                format!("directory {} does not exist", dir.display()),
            ),
            _ => {}
        }

        for (key, message) in self.uplink.problems("uplink") {
            bad(&key, message);
        }

        let mut names = std::collections::HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            let k = |field: &str| format!("source[{i}].{field}");
            if !is_topic_safe(&s.name) {
                bad(
                    &k("name"),
                    format!("{:?} must be 1–64 characters of A–Z a–z 0–9 _ - .", s.name),
                );
            }
            if !names.insert(s.name.clone()) {
                bad(
                    &k("name"),
                    format!("{:?} is used by another source", s.name),
                );
            }
            // `<name>.inventory` is the seq lane of a source's derived messages: a source
            // of that name would share its `seq` counter.
            if s.name
                .to_ascii_lowercase()
                .ends_with(crate::ingest::DERIVED_LANE_SUFFIX)
            {
                bad(
                    &k("name"),
                    format!(
                        "{:?} ends in {:?}, which names the derived lane of another source",
                        s.name,
                        crate::ingest::DERIVED_LANE_SUFFIX
                    ),
                );
            }
            if let Some(r) = &s.register_id
                && !is_topic_safe(r)
            {
                bad(
                    &k("register_id"),
                    format!("{r:?} must be 1–64 characters of A–Z a–z 0–9 _ - ."),
                );
            }
            if !(1 << 10..=64 << 20).contains(&s.max_line_bytes.0) {
                bad(
                    &k("max_line_bytes"),
                    format!("{} must be 1KiB–64MiB", s.max_line_bytes),
                );
            }
            if let Some(c) = &s.currency
                && let Err(e) = c.parse::<crate::model::Currency>()
            {
                bad(&k("currency"), e.to_string());
            }
            if let Some(c) = &s.code_page
                && crate::decode::escpos::CodePage::from_name(c).is_none()
            {
                let known: Vec<&str> = crate::decode::escpos::CodePage::ALL
                    .iter()
                    .map(|p| p.name())
                    .collect();
                bad(
                    &k("code_page"),
                    format!("{c:?} is not a known code page ({})", known.join(", ")),
                );
            }
            if s.idle_timeout_s == 0 {
                bad(&k("idle_timeout_s"), "must be at least 1".into());
            }
            if !(1..=65_536).contains(&s.max_pending_acks) {
                bad(&k("max_pending_acks"), "must be 1–65536".into());
            }
            if s.kind == SourceKind::Printer && s.format() != Format::Escpos {
                bad(
                    &k("format"),
                    "a printer tap reads ESC/POS: leave format out or set \"escpos\"".into(),
                );
            }
            match s.kind {
                SourceKind::Printer if s.device.is_some() => {
                    // A serial printer tap: the register's port and the printer's port.
                    if s.listen.is_some() {
                        bad(
                            &k("listen"),
                            "a serial printer tap (device set) does not listen; remove listen or device".into(),
                        );
                    }
                    if !s.printer.as_deref().is_some_and(|p| p.starts_with('/')) {
                        bad(
                            &k("printer"),
                            "a serial printer tap needs the printer's device path (e.g. /dev/ttyUSB1)".into(),
                        );
                    }
                }
                SourceKind::Tcp | SourceKind::Printer => {
                    if s.listen.is_none() {
                        bad(
                            &k("listen"),
                            format!("a {} source needs a listen address", s.kind.as_str()),
                        );
                    }
                    if s.kind == SourceKind::Printer && s.printer.is_none() {
                        bad(
                            &k("printer"),
                            "a printer tap needs the real printer's address".into(),
                        );
                    }
                }
                SourceKind::Serial => {
                    if s.device.is_none() && s.usb.is_none() {
                        bad(&k("device"), "a serial source needs device or usb".into());
                    }
                    if let Some(b) = s.data_bits
                        && !(5..=8).contains(&b)
                    {
                        bad(&k("data_bits"), format!("{b} must be 5–8"));
                    }
                    if let Some(b) = s.stop_bits
                        && !(1..=2).contains(&b)
                    {
                        bad(&k("stop_bits"), format!("{b} must be 1 or 2"));
                    }
                    if let Some(u) = &s.usb
                        && let Err(e) = u.parse::<UsbMatch>()
                    {
                        bad(&k("usb"), e.to_string());
                    }
                    if s.baud == Some(0) {
                        bad(&k("baud"), "must be a positive line speed".into());
                    }
                }
            }
        }
        out
    }
}

/// True for identifiers safe as an MQTT topic level: 1–64 of `A–Z a–z 0–9 _ - .`.
pub fn is_topic_safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// serde messages name the offending key in backticks ("unknown field `x`").
fn key_from_serde_message(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_string())
}

/// Parses TOML text into `T` with serde (unknown keys and wrong types refused); the
/// problem names the key and its line. The [`Locator`] then places later problems.
pub fn parse_located<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<(T, Locator<'_>), Vec<ConfigProblem>> {
    let locator = Locator::new(text);
    let value = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| locator.line_of_offset(s.start));
        vec![ConfigProblem {
            key: key_from_serde_message(e.message()).unwrap_or_else(|| "(file)".into()),
            line,
            message: e.message().trim().to_string(),
        }]
    })?;
    Ok((value, locator))
}

/// Maps dotted key paths back to line numbers in the original text.
pub struct Locator<'a> {
    text: &'a str,
    doc: Option<toml_edit::Document<&'a str>>,
}

impl<'a> Locator<'a> {
    fn new(text: &'a str) -> Self {
        Locator {
            text,
            doc: toml_edit::Document::parse(text).ok(),
        }
    }

    fn line_of_offset(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// A problem at `key`, with its line when the key is in the text.
    pub fn problem(&self, key: &str, message: String) -> ConfigProblem {
        ConfigProblem {
            key: key.to_string(),
            line: self.line_of_key(key),
            message,
        }
    }

    /// `uplink.ca`, `source[1].listen`: the line of the key, else of the nearest table.
    fn line_of_key(&self, key: &str) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut table: &dyn toml_edit::TableLike = doc.as_table();
        let mut best = None;
        for part in key.split('.') {
            let (name, index) = match part.split_once('[') {
                Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            let Some((k, v)) = table.get_key_value(name) else {
                break;
            };
            best = k.span().or(best);
            match index {
                Some(i) => {
                    let t = v.as_array_of_tables()?.get(i)?;
                    best = t.span().or(best);
                    table = t;
                }
                None => match v.as_table_like() {
                    Some(t) => table = t,
                    None => break,
                },
            }
        }
        best.map(|s| self.line_of_offset(s.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
tenant = "acme"
store_id = "store-042"

[outbox]
path = "outbox.db"
max_bytes = "64MiB"

[uplink]
url = "mqtt://127.0.0.1:1883"
insecure_plaintext = true

[[source]]
name = "lane1"
kind = "tcp"
listen = "127.0.0.1:7878"
register_id = "reg-1"
"#;

    fn problems(text: &str) -> Vec<ConfigProblem> {
        let dir = tempfile::tempdir().unwrap();
        Config::from_toml(text, dir.path())
            .err()
            .unwrap_or_default()
    }

    #[test]
    fn good_config_loads_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::from_toml(GOOD, dir.path()).unwrap();
        assert_eq!(c.outbox.max_bytes, ByteSize(64 << 20));
        assert_eq!(c.outbox.min_free_disk, ByteSize(256 << 20));
        assert_eq!(c.uplink.mqtt_version, MqttVersion::V5);
        assert_eq!(c.sources[0].max_line_bytes, ByteSize(1 << 20));
        assert_eq!(c.prefix(), "posedge/v1/acme/store-042");
        assert_eq!(c.outbox.path, dir.path().join("outbox.db"));
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = GOOD.replace(
            "max_bytes = \"64MiB\"",
            "max_bytes = \"64MiB\"\nmax_bites = 3",
        );
        let p = problems(&text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "max_bites");
        assert_eq!(p[0].line, Some(8));
    }

    #[test]
    fn wrong_type_is_named_with_its_line() {
        let text = GOOD.replace("max_bytes = \"64MiB\"", "max_bytes = true");
        let p = problems(&text);
        assert_eq!(p[0].line, Some(7), "{p:?}");
        let text = GOOD.replace("listen = \"127.0.0.1:7878\"", "listen = 7878");
        let p = problems(&text);
        assert_eq!(p[0].line, Some(16), "{p:?}");
    }

    #[test]
    fn impossible_values_are_named_with_their_lines() {
        let text = GOOD
            .replace("max_bytes = \"64MiB\"", "max_bytes = 10")
            .replace("insecure_plaintext = true", "insecure_plaintext = false");
        let p = problems(&text);
        let keys: Vec<_> = p.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert!(keys.contains(&("outbox.max_bytes", Some(7))), "{keys:?}");
        assert!(keys.contains(&("uplink.url", Some(10))), "{keys:?}");
    }

    #[test]
    fn a_source_may_not_take_the_name_of_a_derived_lane() {
        let p = problems(&GOOD.replace("name = \"lane1\"", "name = \"lane1.Inventory\""));
        let keys: Vec<_> = p.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert_eq!(keys, vec![("source[0].name", Some(14))], "{p:?}");
        assert!(p[0].message.contains("derived lane"), "{}", p[0].message);
    }

    #[test]
    fn missing_cert_files_are_reported() {
        let text = GOOD.replace(
            "url = \"mqtt://127.0.0.1:1883\"\ninsecure_plaintext = true",
            "url = \"mqtts://broker:8883\"\nca = \"nope/ca.pem\"\ncert = \"a.pem\"\nkey = \"a.key\"",
        );
        let p = problems(&text);
        let keys: Vec<_> = p.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert_eq!(
            keys,
            vec![
                ("uplink.ca", Some(11)),
                ("uplink.cert", Some(12)),
                ("uplink.key", Some(13))
            ]
        );
        assert!(p[0].message.contains("does not exist"));
    }

    #[test]
    fn source_problems_point_into_the_array() {
        let text = format!(
            "{GOOD}\n[[source]]\nname = \"lane1\"\nkind = \"tcp\"\nmax_line_bytes = \"2GiB\"\n"
        );
        let p = problems(&text);
        let keys: Vec<_> = p.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert!(keys.contains(&("source[1].name", Some(20))), "{keys:?}");
        assert!(
            keys.contains(&("source[1].max_line_bytes", Some(22))),
            "{keys:?}"
        );
        assert!(keys.contains(&("source[1].listen", Some(19))), "{keys:?}");
    }

    #[test]
    fn mapping_rules_that_cannot_apply_are_refused_with_their_line() {
        let text = format!(
            "{GOOD}\n[[mapping]]\nsource = \"lane9\"\naction = \"sku\"\nfield = \"body.lines[].sku\"\nwidth = 12\n\n\
             [[mapping]]\naction = \"rename\"\nfrom = \"ext.id\"\nto = \"event_id\"\n"
        );
        let p = problems(&text);
        let line_of = |needle: &str| {
            text.lines()
                .position(|l| l.starts_with(needle))
                .map(|i| i + 1)
        };
        let find = |key: &str| {
            p.iter()
                .find(|p| p.key == key)
                .unwrap_or_else(|| panic!("no problem for {key}: {p:?}"))
        };
        let width = find("mapping[0].width");
        assert_eq!(width.line, line_of("width = 12"), "{width}");
        let source = find("mapping[0].source");
        assert!(source.message.contains("lane9"), "{source}");
        let to = find("mapping[1].to");
        assert_eq!(to.line, line_of("to = \"event_id\""), "{to}");
        let ok = format!(
            "{GOOD}\n[[mapping]]\naction = \"sku\"\nfield = \"body.lines[].sku\"\nleading_zeros = \"pad\"\nwidth = 12\n"
        );
        assert!(problems(&ok).is_empty(), "{:?}", problems(&ok));
    }

    #[test]
    fn byte_sizes_parse() {
        assert_eq!(ByteSize::parse("512MiB"), Ok(ByteSize(512 << 20)));
        assert_eq!(ByteSize::parse("10MB"), Ok(ByteSize(10_000_000)));
        assert_eq!(ByteSize::parse("4096"), Ok(ByteSize(4096)));
        assert!(ByteSize::parse("12 parsecs").is_err());
        assert!(ByteSize::parse("99999999999999GiB").is_err());
    }
}
