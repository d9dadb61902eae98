//! The rules: one pure function per category, from the inventory to candidate findings. A rule
//! with objects to judge but without the evidence it needs (an input with Services but no
//! EndpointSlices) says so instead of guessing, because a partial dump would otherwise make
//! every Service a "leftover".

mod config;
mod ingress;
mod monitoring;
mod services;
mod storage;
mod workloads;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cost::Holds;
use crate::model::{Inventory, Kind, ObjectKey};

pub use config::{unused_config_maps, unused_secrets};
pub use ingress::ingress_black_holes;
pub use monitoring::{
    orphaned_prometheus_rules, pod_monitors_without_targets, service_monitors_without_targets,
};
pub use services::{
    cluster_ip_services_without_endpoints, load_balancers_without_endpoints,
    node_ports_without_endpoints,
};
pub use storage::{unused_claims, unused_volumes};
pub use workloads::{finished_jobs_without_ttl, orphaned_replica_sets, workloads_scaled_to_zero};

/// Why an object is a leftover.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// A ClusterIP or headless Service with no ready endpoint.
    ServiceWithoutEndpoints,
    /// A `type: LoadBalancer` Service with no ready endpoint.
    LoadBalancerWithoutEndpoints,
    /// A `type: NodePort` Service with no ready endpoint.
    NodePortWithoutEndpoints,
    /// An Ingress with a backend whose Service is missing or has no ready endpoint.
    IngressBlackHole,
    /// A Deployment or StatefulSet scaled to zero.
    WorkloadScaledToZero,
    /// A ReplicaSet at zero with no owner, or whose owner Deployment is gone.
    OrphanedReplicaSet,
    /// A finished Job without `ttlSecondsAfterFinished`.
    FinishedJobWithoutTtl,
    /// A PersistentVolumeClaim that no pod mounts and no workload template names.
    UnusedPersistentVolumeClaim,
    /// A PersistentVolume that is `Released` or `Available`.
    UnusedPersistentVolume,
    /// A ConfigMap nothing references.
    UnusedConfigMap,
    /// A Secret nothing references.
    UnusedSecret,
    /// A ServiceMonitor whose selector matches no Service.
    ServiceMonitorWithoutTargets,
    /// A PodMonitor whose selector matches no pod and no workload template.
    PodMonitorWithoutTargets,
    /// A PrometheusRule for an application or namespace that no longer exists.
    OrphanedPrometheusRule,
}

impl Category {
    /// The kebab-case name used in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::ServiceWithoutEndpoints => "service-without-endpoints",
            Category::LoadBalancerWithoutEndpoints => "load-balancer-without-endpoints",
            Category::NodePortWithoutEndpoints => "node-port-without-endpoints",
            Category::IngressBlackHole => "ingress-black-hole",
            Category::WorkloadScaledToZero => "workload-scaled-to-zero",
            Category::OrphanedReplicaSet => "orphaned-replica-set",
            Category::FinishedJobWithoutTtl => "finished-job-without-ttl",
            Category::UnusedPersistentVolumeClaim => "unused-persistent-volume-claim",
            Category::UnusedPersistentVolume => "unused-persistent-volume",
            Category::UnusedConfigMap => "unused-config-map",
            Category::UnusedSecret => "unused-secret",
            Category::ServiceMonitorWithoutTargets => "service-monitor-without-targets",
            Category::PodMonitorWithoutTargets => "pod-monitor-without-targets",
            Category::OrphanedPrometheusRule => "orphaned-prometheus-rule",
        }
    }
}

/// A leftover as a rule sees it, before scope filters and pricing.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// The object.
    pub key: ObjectKey,
    /// Its metadata (age, labels, uid, resourceVersion).
    pub meta: &'a ObjectMeta,
    /// The category.
    pub category: Category,
    /// Why it is a leftover, in one sentence.
    pub reason: String,
    /// Why `--prune` must not delete it even though it is a leftover; `None` if it may.
    pub keep: Option<String>,
    /// What it holds, for pricing.
    pub holds: Holds,
    /// The namespace namespace filters judge it by: its own, or for a PersistentVolume the
    /// namespace of its claim.
    pub scope_namespace: Option<String>,
}

impl<'a> Candidate<'a> {
    fn new(kind: Kind, meta: &'a ObjectMeta, category: Category, reason: String) -> Self {
        let namespace = kind
            .namespaced()
            .then(|| meta.namespace.clone().unwrap_or_else(|| "default".into()));
        Self {
            key: ObjectKey {
                kind,
                namespace: namespace.clone(),
                name: meta.name.clone().unwrap_or_default(),
            },
            meta,
            category,
            reason,
            keep: None,
            holds: Holds::default(),
            scope_namespace: namespace,
        }
    }
}

