//! End-to-end tests of `kpress audit`: exit codes 0/1/2/3, the JSON report, and the prune
//! walkthrough against the API double through a real kubeconfig.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kube_double::{ApiDouble, ObjectRef, ResourceType};
use serde_json::Value;

const NOW: &str = "2025-06-01T00:00:00Z";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kpress-audit/fixtures")
}

fn dump() -> String {
    fixtures().join("cluster").display().to_string()
}

fn kpress(args: &[&str], kubeconfig: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kpress"));
    command
        .arg("audit")
        .args(args)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT");
    match kubeconfig {
        Some(path) => command.env("KUBECONFIG", path),
        None => command.env("KUBECONFIG", "/nonexistent/kubeconfig"),
    };
    command.output().expect("kpress runs")
}

fn code(output: &Output) -> Option<i32> {
    output.status.code()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn audit_exits_0_with_findings_and_3_with_fail_on_findings() {
    let plain = kpress(&["--from", &dump(), "--now", NOW], None);
    assert_eq!(code(&plain), Some(0), "{}", stderr(&plain));
    assert!(stdout(&plain).contains("TOTAL 20 finding(s), 18 prunable: 26.25 USD/month"));
    assert!(stdout(&plain).contains("NAMESPACE shop"));

    let strict = kpress(&["--from", &dump(), "--fail-on-findings"], None);
    assert_eq!(code(&strict), Some(3), "{}", stderr(&strict));

    let clean = kpress(
        &[
            "--from",
            &dump(),
            "--namespace",
            "default",
            "--fail-on-findings",
        ],
        None,
    );
    assert_eq!(code(&clean), Some(0), "{}", stderr(&clean));
    assert!(stdout(&clean).contains("No leftovers found."));
}

#[test]
fn json_output_is_the_documented_report() {
    let output = kpress(
        &[
            "--from",
            &dump(),
            "--now",
            NOW,
            "--output",
            "json",
            "--older-than",
            "24h",
        ],
        None,
    );
    assert_eq!(code(&output), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    assert_eq!(report["schema"], "kpress.io/audit-report/v1");
    let findings = report["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 19, "fresh-flags is younger than 24h");
    let lb = findings
        .iter()
        .find(|f| f["name"] == "checkout-lb")
        .expect("load balancer finding");
    assert_eq!(lb["kind"], "Service");
    assert_eq!(lb["namespace"], "shop");
    assert_eq!(lb["category"], "load-balancer-without-endpoints");
    assert_eq!(lb["age"], "60d");
    assert_eq!(lb["cost"]["monthly_usd"], 18.25);
    assert_eq!(report["totals"]["monthly_usd"], 26.25);
    assert_eq!(report["assumptions"]["hours_per_month"], 730.0);
}

#[test]
fn prices_and_exclusions_are_flags() {
    let output = kpress(
        &[
            "--from",
            &dump(),
            "-o",
            "json",
            "--lb-hourly-usd",
            "0.05",
            "--storage-gib-month-usd",
            "0",
            "--exclude-namespace",
            "perf",
            "--exclude-label",
            "app=checkout",
        ],
        None,
    );
    assert_eq!(code(&output), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    // The LB Service carries no app label, so only the price changes it: 0.05 × 730.
    assert_eq!(report["totals"]["monthly_usd"], 36.5);
    let namespaces: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["namespace"].as_str())
        .collect();
    assert!(!namespaces.contains(&"perf"));
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert!(
        !kinds.contains(&"Deployment"),
        "the checkout Deployment carries app=checkout"
    );
}

#[test]
fn unreadable_input_exits_1_naming_the_file_and_line() {
    let missing = kpress(&["--from", "/nonexistent/dump.json"], None);
    assert_eq!(code(&missing), Some(1));
    assert!(
        stderr(&missing).contains("cannot read /nonexistent/dump.json"),
        "{}",
        stderr(&missing)
    );

    let bad = fixtures().join("broken/bad-indent.yaml");
    let broken = kpress(&["--from", &bad.display().to_string()], None);
    assert_eq!(code(&broken), Some(1));
    assert!(
        stderr(&broken).contains(&format!("{}:8: invalid YAML", bad.display())),
        "{}",
        stderr(&broken)
    );
}

#[test]
fn usage_errors_exit_2() {
    let cases: [&[&str]; 6] = [
        &["--no-such-flag"],
        &["--from", "x.json", "--prune"],
        &["--yes", "--backup-dir", "/tmp/b"],
        &["--prune", "--yes"],
        &["--from", "x.json", "--older-than", "soon"],
        &["--from", "x.json", "--lb-hourly-usd", "-1"],
    ];
    for args in cases {
        let output = kpress(args, None);
        assert_eq!(code(&output), Some(2), "{args:?}: {}", stderr(&output));
    }
}

#[test]
fn an_unreachable_cluster_exits_1_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config =
        kube_double::kubeconfig_for(dir.path(), "http://127.0.0.1:9").expect("kubeconfig written");
    let output = kpress(&[], Some(&config));
    assert_eq!(code(&output), Some(1));
    assert!(
        stderr(&output).contains("cannot list"),
        "{}",
        stderr(&output)
    );
}

async fn seeded_double() -> ApiDouble {
    let double = ApiDouble::start().await.expect("double starts");
    for crd in ResourceType::monitoring_crds() {
        double.register(crd);
    }
    let inventory = kpress_audit::load::load_files(&[PathBuf::from(dump())]).expect("dump loads");
    for (_, object) in inventory.objects() {
        double.seed(object.clone()).expect("seeded");
    }
    double
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_walkthrough_dry_run_then_backup_and_delete() {
    let double = seeded_double().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = double
        .write_kubeconfig(dir.path())
        .expect("kubeconfig written");
    let secret = ObjectRef::namespaced("v1", "Secret", "shop", "old-api-key");

    let dry = kpress(
        &["--context", "double", "--prune", "--now", NOW],
        Some(&config),
    );
    assert_eq!(code(&dry), Some(0), "{}", stderr(&dry));
    assert!(stdout(&dry).contains("18 object(s) would be deleted (dry run, nothing deleted)"));
    assert!(stdout(&dry).contains("would delete Secret shop/old-api-key"));
    assert!(double.object(&secret).is_some());
    assert!(double
        .requests()
        .iter()
        .all(|r| r.method.as_str() != "DELETE"));

    let backups = dir.path().join("backups");
    let backup_dir = backups.display().to_string();
    let real = kpress(
        &[
            "--prune",
            "--yes",
            "--backup-dir",
            &backup_dir,
            "-o",
            "json",
            "--fail-on-findings",
        ],
        Some(&config),
    );
    assert_eq!(code(&real), Some(3), "{}", stderr(&real));
    let report: Value = serde_json::from_slice(&real.stdout).expect("stdout stays JSON");
    assert_eq!(report["findings"].as_array().map(Vec::len), Some(20));
    assert!(
        stderr(&real).contains("Pruned 18 object(s), skipped 0, failed 0"),
        "{}",
        stderr(&real)
    );
    assert!(double.object(&secret).is_none());
    let files: Vec<_> = std::fs::read_dir(&backups).expect("backup dir").collect();
    assert_eq!(files.len(), 1);
}
