//! `kpress render`: the manifests are what we expect (snapshots), and every variant is
//! valid for Kubernetes 1.30 and the newest version `kubernetes-validate` knows.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::util::{code, kpress, text, Workdir};

const LIMIT: Duration = Duration::from_secs(30);

const SCENARIO: &str = "name: checkout-peak\ndescription: the Black Friday checkout\ndefaults: { baseUrl: 'http://checkout.shop.svc:8080' }\nscenarios:\n  steady:\n    executor: constant-arrival-rate\n    rate: 2000\n    duration: 30s\n    preAllocatedVUs: 100\n    maxVUs: 1000\n    requests: [GET /]\nthresholds:\n  http_req_duration: ['p(99)<250ms']\n";

/// (snapshot name, extra flags)
const VARIANTS: &[(&str, &[&str])] = &[
    ("job-defaults", &[]),
    (
        "job-app-label",
        &[
            "--app",
            "tenc-app=press-client-148-online",
            "--namespace",
            "load",
        ],
    ),
    (
        "job-placement",
        &[
            "--spread",
            "--node-selector",
            "pool=load",
            "--toleration",
            "dedicated=load:NoSchedule",
            "--toleration",
            "gpu:NoExecute",
            "--cpu",
            "2:4",
            "--memory",
            "1Gi:2Gi",
            "--ttl",
            "10m",
            "--retries",
            "3",
        ],
    ),
];

fn render(w: &Workdir, flags: &[&str]) -> String {
    let file = w.write("s.yaml", SCENARIO);
    let mut args = vec![
        "render",
        file.to_str().unwrap_or_default(),
        "--runners",
        "4",
        "--run-id",
        "r1a2b3",
    ];
    args.extend_from_slice(flags);
    let out = kpress(&args, LIMIT);
    assert_eq!(code(&out), 0, "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn render_matches_the_snapshots() {
    let w = Workdir::new();
    for (name, flags) in VARIANTS {
        let yaml = render(&w, flags);
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/snapshots/{name}.yaml"));
        if std::env::var_os("KPRESS_BLESS").is_some() {
            std::fs::write(&path, &yaml).expect("write snapshot");
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            yaml, expected,
            "{name}: rerun with KPRESS_BLESS=1 if the change is intended"
        );
    }
}

#[test]
fn rendered_manifests_pass_kubernetes_validate_strict() {
    let w = Workdir::new();
    for (name, flags) in VARIANTS {
        let file = w.write(&format!("{name}.yaml"), &render(&w, flags));
        for version in ["1.30.0", "1.37.0"] {
            let out = Command::new("kubernetes-validate")
                .args(["--strict", "-k", version])
                .arg(&file)
                .output()
                .expect("kubernetes-validate is installed (pip install kubernetes-validate; .ci/run does it)");
            assert!(
                out.status.success(),
                "{name} for {version}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn render_creates_only_a_job_and_hardens_its_pods() {
    let w = Workdir::new();
    let yaml = render(&w, &[]);
    let docs: Vec<serde_json::Value> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_norway::from_str(d).expect("YAML"))
        .collect();
    assert_eq!(docs.len(), 1, "one object per test");
    let job = &docs[0];
    assert_eq!(job["kind"], "Job");
    let spec = &job["spec"];
    assert_eq!(
        (
            spec["completionMode"].as_str(),
            spec["completions"].as_i64(),
            spec["parallelism"].as_i64()
        ),
        (Some("Indexed"), Some(4), Some(4))
    );
    assert_eq!(
        spec["activeDeadlineSeconds"],
        30 + 30 + 300,
        "30 s test + 30 s graceful stop + 5 m start-up allowance"
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["restartPolicy"], "Never");
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    for key in [
        "app.kubernetes.io/name",
        "app.kubernetes.io/component",
        "kpress.io/test",
        "kpress.io/run",
        "app.kubernetes.io/part-of",
    ] {
        assert!(
            job["metadata"]["labels"][key].is_string(),
            "Job label {key}"
        );
        assert!(
            spec["template"]["metadata"]["labels"][key].is_string(),
            "pod label {key}"
        );
    }
    let env = c["env"].as_array().cloned().unwrap_or_default();
    let scenario = env
        .iter()
        .find(|e| e["name"] == "KPRESS_SCENARIO")
        .map(|e| e["value"].clone());
    assert_eq!(
        scenario.as_ref().and_then(|s| s.as_str()),
        Some(SCENARIO),
        "the scenario travels in the Job"
    );
}

#[test]
fn render_rejects_bad_flags_with_exit_2() {
    let w = Workdir::new();
    let file = w.write("s.yaml", SCENARIO);
    let f = file.to_str().unwrap_or_default();
    for args in [
        vec!["render", f, "--runners", "0"],
        vec!["render", f, "--runners", "2000"],
        vec!["render", f, "--runners", "2", "--app", "no-equals"],
        vec!["render", f, "--runners", "2", "--cpu", "lots:1"],
        vec!["render", f, "--runners", "2", "--toleration", "x:Sometimes"],
        vec!["render", f, "--runners", "2", "--run-id", "UPPER"],
    ] {
        let out = kpress(&args, LIMIT);
        assert_eq!(code(&out), 2, "{args:?}\n{}", text(&out));
    }
}
