//! Runs scenarios in-process against a built-in target on its own runtime.

use std::sync::Arc;
use std::time::Duration;

use kpress_engine::run::{self, Control, RunOptions, RunOutcome};
use kpress_engine::scenario;
use kpress_engine::segment::Segment;
use kpress_engine::summary::Summary;
use kpress_target::{BackgroundTarget, TargetOptions};

pub struct TestTarget {
    pub url: String,
    target: BackgroundTarget,
}

impl TestTarget {
    pub fn start(tls: bool) -> TestTarget {
        let target =
            BackgroundTarget::start("127.0.0.1:0".parse().expect("addr"), TargetOptions { tls })
                .expect("target starts");
        TestTarget {
            url: target.url().to_string(),
            target,
        }
    }

    /// The target's self-signed certificate as PEM (TLS targets only).
    pub fn certificate_pem(&self) -> String {
        use base64::Engine;
        let der = self.target.certificate_der().unwrap_or_default();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }

    /// Stalls the target for `ms` milliseconds, from any thread.
    pub fn stall(&self, ms: u64) {
        self.target.stall(Duration::from_millis(ms));
    }
}

/// Runs `yaml` in this process with `threads` worker threads.
pub fn run_yaml(yaml: &str, threads: u64) -> (Summary, RunOutcome) {
    run_with(yaml, threads, Arc::new(Control::default()))
}

pub fn run_with(yaml: &str, threads: u64, control: Arc<Control>) -> (Summary, RunOutcome) {
    let spec = Arc::new(scenario::parse("test.yaml", yaml, &[]).unwrap_or_else(|e| panic!("{e}")));
    let mut options = RunOptions::new(Segment::WHOLE);
    options.threads = threads;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = rt
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(60),
                run::execute(spec.clone(), options, control, |_| {}),
            )
            .await
        })
        .expect("run finishes in time")
        .expect("run succeeds");
    let summary = Summary::from_run(
        &spec.name,
        "test",
        Segment::WHOLE,
        &spec.thresholds,
        &outcome,
    );
    (summary, outcome)
}
