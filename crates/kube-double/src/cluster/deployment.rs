//! The Deployment controller for `apps/v1` Deployments: admission and defaulting on create,
//! `spec.replicas` pods of the pod template kept running, scaling up and down, and the status
//! fields and conditions the real controller writes, so that a tool running its workers as a
//! Deployment (whose containers are restarted, never "complete") can be tested end to end.
//!
//! The real controller goes through a ReplicaSet per template; the simulation has none: pods
//! are owned by the Deployment itself (a controlling owner reference), named
//! `<deployment>-<pod-template-hash>-<5 letters>` and labelled `pod-template-hash` as real ones
//! are. Each pod holds a replica slot (`0..replicas`, lowest free first; a replacement takes
//! the slot of the pod it replaces), which is how faults address Deployment pods. Scaling down
//! deletes the pods in the highest slots first. A template change replaces all pods at once
//! (no rolling update), `minReadySeconds` and `progressDeadlineSeconds` are not simulated, and
//! pods that ended (a disrupted pod is `Failed`) stay, inactive, until the Deployment goes.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Value};

use super::job::{object_of, random_suffix};
use super::{deployments, is_deleting, is_ready, kubelet, meta, pods, Pass};
use crate::resource::ResourceType;
use crate::selector::{selector_text, LabelSelector};
use crate::status::ApiError;
use crate::store::{labels_of, Store};

const TEMPLATE_HASH: &str = "pod-template-hash";
/// The alphabet of the API server's `SafeEncodeString`, which spells template hashes.
const HASH_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// What the controller remembers of one Deployment: which pod holds which replica slot.
#[derive(Debug)]
pub(super) struct Tracker {
    name: String,
    /// Pod uid and name by slot.
    slots: BTreeMap<u32, (String, String)>,
}

/// The Deployment name and replica slot of `pod`, if a tracked Deployment controls it.
pub(super) fn slot_of(trackers: &HashMap<String, Tracker>, pod: &Value) -> Option<(String, u32)> {
    let owner = controller_uid(pod)?;
    let tracker = trackers.get(owner)?;
    let uid = meta(pod, "uid");
    tracker
        .slots
        .iter()
        .find(|(_, (pod_uid, _))| pod_uid == uid)
        .map(|(slot, _)| (tracker.name.clone(), *slot))
}

fn controller_uid(pod: &Value) -> Option<&str> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["controller"] == true && o["kind"] == "Deployment")?["uid"]
        .as_str()
}

/// The pod template hash as the real controller spells it: FNV-1a (32 bits) of the template,
/// its decimal digits mapped through [`HASH_ALPHABET`].
fn template_hash(template: &Value) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in template.to_string().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_string()
        .bytes()
        .map(|b| char::from(HASH_ALPHABET[usize::from(b) % HASH_ALPHABET.len()]))
        .collect()
}

/// `maxUnavailable` of a RollingUpdate strategy against `replicas` (a percentage rounds
/// down); 0 for Recreate.
fn max_unavailable(spec: &Value, replicas: u64) -> u64 {
    if spec["strategy"]["type"] == "Recreate" {
        return 0;
    }
    let value = &spec["strategy"]["rollingUpdate"]["maxUnavailable"];
    if let Some(count) = value.as_u64() {
        return count.min(replicas);
    }
    let percent = value
        .as_str()
        .and_then(|p| p.strip_suffix('%'))
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(25);
    replicas * percent / 100
}

/// A condition that keeps its times while its status (transition) and its reason and message
/// (update) stay the same, so that a settled Deployment is not rewritten every pass.
fn condition(previous: &Value, kind: &str, ok: bool, reason: &str, message: String) -> Value {
    let status = if ok { "True" } else { "False" };
    let old = previous
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind && c["status"] == status);
    let at = crate::store::now();
    let transition = old
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or(&at)
        .to_owned();
    let update = old
        .filter(|c| c["reason"] == reason && c["message"] == message.as_str())
        .and_then(|c| c["lastUpdateTime"].as_str())
        .unwrap_or(&at)
        .to_owned();
    json!({
        "type": kind,
        "status": status,
        "lastUpdateTime": update,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    })
}

/// The pod the controller creates: the template plus `pod-template-hash` and a controlling
/// owner reference.
fn pod_for(deployment: &Value, hash: &str, name: &str) -> Value {
    let template = &deployment["spec"]["template"];
    let (owner, uid) = (meta(deployment, "name"), meta(deployment, "uid"));
    let mut labels = object_of(&template["metadata"]["labels"]);
    labels.insert(TEMPLATE_HASH.into(), json!(hash));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": format!("{owner}-{hash}-"),
            "namespace": meta(deployment, "namespace"),
            "labels": labels,
            "annotations": object_of(&template["metadata"]["annotations"]),
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": owner,
                "uid": uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": template["spec"],
        "status": {"phase": "Pending"},
    })
}

