//! Operations: status for people and scripts.

pub mod status;
