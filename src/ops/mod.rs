//! Operations: status for people and scripts, liveness for the service manager.

pub mod audit;
pub mod dry_run;
pub mod health;
pub mod metrics;
pub mod status;
pub mod systemd;
