//! The runners' reports: points, summaries and done signals; their idempotency (a
//! re-send never counts twice); the exact merge when the run finishes; every status a
//! run can end in; and the rejections that leave the run as it was.

use kpress_engine::metrics::{histogram, Latency};
use kpress_engine::summary::{Summary, ThresholdResult, TimelinePoint};
use serde_json::{json, Value};

use crate::support::{summaries, Call, TestCenter};

fn decode(hdr: &str) -> Latency {
    histogram::decode(hdr).unwrap_or_else(|e| panic!("{e}"))
}

fn points_path(id: &str, i: u64) -> String {
    format!("/api/runs/{id}/runners/{i}/points")
}

fn summary_path(id: &str, i: u64) -> String {
    format!("/api/runs/{id}/runners/{i}/summary")
}

fn done_path(id: &str, i: u64) -> String {
    format!("/api/runs/{id}/runners/{i}/done")
}

async fn send_points(c: &TestCenter, id: &str, i: u64, points: &[TimelinePoint]) -> u64 {
    let r = c
        .post(&points_path(id, i), &json!({ "points": points }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["accepted"].as_u64().expect("accepted")
}

async fn put_summary(c: &TestCenter, id: &str, i: u64, s: &Summary) -> Value {
    let r = c.put(&summary_path(id, i), &summaries::json(s)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

async fn done(c: &TestCenter, id: &str, i: u64, outcome: &str) -> Value {
    let r = c
        .post(
            &done_path(id, i),
            &json!({ "outcome": outcome, "message": "m" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Checks that the center's merged summary is the exact merge of `parts`: counts add
/// and every percentile is that of one histogram holding all the samples.
fn assert_exact_merge(merged: &Value, parts: &[Summary]) {
    let mut all = histogram::new_latency();
    let mut requests = 0;
    let mut failed = 0;
    for p in parts {
        histogram::add(&mut all, &decode(&p.metrics.http_req_duration.hdr));
        requests += p.metrics.http_reqs.count;
        failed += p.metrics.http_req_failed.fails;
    }
    let m = &merged["metrics"];
    assert_eq!(m["http_reqs"]["count"], requests);
    assert_eq!(m["http_req_failed"]["fails"], failed);
    let d = &m["http_req_duration"];
    for (key, p) in [
        ("p50", 50.0),
        ("p90", 90.0),
        ("p95", 95.0),
        ("p99", 99.0),
        ("p99.9", 99.9),
    ] {
        assert_eq!(
            d[key].as_f64(),
            Some(histogram::percentile_ms(&all, p)),
            "{key}"
        );
    }
    assert_eq!(d["max"].as_f64(), Some(histogram::max_ms(&all)));
    let merged_hdr = decode(d["hdr"].as_str().expect("hdr"));
    assert_eq!(
        merged_hdr, all,
        "the merged histogram is the sum of the runners'"
    );
}

/// Checks that the center's timeline is the exact per-second merge of `parts`.
fn assert_exact_timeline(timeline: &[Value], parts: &[&[TimelinePoint]]) {
    let mut seconds: std::collections::BTreeMap<u64, (Latency, u64, u64, u64)> = Default::default();
    for points in parts {
        for p in *points {
            let e = seconds
                .entry(p.t)
                .or_insert_with(|| (histogram::new_latency(), 0, 0, 0));
            histogram::add(&mut e.0, &decode(&p.hdr.http_req_duration));
            e.1 += p.requests;
            e.2 += p.failed;
            e.3 += 1;
        }
    }
    assert_eq!(timeline.len(), seconds.len(), "one entry per second");
    for (got, (t, (h, requests, failed, runners))) in timeline.iter().zip(&seconds) {
        assert_eq!(got["t"], *t);
        assert_eq!(got["requests"], *requests, "second {t}");
        assert_eq!(got["failed"], *failed, "second {t}");
        assert_eq!(got["runners"], *runners, "second {t}");
        assert_eq!(got["rate"].as_f64(), Some(*requests as f64), "second {t}");
        for (key, p) in [("p50", 50.0), ("p95", 95.0), ("p99", 99.0)] {
            assert_eq!(
                got[key].as_f64(),
                Some(histogram::percentile_ms(h, p)),
                "second {t} {key}"
            );
        }
        assert_eq!(
            got["max"].as_f64(),
            Some(histogram::max_ms(h)),
            "second {t}"
        );
    }
}

/// The whole life of a two-runner run, with every message sent twice.
pub async fn full_flow(c: &TestCenter) {
    let id = "flow";
    c.create(id, summaries::TEST, 2).await;
    let (s0, s1) = (summaries::for_run(0, id), summaries::for_run(1, id));
    assert!(s0.timeline.len() >= 3, "{} seconds", s0.timeline.len());

    // Runner 0 streams its seconds in two batches, then re-sends all of them.
    let (head, tail) = s0.timeline.split_at(2);
    assert_eq!(send_points(c, id, 0, head).await, 2);
    assert_eq!(send_points(c, id, 0, &s0.timeline).await, tail.len() as u64);
    assert_eq!(send_points(c, id, 0, &s0.timeline).await, 0);
    let detail = c.run(id).await;
    assert_eq!(detail["runner_states"][0]["state"], "running");
    assert_eq!(detail["runner_states"][1]["state"], "pending");
    assert_exact_timeline(&c.timeline(id).await, &[&s0.timeline]);

    // Its summary (whose timeline repeats those points), twice; then done, twice.
    let info = put_summary(c, id, 0, &s0).await;
    assert_eq!(info["status"], "running");
    assert_eq!(info["started"], s0.started);
    assert_eq!(
        put_summary(c, id, 0, &s0).await,
        info,
        "the same summary changes nothing"
    );
    assert_exact_timeline(&c.timeline(id).await, &[&s0.timeline]);
    let info = done(c, id, 0, "completed").await;
    assert_eq!(
        (&info["status"], &info["runners_done"]),
        (&json!("running"), &json!(1))
    );
    assert_eq!(done(c, id, 0, "completed").await["runners_done"], 1);

    // Runner 1 sends only its summary (points inside), twice, then done: finished.
    put_summary(c, id, 1, &s1).await;
    put_summary(c, id, 1, &s1).await;
    let info = done(c, id, 1, "completed").await;
    assert_eq!(info["status"], "passed", "{info}");
    assert_eq!(info["runners_done"], 2);
    assert!(info["ended"].is_string());
    let expected_requests = s0.metrics.http_reqs.count + s1.metrics.http_reqs.count;
    assert_eq!(info["requests"], expected_requests);
    // A late duplicate of the last signal changes nothing.
    assert_eq!(done(c, id, 1, "completed").await, info);

    let detail = c.run(id).await;
    let merged = &detail["summary"];
    assert_eq!(merged["segment"], "all/2");
    assert_eq!(merged["status"], "passed");
    assert_eq!(merged["missing_segments"], json!([]));
    assert_exact_merge(merged, &[s0.clone(), s1.clone()]);
    let p99 = merged["metrics"]["http_req_duration"]["p99"]
        .as_f64()
        .expect("p99");
    let mean_of_p99s = (s0.metrics.http_req_duration.p99 + s1.metrics.http_req_duration.p99) / 2.0;
    assert!(
        p99 > mean_of_p99s,
        "p99 {p99} must not be an average ({mean_of_p99s})"
    );
    assert_eq!(detail["p99_ms"].as_f64(), Some(p99));
    assert_eq!(
        detail["error_rate"].as_f64(),
        merged["metrics"]["http_req_failed"]["rate"].as_f64()
    );
    assert_eq!(detail["duration_s"], merged["duration_s"]);
    let earliest = std::cmp::min(s0.started.clone(), s1.started.clone());
    assert_eq!(detail["started"], earliest);
    // Thresholds: the runners' were unjudged; the merge judged them.
    for r in [&s0, &s1] {
        assert!(r.thresholds.values().flatten().all(|t| t.ok.is_none()));
    }
    let judged: Vec<&Value> = merged["thresholds"]
        .as_object()
        .expect("thresholds")
        .values()
        .flat_map(|v| v.as_array().expect("list"))
        .collect();
    assert_eq!(judged.len(), 2);
    assert!(judged.iter().all(|t| t["ok"] == true), "{judged:?}");
    for state in detail["runner_states"].as_array().expect("states") {
        assert_eq!(state["state"], "completed");
    }
    assert_exact_timeline(&c.timeline(id).await, &[&s0.timeline, &s1.timeline]);
    assert_eq!(
        merged["timeline"].as_array().map(Vec::len),
        Some(c.timeline(id).await.len())
    );

    // After the finish: stored points are still acknowledged, new ones refused.
    assert_eq!(send_points(c, id, 0, &s0.timeline).await, 0);
    let mut late = s0.timeline[0].clone();
    late.t = 999;
    c.post(&points_path(id, 0), &json!({ "points": [late] }))
        .await
        .assert_error(409, "conflict");
    assert_eq!(
        c.timeline(id).await.len(),
        merged["timeline"].as_array().map_or(0, Vec::len)
    );
}

#[tokio::test]
async fn full_flow_on_sqlite() {
    full_flow(&TestCenter::sqlite().await).await;
}

/// Both runners' summaries stored, then their done signals at the same time: exactly
/// one of them finishes the run.
pub async fn concurrent_last_signals(c: &TestCenter) {
    for round in 0..5 {
        let id = format!("race-{round}");
        c.create(&id, summaries::TEST, 2).await;
        for i in 0..2 {
            put_summary(c, &id, i, &summaries::for_run(i as usize, &id)).await;
        }
        let (a, b) = tokio::join!(done(c, &id, 0, "completed"), done(c, &id, 1, "completed"));
        let mut statuses = [a["status"].clone(), b["status"].clone()];
        statuses.sort_by_key(|s| s.to_string());
        assert_eq!(
            statuses,
            [json!("passed"), json!("running")],
            "round {round}"
        );
        let detail = c.run(&id).await;
        assert_eq!(detail["status"], "passed");
        assert_exact_merge(
            &detail["summary"],
            &[summaries::for_run(0, &id), summaries::for_run(1, &id)],
        );
    }
}

#[tokio::test]
async fn concurrent_last_signals_on_sqlite() {
    concurrent_last_signals(&TestCenter::sqlite().await).await;
}

fn with_thresholds(mut s: Summary, expr: &str) -> Summary {
    s.thresholds = [(
        "http_req_duration".to_string(),
        vec![ThresholdResult {
            expr: expr.into(),
            ok: None,
            actual: None,
            abort_on_fail: false,
            delay_abort_eval_ms: 0,
        }],
    )]
    .into_iter()
    .collect();
    s
}

#[tokio::test]
async fn crossed_thresholds_fail_the_run_on_the_merged_data() {
    let c = TestCenter::sqlite().await;
    let id = "slow";
    c.create(id, summaries::TEST, 2).await;
    // Runner 0 alone would pass; with runner 1's slow half the whole cannot.
    let limit = summaries::SLOW_MS / 2;
    let expr = format!("p(90)<{limit}ms");
    let s0 = with_thresholds(summaries::for_run(0, id), &expr);
    let s1 = with_thresholds(summaries::for_run(1, id), &expr);
    assert!(
        s0.metrics.http_req_duration.p90 < limit as f64,
        "{}",
        s0.metrics.http_req_duration.p90
    );
    put_summary(&c, id, 0, &s0).await;
    put_summary(&c, id, 1, &s1).await;
    done(&c, id, 0, "completed").await;
    let info = done(&c, id, 1, "completed").await;
    assert_eq!(info["status"], "thresholds_failed", "{info}");
    let t = &c.run(id).await["summary"]["thresholds"]["http_req_duration"][0];
    assert_eq!(t["ok"], false);
    assert!(t["actual"].as_f64().expect("actual") >= limit as f64);
}

#[tokio::test]
async fn missing_runners_make_the_run_partial() {
    let c = TestCenter::sqlite().await;
    let id = "half";
    c.create(id, summaries::TEST, 2).await;
    let s0 = summaries::for_run(0, id);
    put_summary(&c, id, 0, &s0).await;
    done(&c, id, 0, "completed").await;
    let info = done(&c, id, 1, "failed").await;
    assert_eq!(info["status"], "partial");
    assert_eq!(info["requests"], s0.metrics.http_reqs.count);
    let detail = c.run(id).await;
    assert_eq!(detail["summary"]["missing_segments"], json!(["1/2"]));
    assert_eq!(detail["summary"]["segment"], "partial/2");
    assert_eq!(detail["runner_states"][1]["state"], "failed");
    assert_eq!(detail["runner_states"][1]["message"], "m");
}

#[tokio::test]
async fn a_run_without_any_summary_fails() {
    let c = TestCenter::sqlite().await;
    let id = "none";
    c.create(id, summaries::TEST, 2).await;
    done(&c, id, 0, "failed").await;
    let info = done(&c, id, 1, "failed").await;
    assert_eq!(info["status"], "failed");
    assert_eq!(info["requests"], Value::Null);
    assert_eq!(c.run(id).await["summary"], Value::Null);
}

#[tokio::test]
async fn a_completion_without_a_summary_counts_as_missing() {
    let c = TestCenter::sqlite().await;
    let id = "nosum";
    c.create(id, summaries::TEST, 2).await;
    put_summary(&c, id, 1, &summaries::for_run(1, id)).await;
    done(&c, id, 1, "completed").await;
    let info = done(&c, id, 0, "completed").await;
    assert_eq!(info["status"], "partial");
    let detail = c.run(id).await;
    assert_eq!(detail["summary"]["missing_segments"], json!(["0/2"]));
    assert_eq!(detail["runner_states"][0]["state"], "completed");
    assert!(detail["runner_states"][0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("without sending its summary")));
}

#[tokio::test]
async fn interrupted_and_aborted_runners_decide_the_status() {
    let c = TestCenter::sqlite().await;
    for (status, want) in [("interrupted", "interrupted"), ("aborted", "aborted")] {
        let id = format!("stop-{status}");
        c.create(&id, summaries::TEST, 2).await;
        let mut s0 = summaries::json(&summaries::for_run(0, &id));
        s0["status"] = status.into();
        s0["stop_reason"] = "stopped".into();
        let r = c.put(&summary_path(&id, 0), &s0).await;
        assert_eq!(r.status, 200, "{}", r.text());
        put_summary(&c, &id, 1, &summaries::for_run(1, &id)).await;
        done(&c, &id, 0, "completed").await;
        assert_eq!(done(&c, &id, 1, "completed").await["status"], want);
    }
}

#[tokio::test]
async fn finishing_by_hand_merges_what_arrived() {
    let c = TestCenter::sqlite().await;
    let id = "byhand";
    c.create(id, summaries::TEST, 2).await;
    let (s0, s1) = (summaries::for_run(0, id), summaries::for_run(1, id));
    put_summary(&c, id, 0, &s0).await;
    done(&c, id, 0, "completed").await;
    // Runner 1 sent its summary but no done signal: it counts as missing.
    put_summary(&c, id, 1, &s1).await;
    let r = c
        .post(
            &format!("/api/runs/{id}/finish"),
            &json!({"reason": "operator stop"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let info = r.json();
    assert_eq!(info["status"], "partial");
    assert_eq!(info["requests"], s0.metrics.http_reqs.count);
    let detail = c.run(id).await;
    assert_eq!(detail["finish_reason"], "operator stop");
    assert_eq!(detail["summary"]["missing_segments"], json!(["1/2"]));
    assert_exact_merge(&detail["summary"], std::slice::from_ref(&s0));
    // Finishing again changes nothing; late reports are refused.
    let again = c
        .post(
            &format!("/api/runs/{id}/finish"),
            &json!({"reason": "twice"}),
        )
        .await;
    assert_eq!(again.json(), info);
    c.post(&done_path(id, 1), &json!({"outcome": "completed"}))
        .await
        .assert_error(409, "conflict");
    let mut other = summaries::json(&s1);
    other["duration_s"] = json!(1.5);
    c.put(&summary_path(id, 1), &other)
        .await
        .assert_error(409, "conflict");
    let mut late = s1.timeline[0].clone();
    late.t = 1000;
    c.post(&points_path(id, 1), &json!({ "points": [late] }))
        .await
        .assert_error(409, "conflict");
    // What was stored before the finish is still acknowledged as it was.
    put_summary(&c, id, 1, &s1).await;
    assert_eq!(send_points(&c, id, 1, &s1.timeline).await, 0);
    assert_eq!(c.run(id).await, detail);
}

#[tokio::test]
async fn conflicting_reports_are_409_and_change_nothing() {
    let c = TestCenter::sqlite().await;
    let id = "conflict";
    c.create(id, summaries::TEST, 2).await;
    let s0 = summaries::for_run(0, id);
    put_summary(&c, id, 0, &s0).await;
    let before = c.run(id).await;
    let mut other = summaries::json(&s0);
    other["metrics"]["http_reqs"]["count"] = json!(1);
    c.put(&summary_path(id, 0), &other)
        .await
        .assert_error(409, "conflict");
    done(&c, id, 1, "failed").await;
    c.post(&done_path(id, 1), &json!({"outcome": "completed"}))
        .await
        .assert_error(409, "conflict");
    // A runner that signalled done cannot send a summary afterwards.
    let s1 = summaries::json(&summaries::for_run(1, id));
    c.put(&summary_path(id, 1), &s1)
        .await
        .assert_error(409, "conflict");
    let after = c.run(id).await;
    assert_eq!(after["runner_states"][0], before["runner_states"][0]);
    assert_eq!(after["runner_states"][1]["state"], "failed");
    assert_eq!(after["status"], "running");
}

#[tokio::test]
async fn summaries_that_do_not_fit_the_run_are_400_and_change_nothing() {
    let c = TestCenter::sqlite().await;
    let id = "fit";
    c.create(id, summaries::TEST, 2).await;
    let good = summaries::json(&summaries::for_run(0, id));
    let mut cases = Vec::new();
    for (field, value) in [
        ("segment", json!("1/2")),
        ("segment", json!("0/3")),
        ("segments", json!(["0/2", "1/2"])),
        ("run", json!("another-run")),
        ("test", json!("another-test")),
        ("version", json!(2)),
        ("started", json!("not a time")),
    ] {
        let mut s = good.clone();
        s[field] = value;
        cases.push(s);
    }
    let mut bad_hdr = good.clone();
    bad_hdr["metrics"]["http_req_duration"]["hdr"] = "bm90IGFuIGhkcg==".into();
    cases.push(bad_hdr);
    let mut bad_point = good.clone();
    bad_point["timeline"][0]["hdr"]["http_req_duration"] = "!!".into();
    cases.push(bad_point);
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("metrics");
    cases.push(missing);
    for s in cases {
        c.put(&summary_path(id, 0), &s)
            .await
            .assert_error(400, "bad_request");
    }
    let mut bad = good["timeline"][0].clone();
    bad["hdr"]["http_req_service_duration"] = "garbage".into();
    c.post(
        &points_path(id, 0),
        &json!({ "points": [good["timeline"][1].clone(), bad] }),
    )
    .await
    .assert_error(400, "bad_request");
    c.post(&points_path(id, 0), &json!({ "points": [], "extra": 1 }))
        .await
        .assert_error(400, "bad_request");
    c.post(&done_path(id, 0), &json!({ "outcome": "maybe" }))
        .await
        .assert_error(400, "bad_request");
    let detail = c.run(id).await;
    assert_eq!(detail["runner_states"][0]["state"], "pending");
    assert!(
        c.timeline(id).await.is_empty(),
        "no point of a rejected batch is stored"
    );
}

#[tokio::test]
async fn runners_outside_the_run_are_404() {
    let c = TestCenter::sqlite().await;
    let id = "range";
    c.create(id, summaries::TEST, 2).await;
    let s = summaries::json(&summaries::for_run(0, id));
    c.post(&points_path(id, 2), &json!({ "points": [] }))
        .await
        .assert_error(404, "not_found");
    c.put(&summary_path(id, 5), &s)
        .await
        .assert_error(404, "not_found");
    c.post(&done_path(id, 2), &json!({ "outcome": "completed" }))
        .await
        .assert_error(404, "not_found");
    c.post(&points_path("ghost", 0), &json!({ "points": [] }))
        .await
        .assert_error(404, "not_found");
    c.send(
        Call::new("POST", &format!("/api/runs/{id}/runners/x/points"))
            .token(crate::support::TOKEN)
            .json(&json!({ "points": [] })),
    )
    .await
    .assert_error(400, "bad_request");
    assert_eq!(c.run(id).await["status"], "running");
}
