//! Deployments in the cluster simulation as a tool that runs its workers as a Deployment sees
//! them through the real `kube::Client`: replicas as real `/bin/sh` processes owned by the
//! Deployment, containers restarted in place when they exit, scaling through the `scale`
//! subresource, status fields, watch events, faults, and deletion leaving no process behind.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube_double::ApiDouble;
use serde_json::{json, Value};

mod support;
use support::{alive, all_dead, cluster, name, pod_json, until, LIMIT, NS};

const SELECTOR: &str = "app=kpress";

/// A Deployment of `replicas` runners running `script` in a container named `runner`.
fn deployment(name: &str, replicas: u32, script: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "kpress"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "kpress", "test": name}},
            "template": {
                "metadata": {"labels": {"app": "kpress", "test": name}},
                "spec": {"containers": [{
                    "name": "runner",
                    "image": "kpress:test",
                    "command": ["sh", "-c", script],
                    "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                }]},
            },
        },
    })
}

fn deployments(double: &ApiDouble) -> Api<Deployment> {
    Api::namespaced(double.client().expect("client"), NS)
}

fn pod_api(double: &ApiDouble) -> Api<Pod> {
    Api::namespaced(double.client().expect("client"), NS)
}

async fn submit(double: &ApiDouble, spec: Value) -> Deployment {
    let object: Deployment = serde_json::from_value(spec).expect("a Deployment");
    deployments(double)
        .create(&PostParams::default(), &object)
        .await
        .expect("deployment created")
}

/// The Deployment's pods, by name.
async fn pods_of(double: &ApiDouble) -> Vec<Pod> {
    let mut pods = pod_api(double)
        .list(&ListParams::default().labels(SELECTOR))
        .await
        .expect("pods listed")
        .items;
    pods.sort_by_key(name);
    pods
}

fn is_running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        && pod_json(pod)["status"]["containerStatuses"][0]["state"]["running"].is_object()
}

/// Waits until exactly `count` pods run, with as many live processes; returns their pids.
async fn running(double: &ApiDouble, count: usize) -> (Vec<Pod>, Vec<u32>) {
    until(&format!("{count} running pods"), || async {
        let pods = pods_of(double).await;
        let pids: Vec<u32> = double.running_pods().iter().map(|p| p.pid).collect();
        (pods.len() == count && pods.iter().all(is_running) && pids.len() == count)
            .then_some((pods, pids))
    })
    .await
}

async fn status_of(double: &ApiDouble, name: &str) -> Value {
    let object = deployments(double).get(name).await.expect("deployment");
    serde_json::to_value(object).expect("serialises")["status"].clone()
}

#[tokio::test]
async fn replicas_run_as_owned_processes_with_the_real_status_fields() {
    let double = cluster().await;
    let created = submit(
        &double,
        deployment("web", 3, "echo started $POD $GREETING; sleep 30"),
    )
    .await;
    let uid = created.metadata.uid.clone().expect("uid");
    assert_eq!(created.metadata.generation, Some(1));
    let spec = serde_json::to_value(&created.spec).expect("spec");
    assert_eq!(spec["strategy"]["type"], json!("RollingUpdate"));
    assert_eq!(spec["template"]["spec"]["restartPolicy"], json!("Always"));

    let (pods, pids) = running(&double, 3).await;
    let hash = pods[0].metadata.labels.as_ref().expect("labels")["pod-template-hash"].clone();
    for pod in &pods {
        let json = pod_json(pod);
        let meta = &json["metadata"];
        let pod_name = name(pod);
        let suffix = pod_name
            .strip_prefix(&format!("web-{hash}-"))
            .expect("named <deployment>-<hash>-<suffix>");
        assert!(suffix.len() == 5 && suffix.chars().all(|c| c.is_ascii_lowercase()));
        assert_eq!(meta["labels"]["test"], json!("web"));
        assert_eq!(meta["labels"]["pod-template-hash"], json!(hash));
        let owner = &meta["ownerReferences"][0];
        assert_eq!(
            (
                &owner["apiVersion"],
                &owner["kind"],
                &owner["name"],
                &owner["uid"]
            ),
            (
                &json!("apps/v1"),
                &json!("Deployment"),
                &json!("web"),
                &json!(uid)
            )
        );
        assert_eq!(
            (&owner["controller"], &owner["blockOwnerDeletion"]),
            (&json!(true), &json!(true))
        );
        assert_eq!(
            json["status"]["containerStatuses"][0]["restartCount"],
            json!(0)
        );
        let log = until("the runner's greeting", || async {
            let log = pod_api(&double)
                .logs(&pod_name, &LogParams::default())
                .await
                .ok()?;
            (!log.is_empty()).then_some(log)
        })
        .await;
        assert_eq!(log, format!("started {pod_name} hello\n"));
    }
    assert!(pids.iter().all(|pid| alive(*pid)));

    let status = until("the status to settle", || async {
        let status = status_of(&double, "web").await;
        (status["availableReplicas"] == 3).then_some(status)
    })
    .await;
    for field in [
        "replicas",
        "readyReplicas",
        "availableReplicas",
        "updatedReplicas",
    ] {
        assert_eq!(status[field], json!(3), "{field}");
    }
    assert_eq!(status["observedGeneration"], json!(1));
    assert!(
        status["unavailableReplicas"].is_null(),
        "zero counts are omitted"
    );
    let conditions = status["conditions"].as_array().expect("conditions");
    let available = conditions
        .iter()
        .find(|c| c["type"] == "Available")
        .expect("Available");
    assert_eq!(
        (&available["status"], &available["reason"]),
        (&json!("True"), &json!("MinimumReplicasAvailable"))
    );
    let progressing = conditions
        .iter()
        .find(|c| c["type"] == "Progressing")
        .expect("Progressing");
    assert_eq!(progressing["reason"], json!("NewReplicaSetAvailable"));
}

