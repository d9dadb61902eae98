//! `kpress submit` end to end through the real kube client against the API double,
//! whose simulated kubelet runs real `kpress run` processes as the Job's pods, loading
//! a real target: creation, synchronised start, logs, exact merge, exit codes, clean-up,
//! and the failure paths.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kube_double::{ApiDouble, Simulation};

use crate::util::{code, read_json, text, wait_with_limit, TestTarget, Workdir};

pub const LIMIT: Duration = Duration::from_secs(90);

pub struct Cluster {
    pub double: ApiDouble,
    pub runtime: tokio::runtime::Runtime,
    pub kubeconfig: PathBuf,
}

impl Cluster {
    pub fn start(w: &Workdir) -> Cluster {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = Simulation::new().executable("kpress", env!("CARGO_BIN_EXE_kpress"));
        let double = runtime
            .block_on(ApiDouble::start_cluster(sim))
            .expect("double starts");
        let kubeconfig = double
            .write_kubeconfig(w.dir.path())
            .expect("kubeconfig written");
        Cluster {
            double,
            runtime,
            kubeconfig,
        }
    }

    pub fn submit(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kpress"));
        cmd.arg("submit")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        wait_with_limit(self.submit(args).spawn().expect("spawn kpress"), LIMIT)
    }

    /// Objects of the run still in the double (Jobs and pods).
    pub fn leftovers(&self, run: &str) -> usize {
        let selector = format!("kpress.io/run={run}");
        self.runtime.block_on(async {
            let client = self.double.client().expect("client");
            let jobs: kube::Api<k8s_openapi::api::batch::v1::Job> = kube::Api::all(client.clone());
            let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::all(client);
            let lp = kube::api::ListParams::default().labels(&selector);
            jobs.list(&lp)
                .await
                .map(|l| l.items.len())
                .unwrap_or(usize::MAX)
                + pods
                    .list(&lp)
                    .await
                    .map(|l| l.items.len())
                    .unwrap_or(usize::MAX)
        })
    }

    /// Runs a fault that kills a runner (bounded in time).
    fn kill<'a>(
        &'a self,
        fault: impl FnOnce(
            &'a ApiDouble,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<String, kube_double::Error>> + 'a>,
        >,
    ) {
        self.runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(20), fault(&self.double)).await
            })
            .expect("fault within 20 s")
            .expect("fault applied");
    }

    fn running_pods(&self, run: &str) -> usize {
        let selector = format!("kpress.io/run={run}");
        self.runtime.block_on(async {
            let client = self.double.client().expect("client");
            let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::all(client);
            let lp = kube::api::ListParams::default().labels(&selector);
            pods.list(&lp)
                .await
                .map(|l| {
                    l.items
                        .iter()
                        .filter(|p| {
                            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                        })
                        .count()
                })
                .unwrap_or(0)
        })
    }
}

pub fn scenario(w: &Workdir, url: &str, duration: &str) -> PathBuf {
    w.write(
        "s.yaml",
        &format!("name: e2e\ndefaults: {{ baseUrl: '{url}' }}\nscenarios:\n  s:\n    executor: constant-arrival-rate\n    rate: 100\n    duration: {duration}\n    preAllocatedVUs: 6\n    requests: [GET /]\nthresholds:\n  http_reqs: ['count==200']\n"),
    )
}

