//! Storage nobody uses: claims that no pod mounts and no workload template names, and volumes
//! that are `Released` (their claim is gone, the data and the bill remain) or `Available`.
//!
//! Not leftovers: claims named by a StatefulSet's `volumeClaimTemplates` (`TEMPLATE-STS-N`, any
//! ordinal: scaling up reattaches them), claims owned by a pod (generic ephemeral volumes),
//! `Available` volumes pre-bound to a claim (`spec.claimRef`) and `Available` local/hostPath
//! volumes, which are node disks offered by a static provisioner rather than billed volumes.
//! Volumes whose reclaim policy is not `Delete` are reported but never pruned: deleting the
//! PersistentVolume object would leave the disk billed and no longer visible in the cluster.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use super::{owned, require, Candidate, Category, RuleResult};
use crate::cost::parse_bytes;
use crate::model::{Inventory, Kind};
use crate::refs::{ns_of, References};

/// Whether `claim` is `TEMPLATE-STS-ORDINAL` for a template of `sts`.
fn from_template(sts: &StatefulSet, claim: &str) -> bool {
    let sts_name = sts.metadata.name.as_deref().unwrap_or_default();
    sts.spec.volume_claim_templates.iter().flatten().any(|t| {
        let template = t.metadata.name.as_deref().unwrap_or_default();
        claim
            .strip_prefix(template)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.strip_prefix(sts_name))
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|ordinal| {
                !ordinal.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit())
            })
    })
}

/// The claims that exist for a StatefulSet's `volumeClaimTemplates`.
pub(crate) fn stateful_set_claims<'a>(
    inv: &'a Inventory,
    sts: &StatefulSet,
) -> Vec<&'a PersistentVolumeClaim> {
    let ns = ns_of(sts);
    inv.claims
        .iter()
        .filter(|c| {
            ns_of(*c) == ns && from_template(sts, c.metadata.name.as_deref().unwrap_or_default())
        })
        .collect()
}

/// Bytes a claim holds: its bound capacity; an unbound claim holds no volume.
pub(crate) fn claim_bytes(claim: &PersistentVolumeClaim) -> u64 {
    let status = claim.status.as_ref();
    if status.and_then(|s| s.phase.as_deref()) != Some("Bound") {
        return 0;
    }
    status
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| parse_bytes(&q.0))
        .unwrap_or(0)
}

/// Claims no pod mounts and no workload template names.
pub fn unused_claims(inv: &Inventory) -> RuleResult<'_> {
    if inv.claims.is_empty() {
        return Ok(Vec::new());
    }
    require(inv, "see which claims are mounted", &[Kind::Pod])?;
    let refs = References::of(inv);
    let mut found = Vec::new();
    for claim in inv.claims.iter().filter(|c| !owned(&c.metadata)) {
        let ns = ns_of(claim);
        let name = claim.metadata.name.as_deref().unwrap_or_default();
        let templated = inv
            .stateful_sets
            .iter()
            .any(|s| ns_of(s) == ns && from_template(s, name));
        if refs.claim(&ns, name) || templated {
            continue;
        }
        let phase = claim
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending");
        let mut reason = format!("{phase} claim that no pod mounts and no workload template names");
        let volume = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref());
        let retained = volume.and_then(|v| {
            inv.volumes
                .iter()
                .find(|pv| pv.metadata.name.as_deref() == Some(v))
                .filter(|pv| {
                    pv.spec
                        .as_ref()
                        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
                        != Some("Delete")
                })
        });
        if let Some(pv) = retained {
            reason.push_str(&format!(
                "; its volume {} is not reclaimed on delete: the disk stays until its PersistentVolume is removed",
                pv.metadata.name.as_deref().unwrap_or_default()
            ));
        }
        let mut candidate = Candidate::new(
            Kind::PersistentVolumeClaim,
            &claim.metadata,
            Category::UnusedPersistentVolumeClaim,
            reason,
        );
        candidate.holds.storage_bytes = claim_bytes(claim);
        found.push(candidate);
    }
    Ok(found)
}

/// Volumes in phase `Released`, and `Available` volumes that are neither pre-bound nor local.
pub fn unused_volumes(inv: &Inventory) -> RuleResult<'_> {
    let mut found = Vec::new();
    for pv in inv.volumes.iter().filter(|v| !owned(&v.metadata)) {
        let spec = pv.spec.clone().unwrap_or_default();
        let phase = pv
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or_default();
        let claim = spec.claim_ref.as_ref();
        let reason = match phase {
            "Released" => format!(
                "Released: its claim {}/{} is gone but the volume and its data remain",
                claim
                    .and_then(|c| c.namespace.as_deref())
                    .unwrap_or_default(),
                claim.and_then(|c| c.name.as_deref()).unwrap_or_default()
            ),
            "Available" if claim.is_none() && spec.local.is_none() && spec.host_path.is_none() => {
                "Available: provisioned but bound to no claim".to_owned()
            }
            _ => continue,
        };
        let policy = spec
            .persistent_volume_reclaim_policy
            .as_deref()
            .unwrap_or("Retain");
        let mut candidate = Candidate::new(
            Kind::PersistentVolume,
            &pv.metadata,
            Category::UnusedPersistentVolume,
            reason,
        );
        candidate.scope_namespace = claim.and_then(|c| c.namespace.clone());
        candidate.holds.storage_bytes = spec
            .capacity
            .as_ref()
            .and_then(|c| c.get("storage"))
            .and_then(|q| parse_bytes(&q.0))
            .unwrap_or(0);
        if policy != "Delete" {
            candidate.keep = Some(format!(
                "reclaimPolicy {policy}: deleting the PersistentVolume leaves the disk billed and untracked; delete the disk with its provider first"
            ));
        }
        found.push(candidate);
    }
    Ok(found)
}
