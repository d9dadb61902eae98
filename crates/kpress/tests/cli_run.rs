//! `kpress run`, `validate` and `merge` end to end: real processes, real load on
//! loopback against the built-in target, the summary JSON and the exit codes.

use std::time::Duration;

use crate::util::{assert_summary_schema, code, kpress, read_json, text, TestTarget, Workdir};

const LIMIT: Duration = Duration::from_secs(60);

fn scenario(url: &str, body: &str, thresholds: &str) -> String {
    format!("name: cli-test\ndefaults:\n  baseUrl: {url}\n  timeout: 2s\nscenarios:\n{body}thresholds:\n{thresholds}")
}

const SHARED_1000: &str = "  shared:\n    executor: shared-iterations\n    vus: 8\n    iterations: 1000\n    requests:\n      - GET /\n";

#[test]
fn run_writes_a_summary_that_matches_the_schema_and_passes() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let file = w.write(
        "s.yaml",
        &scenario(
            &target.url,
            SHARED_1000,
            "  http_req_failed: ['rate<0.01']\n  http_reqs: ['count==1000']\n",
        ),
    );
    let out_path = w.path("summary.json");
    let out = kpress(
        &[
            "run",
            file.to_str().unwrap_or_default(),
            "--summary-out",
            out_path.to_str().unwrap_or_default(),
        ],
        LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let summary = read_json(&out_path);
    assert_summary_schema(&summary);
    assert_eq!(summary["metrics"]["http_reqs"]["count"], 1000);
    assert_eq!(summary["metrics"]["iterations"]["count"], 1000);
    assert_eq!(summary["metrics"]["http_req_failed"]["fails"], 0);
    assert_eq!(summary["status"], "passed");
    assert_eq!(summary["thresholds"]["http_reqs"][0]["ok"], true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("✓ http_reqs count==1000"), "{stdout}");
}

#[test]
fn crossed_thresholds_exit_99_and_show_a_cross() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let body = "  slow:\n    executor: per-vu-iterations\n    vus: 2\n    iterations: 5\n    requests:\n      - GET /?delay=20ms\n";
    let file = w.write(
        "s.yaml",
        &scenario(
            &target.url,
            body,
            "  http_req_duration: ['p(99)<5ms', 'max<10s']\n",
        ),
    );
    let out = kpress(&["run", file.to_str().unwrap_or_default()], LIMIT);
    assert_eq!(code(&out), 99, "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("✗ http_req_duration p(99)<5ms"), "{stdout}");
    assert!(stdout.contains("✓ http_req_duration max<10s"), "{stdout}");
}

