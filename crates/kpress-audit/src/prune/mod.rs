//! Removing leftovers safely: back up every object first (nothing is deleted if the backup
//! cannot be written), then delete each with uid and resourceVersion preconditions, so that an
//! object changed or replaced since the audit is skipped instead of deleted.

mod backup;

use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, Preconditions, PropagationPolicy};
use serde_json::Value;

pub use backup::{restorable, write_backup};

use crate::error::Error;
use crate::model::{Kind, ObjectKey};
use crate::Audit;

/// One object to delete, with the preconditions taken at audit time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The object.
    pub key: ObjectKey,
    /// uid at audit time.
    pub uid: Option<String>,
    /// resourceVersion at audit time.
    pub resource_version: Option<String>,
}

/// An object prune did not delete, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotDeleted {
    /// The object.
    pub key: ObjectKey,
    /// Why.
    pub reason: String,
}

/// What a prune did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneOutcome {
    /// The backup file holding every targeted object.
    pub backup: PathBuf,
    /// Deleted objects.
    pub deleted: Vec<ObjectKey>,
    /// Objects left alone because they changed or vanished since the audit.
    pub skipped: Vec<NotDeleted>,
    /// Objects whose deletion failed.
    pub failed: Vec<NotDeleted>,
}

/// The prunable findings of an audit, referrers first (see [`Kind`]'s order).
pub fn plan(audit: &Audit) -> Vec<Target> {
    let mut targets: Vec<Target> = audit
        .report
        .findings
        .iter()
        .filter(|f| f.prunable)
        .filter_map(|f| {
            Some(Target {
                key: ObjectKey {
                    kind: Kind::of(&f.api_version, &f.kind)?,
                    namespace: f.namespace.clone(),
                    name: f.name.clone(),
                },
                uid: f.uid.clone(),
                resource_version: f.resource_version.clone(),
            })
        })
        .collect();
    targets.sort_by(|a, b| a.key.cmp(&b.key));
    targets.dedup_by(|a, b| a.key == b.key);
    targets
}

/// Backs up every target to a new file in `backup_dir`, then deletes them one by one.
pub async fn prune(
    client: &kube::Client,
    audit: &Audit,
    targets: &[Target],
    backup_dir: &Path,
    now: Timestamp,
) -> Result<PruneOutcome, Error> {
    let objects: Vec<Value> = targets
        .iter()
        .map(|t| {
            audit
                .inventory
                .raw(&t.key)
                .map(|raw| restorable(raw, &audit.inventory))
                .ok_or_else(|| Error::Invalid {
                    what: t.key.to_string(),
                    message: "not in the audited inventory".into(),
                })
        })
        .collect::<Result<_, _>>()?;
    let backup = write_backup(backup_dir, &objects, now)?;
    let mut outcome = PruneOutcome {
        backup,
        deleted: Vec::new(),
        skipped: Vec::new(),
        failed: Vec::new(),
    };
    for target in targets {
        let resource = target.key.kind.api_resource();
        let api: Api<DynamicObject> = match &target.key.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: target.uid.clone(),
                resource_version: target.resource_version.clone(),
            }),
            // Dependents (the ReplicaSets of a Deployment) go with their owner.
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        let not_deleted = |reason: String| NotDeleted {
            key: target.key.clone(),
            reason,
        };
        match api.delete(&target.key.name, &params).await {
            Ok(_) => outcome.deleted.push(target.key.clone()),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                outcome.skipped.push(not_deleted(format!(
                    "changed since the audit, not deleted: {}",
                    status.message
                )))
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {
                outcome.skipped.push(not_deleted("already gone".to_owned()))
            }
            Err(e) => outcome.failed.push(not_deleted(e.to_string())),
        }
    }
    Ok(outcome)
}
