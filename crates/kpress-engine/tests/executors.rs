//! Each executor does what k6's does, with exact counts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kpress_engine::run::{Control, Phase, StopReason};
use kpress_engine::summary::Status;

use crate::support::{run_with, run_yaml, TestTarget};

fn yaml(url: &str, scenarios: &str) -> String {
    format!("name: exec\ndefaults: {{ baseUrl: '{url}', timeout: 5s }}\nscenarios:\n{scenarios}")
}

#[test]
fn iteration_executors_run_exactly_their_budget() {
    let target = TestTarget::start(false);
    let cases = [
        ("    executor: per-vu-iterations\n    vus: 3\n    iterations: 7\n", 21),
        ("    executor: shared-iterations\n    vus: 4\n    iterations: 101\n", 101),
        ("    executor: ramping-arrival-rate\n    startRate: 0\n    stages: [{ duration: 1s, target: 100 }, { duration: 1s, target: 100 }]\n    preAllocatedVUs: 5\n    maxVUs: 50\n", 150),
        ("    executor: constant-arrival-rate\n    rate: 60\n    timeUnit: 500ms\n    duration: 1s\n    preAllocatedVUs: 5\n    maxVUs: 50\n", 120),
    ];
    for (executor, expected) in cases {
        for threads in [1, 3] {
            let body = format!("  s:\n{executor}    requests: [GET /, 'POST /?size=10']\n");
            let (summary, _) = run_yaml(&yaml(&target.url, &body), threads);
            let m = &summary.metrics;
            assert_eq!(
                m.iterations.count, expected,
                "{executor} on {threads} threads"
            );
            assert_eq!(
                m.http_reqs.count,
                2 * expected,
                "{executor}: two requests per iteration"
            );
            assert_eq!(
                m.http_req_failed.fails, 0,
                "{executor}: {:?}",
                summary.errors
            );
        }
    }
}

#[test]
fn closed_model_follows_the_vu_count() {
    let target = TestTarget::start(false);
    let body = "  ramp:\n    executor: ramping-vus\n    startVUs: 0\n    stages: [{ duration: 1s, target: 8 }, { duration: 1s, target: 8 }, { duration: 1s, target: 0 }]\n    gracefulRampDown: 1s\n    requests: ['GET /?delay=20ms']\n  flat:\n    executor: constant-vus\n    vus: 2\n    duration: 1s\n    startTime: 1s\n    requests: ['GET /?delay=20ms']\n";
    let (summary, outcome) = run_yaml(&yaml(&target.url, body), 2);
    assert_eq!(
        summary.metrics.vus.max, 10,
        "8 ramping + 2 constant at the peak"
    );
    assert_eq!(summary.metrics.http_req_failed.fails, 0);
    // Requests are counted by when they complete, so unlike a VU gauge sampled at the
    // turn of the second, they do not depend on how late a busy machine samples.
    let requests = |t: u64| {
        outcome
            .timeline
            .iter()
            .find(|p| p.t == t)
            .map(|p| p.requests)
            .unwrap_or(0)
    };
    assert!(
        requests(0) < requests(1),
        "second 0 ramps up (about 4 VUs on average), second 1 holds 8 + 2: {} then {}",
        requests(0),
        requests(1)
    );
    assert_eq!(outcome.timeline.last().map(|p| p.vus), Some(0));
    // constant-vus with startTime 1s sends nothing in second 0.
    let first = &outcome.timeline[0];
    assert!(
        first.requests < 8 * 50,
        "second 0 only has the ramp: {}",
        first.requests
    );
}

#[test]
fn scenarios_start_at_their_start_time() {
    let target = TestTarget::start(false);
    let body = "  early:\n    executor: per-vu-iterations\n    vus: 1\n    iterations: 5\n    requests: [GET /]\n  late:\n    executor: per-vu-iterations\n    vus: 1\n    iterations: 7\n    startTime: 1200ms\n    requests: [GET /]\n";
    let (summary, outcome) = run_yaml(&yaml(&target.url, body), 1);
    assert_eq!(summary.metrics.http_reqs.count, 12);
    let by_second: Vec<(u64, u64)> = outcome
        .timeline
        .iter()
        .map(|p| (p.t, p.requests))
        .filter(|(_, r)| *r > 0)
        .collect();
    assert_eq!(by_second, vec![(0, 5), (1, 7)]);
}

