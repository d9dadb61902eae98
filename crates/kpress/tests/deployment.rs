//! `--mode deployment` end to end: a real `kpress center --kubernetes` drives the run
//! in the API double, whose kubelet runs real `kpress run --lease` processes as the
//! Deployment's pods, loading a real target. The merged result equals the Job mode's;
//! a restarted runner never runs its share twice; a runner that never reports ends the
//! run partial; the Deployment is removed and the hooks run in every case.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::Value;

use crate::center::{Center, CENTER_TOKEN};
use crate::submit::{scenario, Cluster, LIMIT};
use crate::util::{code, read_json, text, wait_with_limit, TestTarget, Workdir};

/// A center driving Deployments in `cluster`, with more flags.
fn center(w: &Workdir, cluster: &Cluster, flags: &[&str]) -> Center {
    let db = format!("sqlite://{}", w.path("center.db").to_string_lossy());
    let kubeconfig = cluster.kubeconfig.to_string_lossy().into_owned();
    let mut all = vec!["--kubernetes", "--kubeconfig", kubeconfig.as_str()];
    all.extend_from_slice(flags);
    Center::start_with(&db, &all)
}

/// `kpress submit --mode deployment` of `file` as run `run`, not yet waited for.
fn submit(
    cluster: &Cluster,
    center: &Center,
    file: &Path,
    run: &str,
    runners: &str,
    out: &Path,
    extra: &[&str],
) -> std::process::Child {
    let url = format!("http://{}", center.addr);
    let mut cmd = cluster.submit(&[
        file.to_str().unwrap_or_default(),
        "--mode",
        "deployment",
        "--runners",
        runners,
        "--run-id",
        run,
        "--center",
        &url,
        "--progress",
        "plain",
        "--summary-out",
        out.to_str().unwrap_or_default(),
    ]);
    cmd.args(extra);
    cmd.env("KPRESS_CENTER_TOKEN", CENTER_TOKEN);
    cmd.spawn().expect("spawn kpress submit")
}

