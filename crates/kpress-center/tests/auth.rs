//! Tokens: without one or with a wrong one every protected route is 401; a runner
//! token reports to its own run only (403 on another run and on every other route);
//! the UI's cookie carries the center's token; a rejected call changes nothing.

use serde_json::{json, Value};

use crate::support::{create_body, summaries, Call, TestCenter, TOKEN};

/// One call to every protected route, on run `id` (runner 0 for ingest calls).
fn protected_calls(id: &str) -> Vec<Call> {
    let summary = summaries::json(&summaries::for_run(0, id));
    vec![
        Call::new("POST", "/api/runs").json(&create_body("newrun", "t", 1)),
        Call::new("GET", "/api/runs"),
        Call::new("GET", &format!("/api/runs/{id}")),
        Call::new("DELETE", &format!("/api/runs/{id}")),
        Call::new("GET", &format!("/api/runs/{id}/timeline")),
        Call::new("POST", &format!("/api/runs/{id}/finish")).json(&json!({"reason": "x"})),
        Call::new("GET", &format!("/api/compare?a={id}&b={id}")),
        Call::new("GET", "/metrics"),
        Call::new("POST", &format!("/api/runs/{id}/runners/0/points"))
            .json(&json!({"points": summary["timeline"]})),
        Call::new("PUT", &format!("/api/runs/{id}/runners/0/summary")).json(&summary),
        Call::new("POST", &format!("/api/runs/{id}/runners/0/done"))
            .json(&json!({"outcome": "completed"})),
    ]
}

fn ingest_calls(id: &str) -> Vec<Call> {
    protected_calls(id).into_iter().skip(8).collect()
}

fn center_only_calls(id: &str) -> Vec<Call> {
    protected_calls(id).into_iter().take(8).collect()
}

/// The run, the run list and the timeline: what must not change when calls are refused.
async fn snapshot(c: &TestCenter, id: &str) -> (Value, Value, Value) {
    (
        c.run(id).await,
        c.get("/api/runs").await.json(),
        c.get(&format!("/api/runs/{id}/timeline")).await.json(),
    )
}

pub async fn tokens_are_checked(c: &TestCenter) {
    let token_a = c.create("auth-a", summaries::TEST, 2).await;
    let token_b = c.create("auth-b", summaries::TEST, 2).await;
    let before = snapshot(c, "auth-a").await;

    for call in protected_calls("auth-a") {
        c.send(call).await.assert_error(401, "unauthorized");
    }
    for call in protected_calls("auth-a") {
        c.send(call.token("wrong"))
            .await
            .assert_error(401, "unauthorized");
    }
    for call in protected_calls("auth-a") {
        c.send(call.header("authorization", &format!("Basic {TOKEN}")))
            .await
            .assert_error(401, "unauthorized");
    }
    for call in protected_calls("auth-a") {
        c.send(call.cookie("wrong"))
            .await
            .assert_error(401, "unauthorized");
    }
    // A runner token is for the center's eyes in a bearer header, not a cookie.
    for call in ingest_calls("auth-a") {
        c.send(call.cookie(&token_a))
            .await
            .assert_error(401, "unauthorized");
    }
    // Run b's runner token on run a's reports, and on anything but reports.
    for call in ingest_calls("auth-a") {
        c.send(call.token(&token_b))
            .await
            .assert_error(403, "forbidden");
    }
    for call in center_only_calls("auth-a") {
        c.send(call.token(&token_a))
            .await
            .assert_error(403, "forbidden");
    }
    assert_eq!(
        snapshot(c, "auth-a").await,
        before,
        "refused calls changed nothing"
    );

    // The run's own token reports to it.
    for call in ingest_calls("auth-a") {
        let r = c.send(call.token(&token_a)).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let run = c.run("auth-a").await;
    assert_eq!(run["runner_states"][0]["state"], "completed");
    assert!(!c.timeline("auth-a").await.is_empty());
    // The center's token as the UI's cookie does everything.
    let r = c
        .send(Call::new("GET", "/api/runs/auth-b").cookie(TOKEN))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The runner token of a deleted run is no longer anyone's.
    assert_eq!(c.delete("/api/runs/auth-b").await.status, 204);
    c.send(
        Call::new("POST", "/api/runs/auth-b/runners/0/done")
            .token(&token_b)
            .json(&json!({"outcome": "failed"})),
    )
    .await
    .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn tokens_are_checked_on_sqlite() {
    tokens_are_checked(&TestCenter::sqlite().await).await;
}

#[tokio::test]
async fn a_reregistered_run_keeps_its_runner_token() {
    let c = TestCenter::sqlite().await;
    let token = c.create("again", summaries::TEST, 1).await;
    let r = c
        .post("/api/runs", &create_body("again", summaries::TEST, 1))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["runner_token"], token.as_str());
    let r = c
        .send(
            Call::new("POST", "/api/runs/again/runners/0/done")
                .token(&token)
                .json(&json!({"outcome": "failed"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn another_center_token_cannot_reissue_a_runner_token() {
    let first = TestCenter::sqlite().await;
    first.create("moved", summaries::TEST, 1).await;
    let db = first.db.clone();
    let second = TestCenter::open(kpress_center::Config::new(db, "another-token"), None).await;
    let r = second
        .send(
            Call::new("POST", "/api/runs")
                .token("another-token")
                .json(&create_body("moved", summaries::TEST, 1)),
        )
        .await;
    r.assert_error(409, "conflict");
    assert!(!r.text().contains("another-token"));
}
