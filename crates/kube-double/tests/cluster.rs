//! The cluster simulation as a Job submitter sees it through the real `kube::Client`: Indexed
//! Jobs whose pods run real `/bin/sh` processes, their logs (whole and followed), downward API
//! files following pod patches, the pod failure policy, per-index retries, injected
//! scheduling, image and disruption faults, deletion with each propagation policy, and no
//! process outliving the double.

use std::time::Duration;

use http_body_util::BodyExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube_double::ApiDouble;
use serde_json::{json, Value};

mod support;
use support::{alive, all_dead, cluster, name, pod_json, until, LIMIT, NS};

/// An Indexed Job running `script` in a container named `runner`.
fn job(name: &str, completions: u32, script: &str) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": completions,
            "template": {
                "metadata": {"labels": {"app": "kpress"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "runner",
                        "image": "kpress:test",
                        "command": ["sh", "-c", script],
                    }],
                },
            },
        },
    })
}

async fn submit(double: &ApiDouble, job: Value) -> Job {
    let api: Api<Job> = Api::namespaced(double.client().expect("client"), NS);
    let job: Job = serde_json::from_value(job).expect("a Job");
    api.create(&PostParams::default(), &job)
        .await
        .expect("job created")
}

fn condition<'a>(job: &'a Job, kind: &str) -> Option<(&'a str, &'a str)> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind && c.status == "True")
        .map(|c| {
            (
                c.reason.as_deref().unwrap_or_default(),
                c.message.as_deref().unwrap_or_default(),
            )
        })
}

async fn finished(double: &ApiDouble, name: &str) -> Job {
    let api: Api<Job> = Api::namespaced(double.client().expect("client"), NS);
    until(&format!("job {name} to finish"), || async {
        let job = api.get(name).await.ok()?;
        (condition(&job, "Complete").is_some() || condition(&job, "Failed").is_some())
            .then_some(job)
    })
    .await
}

/// The Job's pods, ordered by completion index, then creation.
async fn pods_of(double: &ApiDouble, job: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(double.client().expect("client"), NS);
    let selector = format!("batch.kubernetes.io/job-name={job}");
    let mut pods = api
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("pods listed")
        .items;
    pods.sort_by_key(|pod| {
        let meta = &pod.metadata;
        (
            annotation(pod, "batch.kubernetes.io/job-completion-index"),
            meta.resource_version.clone().unwrap_or_default().len(),
            meta.uid.clone(),
        )
    });
    pods
}