/// A clean-up hook that writes its input to `out` and its environment beside it.
fn hook(w: &Workdir, out: &Path) -> String {
    let script = w.write(
        "hook.sh",
        "#!/bin/sh\nset -e\ncat > \"$1\"\necho \"$KPRESS_RUN $KPRESS_NAMESPACE $KPRESS_DEPLOYMENT $KPRESS_STATUS\" > \"$1.env\"\n",
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    format!("registry=cmd:{} {}", script.display(), out.display())
}

/// The run's Deployments and pods still in the double.
fn leftovers(cluster: &Cluster, run: &str) -> usize {
    let selector = format!("kpress.io/run={run}");
    let deployments = cluster.runtime.block_on(async {
        let client = cluster.double.client().expect("client");
        let api: kube::Api<Deployment> = kube::Api::all(client);
        api.list(&kube::api::ListParams::default().labels(&selector))
            .await
            .map(|l| l.items.len())
            .unwrap_or(usize::MAX)
    });
    deployments + cluster.leftovers(run)
}

/// Waits (at most 60 s) until the center has set the run's start; returns it and the
/// Deployment's name.
fn wait_for_start(center: &Center, run: &str) -> (SystemTime, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, detail) = center.call("GET", &format!("/api/runs/{run}"), CENTER_TOKEN, None);
        if status == 404 {
            assert!(
                Instant::now() < deadline,
                "run {run} not registered within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        if let Some(at) = detail["deployment"]["start_at"].as_str() {
            let at = humantime::parse_rfc3339_weak(at).expect("an instant");
            let name = detail["deployment"]["name"]
                .as_str()
                .expect("name")
                .to_string();
            return (at, name);
        }
        assert!(Instant::now() < deadline, "no start within 60 s: {detail}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sleep_until(at: SystemTime) {
    if let Ok(wait) = at.duration_since(SystemTime::now()) {
        std::thread::sleep(wait);
    }
}

/// The one share of two missing from a merged summary.
fn missing_share(merged: &Value) -> usize {
    let missing = merged["missing_segments"]
        .as_array()
        .expect("missing segments");
    assert_eq!(missing.len(), 1, "{merged}");
    let segment = missing[0].as_str().unwrap_or_default();
    segment
        .split_once('/')
        .and_then(|(i, _)| i.parse().ok())
        .unwrap_or_else(|| panic!("not a segment: {segment}"))
}

/// Requests the target has served, from its stats endpoint.
fn served(target: &TestTarget) -> u64 {
    let addr = target.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect to the target");
    write!(
        stream,
        "GET /__kpress/stats HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let stats: Value = serde_json::from_str(body).expect("stats JSON");
    stats["requests"].as_u64().expect("requests")
}

#[test]
fn a_deployment_run_merges_like_the_job_mode_and_leaves_nothing() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let cluster = Cluster::start(&w);
    let hook_out = w.path("hook.json");
    let center = center(&w, &cluster, &["--hook", &hook(&w, &hook_out)]);
    let file = scenario(&w, &target.url, "2s");

    let out_path = w.path("deployment.json");
    let out = wait_with_limit(
        submit(&cluster, &center, &file, "dep1", "3", &out_path, &[]),
        LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let merged = read_json(&out_path);
    crate::util::assert_summary_schema(&merged);
    assert_eq!(merged["segment"], "all/3");
    assert_eq!(merged["metrics"]["http_reqs"]["count"], 200, "{merged}");
    assert_eq!(merged["thresholds"]["http_reqs"][0]["ok"], true);
    let skew = merged["start_skew_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(skew < 1000.0, "runners started {skew} ms apart");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("holds its share; load starts at"),
        "{stderr}"
    );
    assert!(stderr.contains("scaled Deployment default/"), "{stderr}");
    assert!(stderr.contains("clean-up hook registry ran"), "{stderr}");

    // The same test in Job mode, same N: the same merged result.
    let job_path = w.path("job.json");
    let job = cluster.run(&[
        file.to_str().unwrap_or_default(),
        "--runners",
        "3",
        "--run-id",
        "job1",
        "--start-margin",
        "1s",
        "--progress",
        "none",
        "--summary-out",
        job_path.to_str().unwrap_or_default(),
    ]);
    assert_eq!(code(&job), 0, "{}", text(&job));
    let job = read_json(&job_path);
    for pointer in [
        "/segment",
        "/segments",
        "/status",
        "/metrics/http_reqs/count",
        "/metrics/iterations/count",
        "/metrics/dropped_iterations/count",
        "/metrics/http_req_failed/rate",
        "/thresholds",
    ] {
        assert_eq!(merged.pointer(pointer), job.pointer(pointer), "{pointer}");
    }

    let run = center.ok("GET", "/api/runs/dep1", CENTER_TOKEN, None);
    assert_eq!(run["status"], "passed", "{run}");
    assert_eq!(run["mode"], "deployment");
    assert_eq!(run["runners_done"], 3);
    let cleanup = &run["deployment"]["cleanup"];
    assert_eq!(cleanup["ok"], true, "{run}");
    assert_eq!(
        (cleanup["scaled"].as_bool(), cleanup["deleted"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(cleanup["hooks"][0]["name"], "registry");
    assert_eq!(cleanup["hooks"][0]["attempts"], 1);
    let given = read_json(&hook_out);
    assert_eq!(given["run"], "dep1");
    assert_eq!(given["deployment"], run["deployment"]["name"]);
    let env = std::fs::read_to_string(w.path("hook.json.env")).expect("hook env");
    assert!(env.starts_with("dep1 default "), "{env}");
    assert!(env.trim_end().ends_with(" passed"), "{env}");
    assert_eq!(
        leftovers(&cluster, "dep1"),
        0,
        "no object of the run is left"
    );
}

#[test]
fn a_runner_restarted_mid_test_does_not_run_its_share_twice() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let cluster = Cluster::start(&w);
    let center = center(&w, &cluster, &[]);
    let file = scenario(&w, &target.url, "4s");
    let out_path = w.path("merged.json");
    let child = submit(&cluster, &center, &file, "dep2", "2", &out_path, &[]);
    let (start, name) = wait_for_start(&center, "dep2");
    sleep_until(start + Duration::from_millis(1500));
    cluster
        .runtime
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(20),
                cluster.double.kill_container(&name, 0),
            )
            .await
        })
        .expect("killed within 20 s")
        .expect("killed");
    let out = wait_with_limit(child, LIMIT);
    assert_eq!(code(&out), 1, "partial: {}", text(&out));
    let merged = read_json(&out_path);
    // The killed pod (replica slot 0) held whichever share it leased.
    let cut = missing_share(&merged);
    assert_eq!(
        merged["metrics"]["http_reqs"]["count"], 200,
        "the other share, whole"
    );
    let total = served(&target);
    assert!(
        (200..400).contains(&total),
        "one whole share and part of the other, never a second run of it: {total}"
    );
    let run = center.ok("GET", "/api/runs/dep2", CENTER_TOKEN, None);
    assert_eq!(run["status"], "partial", "{run}");
    assert_eq!(run["runner_states"][cut]["state"], "failed");
    assert!(
        run["runner_states"][cut]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cut short")),
        "the restarted container asked again and was told to idle: {run}"
    );
    assert_eq!(run["deployment"]["cleanup"]["ok"], true, "{run}");
    assert_eq!(leftovers(&cluster, "dep2"), 0);
}

#[test]
fn a_runner_that_never_reports_ends_the_run_partial_and_it_is_still_cleaned_up() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let cluster = Cluster::start(&w);
    let hook_out = w.path("hook.json");
    let good = hook(&w, &hook_out);
    let center = center(
        &w,
        &cluster,
        &[
            "--report-grace",
            "1s",
            "--hook",
            &good,
            "--hook",
            "failing=cmd:false",
            "--hook-attempts",
            "3",
        ],
    );
    let file = w.write(
        "short.yaml",
        &format!("name: e2e\ndefaults: {{ baseUrl: '{}' }}\nscenarios:\n  s:\n    executor: constant-arrival-rate\n    rate: 100\n    duration: 2s\n    gracefulStop: 1s\n    preAllocatedVUs: 6\n    requests: [GET /]\n", target.url),
    );
    let out_path = w.path("merged.json");
    let child = submit(&cluster, &center, &file, "dep3", "2", &out_path, &[]);
    let (start, name) = wait_for_start(&center, "dep3");
    sleep_until(start + Duration::from_millis(500));
    cluster.double.never_schedule(&name, 1).expect("fault set");
    cluster
        .runtime
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(20), cluster.double.disrupt(&name, 1)).await
        })
        .expect("disrupted within 20 s")
        .expect("runner 1 disrupted; its replacement is never scheduled");
    let out = wait_with_limit(child, LIMIT);
    assert_eq!(code(&out), 1, "partial: {}", text(&out));
    let merged = read_json(&out_path);
    let silent = missing_share(&merged);
    assert_eq!(
        merged["metrics"]["http_reqs"]["count"], 100,
        "the other share: {merged}"
    );
    let run = center.ok("GET", "/api/runs/dep3", CENTER_TOKEN, None);
    assert_eq!(run["status"], "partial", "{run}");
    assert!(
        run["finish_reason"]
            .as_str()
            .is_some_and(|r| r.contains(&format!("runner(s) {silent} did not report"))),
        "{run}"
    );
    let cleanup = &run["deployment"]["cleanup"];
    assert_eq!(cleanup["deleted"], true, "{run}");
    assert_eq!(cleanup["ok"], false, "a hook failed: {run}");
    assert_eq!(cleanup["hooks"][0]["ok"], true);
    assert_eq!(cleanup["hooks"][1]["name"], "failing");
    assert_eq!(cleanup["hooks"][1]["ok"], false);
    assert_eq!(cleanup["hooks"][1]["attempts"], 3, "retried: {run}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("clean-up hook failing failed after 3 attempt(s)"),
        "{stderr}"
    );
    assert_eq!(read_json(&hook_out)["status"], "partial");
    assert_eq!(
        leftovers(&cluster, "dep3"),
        0,
        "the pending replacement went too"
    );
}

