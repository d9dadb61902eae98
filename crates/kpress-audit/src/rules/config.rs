//! ConfigMaps and Secrets nothing references (see `refs` for every reference followed).
//!
//! Not leftovers, whatever references say: objects injected into every namespace
//! (`kube-root-ca.crt` and the service-mesh/OpenShift CA bundles), service-account tokens,
//! bootstrap tokens, Helm release records (Secrets of type `helm.sh/release.v1`, ConfigMaps
//! labelled `owner=helm`), certificates managed by cert-manager, leader-election locks, and
//! Grafana dashboards/datasources that a sidecar discovers by label rather than by name.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{owned, require, Candidate, Category, RuleResult};
use crate::model::{Inventory, Kind};
use crate::refs::{ns_of, References};

/// ConfigMaps that controllers publish into every namespace.
const INJECTED_CONFIG_MAPS: [&str; 3] = [
    "kube-root-ca.crt",
    "openshift-service-ca.crt",
    "istio-ca-root-cert",
];

/// Secret types whose objects are managed by Kubernetes or a release tool.
const MANAGED_SECRET_TYPES: [&str; 3] = [
    "kubernetes.io/service-account-token",
    "bootstrap.kubernetes.io/token",
    "helm.sh/release.v1",
];

/// Labels by which sidecars discover ConfigMaps and Secrets without naming them.
const DISCOVERY_LABELS: [&str; 3] = ["grafana_dashboard", "grafana_datasource", "grafana_alert"];

fn discovered_by_label(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .is_some_and(|l| DISCOVERY_LABELS.iter().any(|k| l.contains_key(*k)))
}

fn annotated(meta: &ObjectMeta, key: &str) -> bool {
    meta.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(key))
}

fn labelled(meta: &ObjectMeta, key: &str, value: &str) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .is_some_and(|v| v == value)
}

/// ConfigMaps no pod, template or other object references.
pub fn unused_config_maps(inv: &Inventory) -> RuleResult<'_> {
    if inv.config_maps.is_empty() {
        return Ok(Vec::new());
    }
    require(inv, "see which ConfigMaps pods use", &[Kind::Pod])?;
    let refs = References::of(inv);
    Ok(inv
        .config_maps
        .iter()
        .filter(|cm| {
            let meta = &cm.metadata;
            let name = meta.name.as_deref().unwrap_or_default();
            !owned(meta)
                && !INJECTED_CONFIG_MAPS.contains(&name)
                && !annotated(meta, "control-plane.alpha.kubernetes.io/leader")
                && !labelled(meta, "owner", "helm")
                && !discovered_by_label(meta)
                && !refs.config_map(&ns_of(*cm), name)
        })
        .map(|cm| {
            let keys = cm.data.as_ref().map_or(0, BTreeMap::len)
                + cm.binary_data.as_ref().map_or(0, BTreeMap::len);
            Candidate::new(
                Kind::ConfigMap,
                &cm.metadata,
                Category::UnusedConfigMap,
                format!("{keys} key(s) that no pod, workload template or other object references"),
            )
        })
        .collect())
}

/// Secrets no pod, template, ServiceAccount, Ingress, volume or monitor references.
pub fn unused_secrets(inv: &Inventory) -> RuleResult<'_> {
    if inv.secrets.is_empty() {
        return Ok(Vec::new());
    }
    require(inv, "see which Secrets pods use", &[Kind::Pod])?;
    let refs = References::of(inv);
    Ok(inv
        .secrets
        .iter()
        .filter(|s| {
            let meta = &s.metadata;
            let ty = s.type_.as_deref().unwrap_or("Opaque");
            !owned(meta)
                && !MANAGED_SECRET_TYPES.contains(&ty)
                && !annotated(meta, "cert-manager.io/certificate-name")
                && !annotated(meta, "kubernetes.io/service-account.name")
                && !discovered_by_label(meta)
                && !refs.secret(&ns_of(*s), meta.name.as_deref().unwrap_or_default())
        })
        .map(|s| {
            let ty = s.type_.as_deref().unwrap_or("Opaque");
            Candidate::new(
                Kind::Secret,
                &s.metadata,
                Category::UnusedSecret,
                format!("{ty} Secret that no pod, workload template, ServiceAccount, Ingress or monitor references"),
            )
        })
        .collect())
}
