//! The offline audit of the fixture dump: exactly the expected findings (every trap in the dump
//! stays out), their reasons, costs and totals, and the user's filters.

use std::time::Duration;

use kpress_audit::model::{Inventory, Kind};
use kpress_audit::report::{Finding, Mode, SourceInfo};
use kpress_audit::rules::Category;
use kpress_audit::scope::LabelFilter;
use kpress_audit::AuditOptions;
use serde_json::json;

use crate::common::{audit_dump, options, rows, summary};

/// Every finding of the dump, in report order (namespace, category, kind, name; cluster-scoped
/// last).
const EXPECTED: [(&str, &str, &str, &str); 20] = [
    (
        "orphaned-prometheus-rule",
        "PrometheusRule",
        "monitoring",
        "old-namespace-rules",
    ),
    ("service-without-endpoints", "Service", "perf", "loadgen"),
    (
        "service-monitor-without-targets",
        "ServiceMonitor",
        "perf",
        "old-loadgen",
    ),
    (
        "pod-monitor-without-targets",
        "PodMonitor",
        "perf",
        "loadgen-pods",
    ),
    (
        "orphaned-prometheus-rule",
        "PrometheusRule",
        "perf",
        "loadgen-alerts",
    ),
    ("service-without-endpoints", "Service", "shop", "checkout"),
    (
        "load-balancer-without-endpoints",
        "Service",
        "shop",
        "checkout-lb",
    ),
    (
        "node-port-without-endpoints",
        "Service",
        "shop",
        "checkout-np",
    ),
    ("ingress-black-hole", "Ingress", "shop", "promo"),
    ("ingress-black-hole", "Ingress", "shop", "storefront"),
    ("workload-scaled-to-zero", "Deployment", "shop", "checkout"),
    ("orphaned-replica-set", "ReplicaSet", "shop", "batch-7f8c9d"),
    ("finished-job-without-ttl", "Job", "shop", "import-failed"),
    ("finished-job-without-ttl", "Job", "shop", "migrate-2024"),
    (
        "unused-persistent-volume-claim",
        "PersistentVolumeClaim",
        "shop",
        "scratch",
    ),
    ("unused-config-map", "ConfigMap", "shop", "fresh-flags"),
    (
        "unused-config-map",
        "ConfigMap",
        "shop",
        "old-feature-flags",
    ),
    ("unused-secret", "Secret", "shop", "old-api-key"),
    (
        "unused-persistent-volume",
        "PersistentVolume",
        "-",
        "pv-available",
    ),
    (
        "unused-persistent-volume",
        "PersistentVolume",
        "-",
        "pv-released",
    ),
];

fn find<'a>(findings: &'a [Finding], kind: &str, name: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.kind == kind && f.name == name)
        .unwrap_or_else(|| panic!("no finding for {kind} {name}"))
}

#[tokio::test]
async fn the_dump_yields_exactly_the_expected_findings() {
    let report = audit_dump(&options()).await;
    assert_eq!(summary(&report), rows(&EXPECTED));
    assert!(
        report.skipped_rules.is_empty(),
        "{:?}",
        report.skipped_rules
    );
}

