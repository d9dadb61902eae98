//! One module per command.

pub mod audit;
pub mod merge;
pub mod run;
pub mod target;
pub mod validate;
mod workers;
