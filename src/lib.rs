//! posedge: the store-edge agent. Sources → decode → redact → outbox → uplink.

pub mod config;