/// A rule that could not judge, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped(pub String);

/// What a rule returns.
pub type RuleResult<'a> = Result<Vec<Candidate<'a>>, Skipped>;

/// A rule function.
pub type Rule = for<'a> fn(&'a Inventory) -> RuleResult<'a>;

/// Every rule, in report order.
pub const RULES: [(Category, Rule); 14] = [
    (
        Category::ServiceWithoutEndpoints,
        cluster_ip_services_without_endpoints,
    ),
    (
        Category::LoadBalancerWithoutEndpoints,
        load_balancers_without_endpoints,
    ),
    (
        Category::NodePortWithoutEndpoints,
        node_ports_without_endpoints,
    ),
    (Category::IngressBlackHole, ingress_black_holes),
    (Category::WorkloadScaledToZero, workloads_scaled_to_zero),
    (Category::OrphanedReplicaSet, orphaned_replica_sets),
    (Category::FinishedJobWithoutTtl, finished_jobs_without_ttl),
    (Category::UnusedPersistentVolumeClaim, unused_claims),
    (Category::UnusedPersistentVolume, unused_volumes),
    (Category::UnusedConfigMap, unused_config_maps),
    (Category::UnusedSecret, unused_secrets),
    (
        Category::ServiceMonitorWithoutTargets,
        service_monitors_without_targets,
    ),
    (
        Category::PodMonitorWithoutTargets,
        pod_monitors_without_targets,
    ),
    (Category::OrphanedPrometheusRule, orphaned_prometheus_rules),
];

/// Fails with a [`Skipped`] naming the first kind in `kinds` the inventory does not cover.
fn require(inv: &Inventory, needs: &str, kinds: &[Kind]) -> Result<(), Skipped> {
    match kinds.iter().find(|k| !inv.covers(**k)) {
        Some(missing) => Err(Skipped(format!(
            "the input has no {missing} objects, which this rule needs to {needs}"
        ))),
        None => Ok(()),
    }
}

/// Objects with an owner are managed by it (and garbage-collected with it), never leftovers
/// on their own.
fn owned(meta: &ObjectMeta) -> bool {
    meta.owner_references
        .as_ref()
        .is_some_and(|o| !o.is_empty())
}

fn labels(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

/// Pod template labels of the workloads in `ns`, each with whether it currently wants pods
/// (replicas above zero, a DaemonSet, an unsuspended CronJob, an unfinished Job).
fn templates_in<'a>(
    inv: &'a Inventory,
    ns: &'a str,
) -> impl Iterator<Item = (BTreeMap<String, String>, bool)> + 'a {
    let in_ns = move |meta: &ObjectMeta| meta.namespace.as_deref().unwrap_or("default") == ns;
    let template_labels = |t: &k8s_openapi::api::core::v1::PodTemplateSpec| {
        t.metadata.as_ref().map(labels).unwrap_or_default()
    };
    let deployments = inv
        .deployments
        .iter()
        .filter(move |d| in_ns(&d.metadata))
        .map(move |d| {
            (
                template_labels(&d.spec.template),
                d.spec.replicas.unwrap_or(1) > 0,
            )
        });
    let stateful_sets = inv
        .stateful_sets
        .iter()
        .filter(move |s| in_ns(&s.metadata))
        .map(move |s| {
            (
                template_labels(&s.spec.template),
                s.spec.replicas.unwrap_or(1) > 0,
            )
        });
    let daemon_sets = inv
        .daemon_sets
        .iter()
        .filter(move |d| in_ns(&d.metadata))
        .map(move |d| (template_labels(&d.spec.template), true));
    let replica_sets = inv
        .replica_sets
        .iter()
        .filter(move |r| in_ns(&r.metadata))
        .filter_map(move |r| {
            let template = r.spec.template.as_ref()?;
            Some((template_labels(template), r.spec.replicas.unwrap_or(1) > 0))
        });
    let jobs = inv
        .jobs
        .iter()
        .filter(move |j| in_ns(&j.metadata))
        .filter_map(move |j| {
            let spec = j.spec.as_ref()?;
            Some((template_labels(&spec.template), !workloads::finished(j)))
        });
    let cron_jobs = inv
        .cron_jobs
        .iter()
        .filter(move |c| in_ns(&c.metadata))
        .filter_map(move |c| {
            let job = c.spec.job_template.spec.as_ref()?;
            Some((template_labels(&job.template), c.spec.suspend != Some(true)))
        });
    deployments
        .chain(stateful_sets)
        .chain(daemon_sets)
        .chain(replica_sets)
        .chain(jobs)
        .chain(cron_jobs)
}
