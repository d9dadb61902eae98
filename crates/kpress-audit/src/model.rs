//! The object inventory the rules run on: typed k8s-openapi objects for built-in kinds,
//! `DynamicObject`s for the monitoring CRDs, and the raw JSON of every object, which is what a
//! backup must restore (typed round-trips drop fields newer than k8s-openapi knows).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, Secret,
    Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::DynamicObject;
use serde_json::Value;

use crate::error::Error;

/// Every kind the audit reads. The order is the prune order: referrers before what they refer
/// to, so that a partial prune never leaves a referrer pointing at a deleted object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `networking.k8s.io/v1 Ingress`.
    Ingress,
    /// `monitoring.coreos.com/v1 ServiceMonitor`.
    ServiceMonitor,
    /// `monitoring.coreos.com/v1 PodMonitor`.
    PodMonitor,
    /// `monitoring.coreos.com/v1 PrometheusRule`.
    PrometheusRule,
    /// `v1 Service`.
    Service,
    /// `apps/v1 Deployment`.
    Deployment,
    /// `apps/v1 StatefulSet`.
    StatefulSet,
    /// `apps/v1 ReplicaSet`.
    ReplicaSet,
    /// `apps/v1 DaemonSet`.
    DaemonSet,
    /// `batch/v1 CronJob`.
    CronJob,
    /// `batch/v1 Job`.
    Job,
    /// `v1 Pod`.
    Pod,
    /// `autoscaling/v2 HorizontalPodAutoscaler`.
    HorizontalPodAutoscaler,
    /// `v1 ServiceAccount`.
    ServiceAccount,
    /// `v1 ConfigMap`.
    ConfigMap,
    /// `v1 Secret`.
    Secret,
    /// `v1 PersistentVolumeClaim`.
    PersistentVolumeClaim,
    /// `v1 PersistentVolume`.
    PersistentVolume,
    /// `discovery.k8s.io/v1 EndpointSlice`.
    EndpointSlice,
    /// `v1 Endpoints`.
    Endpoints,
    /// `v1 Node`.
    Node,
    /// `v1 Namespace`.
    Namespace,
}

impl Kind {
    /// All kinds, in prune order.
    pub const ALL: [Kind; 22] = [
        Kind::Ingress,
        Kind::ServiceMonitor,
        Kind::PodMonitor,
        Kind::PrometheusRule,
        Kind::Service,
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::ReplicaSet,
        Kind::DaemonSet,
        Kind::CronJob,
        Kind::Job,
        Kind::Pod,
        Kind::HorizontalPodAutoscaler,
        Kind::ServiceAccount,
        Kind::ConfigMap,
        Kind::Secret,
        Kind::PersistentVolumeClaim,
        Kind::PersistentVolume,
        Kind::EndpointSlice,
        Kind::Endpoints,
        Kind::Node,
        Kind::Namespace,
    ];

    /// (group, version, kind, plural, namespaced).
    fn parts(self) -> (&'static str, &'static str, &'static str, &'static str, bool) {
        match self {
            Kind::Ingress => ("networking.k8s.io", "v1", "Ingress", "ingresses", true),
            Kind::ServiceMonitor => (
                "monitoring.coreos.com",
                "v1",
                "ServiceMonitor",
                "servicemonitors",
                true,
            ),
            Kind::PodMonitor => (
                "monitoring.coreos.com",
                "v1",
                "PodMonitor",
                "podmonitors",
                true,
            ),
            Kind::PrometheusRule => (
                "monitoring.coreos.com",
                "v1",
                "PrometheusRule",
                "prometheusrules",
                true,
            ),
            Kind::Service => ("", "v1", "Service", "services", true),
            Kind::Deployment => ("apps", "v1", "Deployment", "deployments", true),
            Kind::StatefulSet => ("apps", "v1", "StatefulSet", "statefulsets", true),
            Kind::ReplicaSet => ("apps", "v1", "ReplicaSet", "replicasets", true),
            Kind::DaemonSet => ("apps", "v1", "DaemonSet", "daemonsets", true),
            Kind::CronJob => ("batch", "v1", "CronJob", "cronjobs", true),
            Kind::Job => ("batch", "v1", "Job", "jobs", true),
            Kind::Pod => ("", "v1", "Pod", "pods", true),
            Kind::HorizontalPodAutoscaler => (
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
                true,
            ),
            Kind::ServiceAccount => ("", "v1", "ServiceAccount", "serviceaccounts", true),
            Kind::ConfigMap => ("", "v1", "ConfigMap", "configmaps", true),
            Kind::Secret => ("", "v1", "Secret", "secrets", true),
            Kind::PersistentVolumeClaim => (
                "",
                "v1",
                "PersistentVolumeClaim",
                "persistentvolumeclaims",
                true,
            ),
            Kind::PersistentVolume => ("", "v1", "PersistentVolume", "persistentvolumes", false),
            Kind::EndpointSlice => (
                "discovery.k8s.io",
                "v1",
                "EndpointSlice",
                "endpointslices",
                true,
            ),
            Kind::Endpoints => ("", "v1", "Endpoints", "endpoints", true),
            Kind::Node => ("", "v1", "Node", "nodes", false),
            Kind::Namespace => ("", "v1", "Namespace", "namespaces", false),
        }
    }

