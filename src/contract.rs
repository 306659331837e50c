//! The JSON Schemas of the payloads on the broker (`schema/*.json`), which the AsyncAPI
//! document `asyncapi/posedge.yaml` references. Each is generated from the type that
//! writes or reads the payload; the status and command-reply messages are built with
//! `json!` in `src/uplink/mod.rs`, so their schemas ([`HAND_WRITTEN`]) are written by hand
//! and held to real payloads by `asyncapi/check`. Regenerate the others with
//! `cargo run --example gen-schema --features schema`; `tests/schema.rs` fails when a
//! committed file differs.

use crate::model::schema::{Side, generate};
use serde_json::Value;

/// Where the schemas' `$id`s live (never resolved: every `$ref` stays in its file).
pub const ID_BASE: &str = "https://posedge.invalid/schema/";

/// Schema files under `schema/` that are not generated.
pub const HAND_WRITTEN: &[&str] = &["status-v1.json", "reply-v1.json"];

/// Every generated schema: its file name under `schema/` and its content.
pub fn generated() -> Vec<(&'static str, Value)> {
    fn one<T: schemars::JsonSchema>(file: &'static str, side: Side) -> (&'static str, Value) {
        (file, generate::<T>(&format!("{ID_BASE}{file}"), side))
    }
    vec![
        ("event-v1.json", crate::model::schema::event_schema()),
        one::<crate::derive::inventory::InventoryMessage>("inventory-v1.json", Side::Written),
        one::<crate::derive::summary::SummaryMessage>("summary-v1.json", Side::Written),
        one::<crate::ops::audit::Stored>("audit-v1.json", Side::Written),
        one::<crate::outbox::resync::Request>("resync-request-v1.json", Side::Read),
    ]
}