#[test]
fn invalid_scenarios_exit_2_naming_file_line_and_field() {
    let w = Workdir::new();
    let cases: &[(&str, &str)] = &[
        (
            "name: t\nscenarios:\n  a:\n    executor: constant-vus\n    vus: 1\n    duraton: 1s\n    requests: [GET http://127.0.0.1:9/]\n",
            "6:5: scenarios.a.duraton: unknown field `duraton`, did you mean `duration`?",
        ),
        (
            "name: t\nscenarios:\n  a:\n    executor: constant-arrival-rate\n    rate: 0\n    duration: 1s\n    preAllocatedVUs: 1\n    requests: [GET http://127.0.0.1:9/]\n",
            "5:5: scenarios.a.rate: must be greater than 0",
        ),
        (
            "name: t\nscenarios:\n  a:\n    executor: constant-vus\n    duration: 10x\n    requests: [GET http://127.0.0.1:9/]\n",
            "scenarios.a.duration: invalid duration `10x`",
        ),
        (
            "name: t\nscenarios:\n  a:\n    executor: constant-vus\n    duration: 1s\n    requests: [GET /]\n",
            "scenarios.a.requests.0.url: `/` is relative but `defaults.baseUrl` is not set",
        ),
        (
            "name: t\nscenarios:\n  a:\n    executor: constant-vus\n    duration: 1s\n    requests: [GET http://127.0.0.1:9/]\nthresholds:\n  http_req_duration: ['p(99)<<1']\n",
            "thresholds.http_req_duration.0",
        ),
        (
            "name: t\nscenarios:\n  a:\n    executor: ramping-vus\n    stages: []\n    requests: [GET http://127.0.0.1:9/]\n",
            "scenarios.a.stages: needs at least one stage",
        ),
        ("name: [unclosed\n", "s.yaml:"),
    ];
    for (yaml, needle) in cases {
        let file = w.write("s.yaml", yaml);
        for command in ["run", "validate"] {
            let out = kpress(&[command, file.to_str().unwrap_or_default()], LIMIT);
            assert_eq!(code(&out), 2, "{command} {yaml}\n{}", text(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(needle),
                "{command}: `{needle}` not in:\n{stderr}"
            );
            assert!(stderr.contains("s.yaml"), "{stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
}

#[test]
fn an_unreachable_target_is_reported_not_rejected() {
    // Port 9 on loopback (discard) has no listener here: every connect is refused.
    let w = Workdir::new();
    let body = "  a:\n    executor: per-vu-iterations\n    vus: 1\n    iterations: 20\n    requests:\n      - GET /\n";
    let file = w.write(
        "s.yaml",
        &scenario(
            "http://127.0.0.1:9",
            body,
            "  http_req_failed: ['rate<0.5']\n",
        ),
    );
    let out_path = w.path("summary.json");
    let out = kpress(
        &[
            "run",
            file.to_str().unwrap_or_default(),
            "--summary-out",
            out_path.to_str().unwrap_or_default(),
        ],
        LIMIT,
    );
    assert_eq!(code(&out), 99, "{}", text(&out));
    let summary = read_json(&out_path);
    assert_eq!(summary["errors"]["connect refused"], 20);
    assert_eq!(summary["metrics"]["http_req_failed"]["rate"], 1.0);
}

#[test]
fn segments_add_up_and_merge_exactly() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let body = "  rate:\n    executor: constant-arrival-rate\n    rate: 300\n    duration: 2s\n    preAllocatedVUs: 8\n    requests:\n      - GET /?delay=1ms-3ms\n";
    let file = w.write(
        "s.yaml",
        &scenario(&target.url, body, "  http_reqs: ['count==600']\n"),
    );
    let start =
        humantime::format_rfc3339_millis(std::time::SystemTime::now() + Duration::from_secs(2))
            .to_string();
    let children: Vec<_> = (0..4)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_kpress"))
                .args([
                    "run",
                    file.to_str().unwrap_or_default(),
                    "--segment",
                    &format!("{i}/4"),
                    "--run-id",
                    "merge-test",
                ])
                .args(["--start-at", &start, "--progress", "none", "--summary-out"])
                .arg(w.path(&format!("{i}.json")))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn runner")
        })
        .collect();
    for child in children {
        let out = crate::util::wait_with_limit(child, LIMIT);
        assert_eq!(
            code(&out),
            0,
            "a segment run exits 0 (thresholds wait for the merge)\n{}",
            text(&out)
        );
    }
    let parts: Vec<serde_json::Value> = (0..4)
        .map(|i| read_json(&w.path(&format!("{i}.json"))))
        .collect();
    let counts: Vec<u64> = parts
        .iter()
        .map(|p| p["metrics"]["http_reqs"]["count"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        counts,
        vec![150, 150, 150, 150],
        "300/s for 2s splits exactly into 4 stripes"
    );
    for p in &parts {
        assert_summary_schema(p);
        assert_eq!(
            p["thresholds"]["http_reqs"][0]["ok"],
            serde_json::Value::Null,
            "not judged per runner"
        );
        assert_eq!(p["status"], "completed");
    }

    let merged_path = w.path("merged.json");
    let mut args: Vec<String> = vec!["merge".into()];
    args.extend((0..4).map(|i| w.path(&format!("{i}.json")).display().to_string()));
    args.extend(["--summary-out".into(), merged_path.display().to_string()]);
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = kpress(&arg_refs, LIMIT);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let merged = read_json(&merged_path);
    assert_summary_schema(&merged);
    assert_eq!(merged["segment"], "all/4");
    assert_eq!(merged["metrics"]["http_reqs"]["count"], 600);
    assert_eq!(merged["thresholds"]["http_reqs"][0]["ok"], true);
    assert!(merged["start_skew_ms"].as_f64().unwrap_or(f64::MAX) < 1000.0);

    // The merged percentiles are those of one histogram holding every sample.
    let mut all = kpress_engine::metrics::histogram::new_latency();
    for p in &parts {
        let h = kpress_engine::metrics::histogram::decode(
            p["metrics"]["http_req_duration"]["hdr"]
                .as_str()
                .unwrap_or_default(),
        )
        .expect("hdr decodes");
        assert!(!h.is_empty());
        kpress_engine::metrics::histogram::add(&mut all, &h);
    }
    assert_eq!(all.len(), 600);
    for (key, q) in [
        ("p50", 50.0),
        ("p90", 90.0),
        ("p99", 99.0),
        ("p99.9", 99.9),
        ("max", 100.0),
    ] {
        let want = kpress_engine::metrics::histogram::percentile_ms(&all, q);
        assert_eq!(
            merged["metrics"]["http_req_duration"][key].as_f64(),
            Some(want),
            "{key}"
        );
    }

    // A missing runner makes the merge partial and the exit code 1.
    let out = kpress(&["merge", &args[1], &args[2], "--runners", "4"], LIMIT);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("MISSING runner results: 2/4, 3/4"),
        "{}",
        text(&out)
    );
    // The same runner twice is refused.
    let out = kpress(&["merge", &args[1], &args[1]], LIMIT);
    assert_eq!(code(&out), 2, "{}", text(&out));
}

#[test]
fn workers_split_the_test_and_merge_it() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let file = w.write(
        "s.yaml",
        &scenario(&target.url, SHARED_1000, "  http_reqs: ['count==1000']\n"),
    );
    let out_path = w.path("merged.json");
    let out = kpress(
        &[
            "run",
            file.to_str().unwrap_or_default(),
            "--workers",
            "4",
            "--summary-out",
            out_path.to_str().unwrap_or_default(),
        ],
        LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let merged = read_json(&out_path);
    assert_summary_schema(&merged);
    assert_eq!(merged["segment"], "all/4");
    assert_eq!(merged["segments"].as_array().map(Vec::len), Some(4));
    assert_eq!(merged["metrics"]["http_reqs"]["count"], 1000);
    assert_eq!(merged["status"], "passed");
}

#[test]
fn merge_rejects_files_that_are_not_summaries() {
    let w = Workdir::new();
    let bad = w.write("bad.json", "{\n  \"version\": 1,\n  \"test\": 5\n}\n");
    let out = kpress(&["merge", bad.to_str().unwrap_or_default()], LIMIT);
    assert_eq!(code(&out), 2, "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.json:3:"), "{stderr}");
}

#[test]
fn local_target_runs_the_quickstart_with_nothing_else() {
    let quickstart =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart.yaml");
    let out = kpress(
        &[
            "run",
            quickstart.to_str().unwrap_or_default(),
            "--local-target",
            "--set",
            "scenarios.steady.duration=1s",
            "--progress",
            "none",
        ],
        LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("serving the built-in target at http://127.0.0.1:"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("http_reqs................... 400"),
        "200 iterations of 2 requests in 1 s:\n{stdout}"
    );
    assert!(stdout.contains("✓ http_req_failed rate<0.01"), "{stdout}");
}

#[test]
fn every_example_validates_and_splits_into_four_runners() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let out = kpress(
            &[
                "validate",
                path.to_str().unwrap_or_default(),
                "--runners",
                "4",
            ],
            LIMIT,
        );
        assert_eq!(code(&out), 0, "{}\n{}", path.display(), text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains(": valid"));
        seen += 1;
    }
    assert!(seen >= 3, "examples found: {seen}");
}
