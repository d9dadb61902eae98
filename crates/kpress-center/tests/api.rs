//! The runs resource: registration and its idempotency, listing with every filter,
//! reading, deleting, comparing, and the JSON errors of bad requests.

use serde_json::{json, Value};

use crate::support::{create_body, summaries, Call, TestCenter, TOKEN};

#[tokio::test]
async fn healthz_is_open() {
    let c = TestCenter::sqlite().await;
    let r = c.send(Call::new("GET", "/healthz")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ok"}));
}

/// Registration: 201 with a runner token; the same body again is 200 with the same
/// run and token; another body under the same id is 409 and changes nothing.
pub async fn registration_is_idempotent(c: &TestCenter) {
    let body = create_body("reg-1", "checkout", 3);
    let first = c.post("/api/runs", &body).await;
    assert_eq!(first.status, 201, "{}", first.text());
    let first = first.json();
    let token = first["runner_token"].as_str().expect("token");
    assert_eq!(token.len(), 64);
    let run = &first["run"];
    assert_eq!(run["id"], "reg-1");
    assert_eq!(run["test"], "checkout");
    assert_eq!(run["app"], "tenc-app=press-client-148-online");
    assert_eq!(run["mode"], "job");
    assert_eq!(run["started_by"], "ci@example");
    assert_eq!(run["status"], "running");
    assert_eq!(run["runners"], 3);
    assert_eq!(run["runners_done"], 0);
    assert_eq!(run["labels"], json!({"kpress.io/job": "kpress-x"}));
    assert!(run["ended"].is_null() && run["requests"].is_null());

    let again = c.post("/api/runs", &body).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(
        again.json(),
        first,
        "a re-sent registration returns the same run and token"
    );

    let mut other = body.clone();
    other["test"] = "another".into();
    c.post("/api/runs", &other)
        .await
        .assert_error(409, "conflict");
    let stored = c.run("reg-1").await;
    assert_eq!(stored["test"], "checkout");
    assert_eq!(stored["scenario"], "name: test\n");
    assert_eq!(stored["summary"], Value::Null);
    let states: Vec<&Value> = stored["runner_states"]
        .as_array()
        .expect("runners")
        .iter()
        .collect();
    assert_eq!(states.len(), 3);
    for (i, s) in states.iter().enumerate() {
        assert_eq!(s["index"], i);
        assert_eq!(s["state"], "pending");
    }
}

#[tokio::test]
async fn registration_is_idempotent_on_sqlite() {
    registration_is_idempotent(&TestCenter::sqlite().await).await;
}

#[tokio::test]
async fn ids_are_generated_when_absent() {
    let c = TestCenter::sqlite().await;
    let body = json!({"test": "t", "mode": "local", "runners": 1});
    let a = c.post("/api/runs", &body).await;
    let b = c.post("/api/runs", &body).await;
    assert_eq!((a.status, b.status), (201, 201));
    let (a, b) = (a.json(), b.json());
    let id = a["run"]["id"].as_str().expect("id");
    assert_eq!(id.len(), 10);
    assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a["run"]["id"], b["run"]["id"]);
    assert_ne!(a["runner_token"], b["runner_token"]);
    assert_eq!(a["run"]["app"], Value::Null);
    assert_eq!(a["run"]["labels"], json!({}));
}

#[tokio::test]
async fn invalid_registrations_are_400_and_store_nothing() {
    let c = TestCenter::sqlite().await;
    let base = create_body("ok-id", "t", 2);
    let mut cases = Vec::new();
    for (field, value) in [
        ("runners", json!(0)),
        ("runners", json!(10_001)),
        ("runners", json!(-1)),
        ("test", json!("")),
        ("id", json!("a b")),
        ("id", json!("x".repeat(64))),
        ("mode", json!("cloud")),
        ("unknown", json!(1)),
    ] {
        let mut b = base.clone();
        b[field] = value;
        cases.push(b);
    }
    let mut missing = base.clone();
    missing.as_object_mut().expect("object").remove("test");
    cases.push(missing);
    for body in cases {
        c.post("/api/runs", &body)
            .await
            .assert_error(400, "bad_request");
    }
    let list = c.get("/api/runs").await.json();
    assert_eq!(list["runs"], json!([]));
}