/// Each trap of the dump, by the rule it must not trip. The exact list above already excludes
/// them; this names why each one is there.
#[tokio::test]
async fn no_false_positive_trap_is_reported() {
    let report = audit_dump(&options()).await;
    let traps = [
        (
            "Service",
            "shop",
            "legacy-db",
            "selector-less with hand-managed Endpoints",
        ),
        ("Service", "shop", "external-api", "ExternalName"),
        (
            "Service",
            "shop",
            "orders",
            "selects a Deployment that wants a replica: outage",
        ),
        (
            "Service",
            "shop",
            "peers",
            "publishNotReadyAddresses with a not-ready endpoint",
        ),
        (
            "Service",
            "default",
            "kubernetes",
            "selector-less, apiserver endpoints",
        ),
        ("Service", "kube-system", "old-metrics", "system namespace"),
        ("Ingress", "shop", "docs", "ExternalName backend"),
        (
            "Deployment",
            "shop",
            "worker",
            "scaled to zero by KEDA's HPA",
        ),
        (
            "ReplicaSet",
            "shop",
            "web-5c4d3b2a1",
            "rollout history of an existing Deployment",
        ),
        ("Job", "shop", "cleanup", "has ttlSecondsAfterFinished"),
        (
            "Job",
            "shop",
            "nightly-report-29100000",
            "owned by a CronJob",
        ),
        ("Job", "shop", "running-import", "not finished"),
        (
            "PersistentVolumeClaim",
            "shop",
            "web-cache",
            "mounted by a Deployment",
        ),
        (
            "PersistentVolumeClaim",
            "shop",
            "data-cache-0",
            "volumeClaimTemplates of a StatefulSet",
        ),
        (
            "PersistentVolumeClaim",
            "shop",
            "data-cache-3",
            "volumeClaimTemplates, higher ordinal",
        ),
        (
            "PersistentVolumeClaim",
            "shop",
            "report-out",
            "only a CronJob template mounts it",
        ),
        (
            "PersistentVolumeClaim",
            "shop",
            "toolbox-scratch-eph",
            "owned by its pod",
        ),
        (
            "PersistentVolume",
            "-",
            "pv-local-ssd1",
            "Available local disk",
        ),
        (
            "PersistentVolume",
            "-",
            "pv-prebound",
            "Available but pre-bound to a claim",
        ),
        (
            "ConfigMap",
            "shop",
            "kube-root-ca.crt",
            "injected into every namespace",
        ),
        ("ConfigMap", "shop", "web-config", "volume of a Deployment"),
        (
            "ConfigMap",
            "shop",
            "checkout-config",
            "env valueFrom in a Deployment at zero",
        ),
        (
            "ConfigMap",
            "shop",
            "nginx-tcp",
            "named in container args as ns/name",
        ),
        (
            "ConfigMap",
            "shop",
            "dashboards",
            "discovered by the grafana_dashboard label",
        ),
        ("ConfigMap", "shop", "operator-lock", "leader-election lock"),
        ("ConfigMap", "shop", "owned-config", "ownerReferences"),
        (
            "ConfigMap",
            "monitoring",
            "node-exporter-config",
            "projected volume of a DaemonSet",
        ),
        (
            "ConfigMap",
            "kube-system",
            "old-kube-config",
            "system namespace",
        ),
        ("Secret", "shop", "web-env", "envFrom"),
        ("Secret", "shop", "regcred", "imagePullSecrets"),
        ("Secret", "shop", "web-token-x7k2p", "service-account token"),
        (
            "Secret",
            "shop",
            "sh.helm.release.v1.web.v3",
            "Helm release",
        ),
        (
            "Secret",
            "shop",
            "sa-pull",
            "ServiceAccount imagePullSecrets",
        ),
        (
            "Secret",
            "shop",
            "checkout-db",
            "secretKeyRef in an init container",
        ),
        ("Secret", "shop", "promo-tls", "Ingress TLS"),
        (
            "Secret",
            "shop",
            "promo-basic-auth",
            "named in an Ingress annotation",
        ),
        ("Secret", "shop", "keep-me", "kpress.io/keep=true"),
        ("Secret", "shop", "owned-secret", "ownerReferences"),
        (
            "Secret",
            "shop",
            "shop-example-com-tls",
            "managed by cert-manager",
        ),
        (
            "Secret",
            "monitoring",
            "alertmanager-creds",
            "ServiceMonitor basicAuth",
        ),
        (
            "Secret",
            "monitoring",
            "node-exporter-tls",
            "projected volume of a DaemonSet",
        ),
        (
            "ServiceMonitor",
            "monitoring",
            "loadgen",
            "selects a Service in another namespace",
        ),
        (
            "PodMonitor",
            "shop",
            "nightly",
            "selects a CronJob's pod template",
        ),
        (
            "PrometheusRule",
            "monitoring",
            "kube-prometheus-rules",
            "its application still runs",
        ),
        (
            "PrometheusRule",
            "monitoring",
            "cluster-rules",
            "no namespace or application tie",
        ),
        (
            "PrometheusRule",
            "monitoring",
            "mixed-namespace-rules",
            "one expression's namespace exists",
        ),
    ];
    for (kind, ns, name, why) in traps {
        let reported = report.findings.iter().any(|f| {
            f.kind == kind && f.name == name && f.namespace.as_deref().unwrap_or("-") == ns
        });
        assert!(!reported, "{kind} {ns}/{name} is not a leftover: {why}");
    }
}