impl Pass<'_> {
    pub(super) fn sync_deployments(&mut self) {
        let all = self.store.all(&deployments());
        let live: HashSet<&str> = all.iter().map(|d| meta(d, "uid")).collect();
        self.state
            .deployments
            .retain(|uid, _| live.contains(uid.as_str()));
        for deployment in &all {
            if is_deleting(deployment) {
                continue;
            }
            let uid = meta(deployment, "uid").to_owned();
            let mut tracker = self
                .state
                .deployments
                .remove(&uid)
                .unwrap_or_else(|| Tracker {
                    name: meta(deployment, "name").to_owned(),
                    slots: BTreeMap::new(),
                });
            self.sync_deployment(deployment, &mut tracker);
            self.state.deployments.insert(uid, tracker);
        }
    }

    /// The pods `deployment` controls that are neither terminated nor being deleted.
    fn active_pods(&self, deployment: &Value) -> Vec<Value> {
        let (namespace, uid) = (meta(deployment, "namespace"), meta(deployment, "uid"));
        self.store
            .all(&pods())
            .into_iter()
            .filter(|pod| {
                meta(pod, "namespace") == namespace
                    && controller_uid(pod) == Some(uid)
                    && !is_deleting(pod)
                    && !kubelet::is_terminal(pod)
            })
            .collect()
    }

    fn sync_deployment(&mut self, deployment: &Value, tracker: &mut Tracker) {
        let spec = &deployment["spec"];
        let namespace = meta(deployment, "namespace");
        let hash = template_hash(&spec["template"]);
        let replicas = spec["replicas"].as_u64().unwrap_or(1);
        let active = self.active_pods(deployment);
        let active_uids: HashSet<&str> = active.iter().map(|p| meta(p, "uid")).collect();
        tracker
            .slots
            .retain(|_, (uid, _)| active_uids.contains(uid.as_str()));
        for pod in &active {
            let uid = meta(pod, "uid");
            if tracker.slots.values().any(|(u, _)| u == uid) {
                continue;
            }
            let free = (0..).find(|s| !tracker.slots.contains_key(s)).unwrap_or(0);
            tracker
                .slots
                .insert(free, (uid.to_owned(), meta(pod, "name").to_owned()));
        }
        let outdated: Vec<u32> = active
            .iter()
            .filter(|pod| pod["metadata"]["labels"][TEMPLATE_HASH] != hash.as_str())
            .filter_map(|pod| {
                let uid = meta(pod, "uid");
                tracker
                    .slots
                    .iter()
                    .find(|(_, (u, _))| u == uid)
                    .map(|(slot, _)| *slot)
            })
            .collect();
        for slot in outdated {
            if let Some((_, name)) = tracker.slots.remove(&slot) {
                self.delete_pod(namespace, &name);
            }
        }
        while tracker.slots.len() as u64 > replicas {
            let Some((_, (_, name))) = tracker.slots.pop_last() else {
                break;
            };
            self.delete_pod(namespace, &name);
        }
        let mut slot = 0;
        while (tracker.slots.len() as u64) < replicas {
            if let std::collections::btree_map::Entry::Vacant(free) = tracker.slots.entry(slot) {
                match self.create_pod(deployment, &hash) {
                    Some(created) => {
                        free.insert(created);
                    }
                    None => break,
                }
            }
            slot += 1;
        }
        let status = self.status(deployment, &hash, replicas);
        self.update(&deployments(), namespace, meta(deployment, "name"), |d| {
            d["status"] = status;
        });
    }

    /// Creates one pod of the current template; its uid and name.
    fn create_pod(&mut self, deployment: &Value, hash: &str) -> Option<(String, String)> {
        let namespace = meta(deployment, "namespace");
        let name = loop {
            let name = format!("{}-{hash}-{}", meta(deployment, "name"), random_suffix());
            if self.store.get(&pods(), Some(namespace), &name).is_err() {
                break name;
            }
        };
        let pod = pod_for(deployment, hash, &name);
        match self.store.create(&pods(), Some(namespace), pod, false) {
            Ok(created) => {
                self.changed = true;
                Some((meta(&created, "uid").to_owned(), name))
            }
            Err(e) => {
                tracing::warn!("kube-double cannot create pod {name}: {e}");
                None
            }
        }
    }

    /// The status as the real controller writes it, zero counts omitted.
    fn status(&self, deployment: &Value, hash: &str, replicas: u64) -> Value {
        let active = self.active_pods(deployment);
        let current = active.len() as u64;
        let updated = active
            .iter()
            .filter(|p| p["metadata"]["labels"][TEMPLATE_HASH] == hash)
            .count() as u64;
        let ready = active.iter().filter(|p| is_ready(p)).count() as u64;
        let mut status = json!({
            "observedGeneration": deployment["metadata"]["generation"].as_u64().unwrap_or(1),
        });
        let counts = [
            ("replicas", current),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", ready),
            ("unavailableReplicas", replicas.saturating_sub(ready)),
        ];
        for (field, count) in counts {
            if count > 0 {
                status[field] = json!(count);
            }
        }
        let previous = &deployment["status"]["conditions"];
        let minimum = ready + max_unavailable(&deployment["spec"], replicas) >= replicas;
        let available = if minimum {
            condition(
                previous,
                "Available",
                true,
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
            )
        } else {
            condition(
                previous,
                "Available",
                false,
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
            )
        };
        let replica_set = format!("{}-{hash}", meta(deployment, "name"));
        let complete = updated == replicas && current == replicas && ready == replicas;
        let progressing = if complete {
            condition(
                previous,
                "Progressing",
                true,
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{replica_set}\" has successfully progressed."),
            )
        } else {
            condition(
                previous,
                "Progressing",
                true,
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{replica_set}\" is progressing."),
            )
        };
        status["conditions"] = json!([available, progressing]);
        status
    }
}