#[tokio::test]
async fn an_exited_container_restarts_in_the_same_pod() {
    let double = cluster().await;
    let script = "echo run; if [ -e marker ]; then sleep 30; else touch marker; exit 3; fi";
    submit(&double, deployment("flaky", 1, script)).await;
    let pod = until("the container to be restarted", || async {
        let pods = pods_of(&double).await;
        match pods.as_slice() {
            [pod]
                if is_running(pod)
                    && pod_json(pod)["status"]["containerStatuses"][0]["restartCount"] == 1 =>
            {
                Some(pod.clone())
            }
            _ => None,
        }
    })
    .await;
    let status = &pod_json(&pod)["status"]["containerStatuses"][0];
    let last = &status["lastState"]["terminated"];
    assert_eq!(
        (&last["exitCode"], &last["reason"]),
        (&json!(3), &json!("Error"))
    );
    assert_ne!(
        last["containerID"], status["containerID"],
        "a new container"
    );
    assert_eq!(pods_of(&double).await.len(), 1, "no second pod");

    let api = pod_api(&double);
    let current = api
        .logs(&name(&pod), &LogParams::default())
        .await
        .expect("log");
    let previous = api
        .logs(
            &name(&pod),
            &LogParams {
                previous: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("previous log");
    assert_eq!((current.as_str(), previous.as_str()), ("run\n", "run\n"));
}

#[tokio::test]
async fn a_killed_runner_restarts_with_its_env_and_downward_files() {
    let double = cluster().await;
    let mut spec = deployment(
        "steady",
        2,
        "cat \"$KPRESS_POD_INFO_DIR/name\"; echo \" $POD\"; sleep 30",
    );
    spec["spec"]["template"]["spec"]["volumes"] = json!([{
        "name": "pod-info",
        "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]},
    }]);
    submit(&double, spec).await;
    let (_, pids) = running(&double, 2).await;
    let killed = tokio::time::timeout(LIMIT, double.kill_container("steady", 1))
        .await
        .expect("killed in time")
        .expect("simulating");
    let (pods, after) = until("the killed runner to run again", || async {
        let (pods, pids) = running(&double, 2).await;
        let pod = pods.iter().find(|p| name(p) == killed)?;
        (pod_json(pod)["status"]["containerStatuses"][0]["restartCount"] == 1)
            .then_some((pods, pids))
    })
    .await;
    assert!(pods.iter().any(|p| name(p) == killed), "same pod name");
    let last = &pod_json(pods.iter().find(|p| name(p) == killed).expect("pod"))["status"]
        ["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["exitCode"], json!(137));
    assert_eq!(
        pids.iter().filter(|p| after.contains(p)).count(),
        1,
        "one new process"
    );
    let log = until("the restarted runner's output", || async {
        let log = pod_api(&double)
            .logs(&killed, &LogParams::default())
            .await
            .ok()?;
        (!log.is_empty()).then_some(log)
    })
    .await;
    assert_eq!(log, format!("{killed} {killed}\n"));

    let oom = tokio::time::timeout(LIMIT, double.oom_kill("steady", 0))
        .await
        .expect("killed in time")
        .expect("simulating");
    let pod = pod_api(&double).get(&oom).await.expect("the pod stays");
    let last = &pod_json(&pod)["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(
        (&last["exitCode"], &last["reason"]),
        (&json!(137), &json!("OOMKilled"))
    );
}

#[tokio::test]
async fn scaling_to_zero_removes_the_pods_and_kills_their_processes() {
    let double = cluster().await;
    submit(&double, deployment("scaled", 3, "sleep 30")).await;
    let (_, pids) = running(&double, 3).await;
    let api = deployments(&double);
    let scale = api.get_scale("scaled").await.expect("scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(3));
    let status = scale.status.expect("scale status");
    assert_eq!(status.selector.as_deref(), Some("app=kpress,test=scaled"));

    let down = Patch::Merge(json!({"spec": {"replicas": 2}}));
    let answered = api
        .patch_scale("scaled", &PatchParams::default(), &down)
        .await
        .expect("scaled");
    assert_eq!(answered.spec.and_then(|s| s.replicas), Some(2));
    let (_, left) = running(&double, 2).await;
    assert!(left.iter().all(|pid| pids.contains(pid)), "no replacement");

    let zero = Patch::Strategic(json!({"spec": {"replicas": 0}}));
    api.patch_scale("scaled", &PatchParams::default(), &zero)
        .await
        .expect("scaled");
    tokio::time::timeout(LIMIT, double.wait_for_absence("v1", "Pod", "test=scaled"))
        .await
        .expect("pods deleted in time")
        .expect("valid selector");
    all_dead(&pids).await;
    assert!(double.running_pods().is_empty());
    let deployment = api.get("scaled").await.expect("the deployment stays");
    assert_eq!(deployment.metadata.generation, Some(3));
    let status = until("the status to show zero replicas", || async {
        let status = status_of(&double, "scaled").await;
        (status["observedGeneration"] == 3).then_some(status)
    })
    .await;
    assert!(status["replicas"].is_null() && status["readyReplicas"].is_null());
}

#[tokio::test]
async fn deleting_the_deployment_removes_its_pods_processes_and_owned_objects() {
    let double = cluster().await;
    let created = submit(&double, deployment("doomed", 2, "sleep 30")).await;
    let (_, pids) = running(&double, 2).await;
    let config: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "doomed-plan", "namespace": NS, "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": "doomed",
            "uid": created.metadata.uid, "controller": false,
        }]},
        "data": {"plan": "x"},
    }))
    .expect("a ConfigMap");
    let configs: Api<ConfigMap> = Api::namespaced(double.client().expect("client"), NS);
    configs
        .create(&PostParams::default(), &config)
        .await
        .expect("created");

    deployments(&double)
        .delete("doomed", &DeleteParams::default())
        .await
        .expect("deleted");
    tokio::time::timeout(LIMIT, double.wait_for_absence("v1", "Pod", "test=doomed"))
        .await
        .expect("pods deleted in time")
        .expect("valid selector");
    all_dead(&pids).await;
    assert!(double.running_pods().is_empty());
    until("the owned ConfigMap to go", || async {
        configs
            .get_opt("doomed-plan")
            .await
            .expect("get")
            .is_none()
            .then_some(())
    })
    .await;
    assert!(deployments(&double)
        .get_opt("doomed")
        .await
        .expect("get")
        .is_none());
}