    /// The kind's name, e.g. `Deployment`.
    pub fn name(self) -> &'static str {
        self.parts().2
    }

    /// The `apiVersion` the audit reads this kind at.
    pub fn api_version(self) -> String {
        let (group, version, ..) = self.parts();
        if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        self.parts().4
    }

    /// Whether a cluster may lack this kind entirely (a CRD, or an API version an old cluster
    /// does not serve), so that a `404` on its list means "none" rather than an error.
    pub fn optional(self) -> bool {
        matches!(
            self,
            Kind::ServiceMonitor
                | Kind::PodMonitor
                | Kind::PrometheusRule
                | Kind::HorizontalPodAutoscaler
        )
    }

    /// The `kube` resource description used to list and delete this kind.
    pub fn api_resource(self) -> kube::api::ApiResource {
        let (group, version, kind, plural, _) = self.parts();
        kube::api::ApiResource {
            group: group.to_owned(),
            version: version.to_owned(),
            api_version: self.api_version(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
        }
    }

    /// The kind an object's `apiVersion` and `kind` denote. The version is not compared for
    /// groups whose objects the audit reads only by stable fields (HPA `scaleTargetRef`).
    pub fn of(api_version: &str, kind: &str) -> Option<Kind> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        Kind::ALL.into_iter().find(|k| {
            let (g, _, name, ..) = k.parts();
            name == kind
                && g == group
                && (*k == Kind::HorizontalPodAutoscaler || k.api_version() == api_version)
        })
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Identifies one object of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// The kind.
    pub kind: Kind,
    /// The namespace; `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Everything the audit knows about a cluster, live or from a dump.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Namespaces.
    pub namespaces: Vec<Namespace>,
    /// Nodes (counted for kube-proxy costs).
    pub nodes: Vec<Node>,
    /// Pods.
    pub pods: Vec<Pod>,
    /// Services.
    pub services: Vec<Service>,
    /// Legacy Endpoints.
    pub endpoints: Vec<Endpoints>,
    /// EndpointSlices.
    pub endpoint_slices: Vec<EndpointSlice>,
    /// Ingresses.
    pub ingresses: Vec<Ingress>,
    /// Deployments.
    pub deployments: Vec<Deployment>,
    /// StatefulSets.
    pub stateful_sets: Vec<StatefulSet>,
    /// DaemonSets.
    pub daemon_sets: Vec<DaemonSet>,
    /// ReplicaSets.
    pub replica_sets: Vec<ReplicaSet>,
    /// Jobs.
    pub jobs: Vec<Job>,
    /// CronJobs.
    pub cron_jobs: Vec<CronJob>,
    /// HorizontalPodAutoscalers (KEDA scales to zero through one).
    pub autoscalers: Vec<HorizontalPodAutoscaler>,
    /// PersistentVolumeClaims.
    pub claims: Vec<PersistentVolumeClaim>,
    /// PersistentVolumes.
    pub volumes: Vec<PersistentVolume>,
    /// ConfigMaps.
    pub config_maps: Vec<ConfigMap>,
    /// Secrets.
    pub secrets: Vec<Secret>,
    /// ServiceAccounts.
    pub service_accounts: Vec<ServiceAccount>,
    /// `monitoring.coreos.com/v1` ServiceMonitors.
    pub service_monitors: Vec<DynamicObject>,
    /// `monitoring.coreos.com/v1` PodMonitors.
    pub pod_monitors: Vec<DynamicObject>,
    /// `monitoring.coreos.com/v1` PrometheusRules.
    pub prometheus_rules: Vec<DynamicObject>,
    raw: BTreeMap<ObjectKey, Value>,
    covered: BTreeSet<Kind>,
    ignored: BTreeMap<String, usize>,
    notes: Vec<String>,
}

