//! posedge: the store-edge agent. Sources → decode → redact → outbox → uplink.

#![forbid(unsafe_code)]

pub mod agent;
pub mod clock;
#[cfg(feature = "cloud")]
pub mod cloud;
pub mod config;
#[cfg(feature = "schema")]
pub mod contract;
pub mod decode;
#[cfg(feature = "demo")]
pub mod demo;
pub mod derive;
pub mod event;
#[cfg(test)]
mod fixtures;
pub mod ingest;
pub mod mapping;
pub mod model;
pub mod ops;
pub mod outbox;
pub mod redact;
pub mod sim;
pub mod source;
pub mod uplink;