fn annotation(pod: &Pod, key: &str) -> Option<String> {
    pod.metadata.annotations.as_ref()?.get(key).cloned()
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// The running pod of `job`, once there is exactly one.
async fn running_pod(double: &ApiDouble, job: &str) -> Pod {
    until(&format!("a running pod of {job}"), || async {
        let pods = pods_of(double, job).await;
        match pods.as_slice() {
            [pod] if phase(pod) == "Running" => Some(pod.clone()),
            _ => None,
        }
    })
    .await
}

async fn logs(double: &ApiDouble, pod: &str) -> Result<String, kube::Error> {
    let api: Api<Pod> = Api::namespaced(double.client().expect("client"), NS);
    api.logs(pod, &LogParams::default()).await
}

#[tokio::test]
async fn an_indexed_job_runs_one_process_per_index_and_completes() {
    let double = cluster().await;
    let mut spec = job(
        "three",
        3,
        "echo index=$JOB_COMPLETION_INDEX $GREETING; sleep 0.2; exit 0",
    );
    spec["spec"]["template"]["spec"]["containers"][0]["command"][0] = json!("/image/bin/sh");
    let created = submit(&double, spec).await;
    let uid = created.metadata.uid.clone().expect("uid");
    let selector = created.spec.as_ref().and_then(|s| s.selector.clone());
    assert_eq!(
        selector.and_then(|s| s.match_labels),
        Some([("batch.kubernetes.io/controller-uid".to_owned(), uid.clone())].into())
    );

    let done = finished(&double, "three").await;
    assert_eq!(
        condition(&done, "Complete"),
        Some((
            "CompletionsReached",
            "Reached expected number of succeeded pods"
        ))
    );
    assert!(condition(&done, "SuccessCriteriaMet").is_some());
    let status = done.status.expect("status");
    assert_eq!(status.succeeded, Some(3));
    assert_eq!(status.completed_indexes.as_deref(), Some("0-2"));
    assert_eq!((status.active, status.failed), (None, None));
    assert!(status.start_time.is_some() && status.completion_time.is_some());

    let pods = pods_of(&double, "three").await;
    assert_eq!(pods.len(), 3);
    for (index, pod) in pods.iter().enumerate() {
        let name = name(pod);
        let suffix = name
            .strip_prefix(&format!("three-{index}-"))
            .expect("name starts with job and index");
        assert!(suffix.len() == 5 && suffix.chars().all(|c| c.is_ascii_lowercase()));
        let json = pod_json(pod);
        let meta = &json["metadata"];
        for (label, value) in [
            ("app", "kpress"),
            ("batch.kubernetes.io/job-name", "three"),
            ("job-name", "three"),
            ("batch.kubernetes.io/controller-uid", uid.as_str()),
            ("controller-uid", uid.as_str()),
            (
                "batch.kubernetes.io/job-completion-index",
                &index.to_string(),
            ),
        ] {
            assert_eq!(meta["labels"][label], json!(value), "{name} label {label}");
        }
        assert_eq!(
            meta["annotations"]["batch.kubernetes.io/job-completion-index"],
            json!(index.to_string())
        );
        let owner = &meta["ownerReferences"][0];
        assert_eq!(
            (
                &owner["kind"],
                &owner["uid"],
                &owner["controller"],
                &owner["blockOwnerDeletion"]
            ),
            (&json!("Job"), &json!(uid), &json!(true), &json!(true))
        );
        let env = &json["spec"]["containers"][0]["env"];
        assert_eq!(env[0]["name"], json!("JOB_COMPLETION_INDEX"));
        assert_eq!(phase(pod), "Succeeded");
        let terminated = &json["status"]["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(
            (&terminated["exitCode"], &terminated["reason"]),
            (&json!(0), &json!("Completed"))
        );
        assert_eq!(
            logs(&double, &name).await.expect("logs"),
            format!("index={index} hello\n")
        );
    }
    assert!(double.running_pods().is_empty());
}

#[tokio::test]
async fn downward_api_files_follow_an_annotation_patch() {
    let double = cluster().await;
    let mut spec = job(
        "patient",
        1,
        "while [ ! -s \"$KPRESS_POD_INFO_DIR/start\" ]; do sleep 0.05; done; cat \"$KPRESS_POD_INFO_DIR/start\"",
    );
    spec["spec"]["template"]["spec"]["volumes"] = json!([{
        "name": "pod-info",
        "downwardAPI": {"items": [{
            "path": "start",
            "fieldRef": {"fieldPath": "metadata.annotations['kpress.io/start']"},
        }]},
    }]);
    submit(&double, spec).await;
    let pod = running_pod(&double, "patient").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let running: Vec<String> = double.running_pods().into_iter().map(|p| p.name).collect();
    assert_eq!(
        running,
        [name(&pod)],
        "the runner waits for its start instant"
    );

    let api: Api<Pod> = Api::namespaced(double.client().expect("client"), NS);
    let patch = json!({"metadata": {"annotations": {"kpress.io/start": "2030-01-02T03:04:05Z"}}});
    api.patch(&name(&pod), &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("patched");
    let done = finished(&double, "patient").await;
    assert!(condition(&done, "Complete").is_some());
    assert_eq!(
        logs(&double, &name(&pod)).await.expect("logs"),
        "2030-01-02T03:04:05Z"
    );
}

/// The next chunk of a streamed body, `None` at its end.
async fn next_chunk(body: &mut kube::client::Body) -> Option<String> {
    match tokio::time::timeout(LIMIT, body.frame()).await {
        Ok(Some(frame)) => {
            let data = frame.expect("frame").into_data().expect("data frame");
            Some(String::from_utf8(data.to_vec()).expect("utf-8"))
        }
        Ok(None) => None,
        Err(_) => panic!("the log stream stalled"),
    }
}

#[tokio::test]
async fn followed_logs_stream_until_the_process_exits() {
    let double = cluster().await;
    submit(
        &double,
        job("chatty", 1, "echo first; sleep 1; echo second"),
    )
    .await;
    let pod = running_pod(&double, "chatty").await;
    let client = double.client().expect("client");
    let request = http::Request::get(format!(
        "/api/v1/namespaces/{NS}/pods/{}/log?follow=true",
        name(&pod)
    ))
    .body(kube::client::Body::empty())
    .expect("request");
    let response = client.send(request).await.expect("log stream opened");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    assert_eq!(next_chunk(&mut body).await.as_deref(), Some("first\n"));
    let api: Api<Pod> = Api::namespaced(client.clone(), NS);
    let live = api.get(&name(&pod)).await.expect("pod");
    assert_eq!(
        phase(&live),
        "Running",
        "the first line arrived while running"
    );
    let mut rest = String::new();
    while let Some(chunk) = next_chunk(&mut body).await {
        rest.push_str(&chunk);
    }
    assert_eq!(rest, "second\n");
    let after = api.get(&name(&pod)).await.expect("pod");
    assert_eq!(phase(&after), "Succeeded");
}

#[tokio::test]
async fn a_fail_job_rule_fails_the_job_and_kills_the_other_pods() {
    let double = cluster().await;
    let mut spec = job(
        "strict",
        2,
        "if [ \"$JOB_COMPLETION_INDEX\" = 0 ]; then exit 2; fi; sleep 30",
    );
    spec["spec"]["podFailurePolicy"] = json!({"rules": [{
        "action": "FailJob",
        "onExitCodes": {"containerName": "runner", "operator": "In", "values": [2]},
    }]});
    submit(&double, spec).await;
    let done = finished(&double, "strict").await;
    let (reason, message) = condition(&done, "Failed").expect("failed");
    assert_eq!(reason, "PodFailurePolicy");
    assert!(
        message.starts_with("Container runner for pod load/strict-0-")
            && message.ends_with("failed with exit code 2 matching FailJob rule at index 0"),
        "{message}"
    );
    assert!(condition(&done, "FailureTarget").is_some());
    let status = done.status.expect("status");
    assert_eq!((status.failed, status.active), (Some(1), None));
    until("the other index's process to be killed", || async {
        double.running_pods().is_empty().then_some(())
    })
    .await;
    let pods = pods_of(&double, "strict").await;
    let indexes: Vec<Option<String>> = pods
        .iter()
        .map(|p| annotation(p, "batch.kubernetes.io/job-completion-index"))
        .collect();
    assert_eq!(
        indexes,
        [Some("0".to_owned())],
        "the running pod was deleted"
    );
    let exit = &pod_json(&pods[0])["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(
        (&exit["exitCode"], &exit["reason"]),
        (&json!(2), &json!("Error"))
    );
}

fn failure_count_env(spec: &mut Value, variable: &str, annotation: &str) {
    let env = json!({
        "name": variable,
        "valueFrom": {"fieldRef": {"fieldPath": format!("metadata.annotations['{annotation}']")}},
    });
    spec["spec"]["template"]["spec"]["containers"][0]["env"] = json!([env]);
}

#[tokio::test]
async fn failed_indexes_are_retried_up_to_their_backoff_limit() {
    let double = cluster().await;
    let mut spec = job(
        "flaky",
        2,
        "echo attempt $FAILURES; [ \"$JOB_COMPLETION_INDEX\" = 0 ] && [ \"$FAILURES\" = 1 ]",
    );
    spec["spec"]["backoffLimitPerIndex"] = json!(1);
    failure_count_env(
        &mut spec,
        "FAILURES",
        "batch.kubernetes.io/job-index-failure-count",
    );
    submit(&double, spec).await;
    let done = finished(&double, "flaky").await;
    assert_eq!(
        condition(&done, "Failed"),
        Some(("FailedIndexes", "Job has failed indexes"))
    );
    let status = done.status.expect("status");
    assert_eq!(status.completed_indexes.as_deref(), Some("0"));
    assert_eq!(status.failed_indexes.as_deref(), Some("1"));
    assert_eq!((status.succeeded, status.failed), (Some(1), Some(3)));

    let pods = pods_of(&double, "flaky").await;
    let summary: Vec<(String, String, String)> = pods
        .iter()
        .map(|p| {
            (
                annotation(p, "batch.kubernetes.io/job-completion-index").unwrap_or_default(),
                annotation(p, "batch.kubernetes.io/job-index-failure-count").unwrap_or_default(),
                phase(p).to_owned(),
            )
        })
        .collect();
    let expected = [
        ("0", "0", "Failed"),
        ("0", "1", "Succeeded"),
        ("1", "0", "Failed"),
        ("1", "1", "Failed"),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    let mut sorted = summary.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    let retry = pods
        .iter()
        .find(|p| phase(p) == "Succeeded")
        .expect("the retried pod");
    assert_eq!(
        logs(&double, &name(retry)).await.expect("logs"),
        "attempt 1\n"
    );
}

#[tokio::test]
async fn a_disrupted_pod_is_ignored_and_its_index_rerun() {
    let double = cluster().await;
    let mut spec = job(
        "calm",
        1,
        "if [ -z \"$IGNORED\" ]; then sleep 30; fi; echo replacement after $IGNORED",
    );
    spec["spec"]["backoffLimitPerIndex"] = json!(0);
    spec["spec"]["podFailurePolicy"] = json!({"rules": [{
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget"}],
    }]});
    failure_count_env(
        &mut spec,
        "IGNORED",
        "batch.kubernetes.io/job-index-ignored-failure-count",
    );
    submit(&double, spec).await;
    let victim = tokio::time::timeout(LIMIT, double.disrupt("calm", 0))
        .await
        .expect("disrupted in time")
        .expect("disrupted");

    let done = finished(&double, "calm").await;
    assert!(condition(&done, "Complete").is_some());
    let status = done.status.expect("status");
    assert_eq!((status.succeeded, status.failed), (Some(1), None));
    let pods = pods_of(&double, "calm").await;
    assert_eq!(pods.len(), 2);
    let (disrupted, replacement): (Vec<&Pod>, Vec<&Pod>) =
        pods.iter().partition(|p| name(p) == victim);
    let disrupted = pod_json(disrupted[0]);
    assert_eq!(disrupted["status"]["phase"], json!("Failed"));
    let conditions = disrupted["status"]["conditions"]
        .as_array()
        .expect("conditions");
    assert!(conditions.iter().any(|c| c["type"] == "DisruptionTarget"
        && c["status"] == "True"
        && c["reason"] == "PreemptionByScheduler"));
    let replacement = replacement[0];
    assert_eq!(
        annotation(
            replacement,
            "batch.kubernetes.io/job-index-ignored-failure-count"
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        logs(&double, &name(replacement)).await.expect("logs"),
        "replacement after 1\n"
    );
}

#[tokio::test]
async fn an_oom_kill_fails_an_index_without_retries_left() {
    let double = cluster().await;
    let mut spec = job("hungry", 1, "sleep 30");
    spec["spec"]["backoffLimitPerIndex"] = json!(0);
    submit(&double, spec).await;
    let victim = tokio::time::timeout(LIMIT, double.oom_kill("hungry", 0))
        .await
        .expect("killed in time")
        .expect("killed");
    let done = finished(&double, "hungry").await;
    assert_eq!(
        condition(&done, "Failed").map(|c| c.0),
        Some("FailedIndexes")
    );
    let pods = pods_of(&double, "hungry").await;
    assert_eq!(pods.iter().map(name).collect::<Vec<_>>(), [victim]);
    let exit = &pod_json(&pods[0])["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(
        (&exit["exitCode"], &exit["reason"]),
        (&json!(137), &json!("OOMKilled"))
    );
}

#[tokio::test]
async fn unschedulable_and_unpullable_pods_stay_pending_until_the_deadline() {
    let double = cluster().await;
    double.never_schedule("stuck", 0).expect("fault set");
    double.image_pull_backoff("stuck", 1).expect("fault set");
    let mut spec = job("stuck", 2, "echo never");
    spec["spec"]["activeDeadlineSeconds"] = json!(2);
    submit(&double, spec).await;

    let api: Api<Job> = Api::namespaced(double.client().expect("client"), NS);
    let pods = until("both pods to show their fault", || async {
        let pods = pods_of(&double, "stuck").await;
        let json: Vec<Value> = pods.iter().map(pod_json).collect();
        let active = api.get("stuck").await.ok()?.status?.active;
        let shown = json.len() == 2
            && json[0]["status"]["conditions"][0]["reason"] == "Unschedulable"
            && json[1]["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                == "ImagePullBackOff"
            && active == Some(2);
        shown.then_some(json)
    })
    .await;
    let scheduled = &pods[0]["status"]["conditions"][0];
    assert_eq!(pods[0]["status"]["phase"], json!("Pending"));
    assert_eq!(
        (
            &scheduled["type"],
            &scheduled["status"],
            &scheduled["message"]
        ),
        (
            &json!("PodScheduled"),
            &json!("False"),
            &json!("0/3 nodes are available: 3 Insufficient cpu.")
        )
    );
    assert_eq!(pods[1]["status"]["phase"], json!("Pending"));
    let pending_name = pods[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    match logs(&double, &pending_name).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 400);
            assert!(
                status.message.contains("is waiting to start"),
                "{}",
                status.message
            );
        }
        other => panic!("logs of a pending pod: {other:?}"),
    }
    assert!(double.running_pods().is_empty());

    let done = finished(&double, "stuck").await;
    assert_eq!(
        condition(&done, "Failed"),
        Some((
            "DeadlineExceeded",
            "Job was active longer than specified deadline"
        ))
    );
    tokio::time::timeout(
        LIMIT,
        double.wait_for_absence("v1", "Pod", "batch.kubernetes.io/job-name=stuck"),
    )
    .await
    .expect("pods deleted in time")
    .expect("valid selector");
}

async fn running_pids(double: &ApiDouble, count: usize) -> Vec<u32> {
    until(&format!("{count} running processes"), || async {
        let pids: Vec<u32> = double.running_pods().iter().map(|p| p.pid).collect();
        (pids.len() == count).then_some(pids)
    })
    .await
}

#[tokio::test]
async fn background_deletion_kills_the_processes_and_removes_the_pods() {
    let double = cluster().await;
    submit(&double, job("doomed", 2, "sleep 30")).await;
    let pids = running_pids(&double, 2).await;
    let api: Api<Job> = Api::namespaced(double.client().expect("client"), NS);
    api.delete("doomed", &DeleteParams::background())
        .await
        .expect("deleted");
    tokio::time::timeout(
        LIMIT,
        double.wait_for_absence("v1", "Pod", "batch.kubernetes.io/job-name=doomed"),
    )
    .await
    .expect("pods deleted in time")
    .expect("valid selector");
    assert!(double.running_pods().is_empty());
    all_dead(&pids).await;
    assert!(api.get_opt("doomed").await.expect("get").is_none());
}

#[tokio::test]
async fn foreground_deletion_keeps_the_job_until_its_pods_are_gone() {
    let double = cluster().await;
    submit(&double, job("slow", 1, "sleep 30")).await;
    let pids = running_pids(&double, 1).await;
    let api: Api<Job> = Api::namespaced(double.client().expect("client"), NS);
    let answer = api
        .delete("slow", &DeleteParams::foreground())
        .await
        .expect("deleted");
    let marked = answer.left().expect("the job, still present");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(
        marked.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_owned()])
    );
    until("the job to go", || async {
        api.get_opt("slow")
            .await
            .expect("get")
            .is_none()
            .then_some(())
    })
    .await;
    assert!(pods_of(&double, "slow").await.is_empty());
    all_dead(&pids).await;
}

#[tokio::test]
async fn deleting_a_job_without_a_policy_orphans_its_pods() {
    let double = cluster().await;
    submit(&double, job("orphans", 2, "sleep 30")).await;
    let pids = running_pids(&double, 2).await;
    let api: Api<Job> = Api::namespaced(double.client().expect("client"), NS);
    api.delete("orphans", &DeleteParams::default())
        .await
        .expect("deleted");
    assert!(api.get_opt("orphans").await.expect("get").is_none());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pods = pods_of(&double, "orphans").await;
    assert_eq!(pods.len(), 2, "orphaned pods stay");
    assert!(pods.iter().all(|p| p.metadata.owner_references.is_none()));
    assert_eq!(double.running_pods().len(), 2);

    let pod_api: Api<Pod> = Api::namespaced(double.client().expect("client"), NS);
    for pod in &pods {
        pod_api
            .delete(&name(pod), &DeleteParams::default())
            .await
            .expect("pod deleted");
    }
    all_dead(&pids).await;
    assert!(double.running_pods().is_empty());
}

#[tokio::test]
async fn dropping_the_double_leaves_no_process_behind() {
    let double = cluster().await;
    submit(&double, job("abandoned", 1, "sleep 30 & echo $!; wait")).await;
    let pod = running_pod(&double, "abandoned").await;
    let child: u32 = until("the shell to report its child", || async {
        logs(&double, &name(&pod)).await.ok()?.trim().parse().ok()
    })
    .await;
    let leader = running_pids(&double, 1).await;
    assert!(alive(child) && alive(leader[0]));
    drop(double);
    all_dead(&[leader[0], child]).await;
}

#[tokio::test]
async fn unmapped_commands_cannot_run() {
    let double = cluster().await;
    let mut spec = job("missing", 1, "unused");
    spec["spec"]["template"]["spec"]["containers"][0]["command"] = json!(["kpress", "run"]);
    spec["spec"]["backoffLimit"] = json!(0);
    submit(&double, spec).await;
    let done = finished(&double, "missing").await;
    assert_eq!(
        condition(&done, "Failed").map(|c| c.0),
        Some("BackoffLimitExceeded")
    );
    let pods = pods_of(&double, "missing").await;
    let exit = &pod_json(&pods[0])["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(
        (&exit["exitCode"], &exit["reason"]),
        (&json!(127), &json!("ContainerCannotRun"))
    );
}

#[tokio::test]
async fn non_indexed_jobs_are_refused_plainly() {
    let double = cluster().await;
    let mut spec = job("plain", 1, "true");
    spec["spec"]["completionMode"] = json!("NonIndexed");
    let api: Api<Job> = Api::namespaced(double.client().expect("client"), NS);
    let job: Job = serde_json::from_value(spec).expect("a Job");
    match api.create(&PostParams::default(), &job).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 501),
        other => panic!("a NonIndexed Job was answered with {other:?}"),
    }
}