#[tokio::test]
async fn reasons_say_why_and_partial_black_holes_are_not_prunable() {
    let report = audit_dump(&options()).await;
    let f = &report.findings;
    let storefront = find(f, "Ingress", "storefront");
    assert_eq!(
        storefront.reason,
        "1 of 2 backends answer 503: shop.example.com/checkout -> Service checkout has no ready endpoint"
    );
    assert!(!storefront.prunable);
    let promo = find(f, "Ingress", "promo");
    assert!(promo.prunable);
    assert!(
        promo.reason.ends_with("Service promo does not exist"),
        "{}",
        promo.reason
    );
    let released = find(f, "PersistentVolume", "pv-released");
    assert!(!released.prunable);
    assert!(released
        .keep_reason
        .as_deref()
        .is_some_and(|r| r.starts_with("reclaimPolicy Retain")));
    assert!(find(f, "PersistentVolume", "pv-available").prunable);
    let orphan = find(f, "ReplicaSet", "batch-7f8c9d");
    assert!(
        orphan.reason.contains("owner Deployment batch"),
        "{}",
        orphan.reason
    );
    assert!(find(f, "PersistentVolumeClaim", "scratch")
        .reason
        .contains("its volume pv-scratch is not reclaimed on delete"));
    assert_eq!(
        find(f, "Job", "import-failed").reason.split(' ').next(),
        Some("Failed")
    );
    assert_eq!(
        find(f, "ConfigMap", "fresh-flags").age.as_deref(),
        Some("12h")
    );
    assert_eq!(
        find(f, "Secret", "old-api-key").age_seconds,
        Some(60 * 86_400 + 14 * 3_600)
    );
}

#[tokio::test]
async fn costs_add_up_and_show_their_arithmetic() {
    let report = audit_dump(&options()).await;
    let f = &report.findings;
    let lb = &find(f, "Service", "checkout-lb").cost;
    // One port: cluster IP + node port + one load-balancer address = 3 rules on each of 3 nodes.
    assert_eq!(
        (
            lb.monthly_usd,
            lb.load_balancers,
            lb.kube_proxy_rules,
            lb.dns_records
        ),
        (18.25, 1, 9, 2)
    );
    assert_eq!(
        lb.breakdown,
        [
            "1 load balancer(s) × 0.025 USD/h × 730 h = 18.25 USD/month",
            "3 kube-proxy REJECT rule(s) per node × 3 node(s) = 9 rules",
            "1 A/AAAA + 1 SRV DNS record(s)",
        ]
    );
    let np = &find(f, "Service", "checkout-np").cost;
    assert_eq!((np.kube_proxy_rules, np.dns_records), (6, 1));
    let scratch = &find(f, "PersistentVolumeClaim", "scratch").cost;
    assert_eq!((scratch.monthly_usd, scratch.storage_gib), (1.0, 10.0));
    assert_eq!(
        find(f, "PersistentVolume", "pv-released").cost.monthly_usd,
        5.0
    );
    let t = &report.totals;
    assert_eq!((t.findings, t.prunable), (20, 18));
    assert_eq!(t.monthly_usd, 26.25);
    assert_eq!((t.load_balancers, t.storage_gib), (1, 80.0));
    assert_eq!((t.kube_proxy_rules, t.dns_records), (21, 7));
    assert_eq!(
        t.by_category.get(&Category::OrphanedPrometheusRule),
        Some(&2)
    );
    let a = &report.assumptions;
    assert_eq!(
        (a.nodes, a.nodes_counted, a.hours_per_month),
        (3, true, 730.0)
    );
    assert!(a
        .notes
        .contains(&"3 node(s), counted from Node objects".to_owned()));
}