impl Inventory {
    /// Adds one object. Objects of kinds the audit does not read are counted and ignored; a
    /// second copy of an object already present (the same dump loaded twice) is ignored.
    pub fn insert(&mut self, object: Value) -> Result<(), Error> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind_name = object["kind"].as_str().unwrap_or_default();
        let Some(kind) = Kind::of(api_version, kind_name) else {
            *self
                .ignored
                .entry(format!("{api_version} {kind_name}"))
                .or_default() += 1;
            return Ok(());
        };
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        if name.is_empty() {
            return Err(Error::Invalid {
                what: format!("{kind_name} object"),
                message: "metadata.name is missing".into(),
            });
        }
        // Hand-written files may omit the namespace of a namespaced object, as kubectl allows.
        let namespace = kind
            .namespaced()
            .then(|| match object["metadata"]["namespace"].as_str() {
                Some(ns) if !ns.is_empty() => ns.to_owned(),
                _ => "default".to_owned(),
            });
        let key = ObjectKey {
            kind,
            namespace,
            name: name.to_owned(),
        };
        if self.raw.contains_key(&key) {
            return Ok(());
        }
        let what = key.to_string();
        let invalid = |e: serde_json::Error| Error::Invalid {
            what: what.clone(),
            message: e.to_string(),
        };
        let typed = object.clone();
        match kind {
            Kind::Namespace => self
                .namespaces
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::Node => self
                .nodes
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::Pod => self
                .pods
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::Service => self
                .services
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::Endpoints => self
                .endpoints
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::EndpointSlice => self
                .endpoint_slices
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::Ingress => self
                .ingresses
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::Deployment => self
                .deployments
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::StatefulSet => self
                .stateful_sets
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::DaemonSet => self
                .daemon_sets
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::ReplicaSet => self
                .replica_sets
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::Job => self
                .jobs
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::CronJob => self
                .cron_jobs
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::HorizontalPodAutoscaler => self
                .autoscalers
                .push(serde_json::from_value(hpa_as_v2(typed)).map_err(invalid)?),
            Kind::PersistentVolumeClaim => self
                .claims
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::PersistentVolume => self
                .volumes
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::ConfigMap => self
                .config_maps
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::Secret => self
                .secrets
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::ServiceAccount => self
                .service_accounts
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::ServiceMonitor => self
                .service_monitors
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::PodMonitor => self
                .pod_monitors
                .push(serde_json::from_value(typed).map_err(invalid)?),
            Kind::PrometheusRule => self
                .prometheus_rules
                .push(serde_json::from_value(typed).map_err(invalid)?),
        }
        self.covered.insert(kind);
        self.raw.insert(key, object);
        Ok(())
    }

    /// Records that every object of `kind` in scope was read, even if there were none: a live
    /// list, or a CRD that is not installed. Offline, a kind counts as covered once the input
    /// holds one object of it, because an empty dump cannot tell "none" from "not dumped".
    pub fn mark_covered(&mut self, kind: Kind) {
        self.covered.insert(kind);
    }

    /// Whether the inventory holds every object of `kind` (see [`Inventory::mark_covered`]).
    pub fn covers(&self, kind: Kind) -> bool {
        self.covered.contains(&kind)
    }

    /// The object exactly as it was read.
    pub fn raw(&self, key: &ObjectKey) -> Option<&Value> {
        self.raw.get(key)
    }

    /// Every object exactly as it was read, by key.
    pub fn objects(&self) -> impl Iterator<Item = (&ObjectKey, &Value)> {
        self.raw.iter()
    }

    /// Counts of objects of kinds the audit does not read, by `apiVersion kind`.
    pub fn ignored(&self) -> &BTreeMap<String, usize> {
        &self.ignored
    }

    /// Adds a note about how the inventory was read (e.g. a kind the client may not list).
    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Notes about how the inventory was read.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

/// `autoscaling/v1` HPAs share `scaleTargetRef` with v2, the only field the audit reads; the
/// v1-only fields are dropped so the object deserializes as v2.
fn hpa_as_v2(mut object: Value) -> Value {
    if let Some(spec) = object["spec"].as_object_mut() {
        spec.retain(|k, _| matches!(k.as_str(), "scaleTargetRef" | "minReplicas" | "maxReplicas"));
    }
    if let Some(root) = object.as_object_mut() {
        root.remove("status");
    }
    object
}