#[test]
fn render_mode_deployment_prints_what_the_center_would_run_and_it_validates() {
    let w = Workdir::new();
    let cluster = Cluster::start(&w);
    let center = center(&w, &cluster, &[]);
    let url = format!("http://{}", center.addr);
    let out = Command::new(env!("CARGO_BIN_EXE_kpress"))
        .args([
            "render",
            "../../examples/quickstart.yaml",
            "--mode",
            "deployment",
            "--runners",
            "2",
        ])
        .args([
            "--run-id",
            "rend1",
            "--app",
            "tenc-app=press-client-148-online",
            "--center",
            &url,
        ])
        .env("KPRESS_CENTER_TOKEN", CENTER_TOKEN)
        .output()
        .expect("run kpress render");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let yaml = String::from_utf8_lossy(&out.stdout).into_owned();
    let deployment: Deployment =
        serde_norway::from_str(yaml.trim_start_matches("---\n")).expect("a Deployment");
    assert_eq!(deployment.spec.replicas, Some(2));
    assert!(yaml.contains("tenc-app: press-client-148-online"), "{yaml}");
    assert!(!yaml.contains("kind: Service"), "{yaml}");
    let file = w.write("deployment.yaml", &yaml);
    for version in ["1.30.0", "1.37.0"] {
        let check = Command::new("kubernetes-validate")
            .args(["--strict", "-k", version])
            .arg(&file)
            .output()
            .expect("kubernetes-validate is installed (.ci/run installs it)");
        assert!(check.status.success(), "{version}: {}", text(&check));
    }
    let run = center.ok("GET", "/api/runs/rend1", CENTER_TOKEN, None);
    assert_eq!(run["deployment"]["created_by_center"], false);
    assert_eq!(
        leftovers(&cluster, "rend1"),
        0,
        "render creates nothing in the cluster"
    );

    // Applied by someone else, it is a run `kpress list` shows and `kpress delete` ends.
    cluster.runtime.block_on(async {
        let api: kube::Api<Deployment> =
            kube::Api::namespaced(cluster.double.client().expect("client"), "default");
        api.create(&kube::api::PostParams::default(), &deployment)
            .await
            .expect("applied");
    });
    let kpress = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kpress"))
            .args(args)
            .env("KUBECONFIG", &cluster.kubeconfig)
            .output()
            .expect("run kpress")
    };
    let listed = kpress(&["list"]);
    assert_eq!(code(&listed), 0, "{}", text(&listed));
    let name = deployment.metadata.name.clone().unwrap_or_default();
    assert!(
        text(&listed).contains(&format!("deployment/{name}")) && text(&listed).contains("rend1"),
        "{}",
        text(&listed)
    );
    let deleted = kpress(&["delete", "rend1"]);
    assert_eq!(code(&deleted), 0, "{}", text(&deleted));
    assert!(
        text(&deleted).contains(&format!("deleted deployment/{name}")),
        "{}",
        text(&deleted)
    );
    assert_eq!(
        leftovers(&cluster, "rend1"),
        0,
        "kpress delete left nothing"
    );

    let alone = Command::new(env!("CARGO_BIN_EXE_kpress"))
        .args([
            "render",
            "../../examples/quickstart.yaml",
            "--mode",
            "deployment",
            "--runners",
            "2",
        ])
        .env_remove("KPRESS_CENTER_URL")
        .output()
        .expect("run kpress render");
    assert_eq!(code(&alone), 2, "{}", text(&alone));
    assert!(
        text(&alone).contains("--mode deployment needs the center"),
        "{}",
        text(&alone)
    );
}

