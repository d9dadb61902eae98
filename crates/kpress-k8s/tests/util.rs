//! What the test modules share: the example scenario and the options of its runners.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use kpress_engine::scenario::TestSpec;
use kpress_k8s::job::JobOptions;

pub const NS: &str = "loadtest";
pub const RUN: &str = "f00dcafe42";
pub const RUNNERS: u32 = 3;
pub const CENTER_URL: &str = "http://kpress-center.kpress.svc:8070/";
pub const TOKEN: &str = "runner-token-1";

/// The repository's root, where `examples/` and `deploy/` are.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn quickstart() -> TestSpec {
    let path = repo().join("examples/quickstart.yaml");
    kpress_engine::scenario::load(&path, &[])
        .unwrap_or_else(|e| panic!("{} loads: {e}", path.display()))
}

pub fn options() -> JobOptions {
    let mut o = JobOptions::new(RUNNERS, RUN);
    o.namespace = NS.into();
    o
}

pub fn runner_deployment() -> Deployment {
    kpress_k8s::deployment::build(&quickstart(), &options(), CENTER_URL, TOKEN)
}
