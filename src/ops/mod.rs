//! Operations: status for people and scripts.

pub mod dry_run;
pub mod status;