#[test]
fn a_runner_that_never_starts_fails_the_run_at_the_start_up_timeout_and_it_is_cleaned_up() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let cluster = Cluster::start(&w);
    let center = center(&w, &cluster, &[]);
    let file = scenario(&w, &target.url, "2s");
    let app = kpress_k8s::labels::AppLabel::default();
    let name = kpress_k8s::deployment::deployment_name(&app, "e2e", "dep4");
    // Replica slot 1 never pulls its image: its share is never leased, nobody starts.
    cluster
        .double
        .image_pull_backoff(&name, 1)
        .expect("fault set");
    let out_path = w.path("merged.json");
    let out = wait_with_limit(
        submit(
            &cluster,
            &center,
            &file,
            "dep4",
            "2",
            &out_path,
            &["--startup-timeout", "3s"],
        ),
        LIMIT,
    );
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        text(&out).contains("only 1 of 2 runner(s) leased their share"),
        "{}",
        text(&out)
    );
    assert_eq!(served(&target), 0, "no runner started alone");
    let run = center.ok("GET", "/api/runs/dep4", CENTER_TOKEN, None);
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["deployment"]["start_at"], Value::Null);
    assert_eq!(run["deployment"]["cleanup"]["ok"], true, "{run}");
    assert_eq!(leftovers(&cluster, "dep4"), 0, "the stuck pod went too");
}
