//! `/metrics`: token unless public, runs by status, and a running run's totals and
//! latest complete second, labelled with its app, test and run.

use kpress_engine::metrics::histogram;
use serde_json::json;

use crate::support::{summaries, Call, TestCenter, TOKEN};

/// The value of the sample line `series` (name and labels, exactly), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_need_the_token_unless_public() {
    let c = TestCenter::sqlite().await;
    c.send(Call::new("GET", "/metrics"))
        .await
        .assert_error(401, "unauthorized");
    let r = c.get("/metrics").await;
    assert_eq!(r.status, 200);
    let r = c.send(Call::new("GET", "/metrics").cookie(TOKEN)).await;
    assert_eq!(r.status, 200);
    let open = TestCenter::sqlite_with(|config| config.metrics_public = true).await;
    let r = open.send(Call::new("GET", "/metrics")).await;
    assert_eq!(r.status, 200);
    assert!(r
        .text()
        .contains("kpress_center_runs{status=\"running\"} 0"));
}

#[tokio::test]
async fn running_runs_are_labelled_and_counted() {
    let c = TestCenter::sqlite().await;
    let id = "live";
    c.create(id, summaries::TEST, 2).await;
    c.create("other", summaries::TEST, 1).await;
    let r = c
        .post("/api/runs/other/finish", &json!({"reason": "x"}))
        .await;
    assert_eq!(r.json()["status"], "failed");
    let (s0, s1) = (summaries::for_run(0, id), summaries::for_run(1, id));
    // Runner 0 is a second ahead of runner 1: the latest complete second is the
    // last one runner 1 has sent.
    let behind = s1.timeline.len() - 1;
    for (i, points) in [(0, &s0.timeline[..]), (1, &s1.timeline[..behind])] {
        let r = c
            .post(
                &format!("/api/runs/{id}/runners/{i}/points"),
                &json!({ "points": points }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = c.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    assert_eq!(
        sample(&text, "kpress_center_runs{status=\"running\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "kpress_center_runs{status=\"failed\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "kpress_center_runs{status=\"passed\"}"),
        Some(0.0)
    );
    let labels = format!(
        "app=\"tenc-app=press-client-148-online\",test=\"{}\",run=\"{id}\"",
        summaries::TEST
    );
    let requests: u64 = s0.timeline.iter().map(|p| p.requests).sum::<u64>()
        + s1.timeline[..behind]
            .iter()
            .map(|p| p.requests)
            .sum::<u64>();
    let failed: u64 = s0.timeline.iter().map(|p| p.failed).sum::<u64>()
        + s1.timeline[..behind].iter().map(|p| p.failed).sum::<u64>();
    assert_eq!(
        sample(&text, &format!("kpress_run_requests_total{{{labels}}}")),
        Some(requests as f64),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("kpress_run_failed_requests_total{{{labels}}}")
        ),
        Some(failed as f64)
    );
    let t = s1.timeline[behind - 1].t;
    let at_t: Vec<_> = s0
        .timeline
        .iter()
        .chain(&s1.timeline)
        .filter(|p| p.t == t)
        .collect();
    assert_eq!(at_t.len(), 2);
    let mut h = histogram::new_latency();
    for p in &at_t {
        histogram::add(
            &mut h,
            &histogram::decode(&p.hdr.http_req_duration).expect("hdr"),
        );
    }
    assert_eq!(
        sample(&text, &format!("kpress_run_vus{{{labels}}}")),
        Some(at_t.iter().map(|p| p.vus).sum::<u64>() as f64)
    );
    for (q, p) in [("0.5", 50.0), ("0.95", 95.0), ("0.99", 99.0)] {
        assert_eq!(
            sample(
                &text,
                &format!("kpress_run_http_req_duration_seconds{{{labels},quantile=\"{q}\"}}")
            ),
            Some(histogram::percentile_ms(&h, p) / 1000.0),
            "quantile {q}"
        );
    }
    assert!(
        !text.contains("run=\"other\""),
        "finished runs are not live"
    );
    for family in [
        "kpress_center_runs gauge",
        "kpress_run_requests_total counter",
        "kpress_run_failed_requests_total counter",
        "kpress_run_vus gauge",
        "kpress_run_http_req_duration_seconds gauge",
    ] {
        assert!(text.contains(&format!("# TYPE {family}\n")), "{family}");
    }
    // Once finished, the run leaves the live series.
    c.post(&format!("/api/runs/{id}/finish"), &json!({"reason": "x"}))
        .await;
    let text = c.get("/metrics").await.text();
    assert!(!text.contains(&format!("run=\"{id}\"")), "{text}");
    assert_eq!(
        sample(&text, "kpress_center_runs{status=\"running\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "kpress_center_runs{status=\"failed\"}"),
        Some(2.0)
    );
}