#[tokio::test]
async fn prices_are_configurable() {
    let mut opts = options();
    opts.prices.lb_hourly_usd = 0.05;
    opts.prices.storage_gib_month_usd = 0.2;
    let report = audit_dump(&opts).await;
    assert_eq!(report.totals.monthly_usd, 36.5 + 16.0);
}

#[tokio::test]
async fn filters_narrow_the_report() {
    let with = |change: fn(&mut AuditOptions)| {
        let mut opts = options();
        change(&mut opts);
        opts
    };
    let names = |report: &kpress_audit::report::Report| -> Vec<String> {
        report
            .findings
            .iter()
            .map(|f| format!("{}/{}", f.kind, f.name))
            .collect()
    };

    let old = audit_dump(&with(|o| {
        o.filters.older_than = Some(Duration::from_secs(86_400))
    }))
    .await;
    assert_eq!(old.findings.len(), 19);
    assert!(!names(&old).contains(&"ConfigMap/fresh-flags".to_owned()));

    let no_perf = audit_dump(&with(|o| {
        o.filters.exclude_namespaces = vec!["perf".into()]
    }))
    .await;
    assert_eq!(
        no_perf.findings.len(),
        15,
        "perf's 4 findings and its claim's volume"
    );

    let no_team = audit_dump(&with(|o| {
        o.filters.exclude_labels = vec![LabelFilter {
            key: "team".into(),
            value: Some("perf".into()),
        }]
    }))
    .await;
    assert!(!names(&no_team).contains(&"Service/loadgen".to_owned()));
    assert_eq!(no_team.findings.len(), 19);

    let perf = audit_dump(&with(|o| o.filters.namespace = Some("perf".into()))).await;
    assert_eq!(
        names(&perf),
        [
            "Service/loadgen",
            "ServiceMonitor/old-loadgen",
            "PodMonitor/loadgen-pods",
            "PrometheusRule/loadgen-alerts",
            "PersistentVolume/pv-released"
        ]
    );

    let all = names(&audit_dump(&options()).await);
    let system = audit_dump(&with(|o| o.filters.include_system_namespaces = true)).await;
    let extra: Vec<String> = names(&system)
        .into_iter()
        .filter(|n| !all.contains(n))
        .collect();
    assert_eq!(extra, ["Service/old-metrics", "ConfigMap/old-kube-config"]);
}

fn offline_source() -> SourceInfo {
    SourceInfo {
        mode: Mode::Offline,
        inputs: Vec::new(),
        namespace: None,
    }
}

#[test]
fn missing_evidence_skips_rules_instead_of_guessing() {
    let mut inventory = Inventory::default();
    inventory
        .insert(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        }))
        .expect("inserted");
    inventory
        .insert(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "shop"},
        }))
        .expect("inserted");
    let report = kpress_audit::evaluate(&inventory, offline_source(), &options());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let skipped: Vec<Category> = report.skipped_rules.iter().map(|s| s.category).collect();
    assert_eq!(
        skipped,
        [
            Category::ServiceWithoutEndpoints,
            Category::LoadBalancerWithoutEndpoints,
            Category::NodePortWithoutEndpoints,
            Category::UnusedConfigMap,
        ]
    );
    assert!(report.skipped_rules[0].reason.contains("EndpointSlice"));

    inventory.mark_covered(Kind::EndpointSlice);
    let judged = kpress_audit::evaluate(&inventory, offline_source(), &options());
    assert_eq!(judged.findings.len(), 1);
    assert_eq!(
        judged.assumptions.notes[3],
        "the input has no Node objects: assumed 1 node(s) (--nodes); kube-proxy rule counts scale with the real node count"
    );
}

#[test]
fn the_assumed_node_count_scales_kube_proxy_rules() {
    let mut inventory = Inventory::default();
    inventory
        .insert(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 443}]},
        }))
        .expect("inserted");
    inventory.mark_covered(Kind::EndpointSlice);
    let mut opts = options();
    opts.assumed_nodes = 10;
    let report = kpress_audit::evaluate(&inventory, offline_source(), &opts);
    assert_eq!(report.findings[0].cost.kube_proxy_rules, 20);
    assert!(!report.assumptions.nodes_counted);
}
