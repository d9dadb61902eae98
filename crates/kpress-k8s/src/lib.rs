//! kpress on Kubernetes. A test is one Indexed Job of N runner pods, each running
//! `kpress run` on its segment (from `JOB_COMPLETION_INDEX`). `render` prints it;
//! `submit` creates it, follows the pods, publishes a common start instant through
//! each pod's downward-API volume (the pods need no API credentials and no Service),
//! collects every runner's summary from its log, merges them exactly and deletes the
//! Job. Everything talks to `kube::Client`, so the same code runs against a cluster
//! and against the API double in the tests.

pub mod job;
pub mod labels;

use k8s_openapi::api::batch::v1::Job;

/// The manifests of one test as multi-document YAML.
pub fn to_yaml(jobs: &[Job]) -> Result<String, String> {
    let mut out = String::new();
    for job in jobs {
        out.push_str("---\n");
        out.push_str(
            &serde_norway::to_string(job).map_err(|e| format!("cannot serialise the Job: {e}"))?,
        );
    }
    Ok(out)
}
