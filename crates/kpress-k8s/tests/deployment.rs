//! Deployment-only mode: the runner Deployment as built, and its tear-down against the
//! cluster simulation, where its pods run as real (sleeping) processes.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kpress_k8s::deployment::{self, TearDown};
use kube::api::{Api, ListParams, PostParams};
use kube_double::{ApiDouble, ApiError, Fault, Simulation};
use serde_json::{json, Value};

use crate::util::{options, quickstart, runner_deployment, CENTER_URL, NS, RUN, RUNNERS, TOKEN};

/// Generous for two shared cores; every wait is bounded by it.
const LIMIT: Duration = Duration::from_secs(30);

fn as_json(deployment: &Deployment) -> Value {
    serde_json::to_value(deployment).unwrap_or_else(|e| panic!("serialises: {e}"))
}

#[test]
fn the_runner_deployment_idles_hardened_runners_that_lease_their_share() {
    let d = as_json(&runner_deployment());
    assert_eq!(
        (&d["apiVersion"], &d["kind"]),
        (&json!("apps/v1"), &json!("Deployment"))
    );
    let meta = &d["metadata"];
    assert_eq!(
        meta["name"],
        deployment::deployment_name(&options().app, "quickstart", RUN)
    );
    assert_eq!(meta["name"], "kpress-quickstart-f00dcafe");
    assert_eq!(meta["namespace"], NS);
    assert!(
        meta["annotations"].is_null(),
        "quickstart has no description"
    );
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], RUNNERS);
    assert_eq!(spec["strategy"], json!({"type": "Recreate"}));
    assert_eq!(spec["revisionHistoryLimit"], 0);
    assert_eq!(
        spec["progressDeadlineSeconds"], 340,
        "10 s test + 30 s graceful stop + 5 m start-up allowance"
    );
    assert_eq!(
        spec["selector"],
        json!({"matchLabels": {
            "kpress.io/run": RUN,
            "app.kubernetes.io/component": "runner",
            "app.kubernetes.io/name": "kpress",
        }})
    );
    let labels = json!({
        "app.kubernetes.io/name": "kpress",
        "app.kubernetes.io/component": "runner",
        "app.kubernetes.io/part-of": "kpress",
        "kpress.io/test": "quickstart",
        "kpress.io/run": RUN,
        "kpress.io/mode": "deployment",
    });
    assert_eq!(meta["labels"], labels);
    assert_eq!(spec["template"]["metadata"]["labels"], labels);

    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["enableServiceLinks"], false);
    assert!(pod["volumes"].is_null(), "the center is the start barrier");
    assert_eq!(
        pod["securityContext"],
        json!({
            "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        })
    );
    let containers = pod["containers"].as_array().cloned().unwrap_or_default();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["command"], json!(["kpress"]));
    assert_eq!(
        c["args"],
        json!([
            "run",
            "env:KPRESS_SCENARIO",
            "--lease",
            "--run-id",
            RUN,
            "--progress",
            "jsonl",
            "--summary-out",
            "-"
        ])
    );
    assert_eq!(
        c["env"],
        json!([
            {"name": "KPRESS_SCENARIO", "value": quickstart().source},
            {"name": "KPRESS_CENTER_URL", "value": CENTER_URL},
            {"name": "KPRESS_RUNNER_TOKEN", "value": TOKEN},
            {"name": "KPRESS_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ])
    );
    assert_eq!(
        c["securityContext"],
        json!({
            "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
            "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]},
        })
    );
    assert!(c["volumeMounts"].is_null());
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        assert!(c[probe].is_null(), "{probe}");
    }
    assert_eq!(
        c["resources"],
        json!({
            "requests": {"cpu": "500m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "256Mi"},
        })
    );
}

#[test]
fn options_reach_the_runner_pods() {
    let mut spec = quickstart();
    spec.description = Some("the steady state".into());
    let mut o = options();
    o.app = "tenc-app=press-client-148-online"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    o.spread = true;
    o.node_selector.insert("pool".into(), "load".into());
    o.tolerations = vec![
        kpress_k8s::job::parse_toleration("dedicated=load:NoSchedule")
            .unwrap_or_else(|e| panic!("{e}")),
    ];
    o.env.push(("EXTRA".into(), "1".into()));
    let d = as_json(&deployment::build(&spec, &o, CENTER_URL, TOKEN));
    assert_eq!(
        d["metadata"]["name"],
        "press-client-148-online-quickstart-f00dcafe"
    );
    assert_eq!(
        d["metadata"]["annotations"]["kpress.io/description"],
        "the steady state"
    );
    assert_eq!(
        d["metadata"]["labels"]["tenc-app"],
        "press-client-148-online"
    );
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"], json!({"pool": "load"}));
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    assert_eq!(
        pod["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"],
        json!({"kpress.io/run": RUN})
    );
    let env = pod["containers"][0]["env"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(env.last(), Some(&json!({"name": "EXTRA", "value": "1"})));
}

/// Polls `probe` until it yields a value, failing the test after [`LIMIT`].
async fn until<T, F, Fut>(what: &str, mut probe: F) -> T
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
    tokio::time::timeout(LIMIT, wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A stand-in `kpress` that ignores its arguments and idles, as a runner does once it
/// has reported.
fn idle_runner(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("kpress");
    std::fs::write(&path, "#!/bin/sh\nexec sleep 30\n")
        .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

fn config_map(name: &str, run: &str, owner: Option<&Deployment>) -> ConfigMap {
    let owners: Vec<Value> = owner
        .map(|d| {
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "name": d.metadata.name, "uid": d.metadata.uid,
            })
        })
        .into_iter()
        .collect();
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": NS,
            "labels": {"kpress.io/run": run},
            "ownerReferences": owners,
        },
        "data": {"plan": "{}"},
    }))
    .unwrap_or_else(|e| panic!("a ConfigMap: {e}"))
}

