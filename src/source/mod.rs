//! Sources: where register records enter the agent.

pub mod lines;
pub mod printer_tap;
pub mod record;
pub mod tcp;
