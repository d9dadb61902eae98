//! Latency is measured from the intended send time, and nothing is silently lost.

use std::time::Duration;

use crate::support::{run_yaml, TestTarget};

#[test]
fn a_stall_shows_in_corrected_latency_but_not_in_unstalled_service_time() {
    let target = TestTarget::start(false);
    let yaml = format!(
        "name: stall\ndefaults: {{ baseUrl: '{}', timeout: 5s }}\nscenarios:\n  s:\n    executor: constant-arrival-rate\n    rate: 100\n    duration: 4s\n    preAllocatedVUs: 10\n    maxVUs: 300\n    requests: [GET /]\n",
        target.url
    );
    let stall = std::thread::scope(|scope| {
        let stall = scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(1500));
            target.stall(1000);
        });
        let result = run_yaml(&yaml, 2);
        let _ = stall.join();
        result
    });
    let (summary, outcome) = stall;
    let m = &summary.metrics;
    assert_eq!(m.http_reqs.count, 400, "every slot was sent");
    assert_eq!(m.dropped_iterations.count, 0);
    assert!(
        m.http_req_duration.p99 >= 500.0,
        "corrected p99 {} ms",
        m.http_req_duration.p99
    );
    // Seconds wholly before and after the stall: their requests were not stalled.
    for point in outcome.timeline.iter().filter(|p| p.t == 0 || p.t == 3) {
        assert!(
            point.requests > 50,
            "second {} has {} requests",
            point.t,
            point.requests
        );
        assert!(
            point.http_req_service_duration.p99 < 100.0,
            "second {}: service p99 {} ms",
            point.t,
            point.http_req_service_duration.p99
        );
    }
}

#[test]
fn iterations_without_a_free_vu_are_counted_as_dropped() {
    let target = TestTarget::start(false);
    let yaml = format!(
        "name: dropped\ndefaults: {{ baseUrl: '{}', timeout: 5s }}\nscenarios:\n  s:\n    executor: constant-arrival-rate\n    rate: 50\n    duration: 3s\n    preAllocatedVUs: 2\n    maxVUs: 2\n    requests: [GET /]\n",
        target.url
    );
    let (summary, _) = std::thread::scope(|scope| {
        let stall = scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(1000));
            target.stall(1000);
        });
        let result = run_yaml(&yaml, 1);
        let _ = stall.join();
        result
    });
    let m = &summary.metrics;
    assert!(
        m.dropped_iterations.count >= 30,
        "dropped {}",
        m.dropped_iterations.count
    );
    assert_eq!(
        m.iterations.count + m.dropped_iterations.count,
        150,
        "every slot is either run or counted as dropped"
    );
    assert_eq!(m.vus_max.max, 2);
}
