//! kpress's load engine: reads a scenario, runs this process's share of it with open-
//! or closed-model executors, measures every request from its intended send time into
//! HDR histograms, and writes a summary that merges exactly with other runners'.
//! It knows nothing of Kubernetes, databases or the command line.

pub mod executor;
pub mod http;
pub mod metrics;
pub mod printer;
pub mod run;
pub mod scenario;
pub mod segment;
pub mod summary;
pub mod threshold;
