//! The resource types the double serves. A type that is not registered answers `404` on every
//! path, exactly like a CRD that is not installed, so tests choose which API groups "exist".

/// One served resource type, identified by group, version and plural.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// API version within the group, e.g. `v1`.
    pub version: String,
    /// Object kind, e.g. `Service`.
    pub kind: String,
    /// URL plural, e.g. `services`.
    pub plural: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
}

impl ResourceType {
    /// The Prometheus operator's monitoring CRDs (ServiceMonitor, PodMonitor,
    /// PrometheusRule), which a test registers to simulate a cluster that has them.
    pub fn monitoring_crds() -> Vec<ResourceType> {
        [
            ("ServiceMonitor", "servicemonitors"),
            ("PodMonitor", "podmonitors"),
            ("PrometheusRule", "prometheusrules"),
        ]
        .into_iter()
        .map(|(kind, plural)| ResourceType::new("monitoring.coreos.com", "v1", kind, plural, true))
        .collect()
    }

    /// A resource type; `group` is empty for the core group.
    pub fn new(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            namespaced,
        }
    }

    /// `group/version`, or just `version` for the core group, as in `apiVersion`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The built-in types most controllers and tools touch. CRDs are registered by the test.
    pub fn builtins() -> Vec<Self> {
        let t = Self::new;
        vec![
            t("", "v1", "Namespace", "namespaces", false),
            t("", "v1", "Node", "nodes", false),
            t("", "v1", "PersistentVolume", "persistentvolumes", false),
            t("", "v1", "Pod", "pods", true),
            t("", "v1", "Service", "services", true),
            t("", "v1", "Endpoints", "endpoints", true),
            t("", "v1", "ConfigMap", "configmaps", true),
            t("", "v1", "Secret", "secrets", true),
            t("", "v1", "ServiceAccount", "serviceaccounts", true),
            t(
                "",
                "v1",
                "PersistentVolumeClaim",
                "persistentvolumeclaims",
                true,
            ),
            t("", "v1", "Event", "events", true),
            t("apps", "v1", "Deployment", "deployments", true),
            t("apps", "v1", "StatefulSet", "statefulsets", true),
            t("apps", "v1", "DaemonSet", "daemonsets", true),
            t("apps", "v1", "ReplicaSet", "replicasets", true),
            t("batch", "v1", "Job", "jobs", true),
            t("batch", "v1", "CronJob", "cronjobs", true),
            t(
                "discovery.k8s.io",
                "v1",
                "EndpointSlice",
                "endpointslices",
                true,
            ),
            t("networking.k8s.io", "v1", "Ingress", "ingresses", true),
            t(
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
                true,
            ),
            t("coordination.k8s.io", "v1", "Lease", "leases", true),
        ]
    }
}
