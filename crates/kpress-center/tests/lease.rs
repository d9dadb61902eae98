//! `deployment`-mode runs through the API: the registration builds (and, asked to,
//! creates) the Deployment; runner pods lease distinct shares, all hear one start,
//! and a share whose holder was told the start is never run again.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kpress_center::deploy::DriveSettings;
use kpress_center::store::LeaseTiming;
use kube_double::ApiDouble;
use serde_json::{json, Value};

use crate::support::{Call, TestCenter};

const SCENARIO: &str = "name: dep\nscenarios:\n  s:\n    executor: shared-iterations\n    vus: 3\n    iterations: 6\n    requests: [GET http://127.0.0.1:9/]\n";
/// A holder silent for this long loses its share before the start.
const TTL: Duration = Duration::from_millis(300);

fn settings() -> DriveSettings {
    DriveSettings {
        timing: LeaseTiming {
            ttl_ms: 300,
            start_margin_ms: 500,
            report_grace_ms: 1000,
        },
        ..DriveSettings::default()
    }
}

async fn center() -> (TestCenter, ApiDouble) {
    let double = ApiDouble::start().await.expect("double");
    let center = TestCenter::with_cluster(&double, settings()).await;
    (center, double)
}

fn body(id: &str, runners: u64, create: bool) -> Value {
    json!({
        "id": id,
        "test": "dep",
        "app": "tenc-app=press-client-148-online",
        "mode": "deployment",
        "scenario": SCENARIO,
        "runners": runners,
        "deployment": {"namespace": "load", "create": create},
    })
}