#[test]
fn submit_runs_real_runners_merges_exactly_and_leaves_nothing() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let cluster = Cluster::start(&w);
    let file = scenario(&w, &target.url, "2s");
    let out_path = w.path("merged.json");
    let out = cluster.run(&[
        file.to_str().unwrap_or_default(),
        "--runners",
        "3",
        "--run-id",
        "ok1",
        "--start-margin",
        "1s",
        "--progress",
        "plain",
        "--summary-out",
        out_path.to_str().unwrap_or_default(),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let merged = read_json(&out_path);
    crate::util::assert_summary_schema(&merged);
    assert_eq!(merged["segment"], "all/3");
    assert_eq!(
        merged["metrics"]["http_reqs"]["count"], 200,
        "100/s for 2 s over 3 runners, exactly"
    );
    assert_eq!(merged["thresholds"]["http_reqs"][0]["ok"], true);
    let skew = merged["start_skew_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(skew < 1000.0, "runners started {skew} ms apart");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("all runners running; load starts at"),
        "{stderr}"
    );
    assert!(stderr.contains("deleted Job"), "{stderr}");
    assert_eq!(cluster.leftovers("ok1"), 0, "no object of the run is left");
}

#[test]
fn submit_with_a_center_runners_report_there_and_it_merges_the_same() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let cluster = Cluster::start(&w);
    let center =
        crate::center::Center::start(&format!("sqlite://{}", w.path("c.db").to_string_lossy()));
    let file = scenario(&w, &target.url, "2s");
    let out_path = w.path("merged.json");
    let mut cmd = cluster.submit(&[
        file.to_str().unwrap_or_default(),
        "--runners",
        "3",
        "--run-id",
        "center1",
        "--start-margin",
        "1s",
        "--progress",
        "none",
        "--center",
        &format!("http://{}", center.addr),
        "--summary-out",
        out_path.to_str().unwrap_or_default(),
    ]);
    cmd.env("KPRESS_CENTER_TOKEN", crate::center::CENTER_TOKEN);
    let out = wait_with_limit(cmd.spawn().expect("spawn kpress"), LIMIT);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let local = read_json(&out_path);
    let run = center.ok(
        "GET",
        "/api/runs/center1",
        crate::center::CENTER_TOKEN,
        None,
    );
    assert_eq!(run["status"], "passed", "{run}");
    assert_eq!(run["mode"], "job");
    assert_eq!(run["runners_done"], 3, "every pod reported itself");
    assert_eq!(run["app"], "app.kubernetes.io/part-of=kpress");
    assert_eq!(run["labels"]["job"], "kpress-e2e-center1");
    let merged = &run["summary"]["metrics"];
    assert_eq!(merged["http_reqs"]["count"], 200);
    for stat in ["p50", "p99", "max"] {
        assert_eq!(
            merged["http_req_duration"][stat], local["metrics"]["http_req_duration"][stat],
            "{stat}: the center's merge of the pods' reports is submit's merge of their logs"
        );
    }
    assert_eq!(cluster.leftovers("center1"), 0);
}

#[test]
fn runners_that_never_schedule_are_named_and_the_job_is_deleted() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let cluster = Cluster::start(&w);
    cluster
        .double
        .image_pull_backoff("kpress-e2e-stuck1", 0)
        .expect("fault injected");
    cluster
        .double
        .never_schedule("kpress-e2e-stuck1", 1)
        .expect("fault injected");
    let file = scenario(&w, &target.url, "2s");
    let started = Instant::now();
    let out = cluster.run(&[
        file.to_str().unwrap_or_default(),
        "--runners",
        "2",
        "--run-id",
        "stuck1",
        "--startup-timeout",
        "3s",
    ]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did not all start"), "{stderr}");
    assert!(stderr.contains("runner 0: ImagePullBackOff"), "{stderr}");
    assert!(
        stderr.contains("runner 1: Unschedulable: 0/3 nodes are available"),
        "{stderr}"
    );
    assert_eq!(cluster.leftovers("stuck1"), 0);
}

#[test]
fn a_runner_killed_for_good_makes_the_result_partial() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let cluster = Cluster::start(&w);
    let file = scenario(&w, &target.url, "4s");
    let child = cluster
        .submit(&[
            file.to_str().unwrap_or_default(),
            "--runners",
            "3",
            "--run-id",
            "oom1",
            "--start-margin",
            "1s",
            "--retries",
            "0",
        ])
        .spawn()
        .expect("spawn");
    wait_until(|| cluster.running_pods("oom1") == 3, "3 running pods");
    std::thread::sleep(Duration::from_millis(2500));
    cluster.kill(|d| Box::pin(d.oom_kill("kpress-e2e-oom1", 2)));
    let out = wait_with_limit(child, LIMIT);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("runner 2: OOMKilled"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("MISSING runner results: 2/3"), "{stdout}");
    assert_eq!(cluster.leftovers("oom1"), 0);
}