async fn tear_down(double: &ApiDouble, name: &str, wait_for_pods: bool) -> TearDown {
    let client = double.client().unwrap_or_else(|e| panic!("client: {e}"));
    tokio::time::timeout(
        LIMIT,
        deployment::tear_down(client, NS, name, RUN, wait_for_pods),
    )
    .await
    .unwrap_or_else(|_| panic!("tear_down did not finish within {LIMIT:?}"))
    .unwrap_or_else(|e| panic!("tear_down: {e}"))
}

#[tokio::test]
async fn tear_down_scales_to_zero_then_deletes_and_leaves_nothing_of_the_run() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let simulation = Simulation::new().executable("kpress", idle_runner(dir.path()));
    let double = ApiDouble::start_cluster(simulation)
        .await
        .unwrap_or_else(|e| panic!("cluster starts: {e}"));
    let client = double.client().unwrap_or_else(|e| panic!("client: {e}"));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let config_maps: Api<ConfigMap> = Api::namespaced(client, NS);

    let created = deployments
        .create(&PostParams::default(), &runner_deployment())
        .await
        .unwrap_or_else(|e| panic!("the Deployment is accepted: {e}"));
    let name = created.metadata.name.clone().unwrap_or_default();
    let selector = format!("kpress.io/run={RUN}");
    until("the runners to run", || async {
        let listed = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .ok()?;
        let running = listed
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        (running == RUNNERS as usize && double.running_pods().len() == RUNNERS as usize)
            .then_some(())
    })
    .await;
    for cm in [
        config_map("owned", RUN, Some(&created)),
        config_map("loose", RUN, None),
        config_map("other-run", "c0ffee0000", None),
    ] {
        config_maps
            .create(&PostParams::default(), &cm)
            .await
            .unwrap_or_else(|e| panic!("ConfigMap created: {e}"));
    }

    let done = tear_down(&double, &name, true).await;
    assert!(done.scaled && done.deleted && done.gone, "{done:?}");
    assert_eq!(done.pods_left, Some(0), "{done:?}");
    assert!(done.config_maps.contains(&"loose".to_string()), "{done:?}");
    assert!(
        done.config_maps
            .iter()
            .all(|cm| cm == "loose" || cm == "owned"),
        "the garbage collector may take the owned one first: {done:?}"
    );
    assert!(deployments.get_opt(&name).await.ok().flatten().is_none());
    for cm in ["owned", "loose"] {
        assert!(
            config_maps.get_opt(cm).await.ok().flatten().is_none(),
            "{cm} is gone"
        );
    }
    assert!(
        config_maps
            .get_opt("other-run")
            .await
            .ok()
            .flatten()
            .is_some(),
        "another run's ConfigMap stays"
    );
    until("the runner processes to end", || async {
        double.running_pods().is_empty().then_some(())
    })
    .await;

    let requests = double.requests();
    let path = format!("/apis/apps/v1/namespaces/{NS}/deployments/{name}");
    let scale = requests
        .iter()
        .position(|r| r.method == "PATCH" && r.path == format!("{path}/scale"));
    let delete = requests
        .iter()
        .position(|r| r.method == "DELETE" && r.path == path);
    match (scale, delete) {
        (Some(scale), Some(delete)) => {
            assert!(scale < delete, "scaled to 0 before the delete");
            assert_eq!(
                requests[scale].json(),
                Some(json!({"spec": {"replicas": 0}}))
            );
        }
        other => panic!("a scale PATCH and a DELETE were sent: {other:?}"),
    }

    let again = tear_down(&double, &name, false).await;
    assert_eq!(
        again,
        TearDown {
            gone: true,
            ..TearDown::default()
        },
        "nothing left to do, and no pod wait asked"
    );
}

#[tokio::test]
async fn tear_down_skips_the_pod_wait_when_pods_may_not_be_listed() {
    let double = ApiDouble::start()
        .await
        .unwrap_or_else(|e| panic!("double starts: {e}"));
    double.inject(Fault::new(
        http::Method::GET,
        format!("/api/v1/namespaces/{NS}/pods"),
        ApiError::new(403, "Forbidden", "pods is forbidden"),
    ));
    let done = tear_down(&double, "never-created", true).await;
    assert!(
        double.requests().iter().any(|r| r.path.ends_with("/pods")),
        "the pods were asked for"
    );
    assert_eq!(
        done,
        TearDown {
            gone: true,
            ..TearDown::default()
        }
    );
}
