//! Who references what. A ConfigMap, Secret or claim is only a leftover if nothing can still
//! use it, and most uses are in pod specs: of live pods, but also of every workload template
//! whose pods do not exist right now (a CronJob between runs, a Deployment at zero). One
//! function walks a `PodSpec`; every pod and template goes through it.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar, PodSpec, PodTemplateSpec};
use kube::ResourceExt;
use serde_json::Value;

use crate::model::Inventory;

/// A (namespace, name) pair.
pub type NsName = (String, String);

fn pair(ns: &str, name: &str) -> NsName {
    (ns.to_owned(), name.to_owned())
}

/// Every reference found in the inventory.
#[derive(Debug, Default)]
pub struct References {
    config_maps: BTreeSet<NsName>,
    secrets: BTreeSet<NsName>,
    claims: BTreeSet<NsName>,
    /// Names that appear as words in container arguments, commands, literal environment values
    /// and Ingress annotations (`--configmap=ns/name`, `auth-secret: name`): a controller may
    /// read an object named there, so such an object is never called unreferenced.
    mentions: BTreeSet<NsName>,
}

impl References {
    /// Collects references from pods, workload templates, ServiceAccounts, Ingresses,
    /// PersistentVolumes and monitoring objects.
    pub fn of(inv: &Inventory) -> Self {
        let mut refs = Self::default();
        for pod in &inv.pods {
            if let Some(spec) = &pod.spec {
                refs.walk_pod_spec(&ns_of(pod), spec);
            }
        }
        let templates =
            inv.deployments
                .iter()
                .map(|d| (ns_of(d), &d.spec.template))
                .chain(
                    inv.stateful_sets
                        .iter()
                        .map(|s| (ns_of(s), &s.spec.template)),
                )
                .chain(inv.daemon_sets.iter().map(|d| (ns_of(d), &d.spec.template)))
                .chain(
                    inv.replica_sets
                        .iter()
                        .filter_map(|r| Some((ns_of(r), r.spec.template.as_ref()?))),
                )
                .chain(
                    inv.jobs
                        .iter()
                        .filter_map(|j| Some((ns_of(j), &j.spec.as_ref()?.template))),
                )
                .chain(inv.cron_jobs.iter().filter_map(|c| {
                    Some((ns_of(c), &c.spec.job_template.spec.as_ref()?.template))
                }));
        for (ns, template) in templates {
            refs.walk_template(&ns, template);
        }
        for sa in &inv.service_accounts {
            let ns = ns_of(sa);
            for secret in sa.secrets.iter().flatten() {
                if let Some(name) = &secret.name {
                    refs.secrets.insert(pair(&ns, name));
                }
            }
            for secret in sa.image_pull_secrets.iter().flatten() {
                refs.secrets.insert(pair(&ns, &secret.name));
            }
        }
        for ingress in &inv.ingresses {
            let ns = ns_of(ingress);
            let tls = ingress.spec.iter().flat_map(|s| s.tls.iter().flatten());
            for name in tls.filter_map(|t| t.secret_name.as_ref()) {
                refs.secrets.insert(pair(&ns, name));
            }
            for value in ingress.annotations().values() {
                refs.mention(&ns, value);
            }
        }
        for pv in &inv.volumes {
            let csi = pv.spec.as_ref().and_then(|s| s.csi.as_ref());
            let secret_refs = csi.into_iter().flat_map(|c| {
                [
                    &c.controller_expand_secret_ref,
                    &c.controller_publish_secret_ref,
                    &c.node_expand_secret_ref,
                    &c.node_publish_secret_ref,
                    &c.node_stage_secret_ref,
                ]
            });
            for secret in secret_refs.flatten() {
                if let (Some(ns), Some(name)) = (&secret.namespace, &secret.name) {
                    refs.secrets.insert(pair(ns, name));
                }
            }
        }
        for monitor in inv
            .service_monitors
            .iter()
            .chain(&inv.pod_monitors)
            .chain(&inv.prometheus_rules)
        {
            refs.walk_dynamic(&ns_of(monitor), &monitor.data);
        }
        refs
    }

    /// Whether anything references or mentions the ConfigMap.
    pub fn config_map(&self, ns: &str, name: &str) -> bool {
        let key = pair(ns, name);
        self.config_maps.contains(&key) || self.mentions.contains(&key)
    }

    /// Whether anything references or mentions the Secret.
    pub fn secret(&self, ns: &str, name: &str) -> bool {
        let key = pair(ns, name);
        self.secrets.contains(&key) || self.mentions.contains(&key)
    }

    /// Whether a pod or workload template mounts the claim by name.
    pub fn claim(&self, ns: &str, name: &str) -> bool {
        self.claims.contains(&pair(ns, name))
    }

    fn walk_template(&mut self, ns: &str, template: &PodTemplateSpec) {
        if let Some(spec) = &template.spec {
            self.walk_pod_spec(ns, spec);
        }
    }

