//! Bodies the center refuses, each with its JSON error and nothing stored: too large
//! (413), not JSON (415), malformed (400).

use serde_json::json;

use crate::support::{summaries, Call, TestCenter, TOKEN};

const LIMIT: usize = 64 * 1024;

#[tokio::test]
async fn oversized_bodies_are_413_and_store_nothing() {
    let c = TestCenter::sqlite_with(|config| config.max_body = LIMIT).await;
    c.create("big", summaries::TEST, 1).await;
    let one = summaries::for_run(0, "big").timeline[0].clone();
    let mut points = Vec::new();
    while serde_json::to_vec(&points).map_or(0, |b| b.len()) <= LIMIT {
        let mut p = one.clone();
        p.t = points.len() as u64;
        points.push(p);
    }
    let body = json!({ "points": points });
    c.post("/api/runs/big/runners/0/points", &body)
        .await
        .assert_error(413, "payload_too_large");
    assert!(c.timeline("big").await.is_empty());
    // Under the limit the same points are accepted.
    let r = c
        .post(
            "/api/runs/big/runners/0/points",
            &json!({ "points": &points[..points.len() / 2] }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut huge = crate::support::create_body("huge", "t", 1);
    huge["scenario"] = "x".repeat(LIMIT + 1).into();
    c.post("/api/runs", &huge)
        .await
        .assert_error(413, "payload_too_large");
    c.get("/api/runs/huge").await.assert_error(404, "not_found");
}

#[tokio::test]
async fn bodies_must_be_json() {
    let c = TestCenter::sqlite().await;
    let body = serde_json::to_vec(&crate::support::create_body("typed", "t", 1)).expect("json");
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        c.send(
            Call::new("POST", "/api/runs")
                .token(TOKEN)
                .body(content_type, body.clone()),
        )
        .await
        .assert_error(415, "unsupported_media_type");
    }
    // The same body as JSON is accepted; a body without a content type is not.
    let r = c
        .send(
            Call::new("POST", "/api/runs")
                .token(TOKEN)
                .body("application/json", body),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    c.send(Call::new("POST", "/api/runs/typed/finish").token(TOKEN))
        .await
        .assert_error(415, "unsupported_media_type");
    assert_eq!(c.run("typed").await["status"], "running");
}

#[tokio::test]
async fn malformed_json_is_400() {
    let c = TestCenter::sqlite().await;
    for body in [
        &b"{"[..],
        b"",
        b"[]",
        b"null",
        b"{\"test\": 5}",
        b"\xff\xfe",
    ] {
        c.send(
            Call::new("POST", "/api/runs")
                .token(TOKEN)
                .body("application/json", body.to_vec()),
        )
        .await
        .assert_error(400, "bad_request");
    }
    assert_eq!(c.get("/api/runs").await.json()["runs"], json!([]));
}
