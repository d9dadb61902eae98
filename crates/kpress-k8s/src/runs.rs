//! `kpress list` and `kpress delete`: the tests kpress runs or ran in a namespace,
//! found by label (every Job kpress creates carries them), and removing one run.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PropagationPolicy};

use crate::labels;
use crate::submit::{api_error, SubmitError};

/// One run, as `kpress list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub run: String,
    pub test: String,
    pub job: String,
    pub status: String,
    pub runners: i32,
    pub age_seconds: i64,
}

pub async fn list(client: kube::Client, namespace: &str) -> Result<Vec<RunRow>, SubmitError> {
    let jobs: Api<Job> = Api::namespaced(client, namespace);
    let list = jobs
        .list(&ListParams::default().labels(&format!("{}=kpress", labels::NAME)))
        .await
        .map_err(|e| api_error(&format!("cannot list the Jobs of namespace {namespace}"), e))?;
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut rows: Vec<RunRow> = list
        .items
        .iter()
        .map(|j| {
            let label = |k: &str| {
                j.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(k))
                    .cloned()
                    .unwrap_or_default()
            };
            let status = j.status.as_ref();
            let condition = status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| {
                    c.iter().find(|c| {
                        c.status == "True" && (c.type_ == "Complete" || c.type_ == "Failed")
                    })
                })
                .map(|c| c.type_.to_lowercase());
            let state = condition.unwrap_or_else(|| {
                format!(
                    "running ({} active, {} succeeded, {} failed)",
                    status.and_then(|s| s.active).unwrap_or(0),
                    status.and_then(|s| s.succeeded).unwrap_or(0),
                    status.and_then(|s| s.failed).unwrap_or(0)
                )
            });
            RunRow {
                run: label(labels::RUN),
                test: label(labels::TEST),
                job: j.metadata.name.clone().unwrap_or_default(),
                status: state,
                runners: j.spec.as_ref().and_then(|s| s.completions).unwrap_or(0),
                age_seconds: j
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| now.as_second() - t.0.as_second())
                    .unwrap_or(0),
            }
        })
        .collect();
    rows.sort_by_key(|r| r.age_seconds);
    Ok(rows)
}

/// Deletes every Job (and, through propagation, every pod) of run `run`; returns the
/// names of the deleted Jobs.
pub async fn delete(
    client: kube::Client,
    namespace: &str,
    run: &str,
) -> Result<Vec<String>, SubmitError> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let selector = labels::run_selector(run);
    let list = jobs
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| api_error("cannot list the run's Jobs", e))?;
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    let mut deleted = Vec::new();
    for j in list.items {
        let Some(name) = j.metadata.name else {
            continue;
        };
        jobs.delete(&name, &params)
            .await
            .map_err(|e| api_error(&format!("cannot delete the Job {name}"), e))?;
        deleted.push(name);
    }
    // Pods of a Job deleted without propagation elsewhere would be orphans: remove them too.
    let orphans = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| api_error("cannot list the run's pods", e))?;
    for p in orphans.items {
        if let Some(name) = p.metadata.name {
            let _ = pods.delete(&name, &DeleteParams::default()).await;
        }
    }
    Ok(deleted)
}
