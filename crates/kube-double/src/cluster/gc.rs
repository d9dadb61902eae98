//! Deletion with propagation policies and the garbage collector, for the objects the simulated
//! controllers own (Jobs and Deployments): dependents of any type (pods, but also e.g. a
//! ConfigMap a tool made owned by its Deployment) go with their owner, because "nothing stays
//! behind" is what code that cleans up after itself has to prove.
//!
//! `Background` deletes the owner at once and its dependents in the next pass; `Foreground`
//! keeps the owner with a `deletionTimestamp` and the `foregroundDeletion` finalizer until its
//! dependents are gone; `Orphan` removes the owner references so the dependents stay. Objects
//! that also have other kinds of owners are left alone.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use super::{deployments, is_deleting, jobs, meta, pods, Pass};
use crate::resource::ResourceType;
use crate::status::ApiError;
use crate::store::{DeleteOptions, Store};

/// The finalizer that keeps an owner visible while foreground deletion removes its dependents.
const FOREGROUND: &str = "foregroundDeletion";

fn owner_types() -> [ResourceType; 2] {
    [jobs(), deployments()]
}

fn is_simulated_owner(owner: &Value) -> bool {
    owner_types()
        .iter()
        .any(|rt| owner["apiVersion"] == rt.api_version() && owner["kind"] == rt.kind)
}

fn has_finalizer(object: &Value, finalizer: &str) -> bool {
    object["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

/// The uids of the owners of `object`; empty unless every owner is a Job or a Deployment.
fn owners(object: &Value) -> Vec<&str> {
    let Some(owners) = object["metadata"]["ownerReferences"].as_array() else {
        return Vec::new();
    };
    if !owners.iter().all(is_simulated_owner) {
        return Vec::new();
    }
    owners.iter().filter_map(|o| o["uid"].as_str()).collect()
}

/// A `DELETE` of a Job or Deployment; `default_policy` applies when the request names none
/// (`Orphan` for `batch/v1` Jobs, a legacy default kubectl papers over; `Background` for
/// Deployments).
pub(super) fn delete(
    store: &mut Store,
    rt: &ResourceType,
    namespace: Option<&str>,
    name: &str,
    options: &DeleteOptions,
    default_policy: &str,
) -> Result<Value, ApiError> {
    let policy = options
        .propagation_policy
        .as_deref()
        .unwrap_or(default_policy);
    if !matches!(policy, "Orphan" | "Background" | "Foreground") {
        return Err(ApiError::new(
            422,
            "Invalid",
            format!("propagationPolicy: Unsupported value: \"{policy}\": supported values: \"Foreground\", \"Background\", \"Orphan\""),
        ));
    }
    let current = store.delete(rt, namespace, name, &options.checks_only())?;
    if options.dry_run {
        return Ok(current);
    }
    let uid = meta(&current, "uid");
    match policy {
        "Orphan" => orphan_dependents(store, meta(&current, "namespace"), uid)?,
        "Foreground" => {
            store.edit(rt, namespace, name, |owner| {
                let finalizers = &mut owner["metadata"]["finalizers"];
                match finalizers.as_array_mut() {
                    Some(list) if !list.iter().any(|f| f == FOREGROUND) => {
                        list.push(json!(FOREGROUND));
                    }
                    Some(_) => {}
                    None => *finalizers = json!([FOREGROUND]),
                }
            })?;
        }
        _ => {}
    }
    store.delete(rt, namespace, name, &DeleteOptions::default())
}

/// Removes the owner references to `uid` from its dependents so that they outlive it.
fn orphan_dependents(store: &mut Store, namespace: &str, uid: &str) -> Result<(), ApiError> {
    let owned: Vec<(ResourceType, String)> = store
        .owned()
        .into_iter()
        .filter(|(_, o)| meta(o, "namespace") == namespace && owners(o).contains(&uid))
        .map(|(rt, o)| (rt, meta(&o, "name").to_owned()))
        .collect();
    for (rt, name) in owned {
        store.edit(&rt, Some(namespace), &name, |object| {
            let metadata = &mut object["metadata"];
            if let Some(owners) = metadata["ownerReferences"].as_array_mut() {
                owners.retain(|o| o["uid"] != uid);
            }
            if metadata["ownerReferences"]
                .as_array()
                .is_some_and(Vec::is_empty)
            {
                if let Some(m) = metadata.as_object_mut() {
                    m.remove("ownerReferences");
                }
            }
        })?;
    }
    Ok(())
}

impl Pass<'_> {
    /// Deletes dependents whose owners are gone (background propagation) or being deleted in
    /// the foreground, and lets a foreground-deleted owner go once its dependents are gone.
    pub(super) fn collect_garbage(&mut self) {
        let all_owners: Vec<(ResourceType, Value)> = owner_types()
            .into_iter()
            .flat_map(|rt| {
                self.store
                    .all(&rt)
                    .into_iter()
                    .map(move |o| (rt.clone(), o))
            })
            .collect();
        let foreground: HashMap<&str, bool> = all_owners
            .iter()
            .map(|(_, o)| {
                (
                    meta(o, "uid"),
                    is_deleting(o) && has_finalizer(o, FOREGROUND),
                )
            })
            .collect();
        let mut blocking: HashSet<String> = HashSet::new();
        for (rt, object) in self.store.owned() {
            let owners = owners(&object);
            let doomed = !owners.is_empty()
                && owners
                    .iter()
                    .all(|uid| foreground.get(uid).is_none_or(|fg| *fg));
            if !doomed {
                continue;
            }
            let (namespace, name) = (meta(&object, "namespace"), meta(&object, "name"));
            if rt == pods() {
                self.delete_pod(namespace, name);
            } else if self
                .store
                .delete(&rt, Some(namespace), name, &DeleteOptions::default())
                .is_ok()
            {
                self.changed = true;
            }
            if self.store.get(&rt, Some(namespace), name).is_ok() {
                blocking.extend(owners.iter().map(|uid| (*uid).to_owned()));
            }
        }
        for (rt, owner) in &all_owners {
            if foreground.get(meta(owner, "uid")) == Some(&true)
                && !blocking.contains(meta(owner, "uid"))
            {
                self.update(rt, meta(owner, "namespace"), meta(owner, "name"), |o| {
                    if let Some(finalizers) = o["metadata"]["finalizers"].as_array_mut() {
                        finalizers.retain(|f| f != FOREGROUND);
                    }
                });
            }
        }
    }
}