/// Registers runs of two tests and two apps, finishes some, and checks every filter.
pub async fn listing_filters(c: &TestCenter) {
    let mut created = Vec::new();
    for (i, (test, app)) in [
        ("alpha", "app=one"),
        ("beta", "app=one"),
        ("alpha", "app=two"),
        ("beta", "app=two"),
        ("alpha", "app=one"),
    ]
    .iter()
    .enumerate()
    {
        let mut body = create_body(&format!("list-{i}"), test, 1);
        body["app"] = (*app).into();
        let r = c.post("/api/runs", &body).await;
        assert_eq!(r.status, 201, "{}", r.text());
        created.push(
            r.json()["run"]["created"]
                .as_str()
                .expect("created")
                .to_string(),
        );
        // Distinct creation instants (milliseconds), so since/until cut between runs.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // list-1 and list-3 end failed: no summary arrived.
    for id in ["list-1", "list-3"] {
        let r = c
            .post(
                &format!("/api/runs/{id}/finish"),
                &json!({"reason": "test"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["status"], "failed");
    }
    let ids = |r: Value| -> Vec<String> {
        r["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_string())
            .collect()
    };
    let list = |q: String| async move {
        let r = c.get(&format!("/api/runs{q}")).await;
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        ids(r.json())
    };
    assert_eq!(
        list(String::new()).await,
        ["list-4", "list-3", "list-2", "list-1", "list-0"],
        "newest first"
    );
    assert_eq!(
        list("?test=alpha".into()).await,
        ["list-4", "list-2", "list-0"]
    );
    assert_eq!(list("?app=app%3Dtwo".into()).await, ["list-3", "list-2"]);
    assert_eq!(
        list("?test=beta&status=failed".into()).await,
        ["list-3", "list-1"]
    );
    assert_eq!(
        list("?status=running".into()).await,
        ["list-4", "list-2", "list-0"]
    );
    assert_eq!(list("?status=passed".into()).await, Vec::<String>::new());
    assert_eq!(
        list("?test=&app=&status=".into()).await.len(),
        5,
        "empty = no filter"
    );
    assert_eq!(
        list(format!("?since={}", created[2])).await,
        ["list-4", "list-3", "list-2"]
    );
    assert_eq!(
        list(format!("?until={}", created[1])).await,
        ["list-1", "list-0"]
    );
    assert_eq!(
        list(format!("?since={}&until={}", created[1], created[3])).await,
        ["list-3", "list-2", "list-1"]
    );
    assert_eq!(list("?limit=2".into()).await, ["list-4", "list-3"]);
    assert_eq!(list("?limit=2&offset=2".into()).await, ["list-2", "list-1"]);
    assert_eq!(list("?offset=10".into()).await, Vec::<String>::new());
    for bad in [
        "?limit=1001",
        "?limit=-1",
        "?limit=x",
        "?offset=-5",
        "?status=done",
        "?since=yesterday",
        "?until=2026-13-01T00:00:00Z",
    ] {
        c.get(&format!("/api/runs{bad}"))
            .await
            .assert_error(400, "bad_request");
    }
}

#[tokio::test]
async fn listing_filters_on_sqlite() {
    listing_filters(&TestCenter::sqlite().await).await;
}

#[tokio::test]
async fn the_default_limit_is_100() {
    let c = TestCenter::sqlite().await;
    for i in 0..105 {
        let r = c
            .post("/api/runs", &create_body(&format!("r{i}"), "t", 1))
            .await;
        assert_eq!(r.status, 201);
    }
    let r = c.get("/api/runs").await.json();
    assert_eq!(r["runs"].as_array().map(Vec::len), Some(100));
    let r = c.get("/api/runs?limit=1000").await.json();
    assert_eq!(r["runs"].as_array().map(Vec::len), Some(105));
}

#[tokio::test]
async fn unknown_runs_are_404() {
    let c = TestCenter::sqlite().await;
    for path in ["/api/runs/nope", "/api/runs/nope/timeline"] {
        c.get(path).await.assert_error(404, "not_found");
    }
    c.delete("/api/runs/nope")
        .await
        .assert_error(404, "not_found");
    c.post("/api/runs/nope/finish", &json!({"reason": "x"}))
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn deleting_a_run_removes_its_runners_and_points() {
    let c = TestCenter::sqlite().await;
    c.create("del", summaries::TEST, 2).await;
    c.create("keep", summaries::TEST, 2).await;
    let points = json!({"points": summaries::for_run(0, "del").timeline});
    for id in ["del", "keep"] {
        let r = c
            .post(&format!("/api/runs/{id}/runners/0/points"), &points)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = c.delete("/api/runs/del").await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    c.get("/api/runs/del").await.assert_error(404, "not_found");
    c.get("/api/runs/del/timeline")
        .await
        .assert_error(404, "not_found");
    let ids: Vec<Value> = c.get("/api/runs").await.json()["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, [json!("keep")]);
    assert!(
        !c.timeline("keep").await.is_empty(),
        "the other run keeps its points"
    );
    // Re-registering the id starts afresh: no old points come back.
    c.create("del", summaries::TEST, 2).await;
    assert!(c.timeline("del").await.is_empty());
    c.delete("/api/runs/nope")
        .await
        .assert_error(404, "not_found");
}

/// Runs `a` and `b` to completion with their two real runner summaries.
async fn finished_run(c: &TestCenter, id: &str) {
    c.create(id, summaries::TEST, 2).await;
    for i in 0..2 {
        let s = summaries::json(&summaries::for_run(i, id));
        let r = c
            .put(&format!("/api/runs/{id}/runners/{i}/summary"), &s)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let r = c
            .post(
                &format!("/api/runs/{id}/runners/{i}/done"),
                &json!({"outcome": "completed"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

#[tokio::test]
async fn comparing_two_runs() {
    let c = TestCenter::sqlite().await;
    finished_run(&c, "cmp-a").await;
    finished_run(&c, "cmp-b").await;
    c.create("cmp-live", summaries::TEST, 2).await;
    let r = c.get("/api/compare?a=cmp-a&b=cmp-b").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cmp = r.json();
    assert_eq!(cmp["a"]["id"], "cmp-a");
    assert_eq!(cmp["b"]["id"], "cmp-b");
    let merged = c.run("cmp-a").await["summary"].clone();
    let names: Vec<&str> = cmp["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| m["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "requests",
            "rate",
            "error_rate",
            "http_req_duration.p50",
            "http_req_duration.p90",
            "http_req_duration.p95",
            "http_req_duration.p99",
            "http_req_duration.p99.9",
            "http_req_duration.max"
        ]
    );
    for m in cmp["metrics"].as_array().expect("metrics") {
        let want = match m["name"].as_str().expect("name") {
            "requests" => merged["metrics"]["http_reqs"]["count"].clone(),
            "rate" => merged["metrics"]["http_reqs"]["rate"].clone(),
            "error_rate" => merged["metrics"]["http_req_failed"]["rate"].clone(),
            other => merged["metrics"]["http_req_duration"]
                [other.trim_start_matches("http_req_duration.")]
            .clone(),
        };
        let want = want.as_f64().expect("number");
        assert_eq!(m["a"].as_f64(), Some(want), "{m}");
        // Same runner summaries: b equals a, the delta is 0 and the ratio 1.
        assert_eq!(m["b"].as_f64(), Some(want), "{m}");
        assert_eq!(m["delta"].as_f64(), Some(0.0), "{m}");
        if want != 0.0 {
            assert_eq!(m["ratio"].as_f64(), Some(1.0), "{m}");
        } else {
            assert_eq!(m["ratio"], Value::Null, "{m}");
        }
    }
    let r = c.get("/api/compare?a=cmp-a&b=cmp-live").await.json();
    for m in r["metrics"].as_array().expect("metrics") {
        assert!(m["a"].is_number());
        assert_eq!(
            (&m["b"], &m["delta"], &m["ratio"]),
            (&Value::Null, &Value::Null, &Value::Null)
        );
    }
    c.get("/api/compare?a=cmp-a&b=nope")
        .await
        .assert_error(404, "not_found");
    c.get("/api/compare?a=cmp-a")
        .await
        .assert_error(400, "bad_request");
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_errors() {
    let c = TestCenter::sqlite().await;
    c.get("/api/nothing").await.assert_error(404, "not_found");
    c.get("/api/runs/a/b/c/d")
        .await
        .assert_error(404, "not_found");
    c.send(Call::new("PATCH", "/api/runs").token(TOKEN))
        .await
        .assert_error(405, "method_not_allowed");
    c.send(Call::new("DELETE", "/healthz"))
        .await
        .assert_error(405, "method_not_allowed");
}
