//! Ctrl-C: the first stops gracefully and still writes a summary marked interrupted;
//! a second stops at once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{code, read_json, text, wait_with_limit, TestTarget, Workdir};

fn start(scenario: &std::path::Path, summary: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_kpress"))
        .arg("run")
        .arg(scenario)
        .arg("--summary-out")
        .arg(summary)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kpress")
}

fn interrupt(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn first_ctrl_c_stops_gracefully_with_a_summary() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let file = w.write(
        "s.yaml",
        &format!("name: sig\ndefaults: {{ baseUrl: '{}' }}\nscenarios:\n  s:\n    executor: constant-vus\n    vus: 3\n    duration: 60s\n    requests: ['GET /?delay=5ms']\n", target.url),
    );
    let out_path = w.path("summary.json");
    let child = start(&file, &out_path);
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    interrupt(child.id());
    let out = wait_with_limit(child, Duration::from_secs(20));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(code(&out), 1, "{}", text(&out));
    let summary = read_json(&out_path);
    assert_eq!(summary["status"], "interrupted");
    assert!(
        summary["metrics"]["http_reqs"]["count"]
            .as_u64()
            .unwrap_or(0)
            > 50,
        "{summary}"
    );
    assert_eq!(
        summary["metrics"]["http_req_failed"]["fails"], 0,
        "in-flight requests completed"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("INTERRUPTED"));
}

#[test]
fn second_ctrl_c_stops_at_once() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let file = w.write(
        "s.yaml",
        &format!("name: sig\ndefaults: {{ baseUrl: '{}', timeout: 60s }}\nscenarios:\n  s:\n    executor: constant-vus\n    vus: 2\n    duration: 60s\n    gracefulStop: 60s\n    requests: ['GET /?delay=30s']\n", target.url),
    );
    let out_path = w.path("summary.json");
    let child = start(&file, &out_path);
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(1500));
    interrupt(pid);
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    interrupt(pid);
    let out = wait_with_limit(child, Duration::from_secs(20));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert_eq!(read_json(&out_path)["status"], "interrupted");
}
