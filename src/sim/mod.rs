//! The simulated register (DESIGN §7).

pub mod encode;
pub mod generate;
pub mod link_cut;
pub mod printer;
pub mod receipt;
pub mod register;
pub mod serial;
pub mod stats;
pub mod subscriber;
