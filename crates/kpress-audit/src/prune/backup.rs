//! Backups that `kubectl apply -f` restores: server-managed fields are stripped (a restore must
//! not carry a stale uid, resourceVersion or allocated cluster IP), and the binding fields of
//! storage are rewritten so that a restored claim and volume find each other again.

use std::io::Write;
use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::model::Inventory;

/// Metadata the API server owns.
const SERVER_METADATA: [&str; 8] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Claim annotations set by the volume binder. `bind-completed` on a claim without a volume
/// name would make the controller mark the restored claim `Lost`.
const BINDER_ANNOTATIONS: [&str; 5] = [
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.beta.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/selected-node",
];

/// Labels the Job controller generates; a restored Job with them (and the generated selector)
/// is rejected by validation.
const JOB_GENERATED_LABELS: [&str; 4] = [
    "controller-uid",
    "batch.kubernetes.io/controller-uid",
    "job-name",
    "batch.kubernetes.io/job-name",
];

fn remove_keys(map: Option<&mut Map<String, Value>>, keys: &[&str]) {
    if let Some(map) = map {
        for key in keys {
            map.remove(*key);
        }
    }
}

/// The object as it should be re-created.
pub fn restorable(raw: &Value, inventory: &Inventory) -> Value {
    let mut object = raw.clone();
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    if let Some(root) = object.as_object_mut() {
        root.remove("status");
    }
    let metadata = object["metadata"].as_object_mut();
    if let Some(metadata) = metadata {
        for key in SERVER_METADATA {
            metadata.remove(key);
        }
        // Only unowned objects and ReplicaSets whose owner is gone are pruned; a dangling
        // owner reference would get the restored object garbage-collected at once.
        metadata.remove("ownerReferences");
    }
    match kind.as_str() {
        "Service" => remove_keys(object["spec"].as_object_mut(), &["clusterIP", "clusterIPs"]),
        "PersistentVolumeClaim" => {
            remove_keys(
                object["metadata"]["annotations"].as_object_mut(),
                &BINDER_ANNOTATIONS,
            );
            let volume = object["spec"]["volumeName"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let retained = inventory.volumes.iter().any(|pv| {
                pv.metadata.name.as_deref() == Some(volume.as_str())
                    && pv
                        .spec
                        .as_ref()
                        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
                        != Some("Delete")
            });
            // Rebinding to a retained volume restores the data; a volume reclaimed with the
            // claim is gone, and a restored claim waiting for it would stay Pending forever.
            if !retained {
                remove_keys(object["spec"].as_object_mut(), &["volumeName"]);
            }
        }
        "PersistentVolume" => {
            remove_keys(
                object["metadata"]["annotations"].as_object_mut(),
                &["pv.kubernetes.io/bound-by-controller"],
            );
            // Keeping the claim's namespace/name pre-binds the volume to the restored claim;
            // the old claim's uid would keep it Released.
            remove_keys(
                object["spec"]["claimRef"].as_object_mut(),
                &["uid", "resourceVersion"],
            );
        }
        "Job" => {
            remove_keys(object["spec"].as_object_mut(), &["selector"]);
            remove_keys(
                object["spec"]["template"]["metadata"]["labels"].as_object_mut(),
                &JOB_GENERATED_LABELS,
            );
        }
        _ => {}
    }
    object
}

fn backup_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Backup {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `objects` as one multi-document YAML file in `dir` (created if missing), readable by
/// its owner only since it may hold Secrets. The file appears complete or not at all.
pub fn write_backup(dir: &Path, objects: &[Value], now: Timestamp) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(backup_error(dir))?;
    let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let mut path = dir.join(format!("kpress-audit-backup-{stamp}.yaml"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = dir.join(format!("kpress-audit-backup-{stamp}-{n}.yaml"));
    }
    let mut text = format!(
        "# kpress audit backup written at {now} before deleting {} object(s).\n\
         # Restore with: kubectl apply -f {}\n\
         # Restored Jobs run again. A restored PersistentVolumeClaim rebinds to its volume only\n\
         # if that volume was retained; otherwise a new, empty volume is provisioned.\n",
        objects.len(),
        path.display()
    );
    for object in objects {
        let yaml = serde_norway::to_string(object).map_err(|e| Error::Backup {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        text.push_str("---\n");
        text.push_str(&yaml);
    }
    let partial = path.with_extension("yaml.partial");
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&partial)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&partial, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        backup_error(&path)(e)
    })?;
    Ok(path)
}
