//! `kpress center` as a process: it refuses to start without a token, and what it
//! acknowledged survives `kill -9` (then a re-send after the restart counts nothing
//! twice). The runner summaries are real: `kpress run --segment I/2` against the
//! built-in target.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{code, kpress, read_json, text, wait_with_limit, TestTarget, Workdir};

const TOKEN: &str = "durable-center-token";

/// A `kpress center` process, killed when dropped.
pub struct Center {
    child: Child,
    pub addr: SocketAddr,
}

pub const CENTER_TOKEN: &str = TOKEN;

impl Center {
    pub fn start(db: &str) -> Center {
        Center::start_with(db, &[])
    }

    /// A center with more flags (e.g. `--kubernetes --kubeconfig FILE`).
    pub fn start_with(db: &str, flags: &[&str]) -> Center {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kpress"))
            .args(["center", "--listen", "127.0.0.1:0", "--db", db])
            .args(flags)
            .env("KPRESS_CENTER_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kpress center");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("kpress center: listening on http://") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a.parse().expect("address"),
            Err(_) => {
                let _ = child.kill();
                panic!("kpress center did not say where it listens within 60 s");
            }
        };
        Center { child, addr }
    }

    /// One request over a fresh connection; returns the status and the JSON body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            self.addr,
            payload.len()
        );
        stream.write_all(head.as_bytes()).expect("send");
        stream.write_all(payload.as_bytes()).expect("send");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).expect("read");
        let text = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    pub fn ok(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> Value {
        let (status, answer) = self.call(method, path, token, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        answer
    }

    /// SIGKILL: no shutdown, no flush, nothing after the acknowledgements.
    fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Center {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn center_refuses_to_start_without_a_token() {
    let w = Workdir::new();
    let db = format!("sqlite://{}", w.path("x.db").display());
    for extra in [&[][..], &["--token", ""][..]] {
        let child = Command::new(env!("CARGO_BIN_EXE_kpress"))
            .args(["center", "--listen", "127.0.0.1:0", "--db", &db])
            .args(extra)
            .env_remove("KPRESS_CENTER_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let out = wait_with_limit(child, Duration::from_secs(30));
        assert_eq!(code(&out), 2, "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("KPRESS_CENTER_TOKEN"),
            "{}",
            text(&out)
        );
    }
    assert!(!w.path("x.db").exists(), "nothing was created");
}

/// Runner `i`'s real summary of a 2-runner run `id`.
fn runner_summary(w: &Workdir, target: &TestTarget, id: &str, i: u64) -> Value {
    let scenario = w.write(
        "s.yaml",
        &format!(
            "name: durable\ndefaults: {{ baseUrl: '{}' }}\nscenarios:\n  s:\n    executor: constant-vus\n    vus: 4\n    duration: 3s\n    requests: ['GET /?delay=5ms']\nthresholds:\n  http_req_duration: ['p(99)<5s']\n",
            target.url
        ),
    );
    let out_path = w.path(&format!("s{i}.json"));
    let out = kpress(
        &[
            "run",
            &scenario.to_string_lossy(),
            "--segment",
            &format!("{i}/2"),
            "--run-id",
            id,
            "--summary-out",
            &out_path.to_string_lossy(),
            "--progress",
            "none",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    read_json(&out_path)
}

fn sum(points: &[Value], key: &str) -> u64 {
    points.iter().map(|p| p[key].as_u64().unwrap_or(0)).sum()
}

#[test]
fn acknowledged_reports_survive_kill_9() {
    let w = Workdir::new();
    let target = TestTarget::start();
    let id = "durable-1";
    let s0 = runner_summary(&w, &target, id, 0);
    let s1 = runner_summary(&w, &target, id, 1);
    let (t0, t1) = (
        s0["timeline"].as_array().expect("timeline").clone(),
        s1["timeline"].as_array().expect("timeline").clone(),
    );
    assert!(t0.len() >= 3 && t1.len() >= 3);
    let db = format!("sqlite://{}", w.path("center.db").display());
    let path = |i: u64, what: &str| format!("/api/runs/{id}/runners/{i}/{what}");

    let center = Center::start(&db);
    let created = center.ok(
        "POST",
        "/api/runs",
        TOKEN,
        Some(&json!({"id": id, "test": "durable", "mode": "local", "runners": 2})),
    );
    let runner = created["runner_token"].as_str().expect("token").to_string();
    let got = center.ok(
        "POST",
        &path(0, "points"),
        &runner,
        Some(&json!({ "points": t0 })),
    );
    assert_eq!(got["accepted"], t0.len());
    center.ok("PUT", &path(0, "summary"), &runner, Some(&s0));
    let half = &t1[..t1.len() / 2];
    center.ok(
        "POST",
        &path(1, "points"),
        &runner,
        Some(&json!({ "points": half })),
    );
    center.kill_9();

    let center = Center::start(&db);
    let run = center.ok("GET", &format!("/api/runs/{id}"), TOKEN, None);
    assert_eq!(run["status"], "running");
    assert_eq!(
        run["started"], s0["started"],
        "runner 0's summary is stored"
    );
    assert_eq!(run["runner_states"][0]["state"], "running");
    assert_eq!(run["runner_states"][1]["state"], "running");
    let timeline = center.ok("GET", &format!("/api/runs/{id}/timeline"), TOKEN, None);
    let points = timeline["points"].as_array().expect("points").clone();
    assert_eq!(
        sum(&points, "requests"),
        sum(&t0, "requests") + sum(half, "requests")
    );

    // The runners re-send everything after the restart: nothing counts twice.
    let again = center.ok(
        "POST",
        &path(0, "points"),
        &runner,
        Some(&json!({ "points": t0 })),
    );
    assert_eq!(again["accepted"], 0);
    let (status, _) = center.call("PUT", &path(0, "summary"), &runner, Some(&s0));
    assert_eq!(status, 200);
    let rest = center.ok(
        "POST",
        &path(1, "points"),
        &runner,
        Some(&json!({ "points": t1 })),
    );
    assert_eq!(rest["accepted"], t1.len() - half.len());
    center.ok("PUT", &path(1, "summary"), &runner, Some(&s1));
    center.ok(
        "POST",
        &path(0, "done"),
        &runner,
        Some(&json!({"outcome": "completed"})),
    );
    let done = center.ok(
        "POST",
        &path(1, "done"),
        &runner,
        Some(&json!({"outcome": "completed"})),
    );
    assert_eq!(done["status"], "passed", "{done}");
    let total = s0["metrics"]["http_reqs"]["count"].as_u64().expect("count")
        + s1["metrics"]["http_reqs"]["count"].as_u64().expect("count");
    assert_eq!(done["requests"], total);
    let timeline = center.ok("GET", &format!("/api/runs/{id}/timeline"), TOKEN, None);
    let points = timeline["points"].as_array().expect("points").clone();
    assert_eq!(
        sum(&points, "requests"),
        sum(&t0, "requests") + sum(&t1, "requests")
    );

    // The finished run survives another kill too.
    center.kill_9();
    let center = Center::start(&db);
    let run = center.ok("GET", &format!("/api/runs/{id}"), TOKEN, None);
    assert_eq!(run["status"], "passed");
    assert_eq!(run["summary"]["metrics"]["http_reqs"]["count"], total);
    terminate_gracefully(center);
}

/// SIGTERM: the center stops by itself, exit code 0.
fn terminate_gracefully(mut center: Center) {
    let status = Command::new("kill")
        .args(["-TERM", &center.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = center.child.try_wait() {
            assert_eq!(status.code(), Some(0), "{status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("kpress center did not stop within 20 s of SIGTERM");
}

#[test]
fn the_db_file_is_created_in_wal_mode() {
    let w = Workdir::new();
    let file = w.path("fresh.db");
    let center = Center::start(&format!("sqlite://{}", file.display()));
    let (status, body) = center.call("GET", "/healthz", "", None);
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    assert!(file.exists());
    assert!(
        Path::new(&format!("{}-wal", file.display())).exists(),
        "SQLite writes ahead (WAL)"
    );
    let (status, body) = center.call("GET", "/api/runs", "wrong", None);
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
}

/// `kpress run ARGS` with the center's token in the environment.
fn run_reporting(args: &[&str]) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_kpress"))
        .args(args)
        .env("KPRESS_CENTER_TOKEN", TOKEN)
        .env_remove("KPRESS_RUNNER_TOKEN")
        .env_remove("KPRESS_CENTER_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kpress");
    wait_with_limit(child, Duration::from_secs(120))
}

#[test]
fn a_run_with_workers_reports_to_the_center_which_merges_it_exactly() {
    let w = Workdir::new();
    let target = TestTarget::start();
    let center = Center::start(&format!("sqlite://{}", w.path("c.db").to_string_lossy()));
    let scenario = w.write(
        "s.yaml",
        &format!(
            "name: reported\ndefaults: {{ baseUrl: '{}' }}\nscenarios:\n  s:\n    executor: constant-arrival-rate\n    rate: 200\n    duration: 3s\n    preAllocatedVUs: 20\n    requests: ['GET /?delay=1ms-20ms']\nthresholds:\n  http_req_duration: ['p(99)<5s']\n",
            target.url
        ),
    );
    let local = w.path("local.json");
    let out = run_reporting(&[
        "run",
        &scenario.to_string_lossy(),
        "--workers",
        "2",
        "--run-id",
        "reported-1",
        "--app",
        "tenc-app=press-client-148-online",
        "--center",
        &format!("http://{}", center.addr),
        "--summary-out",
        &local.to_string_lossy(),
        "--progress",
        "none",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("results go to"),
        "the run says where its results are: {}",
        text(&out)
    );
    let local = read_json(&local);
    let run = center.ok("GET", "/api/runs/reported-1", TOKEN, None);
    assert_eq!(run["status"], "passed", "{run}");
    assert_eq!(run["mode"], "local");
    assert_eq!(run["app"], "tenc-app=press-client-148-online");
    assert_eq!(run["runners"], 2);
    assert_eq!(run["runners_done"], 2);
    let merged = &run["summary"]["metrics"];
    assert_eq!(merged["http_reqs"]["count"], 600, "every slot, once");
    // The center merged the same runner summaries as the local merge: the same
    // histograms, so the same percentiles to the last digit.
    for metric in ["http_req_duration", "http_req_service_duration"] {
        for stat in ["p50", "p90", "p99", "p99.9", "max"] {
            assert_eq!(
                merged[metric][stat], local["metrics"][metric][stat],
                "{metric} {stat}"
            );
        }
    }
    let timeline = center.ok("GET", "/api/runs/reported-1/timeline", TOKEN, None);
    let points = timeline["points"].as_array().expect("points");
    assert_eq!(sum(points, "requests"), 600, "no second counted twice");
    // Both workers reported the first second; a worker's last, partial second may
    // fall on another second than the other's.
    assert_eq!(points[0]["runners"], 2, "{timeline}");
    assert!(
        points.iter().all(|p| p["runners"].as_u64() <= Some(2)),
        "{timeline}"
    );
}

#[test]
fn an_unreachable_center_does_not_stop_the_test() {
    let w = Workdir::new();
    let target = TestTarget::start();
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let scenario = w.write(
        "s.yaml",
        &format!(
            "name: alone\ndefaults: {{ baseUrl: '{}' }}\nscenarios:\n  s:\n    executor: shared-iterations\n    vus: 2\n    iterations: 20\n    requests: ['GET /']\n",
            target.url
        ),
    );
    let out = run_reporting(&[
        "run",
        &scenario.to_string_lossy(),
        "--center",
        &format!("http://127.0.0.1:{port}"),
        "--progress",
        "none",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("is unreachable"), "{all}");
    assert!(all.contains("running without the center"), "{all}");
    assert!(all.contains("20"), "the summary is printed: {all}");
}

/// Runs `kpress run` reporting to `center` as run `id`.
fn reported_run(w: &Workdir, target: &TestTarget, center: &Center, id: &str, delay: &str) {
    let scenario = w.write(
        &format!("{id}.yaml"),
        &format!(
            "name: ui-check\ndefaults: {{ baseUrl: '{}' }}\nscenarios:\n  s:\n    executor: constant-arrival-rate\n    rate: 100\n    duration: 3s\n    preAllocatedVUs: 10\n    requests: ['GET /?delay={delay}&status=200:95,503:5']\nthresholds:\n  http_req_duration: ['p(99)<5s']\n  http_req_failed: ['rate<0.5']\n",
            target.url
        ),
    );
    let out = run_reporting(&[
        "run",
        &scenario.to_string_lossy(),
        "--run-id",
        id,
        "--center",
        &format!("http://{}", center.addr),
        "--progress",
        "none",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
}

/// The web UI in a real headless Chromium (crates/kpress-center/tests/browser), on
/// runs that real runners reported. `.ci/run` installs Chromium and playwright-core.
#[test]
fn the_web_ui_shows_real_runs_in_chromium() {
    let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kpress-center/tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci` in {} (bash .ci/run does)",
        browser.display()
    );
    let w = Workdir::new();
    let target = TestTarget::start();
    // A center driving Deployments (in an API double), for a deployment-mode run's page.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let double = runtime
        .block_on(kube_double::ApiDouble::start())
        .expect("double");
    let kubeconfig = double.write_kubeconfig(w.dir.path()).expect("kubeconfig");
    let center = Center::start_with(
        &format!("sqlite://{}", w.path("ui.db").to_string_lossy()),
        &[
            "--kubernetes",
            "--kubeconfig",
            &kubeconfig.to_string_lossy(),
        ],
    );
    reported_run(&w, &target, &center, "ui-a", "2ms");
    reported_run(&w, &target, &center, "ui-b", "6ms");
    let registered = center.ok(
        "POST",
        "/api/runs",
        TOKEN,
        Some(&json!({
            "id": "ui-dep",
            "test": "quick",
            "mode": "deployment",
            "scenario": "name: quick\nscenarios:\n  s:\n    executor: shared-iterations\n    vus: 2\n    iterations: 4\n    requests: [GET http://127.0.0.1:9/]\n",
            "runners": 2,
            "deployment": {"namespace": "load", "create": false},
        })),
    );
    let runner_token = registered["runner_token"].as_str().expect("runner token");
    center.ok(
        "POST",
        "/api/runs/ui-dep/lease",
        runner_token,
        Some(&json!({"pod": "quick-pod-a", "process": "1"})),
    );
    let child = Command::new("node")
        .arg("ui.test.mjs")
        .current_dir(&browser)
        .env("KPRESS_CENTER_URL", format!("http://{}", center.addr))
        .env("KPRESS_CENTER_TOKEN", TOKEN)
        .env("RUN_A", "ui-a")
        .env("RUN_B", "ui-b")
        .env("RUN_DEPLOYMENT", "ui-dep")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is needed for the browser test");
    let out = wait_with_limit(child, Duration::from_secs(240));
    assert_eq!(code(&out), 0, "the browser test failed:\n{}", text(&out));
    assert!(
        text(&out).contains("ui-test: deployment load/")
            && text(&out).contains("1 of 2 shares leased"),
        "the deployment run's page was not checked:\n{}",
        text(&out)
    );
}
