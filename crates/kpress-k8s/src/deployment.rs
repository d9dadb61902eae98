//! Deployment-only mode, for platforms that allow nothing but Deployments: a test is one
//! Deployment of N runner pods. The management center leases each runner its share,
//! starts them together and collects their results; the runners then idle until the
//! center scales the Deployment to 0 and deletes it ([`tear_down`]). The pods are the
//! Job's hardened runner pods, restarted in place, without the start-instant volume.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kpress_engine::scenario::TestSpec;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

use crate::job::{self, JobOptions};
use crate::labels::{self, AppLabel};

/// Longest Deployment name: with `-<pod-template-hash>` (up to 10 characters) it stays
/// within the 58 characters the API server keeps of a `generateName`, so pod names, and
/// the hostnames made from them, fit in 63.
pub const MAX_NAME: usize = 47;
/// How long [`tear_down`] waits for the Deployment (and the pods) to be gone.
pub const TEAR_DOWN_WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);

/// The Deployment's name: `<app value>-<test>-<first 8 chars of run>`, a DNS label of at
/// most [`MAX_NAME`] characters. The run part survives shortening, so runs never share
/// a name.
pub fn deployment_name(app: &AppLabel, test: &str, run: &str) -> String {
    let short_run = dns_label(&run.chars().take(8).collect::<String>());
    let room = MAX_NAME.saturating_sub(short_run.len() + 1);
    let mut head = dns_label(&format!("{}-{test}", app.value));
    head.truncate(room);
    let name = [head.trim_end_matches('-'), short_run.as_str()]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if name.is_empty() {
        "kpress".into()
    } else {
        name
    }
}

