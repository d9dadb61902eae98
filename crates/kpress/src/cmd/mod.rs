//! One module per command.

pub mod audit;
pub mod center;
mod deployment;
mod lease;
pub mod merge;
pub mod render;
pub mod report;
pub mod run;
pub mod submit;
pub mod target;
pub mod validate;
mod workers;
