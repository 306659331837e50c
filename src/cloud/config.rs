//! The cloud side's own small TOML config (`examples/cloud-sink.toml`), checked like the
//! agent's: unknown keys and bad values are named with their line.

use crate::config::{ConfigError, ConfigProblem, MqttVersion, UplinkConfig, parse_located};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// The whole `cloud-sink` / `cloud-report` configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudConfig {
    /// Where the events go.
    pub database: DatabaseConfig,
    /// The broker the stores publish to: the same keys as the agent's `[uplink]`.
    pub broker: UplinkConfig,
    /// Subscription and batching.
    #[serde(default)]
    pub sink: SinkSettings,
    /// Gap tracking and resync requests.
    #[serde(default)]
    pub gaps: GapSettings,
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// A libpq-style connection string (`host=… port=… user=… dbname=…`) or URL.
    pub url: String,
}

/// `[sink]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSettings {
    /// Shared subscription group: instances in one group split the messages.
    #[serde(default = "default_group")]
    pub group: String,
    /// The stores' topic prefix with `{tenant}` and `{store}` as whole levels.
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    /// Most messages written in one PostgreSQL transaction.
    #[serde(default = "default_batch_max")]
    pub batch_max: usize,
    /// How long a batch waits for more messages once it has one (milliseconds).
    #[serde(default = "default_batch_wait_ms")]
    pub batch_wait_ms: u64,
    /// The broker keeps an instance's unacknowledged messages this long after it dies,
    /// for its restart under the same client id.
    #[serde(default = "default_session_expiry")]
    pub session_expiry_s: u32,
    /// Messages the broker may send ahead of their PUBACKs.
    #[serde(default = "default_receive_maximum")]
    pub receive_maximum: u16,
}

/// `[gaps]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GapSettings {
    /// A gap is asked for only once it is this old: messages of one store travel through
    /// several instances and may arrive out of order.
    #[serde(default = "default_grace")]
    pub grace_s: u64,
    /// How often gaps are looked for.
    #[serde(default = "default_scan_every")]
    pub scan_every_s: u64,
    /// An unanswered or answered-but-unfilled request is repeated after this long.
    #[serde(default = "default_retry_after")]
    pub retry_after_s: u64,
    /// Requests per gap at most; after that it stays open for a person to look at.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

fn default_group() -> String {
    "posedge-cloud".into()
}
fn default_prefix() -> String {
    "posedge/v1/{tenant}/{store}".into()
}
fn default_batch_max() -> usize {
    500
}
fn default_batch_wait_ms() -> u64 {
    5
}
fn default_session_expiry() -> u32 {
    3600
}
fn default_receive_maximum() -> u16 {
    1000
}
fn default_grace() -> u64 {
    60
}
fn default_scan_every() -> u64 {
    10
}
fn default_retry_after() -> u64 {
    300
}
fn default_max_attempts() -> u32 {
    3
}

impl Default for SinkSettings {
    fn default() -> Self {
        SinkSettings {
            group: default_group(),
            topic_prefix: default_prefix(),
            batch_max: default_batch_max(),
            batch_wait_ms: default_batch_wait_ms(),
            session_expiry_s: default_session_expiry(),
            receive_maximum: default_receive_maximum(),
        }
    }
}

impl Default for GapSettings {
    fn default() -> Self {
        GapSettings {
            grace_s: default_grace(),
            scan_every_s: default_scan_every(),
            retry_after_s: default_retry_after(),
            max_attempts: default_max_attempts(),
        }
    }
}

impl SinkSettings {
    /// The batch window.
    pub fn batch_wait(&self) -> Duration {
        Duration::from_millis(self.batch_wait_ms)
    }
}

