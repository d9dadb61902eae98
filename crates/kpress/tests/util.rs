//! Shared helpers: a built-in target on its own thread, scenario files in a temp dir,
//! and the kpress binary run with a time limit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kpress_target::{BackgroundTarget, TargetOptions};

/// A kpress target serving on 127.0.0.1 from a background thread.
pub struct TestTarget {
    pub url: String,
    _target: BackgroundTarget,
}

impl TestTarget {
    pub fn start() -> TestTarget {
        let target = BackgroundTarget::start(
            "127.0.0.1:0".parse().expect("addr"),
            TargetOptions::default(),
        )
        .expect("target starts");
        TestTarget {
            url: target.url().to_string(),
            _target: target,
        }
    }
}

/// A temporary directory holding the files of one test.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write file");
        p
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Runs `kpress ARGS` and returns its output; kills it after `limit`.
pub fn kpress(args: &[&str], limit: Duration) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_kpress"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kpress");
    wait_with_limit(child, limit)
}

pub fn wait_with_limit(child: std::process::Child, limit: Duration) -> Output {
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let started = Instant::now();
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for kpress"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &id.to_string()]).status();
            // Killed, the process closes its pipes: what it printed comes through.
            let printed = rx
                .recv_timeout(Duration::from_secs(10))
                .ok()
                .and_then(Result::ok)
                .map(|out| text(&out))
                .unwrap_or_default();
            panic!(
                "kpress did not finish within {limit:?} (ran {:?}); it printed:\n{printed}",
                started.elapsed()
            );
        }
    }
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn text(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("summary is JSON")
}

/// Validates `value` against the committed summary schema.
pub fn assert_summary_schema(value: &serde_json::Value) {
    let schema_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../kpress-engine/schema/summary.schema.json");
    let schema: serde_json::Value = read_json(&schema_path);
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "summary does not match its schema: {errors:#?}"
    );
}