#[test]
fn a_disrupted_runner_is_replaced_and_its_share_still_counts() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let cluster = Cluster::start(&w);
    let file = scenario(&w, &target.url, "2s");
    let out_path = w.path("merged.json");
    let child = cluster
        .submit(&[
            file.to_str().unwrap_or_default(),
            "--runners",
            "2",
            "--run-id",
            "evict1",
            "--start-margin",
            "1s",
            "--retries",
            "0",
            "--summary-out",
            out_path.to_str().unwrap_or_default(),
        ])
        .spawn()
        .expect("spawn");
    wait_until(|| cluster.running_pods("evict1") == 2, "2 running pods");
    std::thread::sleep(Duration::from_millis(1500));
    cluster.kill(|d| Box::pin(d.disrupt("kpress-e2e-evict1", 0)));
    let out = wait_with_limit(child, LIMIT);
    assert_eq!(
        code(&out),
        0,
        "a disruption does not spend the retry budget\n{}",
        text(&out)
    );
    assert_eq!(read_json(&out_path)["metrics"]["http_reqs"]["count"], 200);
    assert_eq!(cluster.leftovers("evict1"), 0);
}

#[test]
fn ctrl_c_deletes_the_job_at_once() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let cluster = Cluster::start(&w);
    let file = scenario(&w, &target.url, "60s");
    let child = cluster
        .submit(&[
            file.to_str().unwrap_or_default(),
            "--runners",
            "2",
            "--run-id",
            "sig1",
            "--start-margin",
            "1s",
        ])
        .spawn()
        .expect("spawn");
    wait_until(|| cluster.running_pods("sig1") == 2, "2 running pods");
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .map(|s| s.success())
        .unwrap_or(false));
    let started = Instant::now();
    let out = wait_with_limit(child, LIMIT);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("was deleted"),
        "{}",
        text(&out)
    );
    assert_eq!(cluster.leftovers("sig1"), 0);
}

#[test]
fn an_unreachable_api_server_exits_1_with_a_clear_message() {
    let w = Workdir::new();
    let kubeconfig = kube_double::kubeconfig_for(w.dir.path(), "http://127.0.0.1:9")
        .expect("kubeconfig written");
    let file = scenario(&w, "http://127.0.0.1:9", "1s");
    let child = Command::new(env!("CARGO_BIN_EXE_kpress"))
        .args([
            "submit",
            file.to_str().unwrap_or_default(),
            "--runners",
            "2",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_with_limit(child, LIMIT);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach the Kubernetes API"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_invalid_scenario_creates_nothing() {
    let w = Workdir::new();
    let cluster = Cluster::start(&w);
    let file = w.write("bad.yaml", "name: bad\nscenarios:\n  s:\n    executor: constant-vus\n    requests: [GET http://127.0.0.1:9/]\n");
    let out = cluster.run(&[
        file.to_str().unwrap_or_default(),
        "--runners",
        "2",
        "--run-id",
        "bad1",
    ]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        cluster.double.requests().iter().all(|r| r.method != "POST"),
        "nothing was created"
    );
}

fn wait_until(mut ok: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn keep_leaves_the_job_for_list_and_delete() {
    let target = TestTarget::start();
    let w = Workdir::new();
    let cluster = Cluster::start(&w);
    let file = scenario(&w, &target.url, "1s");
    let out = cluster.run(&[
        file.to_str().unwrap_or_default(),
        "--runners",
        "2",
        "--run-id",
        "keep1",
        "--start-margin",
        "1s",
        "--keep",
    ]);
    assert_eq!(
        code(&out),
        99,
        "100/s for 1 s is not the 200 the threshold wants\n{}",
        text(&out)
    );
    assert!(cluster.leftovers("keep1") > 0, "--keep keeps the Job");

    let kubectl_like = |args: &[&str]| {
        let child = Command::new(env!("CARGO_BIN_EXE_kpress"))
            .args(args)
            .env("KUBECONFIG", &cluster.kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        wait_with_limit(child, LIMIT)
    };
    let list = kubectl_like(&["list"]);
    assert_eq!(code(&list), 0, "{}", text(&list));
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("keep1") && listed.contains("e2e") && listed.contains("complete"),
        "{listed}"
    );

    let deleted = kubectl_like(&["delete", "keep1"]);
    assert_eq!(code(&deleted), 0, "{}", text(&deleted));
    wait_until(
        || cluster.leftovers("keep1") == 0,
        "the run's objects to go",
    );
    let again = kubectl_like(&["delete", "keep1"]);
    assert_eq!(code(&again), 1, "nothing left to delete\n{}", text(&again));
}
