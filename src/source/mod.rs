//! Sources: where register records enter the agent.

pub mod lines;
pub mod printer;
pub mod printer_tap;
pub mod record;
pub mod serial;
pub mod tcp;