#[test]
fn a_graceful_stop_ends_early_and_marks_the_summary() {
    let target = TestTarget::start(false);
    let body = "  s:\n    executor: constant-vus\n    vus: 4\n    duration: 30s\n    requests: ['GET /?delay=5ms']\n";
    let control = Arc::new(Control::default());
    let stopper = control.clone();
    let started = Instant::now();
    let stop = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        stopper.stop(Phase::Stopping, StopReason::Interrupted("test".into()));
    });
    let (summary, _) = run_with(&yaml(&target.url, body), 2, control);
    let _ = stop.join();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped after {:?}",
        started.elapsed()
    );
    assert_eq!(summary.status, Status::Interrupted);
    assert_eq!(summary.exit_code(), 1);
    assert!(summary.metrics.http_reqs.count > 10);
    assert_eq!(
        summary.metrics.http_req_failed.fails, 0,
        "in-flight requests finished: {:?}",
        summary.errors
    );
}

#[test]
fn abort_on_fail_stops_the_run() {
    // Nothing listens on port 9 of loopback: every request fails at once.
    let body = "  s:\n    executor: constant-vus\n    vus: 2\n    duration: 20s\n    requests: [GET /]\nthresholds:\n  http_req_failed: [{ threshold: 'rate<0.5', abortOnFail: true, delayAbortEval: 1s }]\n";
    let started = Instant::now();
    let (summary, _) = run_yaml(&yaml("http://127.0.0.1:9", body), 1);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "aborted after {:?}",
        started.elapsed()
    );
    assert_eq!(summary.status, Status::Aborted);
    assert_eq!(summary.exit_code(), 99);
    assert!(summary
        .stop_reason
        .as_deref()
        .unwrap_or_default()
        .contains("http_req_failed rate<0.5"));
    assert!(summary.errors.get("connect refused").copied().unwrap_or(0) > 0);
}

#[test]
fn an_arrival_rate_scenario_lasts_its_duration_and_lets_its_last_iterations_finish() {
    // k6 runs an arrival-rate scenario for its whole duration and only then cuts what
    // is still in flight after `gracefulStop`: with `gracefulStop: 0s` the iterations
    // of the last slots, which finish long before the duration ends, still count.
    let target = TestTarget::start(false);
    let body = "  s:\n    executor: constant-arrival-rate\n    rate: 4\n    timeUnit: 1s\n    duration: 2s\n    gracefulStop: 0s\n    preAllocatedVUs: 2\n    requests: ['GET /?delay=50ms']\n";
    for threads in [1, 3] {
        let (summary, _) = run_yaml(&yaml(&target.url, body), threads);
        assert_eq!(
            summary.metrics.iterations.count, 8,
            "on {threads} threads: {:?}",
            summary.errors
        );
        assert_eq!(summary.metrics.http_req_failed.fails, 0);
        assert!(
            summary.duration_s >= 2.0,
            "ran {} s of a 2 s scenario",
            summary.duration_s
        );
    }
}

#[test]
fn a_tight_pool_waits_a_tick_for_a_vu_instead_of_dropping() {
    // Slots are dispatched once per 1 ms timer tick. Two VUs of a fast server can run
    // more than one iteration per tick each, as they would under k6's timers.
    let target = TestTarget::start(false);
    let body = "  s:\n    executor: constant-arrival-rate\n    rate: 4000\n    timeUnit: 1s\n    duration: 2s\n    preAllocatedVUs: 2\n    maxVUs: 2\n    requests: [GET /]\n";
    let (summary, _) = run_yaml(&yaml(&target.url, body), 1);
    let m = &summary.metrics;
    assert_eq!(m.iterations.count + m.dropped_iterations.count, 8000);
    // One iteration per VU per tick could never run more than 2 × 2,000 of the 8,000:
    // it would drop at least half. Each VU needs half a millisecond per iteration here,
    // and a busy machine (the other tests run beside this one) may drop some.
    assert!(
        m.dropped_iterations.count < 3200,
        "dropped {} of 8000: the VUs took one iteration per tick",
        m.dropped_iterations.count
    );
}

#[test]
fn a_rate_beyond_the_generator_ends_on_time_and_counts_every_slot() {
    // 100 million arrivals in a second: far beyond one thread. The dispatcher must not
    // starve its VUs nor run past the scenario's end, and what never starts is dropped.
    let target = TestTarget::start(false);
    let body = "  s:\n    executor: constant-arrival-rate\n    rate: 100000000\n    duration: 1s\n    gracefulStop: 0s\n    preAllocatedVUs: 2\n    requests: [GET /]\n";
    let started = Instant::now();
    let (summary, _) = run_yaml(&yaml(&target.url, body), 1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let m = &summary.metrics;
    assert_eq!(m.iterations.count + m.dropped_iterations.count, 100_000_000);
    // A dispatcher that never yields lets its VUs run one iteration in all.
    assert!(
        m.iterations.count > 10,
        "the VUs ran: {}",
        m.iterations.count
    );
}