/// Registers a deployment-mode run; returns its runner token.
async fn register(center: &TestCenter, id: &str, runners: u64) -> String {
    let r = center.post("/api/runs", &body(id, runners, false)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["runner_token"]
        .as_str()
        .expect("token")
        .to_string()
}

async fn lease(center: &TestCenter, id: &str, token: &str, pod: &str, process: &str) -> Value {
    let r = center
        .send(
            Call::new("POST", &format!("/api/runs/{id}/lease"))
                .token(token)
                .json(&json!({"pod": pod, "process": process})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn registration_builds_the_deployment_and_creates_it_when_asked() {
    let (center, double) = center().await;
    let r = center.post("/api/runs", &body("d1", 3, true)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let answer = r.json();
    let manifest = answer["manifest"].as_str().expect("manifest");
    let token = answer["runner_token"].as_str().expect("token");
    let built: Deployment = serde_norway::from_str(manifest).expect("a Deployment");
    assert_eq!(built.spec.replicas, Some(3));
    assert!(
        manifest.contains(token),
        "the runners carry the run's token"
    );
    assert!(manifest.contains("http://kpress-center.kpress.svc:8070/"));
    let name = built.metadata.name.clone().expect("name");
    let api: kube::Api<Deployment> =
        kube::Api::namespaced(double.client().expect("client"), "load");
    let created = api.get(&name).await.expect("the center created it");
    assert_eq!(created.spec.replicas, Some(3));
    let run = center.run("d1").await;
    assert_eq!(run["mode"], "deployment");
    assert_eq!(run["deployment"]["name"], name.as_str());
    assert_eq!(run["deployment"]["created_by_center"], true);
    assert_eq!(run["deployment"]["start_at"], Value::Null);

    // A re-sent registration gets the same run and manifest, and creates nothing more.
    let again = center.post("/api/runs", &body("d1", 3, true)).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["manifest"], answer["manifest"]);
}

#[tokio::test]
async fn registrations_that_do_not_fit_are_400() {
    let (center, _double) = center().await;
    let mut job = body("x1", 2, false);
    job["mode"] = json!("job");
    center
        .post("/api/runs", &job)
        .await
        .assert_error(400, "bad_request");
    let mut no_deployment = body("x2", 2, false);
    no_deployment
        .as_object_mut()
        .map(|o| o.remove("deployment"));
    center
        .post("/api/runs", &no_deployment)
        .await
        .assert_error(400, "bad_request");
    let mut bad_ns = body("x3", 2, false);
    bad_ns["deployment"]["namespace"] = json!("Not_A_Namespace");
    let r = center.post("/api/runs", &bad_ns).await;
    r.assert_error(400, "bad_request");
    assert!(r.text().contains("deployment.namespace"), "{}", r.text());
    let mut bad_scenario = body("x4", 2, false);
    bad_scenario["scenario"] = json!("name: dep\nscenarios: {}\n");
    center
        .post("/api/runs", &bad_scenario)
        .await
        .assert_error(400, "bad_request");
    let mut bad_cpu = body("x5", 2, false);
    bad_cpu["deployment"]["cpu"] = json!("lots");
    center
        .post("/api/runs", &bad_cpu)
        .await
        .assert_error(400, "bad_request");
    for id in ["x1", "x2", "x3", "x4", "x5"] {
        assert_eq!(center.get(&format!("/api/runs/{id}")).await.status, 404);
    }

    // A center without a cluster takes no deployment-mode run.
    let plain = TestCenter::sqlite().await;
    let r = plain.post("/api/runs", &body("x6", 2, false)).await;
    r.assert_error(400, "bad_request");
    assert!(r.text().contains("--kubernetes"), "{}", r.text());
}

#[tokio::test]
async fn shares_are_distinct_and_everyone_hears_one_start() {
    let (center, _double) = center().await;
    let token = register(&center, "d2", 3).await;
    let a = lease(&center, "d2", &token, "pod-a", "1").await;
    assert_eq!(
        (a["state"].as_str(), a["index"].as_u64()),
        (Some("wait"), Some(0))
    );
    let a_again = lease(&center, "d2", &token, "pod-a", "1").await;
    assert_eq!(a_again["index"], 0, "the same pod keeps its share");
    let b = lease(&center, "d2", &token, "pod-b", "1").await;
    assert_eq!(
        (b["state"].as_str(), b["index"].as_u64()),
        (Some("wait"), Some(1))
    );
    let c = lease(&center, "d2", &token, "pod-c", "1").await;
    assert_eq!(
        (c["state"].as_str(), c["index"].as_u64()),
        (Some("start"), Some(2))
    );
    let start = c["start_at"].as_str().expect("start").to_string();
    for (pod, index) in [("pod-a", 0), ("pod-b", 1)] {
        let l = lease(&center, "d2", &token, pod, "1").await;
        assert_eq!(l["state"], "start");
        assert_eq!(l["index"], index);
        assert_eq!(l["start_at"], start.as_str(), "one start for all");
    }
    let d = lease(&center, "d2", &token, "pod-d", "1").await;
    assert_eq!(d["state"], "wait", "a fourth pod gets no share: {d}");
    assert_eq!(d["index"], Value::Null);
    let run = center.run("d2").await;
    assert_eq!(run["deployment"]["leased"], 3);
    assert_eq!(run["deployment"]["start_at"], start.as_str());
}

#[tokio::test]
async fn a_share_told_the_start_is_never_run_again() {
    let (center, _double) = center().await;
    let token = register(&center, "d3", 2).await;
    lease(&center, "d3", &token, "pod-a", "1").await;
    let b = lease(&center, "d3", &token, "pod-b", "1").await;
    assert_eq!(b["state"], "start");
    // Pod a hears the start, then its container restarts (a new process, same pod).
    assert_eq!(
        lease(&center, "d3", &token, "pod-a", "1").await["state"],
        "start"
    );
    let restarted = lease(&center, "d3", &token, "pod-a", "2").await;
    assert_eq!(restarted["state"], "idle", "{restarted}");
    assert_eq!(restarted["index"], 0);
    let run = center.run("d3").await;
    assert_eq!(run["runner_states"][0]["state"], "failed");
    assert!(
        run["runner_states"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cut short")),
        "{run}"
    );
    // Runner 1 signals done: the run finishes, partial, and its runners are told to idle.
    let done = center
        .send(
            Call::new("POST", "/api/runs/d3/runners/1/done")
                .token(&token)
                .json(&json!({"outcome": "failed", "message": "test"})),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(
        done.json()["status"],
        "failed",
        "no runner delivered a summary"
    );
    let after = lease(&center, "d3", &token, "pod-b", "2").await;
    assert_eq!(after["state"], "idle");
}

#[tokio::test]
async fn a_silent_holder_loses_its_share_before_the_start() {
    let (center, _double) = center().await;
    let token = register(&center, "d4", 2).await;
    assert_eq!(lease(&center, "d4", &token, "pod-a", "1").await["index"], 0);
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    let b = lease(&center, "d4", &token, "pod-b", "1").await;
    assert_eq!(
        (b["state"].as_str(), b["index"].as_u64()),
        (Some("wait"), Some(1)),
        "{b}"
    );
    // Pod a's replacement takes over the silent holder's share, and the start is set.
    let c = lease(&center, "d4", &token, "pod-c", "1").await;
    assert_eq!(
        (c["state"].as_str(), c["index"].as_u64()),
        (Some("start"), Some(0)),
        "{c}"
    );
    let gone = lease(&center, "d4", &token, "pod-a", "1").await;
    assert_eq!(gone["state"], "wait");
    assert_eq!(gone["index"], Value::Null, "pod a holds nothing any more");
}

#[tokio::test]
async fn only_this_runs_runners_may_lease() {
    let (center, _double) = center().await;
    let token = register(&center, "d5", 2).await;
    let other = register(&center, "d6", 2).await;
    let call = |t: &str| {
        Call::new("POST", "/api/runs/d5/lease")
            .token(t)
            .json(&json!({"pod": "p", "process": "1"}))
    };
    center
        .send(call(&other))
        .await
        .assert_error(403, "forbidden");
    center
        .send(call("nope"))
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(center.send(call(&token)).await.status, 200);
    let empty = Call::new("POST", "/api/runs/d5/lease")
        .token(&token)
        .json(&json!({"pod": "", "process": "1"}));
    center.send(empty).await.assert_error(400, "bad_request");
    let job_token = center.create("j1", "t", 2).await;
    let on_job = Call::new("POST", "/api/runs/j1/lease")
        .token(&job_token)
        .json(&json!({"pod": "p", "process": "1"}));
    center.send(on_job).await.assert_error(400, "bad_request");
}