/// `s` lowercased, every character outside `[a-z0-9-]` turned into `-`, runs of `-`
/// collapsed and `-` trimmed from both ends.
fn dns_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().map(|c| c.to_ascii_lowercase()) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Builds the runner Deployment for `spec`: `opts.runners` replicas that lease their
/// share from the center at `center_url` with `runner_token`.
pub fn build(
    spec: &TestSpec,
    opts: &JobOptions,
    center_url: &str,
    runner_token: &str,
) -> Deployment {
    let mut labels = labels::runner_labels(&opts.app, &spec.name, &opts.run_id);
    labels.insert(labels::MODE.into(), "deployment".into());
    let selector = BTreeMap::from([
        (labels::RUN.to_string(), opts.run_id.clone()),
        (labels::COMPONENT.to_string(), "runner".to_string()),
        (labels::NAME.to_string(), "kpress".to_string()),
    ]);
    let deadline = spec.max_duration() + opts.startup_allowance;
    let pod = job::runner_pod(
        opts,
        &[
            "run",
            "env:KPRESS_SCENARIO",
            "--lease",
            "--run-id",
            &opts.run_id,
            "--progress",
            "jsonl",
            "--summary-out",
            "-",
        ],
        vec![
            job::env_var("KPRESS_SCENARIO", &spec.source),
            job::env_var("KPRESS_CENTER_URL", center_url),
            job::env_var("KPRESS_RUNNER_TOKEN", runner_token),
            EnvVar {
                name: "KPRESS_POD_NAME".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.name".into(),
                        ..ObjectFieldSelector::default()
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            },
        ],
        "Always",
        false,
    );
    let name = deployment_name(&opts.app, &spec.name, &opts.run_id);
    Deployment {
        metadata: job::runner_metadata(spec, name, opts, &labels),
        spec: DeploymentSpec {
            replicas: Some(i32::try_from(opts.runners).unwrap_or(i32::MAX)),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            // Old and new runners of a changed template must never lease shares side by side.
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..DeploymentStrategy::default()
            }),
            revision_history_limit: Some(0),
            progress_deadline_seconds: Some(
                i32::try_from(deadline.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

/// What [`tear_down`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TearDown {
    /// The Deployment was scaled to 0 (false: it was already gone).
    pub scaled: bool,
    /// This call deleted the Deployment (false: it was already gone).
    pub deleted: bool,
    /// The run's ConfigMaps this call deleted.
    pub config_maps: Vec<String>,
    /// A `GET` of the Deployment answered 404 within [`TEAR_DOWN_WAIT`].
    pub gone: bool,
    /// The run's pods still there when the wait ended (0: all gone); `None` when pods
    /// were not waited for: not asked, or listing pods is forbidden.
    pub pods_left: Option<usize>,
}

/// Ends run `run`'s Deployment `name`: scales it to 0 through the `scale` subresource
/// (the runners stop before the object goes), deletes it in the background, deletes
/// every ConfigMap labelled with the run, then waits, at most [`TEAR_DOWN_WAIT`], until
/// the Deployment is gone and, with `wait_for_pods`, the run's pods too. Anything
/// already gone is skipped, so calling it again succeeds. Needs `deployments` get,
/// patch and delete, `deployments/scale` patch, `configmaps` list and delete, and for
/// `wait_for_pods` `pods` list.
pub async fn tear_down(
    client: kube::Client,
    namespace: &str,
    name: &str,
    run: &str,
    wait_for_pods: bool,
) -> Result<TearDown, String> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let selector = format!("{}={run}", labels::RUN);
    let mut done = TearDown::default();

    let zero = Patch::Merge(serde_json::json!({"spec": {"replicas": 0}}));
    done.scaled = unless_missing(
        deployments
            .patch_scale(name, &PatchParams::default(), &zero)
            .await,
    )
    .map_err(|e| error(&format!("cannot scale the Deployment {name} to 0"), e))?
    .is_some();
    done.deleted = unless_missing(deployments.delete(name, &DeleteParams::background()).await)
        .map_err(|e| error(&format!("cannot delete the Deployment {name}"), e))?
        .is_some();

    let listed = config_maps
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| error("cannot list the run's ConfigMaps", e))?;
    for config_map in listed.items {
        let Some(cm) = config_map.metadata.name else {
            continue;
        };
        // The garbage collector may remove one the Deployment owned in the meantime.
        if unless_missing(config_maps.delete(&cm, &DeleteParams::default()).await)
            .map_err(|e| error(&format!("cannot delete the ConfigMap {cm}"), e))?
            .is_some()
        {
            done.config_maps.push(cm);
        }
    }

    let deadline = Instant::now() + TEAR_DOWN_WAIT;
    loop {
        let present = unless_missing(deployments.get(name).await)
            .map_err(|e| error(&format!("cannot read the Deployment {name}"), e))?;
        if present.is_none() {
            done.gone = true;
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    if wait_for_pods {
        done.pods_left = pods_left(&pods, &selector, deadline).await?;
    }
    Ok(done)
}

/// The run's pods left when they are all gone or `deadline` passes; `None` when the
/// client may not list pods.
async fn pods_left(
    pods: &Api<Pod>,
    selector: &str,
    deadline: Instant,
) -> Result<Option<usize>, String> {
    loop {
        let left = match pods.list(&ListParams::default().labels(selector)).await {
            Ok(list) => list.items.len(),
            Err(kube::Error::Api(s)) if s.is_forbidden() => return Ok(None),
            Err(e) => return Err(error("cannot list the run's pods", e)),
        };
        if left == 0 || Instant::now() >= deadline {
            return Ok(Some(left));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `None` for a 404: the object is already gone.
fn unless_missing<T>(result: Result<T, kube::Error>) -> Result<Option<T>, kube::Error> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn error(what: &str, e: kube::Error) -> String {
    crate::submit::api_error(what, e).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(value: &str) -> AppLabel {
        AppLabel {
            key: "tenc-app".into(),
            value: value.into(),
        }
    }

    #[test]
    fn names_are_short_dns_labels_that_keep_the_run() {
        assert_eq!(
            deployment_name(&AppLabel::default(), "checkout", "0123456789"),
            "kpress-checkout-01234567"
        );
        assert_eq!(
            deployment_name(&app("Press_Client.148"), "Check  Out!", "ab"),
            "press-client-148-check-out-ab"
        );
        let long = "x".repeat(80);
        let dashes = "y-".repeat(40);
        for (value, test) in [
            (long.as_str(), "t"),
            ("a", long.as_str()),
            (dashes.as_str(), "--z--"),
        ] {
            let name = deployment_name(&app(value), test, "f00dcafe99");
            assert!(name.len() <= MAX_NAME, "{name}");
            assert!(name.ends_with("-f00dcafe"), "{name}");
            assert!(!name.starts_with('-') && !name.contains("--"), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
        }
        assert_eq!(
            deployment_name(&app(&long), "t", "r1").len(),
            MAX_NAME,
            "cut to the limit, not shorter"
        );
        assert_ne!(
            deployment_name(&app(&long), "t", "aaaaaaaa1"),
            deployment_name(&app(&long), "t", "aaaaaaab1")
        );
        assert_eq!(deployment_name(&app(""), "-", "_"), "kpress");
    }
}
