//! The audit trail (PCI DSS 10.2): who did what to the agent, with what outcome and
//! when. Entries are kept in the outbox database (bounded by age and count), committed
//! with `synchronous=FULL`, published in order on `…/_agent/audit`, and never carry card
//! data: every detail passes the redactor before it is stored.

use crate::redact;
use serde::Serialize;
use std::time::Duration;

/// Published entries older than this are pruned locally (the cloud keeps its copy).
pub const RETAIN: Duration = Duration::from_secs(400 * 86_400);
/// At most this many entries are kept locally; beyond it the oldest go first, published
/// or not, and the pruning itself is audited.
pub const MAX_ROWS: i64 = 100_000;

/// Who acted.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The agent itself (start-up, bounds, pruning).
    Agent,
    /// A person at the box, through the CLI.
    Operator,
    /// The cloud, through a command topic.
    Cloud,
}

/// What was done.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The agent started with a config it had run before.
    ConfigLoaded,
    /// The agent started with a config that differs from the last one it ran.
    ConfigChanged,
    /// TLS material for the uplink was loaded.
    CertificatesLoaded,
    /// Local audit entries were pruned to stay within the bound.
    AuditPruned,
    /// A dead letter was decoded again (after a fix or a new mapping rule).
    DeadLetterReplayed,
    /// Dead letters were deleted for good.
    DeadLettersPurged,
    /// A command from the cloud (`…/_agent/cmd/{name}`), accepted or refused.
    CommandReceived,
    /// Delivered events pruned from the archive by its byte bound.
    ArchiveShed,
    /// A corrupt outbox database was moved aside and salvaged into a fresh one.
    DatabaseQuarantined,
}

impl Action {
    /// The snake_case name used in the table and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ConfigLoaded => "config_loaded",
            Action::ConfigChanged => "config_changed",
            Action::CertificatesLoaded => "certificates_loaded",
            Action::AuditPruned => "audit_pruned",
            Action::DeadLetterReplayed => "dead_letter_replayed",
            Action::DeadLettersPurged => "dead_letters_purged",
            Action::CommandReceived => "command_received",
            Action::ArchiveShed => "archive_shed",
            Action::DatabaseQuarantined => "database_quarantined",
        }
    }
}

impl Actor {
    /// The snake_case name used in the table and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Agent => "agent",
            Actor::Operator => "operator",
            Actor::Cloud => "cloud",
        }
    }
}

/// How it ended.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done.
    Success,
    /// Attempted and refused or failed.
    Failure,
}

impl Outcome {
    /// The snake_case name used in the table and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One audit entry before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Who.
    pub actor: Actor,
    /// What.
    pub action: Action,
    /// How it ended.
    pub outcome: Outcome,
    /// Free text for people (paths, digests, expiry dates); redacted when built.
    detail: String,
}

impl Entry {
    /// A new entry; card data in `detail` is masked here, before anything can store it.
    pub fn new(actor: Actor, action: Action, outcome: Outcome, detail: &str) -> Entry {
        Entry {
            actor,
            action,
            outcome,
            detail: redact::redact_str(detail).0.into_owned(),
        }
    }

    /// The redacted detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

/// A stored entry, as `posedge audit` lists it and the uplink publishes it (without
/// `published`: the schema, `schema/audit-v1.json`, is that of the published message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        title = "posedge audit entry",
        description = "One audit record (PCI DSS 10.2) on …/_agent/audit, published in id order: who did what to the agent, with what outcome and when. The detail is redacted before it is stored: never card data."
    )
)]
pub struct Stored {
    /// Local row id, increasing.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub id: i64,
    /// RFC 3339 UTC.
    #[cfg_attr(feature = "schema", schemars(extend("format" = "date-time")))]
    pub at: String,
    /// Who.
    #[cfg_attr(feature = "schema", schemars(with = "Actor"))]
    pub actor: String,
    /// What.
    #[cfg_attr(feature = "schema", schemars(with = "Action"))]
    pub action: String,
    /// How it ended.
    #[cfg_attr(feature = "schema", schemars(with = "Outcome"))]
    pub outcome: String,
    /// Detail text.
    pub detail: String,
    /// Whether the broker acknowledged it.
    #[cfg_attr(feature = "schema", schemars(skip))]
    pub published: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_never_reach_an_entry() {
        let e = Entry::new(
            Actor::Operator,
            Action::ConfigChanged,
            Outcome::Success,
            "note 4111 1111 1111 1111 in a path",
        );
        assert!(!e.detail().contains("1111 1111 1111"), "{}", e.detail());
        assert!(e.detail().contains("411111"));
    }

    #[test]
    fn names_are_snake_case_on_every_path() {
        for a in [
            Action::ConfigLoaded,
            Action::ConfigChanged,
            Action::CertificatesLoaded,
            Action::AuditPruned,
            Action::DeadLetterReplayed,
            Action::DeadLettersPurged,
            Action::CommandReceived,
            Action::ArchiveShed,
        ] {
            assert_eq!(
                serde_json::to_value(a).unwrap(),
                serde_json::Value::from(a.as_str())
            );
        }
        assert_eq!(serde_json::to_value(Actor::Cloud).unwrap(), "cloud");
        assert_eq!(serde_json::to_value(Outcome::Failure).unwrap(), "failure");
    }
}
