//! What the simulation's test binaries share: a cluster-mode double, bounded
//! polling, and checks on pods and their processes.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube_double::{ApiDouble, Simulation};
use serde_json::Value;

/// Generous for two shared cores; every wait below is bounded by it.
pub const LIMIT: Duration = Duration::from_secs(20);

pub const NS: &str = "load";

pub async fn cluster() -> ApiDouble {
    let simulation = Simulation::new()
        .executable("sh", "/bin/sh")
        .env("GREETING", "hello");
    ApiDouble::start_cluster(simulation)
        .await
        .expect("cluster starts")
}

/// Polls `probe` until it yields a value, failing the test after [`LIMIT`].
pub async fn until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let wait = async {
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    match tokio::time::timeout(LIMIT, wait).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

pub fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

pub fn pod_json(pod: &Pod) -> Value {
    serde_json::to_value(pod).expect("pod serialises")
}

/// Whether `pid` is a live process; a zombie has already died.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        !matches!(state, Some('Z' | 'X'))
    })
}

pub async fn all_dead(pids: &[u32]) {
    until(&format!("processes {pids:?} to die"), || async {
        pids.iter().all(|pid| !alive(*pid)).then_some(())
    })
    .await;
}
