//! The engine's integration tests: real load over loopback against the built-in
//! target, run in-process through `run::execute`. One test binary, one module per topic.

mod support;

mod executors;
mod latency;
mod protocols;