impl CloudConfig {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<CloudConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        CloudConfig::from_toml(&text, path.parent().unwrap_or(Path::new("."))).map_err(|problems| {
            ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            }
        })
    }

    /// Parses and validates config text; relative paths resolve against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<CloudConfig, Vec<ConfigProblem>> {
        let (mut cfg, loc) = parse_located::<CloudConfig>(text)?;
        let b = &mut cfg.broker;
        for p in [&mut b.ca, &mut b.cert, &mut b.key].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        let mut problems: Vec<ConfigProblem> = cfg
            .broker
            .problems("broker")
            .into_iter()
            .map(|(k, m)| loc.problem(&k, m))
            .collect();
        let mut bad = |key: &str, message: String| problems.push(loc.problem(key, message));
        if cfg.broker.mqtt_version != MqttVersion::V5 {
            bad(
                "broker.mqtt_version",
                "cloud-sink needs MQTT 5 (shared subscriptions); use 5".into(),
            );
        }
        if cfg.database.url.trim().is_empty() {
            bad("database.url", "must name the PostgreSQL database".into());
        }
        let s = &cfg.sink;
        if !crate::config::is_topic_safe(&s.group) {
            bad(
                "sink.group",
                format!("{:?} must be 1–64 characters of A–Z a–z 0–9 _ - .", s.group),
            );
        }
        if let Err(e) = super::topic::Layout::parse(&s.topic_prefix) {
            bad("sink.topic_prefix", e.to_string());
        }
        if !(1..=10_000).contains(&s.batch_max) {
            bad("sink.batch_max", format!("{} must be 1–10000", s.batch_max));
        }
        if s.batch_wait_ms > 1000 {
            bad(
                "sink.batch_wait_ms",
                format!("{} ms would hold every PUBACK; use 0–1000", s.batch_wait_ms),
            );
        }
        if s.receive_maximum == 0 {
            bad("sink.receive_maximum", "must be 1–65535".into());
        }
        let g = &cfg.gaps;
        if g.scan_every_s == 0 {
            bad("gaps.scan_every_s", "must be at least 1".into());
        }
        if g.max_attempts == 0 {
            bad("gaps.max_attempts", "must be at least 1".into());
        }
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems)
        }
    }

    /// The topic layout (validated at load).
    pub fn layout(&self) -> super::topic::Layout {
        super::topic::Layout::parse(&self.sink.topic_prefix)
            .unwrap_or_else(|_| super::topic::Layout::default())
    }

    /// This instance's MQTT client id: stable across restarts, so the broker hands a
    /// restarted instance the messages it had not acknowledged.
    pub fn client_id(&self) -> String {
        self.broker
            .client_id
            .clone()
            .unwrap_or_else(|| format!("posedge-cloud-sink-{}", self.sink.group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[database]
url = "host=127.0.0.1 user=posedge dbname=posedge"

[broker]
url = "mqtt://127.0.0.1:1883"
insecure_plaintext = true

[gaps]
grace_s = 5
"#;

    #[test]
    fn a_good_config_loads_with_defaults() {
        let c = CloudConfig::from_toml(GOOD, Path::new("/")).unwrap();
        assert_eq!(c.sink.group, "posedge-cloud");
        assert_eq!(c.gaps.grace_s, 5);
        assert_eq!(c.client_id(), "posedge-cloud-sink-posedge-cloud");
    }

    #[test]
    fn bad_keys_and_values_are_named_with_their_lines() {
        let text = GOOD.replace("grace_s = 5", "grace_s = 5\ngrace = 3");
        let p = CloudConfig::from_toml(&text, Path::new("/")).unwrap_err();
        assert_eq!((p[0].key.as_str(), p[0].line), ("grace", Some(11)), "{p:?}");

        let text = GOOD
            .replace("insecure_plaintext = true", "mqtt_version = 4")
            .replace(
                "[gaps]",
                "[sink]\ntopic_prefix = \"posedge/{store}\"\n\n[gaps]",
            );
        let p = CloudConfig::from_toml(&text, Path::new("/")).unwrap_err();
        let keys: Vec<_> = p.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert!(keys.contains(&("broker.url", Some(6))), "{keys:?}");
        assert!(keys.contains(&("broker.mqtt_version", Some(7))), "{keys:?}");
        assert!(keys.contains(&("sink.topic_prefix", Some(10))), "{keys:?}");
    }
}