#[tokio::test]
async fn foreground_deletion_keeps_the_deployment_until_its_pods_are_gone() {
    let double = cluster().await;
    submit(&double, deployment("slow", 1, "sleep 30")).await;
    let (_, pids) = running(&double, 1).await;
    let api = deployments(&double);
    let answer = api
        .delete("slow", &DeleteParams::foreground())
        .await
        .expect("deleted");
    let marked = answer.left().expect("the deployment, still present");
    assert_eq!(
        marked.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_owned()])
    );
    until("the deployment to go", || async {
        api.get_opt("slow")
            .await
            .expect("get")
            .is_none()
            .then_some(())
    })
    .await;
    assert!(pods_of(&double).await.is_empty());
    all_dead(&pids).await;
}

fn event_summary(event: &WatchEvent<Pod>) -> Option<(String, String)> {
    let (kind, pod) = match event {
        WatchEvent::Added(pod) => ("ADDED", pod),
        WatchEvent::Modified(pod) => ("MODIFIED", pod),
        WatchEvent::Deleted(pod) => ("DELETED", pod),
        _ => return None,
    };
    Some((kind.to_owned(), name(pod)))
}

#[tokio::test]
async fn watches_see_pods_come_and_go() {
    let double = cluster().await;
    let api = pod_api(&double);
    let params = WatchParams::default().labels("test=watched").timeout(30);
    let mut events = api.watch(&params, "0").await.expect("watch").boxed();
    submit(&double, deployment("watched", 2, "sleep 30")).await;
    let (pods, _) = running(&double, 2).await;
    deployments(&double)
        .patch_scale(
            "watched",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .expect("scaled");
    let mut added = Vec::new();
    let mut deleted = Vec::new();
    let mut modified = 0;
    let collect = async {
        while deleted.len() < 2 {
            let event = events
                .next()
                .await
                .expect("the watch goes on")
                .expect("an event");
            match event_summary(&event) {
                Some((kind, pod)) if kind == "ADDED" => added.push(pod),
                Some((kind, pod)) if kind == "DELETED" => deleted.push(pod),
                Some(_) => modified += 1,
                None => {}
            }
        }
    };
    tokio::time::timeout(LIMIT, collect)
        .await
        .expect("events in time");
    let mut names: Vec<String> = pods.iter().map(name).collect();
    names.sort();
    added.sort();
    deleted.sort();
    assert_eq!((&added, &deleted), (&names, &names));
    assert!(modified >= 2, "each pod was bound and started");
}

#[tokio::test]
async fn faults_hit_deployment_pods_by_replica_slot() {
    let double = cluster().await;
    double.never_schedule("faulty", 1).expect("simulating");
    double.image_pull_backoff("faulty", 2).expect("simulating");
    submit(&double, deployment("faulty", 3, "sleep 30")).await;
    let reasons = until("one running and two stuck pods", || async {
        let pods = pods_of(&double).await;
        let mut reasons: Vec<String> = pods
            .iter()
            .map(|pod| {
                let json = pod_json(pod);
                let status = &json["status"];
                if is_running(pod) {
                    "Running".to_owned()
                } else if let Some(reason) =
                    status["containerStatuses"][0]["state"]["waiting"]["reason"].as_str()
                {
                    reason.to_owned()
                } else {
                    status["conditions"][0]["reason"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                }
            })
            .collect();
        reasons.sort();
        (reasons == ["ImagePullBackOff", "Running", "Unschedulable"]).then_some(reasons)
    })
    .await;
    assert_eq!(reasons.len(), 3);
    let status = until("the status to count the one ready pod", || async {
        let status = status_of(&double, "faulty").await;
        (status["readyReplicas"] == 1).then_some(status)
    })
    .await;
    assert_eq!(
        (&status["replicas"], &status["unavailableReplicas"]),
        (&json!(3), &json!(2))
    );
    let available = &status["conditions"][0];
    assert_eq!(
        (&available["type"], &available["status"]),
        (&json!("Available"), &json!("False"))
    );

    let disrupted = tokio::time::timeout(LIMIT, double.disrupt("faulty", 0))
        .await
        .expect("disrupted in time")
        .expect("simulating");
    let replacement = until("a replacement pod", || async {
        let pods = pods_of(&double).await;
        pods.into_iter()
            .find(|p| name(p) != disrupted && is_running(p))
    })
    .await;
    assert_ne!(name(&replacement), disrupted);
    let old = pod_api(&double)
        .get(&disrupted)
        .await
        .expect("the failed pod stays");
    assert_eq!(old.status.and_then(|s| s.phase).as_deref(), Some("Failed"));
}

#[tokio::test]
async fn invalid_deployments_are_refused() {
    let double = cluster().await;
    let api = deployments(&double);
    let mut mismatched = deployment("odd", 1, "true");
    mismatched["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
    let mut never = deployment("never", 1, "true");
    never["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    for spec in [mismatched, never] {
        let object: Deployment = serde_json::from_value(spec).expect("a Deployment");
        match api.create(&PostParams::default(), &object).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"))
            }
            other => panic!("an invalid Deployment was answered with {other:?}"),
        }
    }
}
