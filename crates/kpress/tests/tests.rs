//! The `kpress` binary's integration tests: one test binary, one module per topic.

mod util;

mod audit;
mod center;
mod cli_run;
mod cli_signals;
mod deployment;
mod render;
mod submit;
