//! The simulated register (DESIGN §7).

pub mod generate;
pub mod link_cut;
pub mod receipt;
pub mod register;
pub mod stats;
pub mod subscriber;