/// Admission of a Deployment `POST`: the validation code under test is likely to trip over,
/// then the API server's defaults.
pub(super) fn create(
    store: &mut Store,
    rt: &ResourceType,
    namespace: Option<&str>,
    mut deployment: Value,
) -> Result<Value, ApiError> {
    validate(&deployment)?;
    apply_defaults(&mut deployment);
    store.create(rt, namespace, deployment, false)
}

fn validate(deployment: &Value) -> Result<(), ApiError> {
    let name = meta(deployment, "name");
    let invalid = |field: &str, detail: &str| {
        ApiError::new(
            422,
            "Invalid",
            format!("Deployment.apps \"{name}\" is invalid: {field}: {detail}"),
        )
    };
    let spec = &deployment["spec"];
    let replicas = &spec["replicas"];
    if !replicas.is_null() && replicas.as_u64().is_none_or(|r| i32::try_from(r).is_err()) {
        return Err(invalid(
            "spec.replicas",
            &format!("Invalid value: {replicas}: must be greater than or equal to 0"),
        ));
    }
    let selector = &spec["selector"];
    if !selector.is_object() {
        return Err(invalid("spec.selector", "Required value"));
    }
    let parsed = LabelSelector::parse(&selector_text(selector))
        .map_err(|e| invalid("spec.selector", &format!("Invalid value: {e}")))?;
    let template = &spec["template"];
    if !parsed.matches(&labels_of(template)) {
        return Err(invalid(
            "spec.template.metadata.labels",
            "Invalid value: `selector` does not match template `labels`",
        ));
    }
    if template["spec"]["containers"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        return Err(invalid("spec.template.spec.containers", "Required value"));
    }
    match template["spec"]["restartPolicy"].as_str() {
        None | Some("Always") => Ok(()),
        Some(other) => Err(invalid(
            "spec.template.spec.restartPolicy",
            &format!("Unsupported value: \"{other}\": supported values: \"Always\""),
        )),
    }
}

fn apply_defaults(deployment: &mut Value) {
    let spec = &mut deployment["spec"];
    let defaults = [
        ("replicas", json!(1)),
        (
            "strategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
        ),
        ("revisionHistoryLimit", json!(10)),
        ("progressDeadlineSeconds", json!(600)),
    ];
    for (field, value) in defaults {
        if spec[field].is_null() {
            spec[field] = value;
        }
    }
    let pod_spec = &mut spec["template"]["spec"];
    let pod_defaults = [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
    ];
    for (field, value) in pod_defaults {
        if pod_spec[field].is_null() {
            pod_spec[field] = value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hashes_are_stable_safe_strings() {
        let template = json!({"metadata": {"labels": {"app": "web"}}});
        let hash = template_hash(&template);
        assert_eq!(hash, template_hash(&template));
        assert!(!hash.is_empty() && hash.len() <= 10);
        assert!(hash.bytes().all(|b| HASH_ALPHABET.contains(&b)));
        assert_ne!(hash, template_hash(&json!({"metadata": {}})));
    }

    #[test]
    fn max_unavailable_rounds_percentages_down() {
        let rolling = |v: Value| json!({"strategy": {"rollingUpdate": {"maxUnavailable": v}}});
        assert_eq!(max_unavailable(&rolling(json!("25%")), 3), 0);
        assert_eq!(max_unavailable(&rolling(json!("50%")), 5), 2);
        assert_eq!(max_unavailable(&rolling(json!(1)), 3), 1);
        assert_eq!(max_unavailable(&json!({}), 8), 2);
        assert_eq!(
            max_unavailable(&json!({"strategy": {"type": "Recreate"}}), 8),
            0
        );
    }
}
