//! Workloads kept alive for a one-off task: Deployments and StatefulSets scaled to zero,
//! ReplicaSets at zero that no Deployment keeps as rollout history, and finished Jobs that no
//! TTL or CronJob history limit will ever clean up.
//!
//! Not leftovers: a workload that an autoscaler targets (KEDA scales to zero through an HPA it
//! owns; zero is then a state, not an abandonment), old ReplicaSets owned by an existing
//! Deployment (its `revisionHistoryLimit` manages them), and Jobs owned by a CronJob.

use k8s_openapi::api::batch::v1::Job;

use super::storage::{claim_bytes, stateful_set_claims};
use super::{owned, require, Candidate, Category, RuleResult};
use crate::model::{Inventory, Kind};
use crate::refs::ns_of;

/// Whether a Job has a `Complete` or `Failed` condition that is true.
pub(crate) fn finished(job: &Job) -> bool {
    job.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| matches!(c.type_.as_str(), "Complete" | "Failed") && c.status == "True")
}

fn autoscaled(inv: &Inventory, ns: &str, kind: &str, name: &str) -> bool {
    inv.autoscalers.iter().any(|hpa| {
        let target = &hpa.spec.scale_target_ref;
        ns_of(hpa) == ns && target.kind == kind && target.name == name
    })
}

/// Deployments and StatefulSets with `spec.replicas: 0` that no autoscaler targets.
pub fn workloads_scaled_to_zero(inv: &Inventory) -> RuleResult<'_> {
    let deployments = inv
        .deployments
        .iter()
        .filter(|d| d.spec.replicas == Some(0))
        .map(|d| (Kind::Deployment, &d.metadata, None));
    let stateful_sets = inv
        .stateful_sets
        .iter()
        .filter(|s| s.spec.replicas == Some(0))
        .map(|s| (Kind::StatefulSet, &s.metadata, Some(s)));
    let mut found = Vec::new();
    for (kind, meta, sts) in deployments.chain(stateful_sets) {
        let name = meta.name.as_deref().unwrap_or_default();
        let ns = meta.namespace.as_deref().unwrap_or("default");
        if owned(meta) || autoscaled(inv, ns, kind.name(), name) {
            continue;
        }
        let mut reason = "scaled to 0 replicas: it runs nothing but keeps its configuration and dependents alive".to_owned();
        let claims: Vec<_> = sts.map(|s| stateful_set_claims(inv, s)).unwrap_or_default();
        let bytes: u64 = claims.iter().map(|c| claim_bytes(c)).sum();
        if !claims.is_empty() {
            reason.push_str(&format!(
                "; its volumeClaimTemplates keep {} PersistentVolumeClaim(s)",
                claims.len()
            ));
        }
        let mut candidate = Candidate::new(kind, meta, Category::WorkloadScaledToZero, reason);
        candidate.holds.storage_bytes = bytes;
        found.push(candidate);
    }
    Ok(found)
}

/// ReplicaSets at zero with no owner, or whose owning Deployment no longer exists.
pub fn orphaned_replica_sets(inv: &Inventory) -> RuleResult<'_> {
    let mut found = Vec::new();
    for rs in inv
        .replica_sets
        .iter()
        .filter(|r| r.spec.replicas == Some(0))
    {
        let owners = rs.metadata.owner_references.clone().unwrap_or_default();
        let reason = match owners.as_slice() {
            [] => "standalone ReplicaSet at 0 replicas: nothing will ever scale it up".to_owned(),
            [owner] if owner.kind == "Deployment" => {
                require(
                    inv,
                    "tell a gone owner Deployment from an undumped one",
                    &[Kind::Deployment],
                )?;
                let ns = ns_of(rs);
                let alive = inv.deployments.iter().any(|d| {
                    ns_of(d) == ns && d.metadata.uid.as_deref() == Some(owner.uid.as_str())
                });
                if alive {
                    continue;
                }
                format!(
                    "at 0 replicas and its owner Deployment {} (uid {}) is gone",
                    owner.name, owner.uid
                )
            }
            _ => continue,
        };
        found.push(Candidate::new(
            Kind::ReplicaSet,
            &rs.metadata,
            Category::OrphanedReplicaSet,
            reason,
        ));
    }
    Ok(found)
}

/// Complete or Failed Jobs without `ttlSecondsAfterFinished` and without an owner.
pub fn finished_jobs_without_ttl(inv: &Inventory) -> RuleResult<'_> {
    Ok(inv
        .jobs
        .iter()
        .filter(|j| !owned(&j.metadata) && finished(j))
        .filter(|j| j.spec.as_ref().is_none_or(|s| s.ttl_seconds_after_finished.is_none()))
        .map(|job| {
            let outcome = job
                .status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .find(|c| matches!(c.type_.as_str(), "Complete" | "Failed") && c.status == "True")
                .map_or("finished", |c| c.type_.as_str());
            Candidate::new(
                Kind::Job,
                &job.metadata,
                Category::FinishedJobWithoutTtl,
                format!("{outcome} and has no ttlSecondsAfterFinished: it and its pods stay until deleted by hand"),
            )
        })
        .collect())
}
