//! `kpress list` and `kpress delete`: the tests kpress runs or ran in a namespace,
//! found by label (every Job and Deployment kpress creates carries them), and removing
//! one run, e.g. a deployment-mode run whose center is gone.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PropagationPolicy};

use crate::labels;
use crate::submit::{api_error, SubmitError};

/// One run, as `kpress list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub run: String,
    pub test: String,
    /// `job/NAME` or `deployment/NAME`.
    pub object: String,
    pub status: String,
    pub runners: i32,
    pub age_seconds: i64,
}

pub async fn list(client: kube::Client, namespace: &str) -> Result<Vec<RunRow>, SubmitError> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let list = jobs
        .list(&ListParams::default().labels(&format!("{}=kpress", labels::NAME)))
        .await
        .map_err(|e| api_error(&format!("cannot list the Jobs of namespace {namespace}"), e))?;
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut rows: Vec<RunRow> = list
        .items
        .iter()
        .map(|j| {
            let label = |k: &str| label_of(&j.metadata, k);
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
                object: format!("job/{}", j.metadata.name.clone().unwrap_or_default()),
                status: state,
                runners: j.spec.as_ref().and_then(|s| s.completions).unwrap_or(0),
                age_seconds: age_seconds(&j.metadata, now),
            }
        })
        .collect();
    rows.extend(deployment_rows(client, namespace, now).await?);
    rows.sort_by_key(|r| r.age_seconds);
    Ok(rows)
}

/// The deployment-mode runs: a Deployment runs until its center removes it.
async fn deployment_rows(
    client: kube::Client,
    namespace: &str,
    now: k8s_openapi::jiff::Timestamp,
) -> Result<Vec<RunRow>, SubmitError> {
    let api: Api<Deployment> = Api::namespaced(client, namespace);
    let list = api
        .list(&ListParams::default().labels(&format!("{}=kpress", labels::NAME)))
        .await
        .map_err(|e| {
            api_error(
                &format!("cannot list the Deployments of namespace {namespace}"),
                e,
            )
        })?;
    Ok(list
        .items
        .iter()
        .map(|d| {
            let label = |k: &str| label_of(&d.metadata, k);
            let ready = d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            let replicas = d.spec.replicas.unwrap_or(1);
            RunRow {
                run: label(labels::RUN),
                test: label(labels::TEST),
                object: format!("deployment/{}", d.metadata.name.clone().unwrap_or_default()),
                status: format!("deployment ({ready} of {replicas} ready)"),
                runners: replicas,
                age_seconds: age_seconds(&d.metadata, now),
            }
        })
        .collect())
}

fn label_of(meta: &ObjectMeta, key: &str) -> String {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .cloned()
        .unwrap_or_default()
}

fn age_seconds(meta: &ObjectMeta, now: k8s_openapi::jiff::Timestamp) -> i64 {
    meta.creation_timestamp
        .as_ref()
        .map(|t| now.as_second() - t.0.as_second())
        .unwrap_or(0)
}

/// Deletes every Job and Deployment (and, through propagation, every pod) of run
/// `run`; returns the deleted objects, `job/NAME` or `deployment/NAME`.
pub async fn delete(
    client: kube::Client,
    namespace: &str,
    run: &str,
) -> Result<Vec<String>, SubmitError> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
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
        deleted.push(format!("job/{name}"));
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let list = deployments
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| api_error("cannot list the run's Deployments", e))?;
    for d in list.items {
        let Some(name) = d.metadata.name else {
            continue;
        };
        crate::deployment::tear_down(client.clone(), namespace, &name, run, false)
            .await
            .map_err(SubmitError::Api)?;
        deleted.push(format!("deployment/{name}"));
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
