//! kpress-k8s's integration tests: one test binary, one module per topic.

mod util;

mod deployment;
mod manifests;
