//! Messages derived from stored events for the cloud's integration feeds, built on the
//! source's task and stored in the same transaction as the event they come from.

pub mod day_close;
pub mod inventory;
pub mod summary;
