//! Real runner summaries: the engine runs a two-runner test against the built-in
//! target, runner 0 with one VU against fast responses (some failing), runner 1 with
//! many VUs against slow ones, so their percentiles differ and only an exact merge
//! gets the whole right. Closed-model VUs: each waits for its response, so the
//! counts depend on the target, not on the generator's timing.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kpress_engine::run::{self, Control, RunOptions};
use kpress_engine::scenario;
use kpress_engine::segment::Segment;
use kpress_engine::summary::Summary;
use kpress_target::{BackgroundTarget, TargetOptions};

/// The test name the summaries carry.
pub const TEST: &str = "checkout";
/// Runner 1's responses take this long; runner 0's about 2 ms.
pub const SLOW_MS: u64 = 80;
/// The run id the summaries are made with (tests re-home them with [`for_run`]).
const RUN: &str = "fixture";

/// The scenario of one runner: `vus` VUs in all (this runner gets half).
fn scenario(url: &str, query: &str, vus: u64) -> String {
    format!(
        r#"
name: {TEST}
defaults:
  baseUrl: {url}
  timeout: 5s
scenarios:
  steady:
    executor: constant-vus
    vus: {vus}
    duration: 3s
    requests:
      - GET /?{query}
thresholds:
  http_req_duration: ["p(99)<2000ms"]
  http_req_failed: ["rate<0.5"]
"#
    )
}

fn run_segment(yaml: &str, segment: Segment) -> Summary {
    let spec = Arc::new(scenario::parse("test.yaml", yaml, &[]).unwrap_or_else(|e| panic!("{e}")));
    let mut options = RunOptions::new(segment);
    options.threads = 1;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(60),
                run::execute(spec.clone(), options, Arc::new(Control::default()), |_| {}),
            )
            .await
        })
        .expect("the run finishes in time")
        .expect("the run succeeds");
    Summary::from_run(&spec.name, RUN, segment, &spec.thresholds, &outcome)
}

/// Runner 0's and runner 1's summaries of a 2-runner run (made once per test binary).
pub fn two_runners() -> &'static [Summary; 2] {
    static SUMMARIES: OnceLock<[Summary; 2]> = OnceLock::new();
    SUMMARIES.get_or_init(|| {
        // Own threads: the engine wants its own runtime, and tests are async already.
        std::thread::spawn(|| {
            let target = BackgroundTarget::start(
                "127.0.0.1:0".parse().expect("addr"),
                TargetOptions::default(),
            )
            .expect("the target starts");
            let url = target.url().to_string();
            let fast = scenario(&url, "delay=2ms&status=200:80,503:20", 2);
            let slow = scenario(&url, &format!("delay={SLOW_MS}ms"), 40);
            let first =
                std::thread::spawn(move || run_segment(&fast, Segment { index: 0, count: 2 }));
            let second = run_segment(&slow, Segment { index: 1, count: 2 });
            let first = first.join().expect("runner 0");
            [first, second]
        })
        .join()
        .expect("the runners run")
    })
}

/// Runner `index`'s summary, as part of run `id`.
pub fn for_run(index: usize, id: &str) -> Summary {
    let mut s = two_runners()[index].clone();
    s.run = id.to_string();
    s
}

/// A summary as a JSON value.
pub fn json(s: &Summary) -> serde_json::Value {
    serde_json::to_value(s).expect("summary JSON")
}
