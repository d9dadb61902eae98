//! Runs scenarios in-process against a built-in target on its own runtime.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use kpress_engine::run::{self, Control, RunOptions, RunOutcome};
use kpress_engine::scenario;
use kpress_engine::segment::Segment;
use kpress_engine::summary::Summary;
use kpress_target::{Target, TargetOptions};

pub struct TestTarget {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestTarget {
    pub fn start(tls: bool) -> TestTarget {
        let (url_tx, url_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let target =
                    Target::start("127.0.0.1:0".parse().expect("addr"), TargetOptions { tls })
                        .await
                        .expect("target");
                url_tx.send(target.url()).expect("url");
                let _ = stop_rx.await;
                target.shutdown().await;
            });
        });
        let url = url_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("target url");
        TestTarget {
            url,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Asks the (plain HTTP) target to stall for `ms` milliseconds, from any thread.
    pub fn stall(&self, ms: u64) {
        let addr = self.url.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).expect("connect for stall");
        let req = format!("POST /__kpress/stall?for={ms}ms HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).expect("send stall");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 2"), "stall refused: {out}");
    }
}

impl Drop for TestTarget {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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