    /// Records every ConfigMap, Secret and claim a pod spec can use: volumes (including
    /// projected sources and volume plugins' secret references), `env[].valueFrom`, `envFrom`
    /// of containers, init and ephemeral containers, and `imagePullSecrets`.
    pub fn walk_pod_spec(&mut self, ns: &str, spec: &PodSpec) {
        for volume in spec.volumes.iter().flatten() {
            if let Some(cm) = &volume.config_map {
                self.config_maps.insert(pair(ns, &cm.name));
            }
            if let Some(name) = volume.secret.as_ref().and_then(|s| s.secret_name.as_ref()) {
                self.secrets.insert(pair(ns, name));
            }
            if let Some(claim) = &volume.persistent_volume_claim {
                self.claims.insert(pair(ns, &claim.claim_name));
            }
            for source in volume
                .projected
                .iter()
                .flat_map(|p| p.sources.iter().flatten())
            {
                if let Some(cm) = &source.config_map {
                    self.config_maps.insert(pair(ns, &cm.name));
                }
                if let Some(secret) = &source.secret {
                    self.secrets.insert(pair(ns, &secret.name));
                }
            }
            let plugin_secrets = [
                volume
                    .csi
                    .as_ref()
                    .and_then(|v| v.node_publish_secret_ref.as_ref()),
                volume.cephfs.as_ref().and_then(|v| v.secret_ref.as_ref()),
                volume.cinder.as_ref().and_then(|v| v.secret_ref.as_ref()),
                volume
                    .flex_volume
                    .as_ref()
                    .and_then(|v| v.secret_ref.as_ref()),
                volume.iscsi.as_ref().and_then(|v| v.secret_ref.as_ref()),
                volume.rbd.as_ref().and_then(|v| v.secret_ref.as_ref()),
                volume.scale_io.as_ref().map(|v| &v.secret_ref),
                volume
                    .storageos
                    .as_ref()
                    .and_then(|v| v.secret_ref.as_ref()),
            ];
            for secret in plugin_secrets.into_iter().flatten() {
                self.secrets.insert(pair(ns, &secret.name));
            }
            if let Some(file) = &volume.azure_file {
                self.secrets.insert(pair(ns, &file.secret_name));
            }
        }
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            self.walk_container(ns, &c.env, &c.env_from, [&c.args, &c.command]);
        }
        for c in spec.ephemeral_containers.iter().flatten() {
            self.walk_container(ns, &c.env, &c.env_from, [&c.args, &c.command]);
        }
        for secret in spec.image_pull_secrets.iter().flatten() {
            self.secrets.insert(pair(ns, &secret.name));
        }
    }

    fn walk_container(
        &mut self,
        ns: &str,
        env: &Option<Vec<EnvVar>>,
        env_from: &Option<Vec<EnvFromSource>>,
        words: [&Option<Vec<String>>; 2],
    ) {
        for var in env.iter().flatten() {
            if let Some(value) = &var.value {
                self.mention(ns, value);
            }
            let from = var.value_from.as_ref();
            if let Some(cm) = from.and_then(|f| f.config_map_key_ref.as_ref()) {
                self.config_maps.insert(pair(ns, &cm.name));
            }
            if let Some(secret) = from.and_then(|f| f.secret_key_ref.as_ref()) {
                self.secrets.insert(pair(ns, &secret.name));
            }
        }
        for source in env_from.iter().flatten() {
            if let Some(cm) = &source.config_map_ref {
                self.config_maps.insert(pair(ns, &cm.name));
            }
            if let Some(secret) = &source.secret_ref {
                self.secrets.insert(pair(ns, &secret.name));
            }
        }
        for word in words.into_iter().flatten().flatten() {
            self.mention(ns, word);
        }
    }

    /// Records the words of `text` that could be object names, in `ns`, and `a/b` words as
    /// name `b` in namespace `a`.
    fn mention(&mut self, ns: &str, text: &str) {
        let is_name_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '/');
        for word in text
            .split(|c: char| !is_name_char(c))
            .filter(|w| !w.is_empty())
        {
            if let Some((other_ns, name)) = word.split_once('/') {
                self.mentions.insert(pair(other_ns, name));
            }
            for part in word.split('/').filter(|p| !p.is_empty()) {
                self.mentions.insert(pair(ns, part));
            }
        }
    }

    /// Monitoring CRDs reference credentials in many places (`bearerTokenSecret`,
    /// `basicAuth.password`, `tlsConfig.ca.configMap`, `oauth2.clientSecret`, ...). Any
    /// `{name: ...}` object under a key naming a secret or a ConfigMap counts as a reference.
    fn walk_dynamic(&mut self, ns: &str, value: &Value) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let lower = key.to_ascii_lowercase();
                    if let Some(name) = child.get("name").and_then(Value::as_str) {
                        if lower.contains("secret") || lower == "password" || lower == "username" {
                            self.secrets.insert(pair(ns, name));
                        } else if lower.contains("configmap") {
                            self.config_maps.insert(pair(ns, name));
                        }
                    }
                    self.walk_dynamic(ns, child);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| self.walk_dynamic(ns, item)),
            _ => {}
        }
    }
}

/// The namespace of a namespaced object (`default` when a hand-written file omits it).
pub fn ns_of<K: kube::Resource>(object: &K) -> String {
    object.namespace().unwrap_or_else(|| "default".to_owned())
}
