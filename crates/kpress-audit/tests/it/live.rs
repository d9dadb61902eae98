//! The live audit through the real `kube::Client` against the API double: the same objects give
//! the same findings as the offline audit of the dump; missing monitoring CRDs mean "none".

use kpress_audit::load::load_files;
use kpress_audit::report::{Finding, Report};
use kpress_audit::{AuditOptions, Source};
use kube_double::{ApiDouble, ResourceType};

use crate::common::{audit_dump, cluster_dump, options};

/// A double holding every object of the dump; monitoring CRDs only when `with_crds`.
pub async fn seeded_double(with_crds: bool) -> ApiDouble {
    let double = ApiDouble::start().await.expect("double starts");
    if with_crds {
        for crd in ResourceType::monitoring_crds() {
            double.register(crd);
        }
    }
    let inventory = load_files(&[cluster_dump()]).expect("dump loads");
    for (key, object) in inventory.objects() {
        let monitoring = object["apiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("monitoring."));
        if monitoring && !with_crds {
            continue;
        }
        double
            .seed(object.clone())
            .unwrap_or_else(|e| panic!("seeding {key}: {e}"));
    }
    double
}

pub async fn audit_live(double: &ApiDouble, opts: &AuditOptions) -> kpress_audit::Audit {
    let source = Source::Cluster {
        client: double.client().expect("client"),
        context: None,
    };
    kpress_audit::audit(source, opts).await.expect("live audit")
}

/// Findings without the resourceVersion, which the double assigns anew.
fn comparable(report: &Report) -> Vec<Finding> {
    report
        .findings
        .iter()
        .cloned()
        .map(|mut f| {
            f.resource_version = None;
            f
        })
        .collect()
}

#[tokio::test]
async fn live_and_offline_audits_of_the_same_objects_agree() {
    let double = seeded_double(true).await;
    let live = audit_live(&double, &options()).await.report;
    let offline = audit_dump(&options()).await;
    assert_eq!(comparable(&live), comparable(&offline));
    assert_eq!(live.totals, offline.totals);
    assert_eq!(live.assumptions, offline.assumptions);
    assert!(live.skipped_rules.is_empty());
    assert!(live.findings.iter().all(|f| f.resource_version.is_some()));
}

#[tokio::test]
async fn monitoring_crds_that_are_not_installed_count_as_none() {
    let double = seeded_double(false).await;
    let report = audit_live(&double, &options()).await.report;
    let offline = audit_dump(&options()).await;
    let mut expected: Vec<String> = offline
        .findings
        .iter()
        .filter(|f| !f.api_version.starts_with("monitoring."))
        .map(|f| format!("{}/{}", f.kind, f.name))
        .collect();
    // Only the (now absent) ServiceMonitor referenced this Secret.
    expected.insert(0, "Secret/alertmanager-creds".to_owned());
    let found: Vec<String> = report
        .findings
        .iter()
        .map(|f| format!("{}/{}", f.kind, f.name))
        .collect();
    assert_eq!(found, expected);
    assert!(report.notes.contains(
        &"monitoring.coreos.com/v1 ServiceMonitor is not served by the cluster: counted as none"
            .to_owned()
    ));
}

#[tokio::test]
async fn a_namespaced_live_audit_lists_only_that_namespace() {
    let double = seeded_double(true).await;
    let mut opts = options();
    opts.filters.namespace = Some("perf".into());
    let report = audit_live(&double, &opts).await.report;
    let names: Vec<String> = report.findings.iter().map(|f| f.name.clone()).collect();
    assert_eq!(
        names,
        [
            "loadgen",
            "old-loadgen",
            "loadgen-pods",
            "loadgen-alerts",
            "pv-released"
        ]
    );
    let paths: Vec<String> = double.requests().into_iter().map(|r| r.path).collect();
    assert!(paths.contains(&"/api/v1/namespaces/perf/configmaps".to_owned()));
    assert!(paths.contains(&"/api/v1/persistentvolumes".to_owned()));
    assert!(!paths.contains(&"/api/v1/configmaps".to_owned()));
}

#[tokio::test]
async fn an_unreachable_cluster_is_an_error_naming_the_list() {
    let double = ApiDouble::start().await.expect("double starts");
    let client = double.client().expect("client");
    double.shutdown().await;
    let source = Source::Cluster {
        client,
        context: None,
    };
    let err = kpress_audit::audit(source, &options())
        .await
        .expect_err("unreachable");
    assert!(
        err.to_string()
            .starts_with("cannot list networking.k8s.io/v1 Ingress from the cluster"),
        "{err}"
    );
}
