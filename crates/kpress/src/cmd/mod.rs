//! One module per command.

pub mod audit;
mod local_target;

pub mod merge;
pub mod render;
pub mod run;
pub mod submit;
pub mod target;
pub mod validate;
mod workers;
