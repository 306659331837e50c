//! The reference cloud consumer (DESIGN §9, feature `cloud`, not in the firmware):
//! `posedge cloud-sink` takes the stores' feeds from a shared MQTT 5 subscription into
//! PostgreSQL, tracks `seq` gaps and asks stores to resync them; `posedge cloud-report`
//! reconciles each store's end-of-day summary against what arrived.

pub mod config;
pub mod db;
pub mod gaps;
pub mod link;
pub mod message;
pub mod ranges;
pub mod report;
pub mod schema;
pub mod sink;
pub mod store;
pub mod topic;

#[cfg(feature = "demo")]
pub mod bench;
#[cfg(feature = "demo")]
pub mod pg;
