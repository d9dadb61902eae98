//! What a runner pod is doing, in words a user can act on: Pending with the
//! scheduler's reason, ImagePullBackOff, OOMKilled, an exit code. Pure functions over
//! `Pod` objects, shared by the live view and the final report.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

/// The state of one runner index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    pub index: u32,
    /// The newest pod of the index, if any.
    pub pod: Option<String>,
    pub phase: Phase,
    /// Why it is not running (yet), or how it ended.
    pub reason: Option<String>,
    /// Pods created for this index so far (retries and replacements included).
    pub attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// No pod yet.
    Missing,
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Missing => "missing",
            Phase::Pending => "pending",
            Phase::Running => "running",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
        }
    }
}

/// The runner index of a pod of an Indexed Job.
pub fn index_of(pod: &Pod) -> Option<u32> {
    let key = "batch.kubernetes.io/job-completion-index";
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .or_else(|| pod.metadata.labels.as_ref().and_then(|l| l.get(key)))
        .and_then(|v| v.parse().ok())
}

/// The runners of `runners` indexes from a list of pods.
pub fn runners(pods: &[Pod], runners: u32) -> Vec<Runner> {
    let mut by_index: BTreeMap<u32, Vec<&Pod>> = BTreeMap::new();
    for pod in pods {
        if let Some(i) = index_of(pod) {
            by_index.entry(i).or_default().push(pod);
        }
    }
    (0..runners)
        .map(|index| {
            let list = by_index.remove(&index).unwrap_or_default();
            let newest = list
                .iter()
                .max_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
                .copied();
            match newest {
                None => Runner {
                    index,
                    pod: None,
                    phase: Phase::Missing,
                    reason: None,
                    attempts: 0,
                },
                Some(p) => {
                    let (phase, reason) = state(p);
                    Runner {
                        index,
                        pod: p.metadata.name.clone(),
                        phase,
                        reason,
                        attempts: list.len() as u32,
                    }
                }
            }
        })
        .collect()
}

/// A pod's phase and the reason a user should read.
pub fn state(pod: &Pod) -> (Phase, Option<String>) {
    let status = pod.status.as_ref();
    let phase = match status.and_then(|s| s.phase.as_deref()) {
        Some("Running") => Phase::Running,
        Some("Succeeded") => Phase::Succeeded,
        Some("Failed") => Phase::Failed,
        _ => Phase::Pending,
    };
    let container = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first());
    let waiting = container
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref());
    let terminated = container
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    let unscheduled = status.and_then(|s| s.conditions.as_ref()).and_then(|c| {
        c.iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    });
    let disrupted = status.and_then(|s| s.conditions.as_ref()).and_then(|c| {
        c.iter()
            .find(|c| c.type_ == "DisruptionTarget" && c.status == "True")
    });
    let reason = if let Some(t) = terminated.filter(|_| phase == Phase::Failed) {
        Some(match t.reason.as_deref() {
            Some("OOMKilled") => format!("OOMKilled (exit {}): raise --memory", t.exit_code),
            Some(r) => format!("{r} (exit {})", t.exit_code),
            None => format!("exit {}", t.exit_code),
        })
    } else if let Some(d) = disrupted {
        Some(format!(
            "disrupted: {}",
            d.reason
                .clone()
                .unwrap_or_else(|| "DisruptionTarget".into())
        ))
    } else if let Some(w) = waiting {
        let why = w.reason.clone().unwrap_or_else(|| "waiting".into());
        Some(match &w.message {
            Some(m) => format!("{why}: {m}"),
            None => why,
        })
    } else if let Some(u) = unscheduled {
        Some(format!(
            "{}: {}",
            u.reason.clone().unwrap_or_else(|| "Unschedulable".into()),
            u.message.clone().unwrap_or_default()
        ))
    } else if phase == Phase::Failed {
        status.and_then(|s| s.reason.clone().or(s.message.clone()))
    } else {
        None
    };
    (phase, reason)
}

/// One line: how many runners are in each phase, and why the first stuck ones are.
pub fn describe(runners: &[Runner]) -> String {
    let mut counts: BTreeMap<Phase, usize> = BTreeMap::new();
    for r in runners {
        *counts.entry(r.phase).or_default() += 1;
    }
    let mut out = counts
        .iter()
        .map(|(p, n)| format!("{n} {}", p.name()))
        .collect::<Vec<_>>()
        .join(", ");
    for r in runners.iter().filter(|r| r.reason.is_some()).take(3) {
        out.push_str(&format!(
            "; runner {}: {}",
            r.index,
            r.reason.as_deref().unwrap_or_default()
        ));
    }
    out
}
