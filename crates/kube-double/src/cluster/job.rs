//! The Job controller and the garbage collector for `batch/v1` Jobs in `Indexed` completion
//! mode: admission and defaulting on create, one pod per pending index, the pod failure
//! policy, per-index and global backoff limits, the active deadline, and the Job status fields
//! and conditions the real controller writes. Deletion and garbage collection are in `gc`.
//!
//! Retries are immediate (the real controller backs off exponentially, which would only slow
//! tests down) and `ttlSecondsAfterFinished` is not simulated: finished Jobs stay until deleted.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::{is_deleting, is_ready, jobs, meta, pods, Pass};
use crate::resource::ResourceType;
use crate::status::ApiError;
use crate::store::{now, Store};

pub(crate) const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const LEGACY_JOB_NAME: &str = "job-name";
const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
pub(crate) const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
const FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
const IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";
/// The backoff limits the API server defaults to, without and with `backoffLimitPerIndex`.
const DEFAULT_BACKOFF_LIMIT: u64 = 6;
const UNLIMITED_BACKOFF: u64 = i32::MAX as u64;
/// The alphabet of the API server's generated name suffixes (no vowels, so no words).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz";

/// The parts of a Job's spec the controller acts on, with the API's defaults applied so that
/// seeded Jobs, which skipped admission, behave like created ones.
struct Spec {
    completions: u32,
    parallelism: u32,
    backoff_limit: u64,
    per_index: Option<u64>,
    max_failed_indexes: Option<usize>,
    rules: Vec<Value>,
    deadline: Option<Duration>,
    suspended: bool,
}

impl Spec {
    fn of(job: &Value) -> Self {
        let spec = &job["spec"];
        let number = |field: &str| spec[field].as_u64();
        let small = |field: &str| number(field).and_then(|n| u32::try_from(n).ok());
        let parallelism = small("parallelism").unwrap_or(1);
        let per_index = number("backoffLimitPerIndex");
        let default_limit = if per_index.is_some() {
            UNLIMITED_BACKOFF
        } else {
            DEFAULT_BACKOFF_LIMIT
        };
        Self {
            completions: small("completions").unwrap_or(parallelism),
            parallelism,
            backoff_limit: number("backoffLimit").unwrap_or(default_limit),
            per_index,
            max_failed_indexes: number("maxFailedIndexes").and_then(|n| usize::try_from(n).ok()),
            rules: spec["podFailurePolicy"]["rules"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            deadline: number("activeDeadlineSeconds").map(Duration::from_secs),
            suspended: spec["suspend"].as_bool().unwrap_or(false),
        }
    }
}

/// How the Job ended, which becomes its two final conditions.
#[derive(Debug, Clone)]
struct End {
    complete: bool,
    reason: &'static str,
    message: String,
    at: String,
}

/// What the controller knows about one Job beyond its pods. The real controller keeps this in
/// the status plus pod finalizers; an in-memory record gives the same observable behaviour.
#[derive(Debug)]
pub(super) struct Tracker {
    started: Instant,
    start_time: String,
    /// Pods created and not yet accounted for, by uid: their name and index.
    pending: HashMap<String, (String, u32)>,
    succeeded: BTreeSet<u32>,
    failed_indexes: BTreeSet<u32>,
    failures: HashMap<u32, u64>,
    ignored: HashMap<u32, u64>,
    failed_pods: u64,
    end: Option<End>,
}

impl Tracker {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            start_time: now(),
            pending: HashMap::new(),
            succeeded: BTreeSet::new(),
            failed_indexes: BTreeSet::new(),
            failures: HashMap::new(),
            ignored: HashMap::new(),
            failed_pods: 0,
            end: None,
        }
    }

    fn finish(&mut self, complete: bool, reason: &'static str, message: impl Into<String>) {
        if self.end.is_none() {
            self.end = Some(End {
                complete,
                reason,
                message: message.into(),
                at: now(),
            });
        }
    }

    fn done(&self, index: u32) -> bool {
        self.succeeded.contains(&index) || self.failed_indexes.contains(&index)
    }

    /// Accounts one failed pod of `index` under the pod failure policy's verdict.
    fn record_failure(&mut self, index: u32, action: &Action, spec: &Spec) {
        match action {
            Action::Ignore => *self.ignored.entry(index).or_default() += 1,
            Action::FailJob(message) => {
                self.failed_pods += 1;
                self.finish(false, "PodFailurePolicy", message.clone());
            }
            Action::FailIndex => {
                self.failed_pods += 1;
                *self.failures.entry(index).or_default() += 1;
                self.failed_indexes.insert(index);
            }
            Action::Count => {
                self.failed_pods += 1;
                let failures = self.failures.entry(index).or_default();
                *failures += 1;
                if spec.per_index.is_some_and(|limit| *failures > limit) {
                    self.failed_indexes.insert(index);
                }
            }
        }
    }

    /// The status as the real controller writes it: zero counts omitted, `failedIndexes`
    /// present exactly when `backoffLimitPerIndex` is used.
    fn status(&self, spec: &Spec, ready: usize) -> Value {
        let mut status = json!({
            "startTime": self.start_time,
            "ready": ready,
            "uncountedTerminatedPods": {},
        });
        let counts = [
            ("active", self.pending.len() as u64),
            ("succeeded", self.succeeded.len() as u64),
            ("failed", self.failed_pods),
        ];
        for (field, count) in counts {
            if count > 0 {
                status[field] = json!(count);
            }
        }
        if !self.succeeded.is_empty() {
            status["completedIndexes"] = json!(index_ranges(&self.succeeded));
        }
        if spec.per_index.is_some() {
            status["failedIndexes"] = json!(index_ranges(&self.failed_indexes));
        }
        if let Some(end) = &self.end {
            let (interim, last) = if end.complete {
                ("SuccessCriteriaMet", "Complete")
            } else {
                ("FailureTarget", "Failed")
            };
            status["conditions"] = json!([interim, last]
                .iter()
                .map(|kind| json!({
                    "type": kind,
                    "status": "True",
                    "reason": end.reason,
                    "message": end.message,
                    "lastProbeTime": end.at,
                    "lastTransitionTime": end.at,
                }))
                .collect::<Vec<_>>());
            if end.complete {
                status["completionTime"] = json!(end.at);
            }
        }
        status
    }
}

/// Index sets in the API's notation: ascending, runs of consecutive indexes as `first-last`.
fn index_ranges(indexes: &BTreeSet<u32>) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &index in indexes {
        match runs.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(index) => *last = index,
            _ => runs.push((index, index)),
        }
    }
    runs.iter()
        .map(|(first, last)| {
            if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The pod failure policy's verdict on a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// Fail the Job; carries the condition message.
    FailJob(String),
    FailIndex,
    Ignore,
    Count,
}

/// Applies the first rule that matches, as the real controller does; no match counts.
fn evaluate(rules: &[Value], pod: &Value) -> Action {
    for (at, rule) in rules.iter().enumerate() {
        let action = rule["action"].as_str().unwrap_or_default();
        let Some(matched) = rule_match(rule, pod) else {
            continue;
        };
        return match action {
            "FailJob" => Action::FailJob(format!("{matched} matching FailJob rule at index {at}")),
            "FailIndex" => Action::FailIndex,
            "Ignore" => Action::Ignore,
            _ => Action::Count,
        };
    }
    Action::Count
}

/// Describes how `rule` matches the failed `pod`, or `None`. Exit code 0 never matches, as in
/// the real controller, so `NotIn` rules do not fire on containers that succeeded.
fn rule_match(rule: &Value, pod: &Value) -> Option<String> {
    let (namespace, name) = (meta(pod, "namespace"), meta(pod, "name"));
    let codes = &rule["onExitCodes"];
    if codes.is_object() {
        let values: Vec<i64> = codes["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
            .collect();
        let negated = codes["operator"] == "NotIn";
        let statuses = ["initContainerStatuses", "containerStatuses"]
            .iter()
            .flat_map(|field| pod["status"][*field].as_array().into_iter().flatten());
        for status in statuses {
            let container = status["name"].as_str().unwrap_or_default();
            let Some(code) = status["state"]["terminated"]["exitCode"].as_i64() else {
                continue;
            };
            let named = codes["containerName"]
                .as_str()
                .is_none_or(|wanted| wanted == container);
            if named && code != 0 && values.contains(&code) != negated {
                return Some(format!(
                    "Container {container} for pod {namespace}/{name} failed with exit code {code}"
                ));
            }
        }
        return None;
    }
    let patterns = rule["onPodConditions"].as_array()?;
    let conditions = pod["status"]["conditions"].as_array()?;
    patterns.iter().find_map(|pattern| {
        let wanted = pattern["status"].as_str().unwrap_or("True");
        conditions
            .iter()
            .find(|c| c["type"] == pattern["type"] && c["status"] == wanted)
            .map(|c| {
                let kind = c["type"].as_str().unwrap_or_default();
                format!("Pod {namespace}/{name} has condition {kind}")
            })
    })
}

/// A suffix like the API server's `generateName` adds; `RandomState` supplies the entropy.
pub(super) fn random_suffix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut bits = RandomState::new().hash_one(NEXT.fetch_add(1, Ordering::Relaxed));
    let base = SUFFIX_ALPHABET.len() as u64;
    (0..5)
        .map(|_| {
            let letter = SUFFIX_ALPHABET[(bits % base) as usize];
            bits /= base;
            char::from(letter)
        })
        .collect()
}

pub(super) fn object_of(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// The pod the controller creates for `index`: the template plus the controller's labels,
/// annotations, owner reference, `JOB_COMPLETION_INDEX` and hostname.
fn pod_for(job: &Value, spec: &Spec, tracker: &Tracker, index: u32, name: &str) -> Value {
    let template = &job["spec"]["template"];
    let (job_name, uid) = (meta(job, "name"), meta(job, "uid"));
    let index_text = index.to_string();
    let mut labels = object_of(&template["metadata"]["labels"]);
    for (key, value) in [
        (CONTROLLER_UID, uid),
        (LEGACY_CONTROLLER_UID, uid),
        (JOB_NAME, job_name),
        (LEGACY_JOB_NAME, job_name),
        (COMPLETION_INDEX, &index_text),
    ] {
        labels.insert(key.into(), json!(value));
    }
    let mut annotations = object_of(&template["metadata"]["annotations"]);
    annotations.insert(COMPLETION_INDEX.into(), json!(index_text));
    if spec.per_index.is_some() {
        let failures = tracker.failures.get(&index).copied().unwrap_or(0);
        annotations.insert(FAILURE_COUNT.into(), json!(failures.to_string()));
        if let Some(ignored) = tracker.ignored.get(&index).filter(|n| **n > 0) {
            annotations.insert(IGNORED_FAILURE_COUNT.into(), json!(ignored.to_string()));
        }
    }
    let mut pod_spec = template["spec"].clone();
    for list in ["initContainers", "containers"] {
        for container in pod_spec[list].as_array_mut().into_iter().flatten() {
            add_index_env(container);
        }
    }
    if pod_spec["hostname"].as_str().is_none_or(str::is_empty) {
        pod_spec["hostname"] = json!(format!("{job_name}-{index}"));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": format!("{job_name}-{index}-"),
            "namespace": meta(job, "namespace"),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": job_name,
                "uid": uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": pod_spec,
        "status": {"phase": "Pending"},
    })
}

/// Adds `JOB_COMPLETION_INDEX` from the index annotation unless the container sets it itself.
fn add_index_env(container: &mut Value) {
    if !container["env"].is_array() {
        container["env"] = json!([]);
    }
    if let Some(env) = container["env"].as_array_mut() {
        if !env.iter().any(|e| e["name"] == "JOB_COMPLETION_INDEX") {
            env.push(json!({
                "name": "JOB_COMPLETION_INDEX",
                "valueFrom": {"fieldRef": {"fieldPath": format!("metadata.annotations['{COMPLETION_INDEX}']")}},
            }));
        }
    }
}

fn has_finished(job: &Value) -> bool {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
}

impl Pass<'_> {
    pub(super) fn sync_jobs(&mut self) {
        let all = self.store.all(&jobs());
        let live: HashSet<&str> = all.iter().map(|job| meta(job, "uid")).collect();
        self.state.jobs.retain(|uid, _| live.contains(uid.as_str()));
        for job in &all {
            if is_deleting(job) || job["spec"]["completionMode"] != "Indexed" {
                continue;
            }
            let uid = meta(job, "uid").to_owned();
            let tracker = match self.state.jobs.remove(&uid) {
                Some(tracker) => tracker,
                None if has_finished(job) => continue,
                None => Tracker::new(),
            };
            let tracker = self.sync_job(job, tracker);
            self.state.jobs.insert(uid, tracker);
        }
    }

    fn sync_job(&mut self, job: &Value, mut tracker: Tracker) -> Tracker {
        let spec = Spec::of(job);
        let (namespace, name) = (meta(job, "namespace"), meta(job, "name"));
        if tracker.end.is_none() {
            self.account(job, &spec, &mut tracker);
            self.judge(&spec, &mut tracker);
            if tracker.end.as_ref().is_some_and(|end| !end.complete) {
                for (pod_name, _) in std::mem::take(&mut tracker.pending).into_values() {
                    self.delete_pod(namespace, &pod_name);
                }
            } else if tracker.end.is_none() && !spec.suspended {
                self.create_pods(job, &spec, &mut tracker);
            }
        }
        let ready = tracker
            .pending
            .values()
            .filter_map(|(pod, _)| self.store.get(&pods(), Some(namespace), pod).ok())
            .filter(is_ready)
            .count();
        let status = tracker.status(&spec, ready);
        self.update(&jobs(), namespace, name, |job| job["status"] = status);
        tracker
    }

    /// Moves pods that terminated, or vanished without terminating (deleted by someone else,
    /// which the real controller counts as a failure), out of `pending` into the counts.
    fn account(&mut self, job: &Value, spec: &Spec, tracker: &mut Tracker) {
        let namespace = meta(job, "namespace");
        let pending: Vec<(String, String, u32)> = tracker
            .pending
            .iter()
            .map(|(uid, (name, index))| (uid.clone(), name.clone(), *index))
            .collect();
        for (uid, name, index) in pending {
            let pod = self
                .store
                .get(&pods(), Some(namespace), &name)
                .ok()
                .filter(|pod| meta(pod, "uid") == uid);
            let action = match &pod {
                None => Action::Count,
                Some(pod) if pod["status"]["phase"] == "Succeeded" => {
                    tracker.pending.remove(&uid);
                    if !tracker.failed_indexes.contains(&index) {
                        tracker.succeeded.insert(index);
                    }
                    continue;
                }
                Some(pod) if pod["status"]["phase"] == "Failed" => evaluate(&spec.rules, pod),
                Some(_) => continue,
            };
            tracker.pending.remove(&uid);
            tracker.record_failure(index, &action, spec);
        }
    }

    /// Decides whether the Job has ended, in the real controller's order of precedence.
    fn judge(&self, spec: &Spec, tracker: &mut Tracker) {
        if tracker.failed_pods > spec.backoff_limit {
            tracker.finish(
                false,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            );
        }
        if spec
            .max_failed_indexes
            .is_some_and(|max| tracker.failed_indexes.len() > max)
        {
            tracker.finish(
                false,
                "MaxFailedIndexesExceeded",
                "Job has exceeded the specified maximal number of failed indexes",
            );
        }
        if spec
            .deadline
            .is_some_and(|deadline| tracker.started.elapsed() >= deadline)
        {
            tracker.finish(
                false,
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            );
        }
        if (0..spec.completions).all(|i| tracker.done(i)) && tracker.pending.is_empty() {
            if tracker.failed_indexes.is_empty() {
                tracker.finish(
                    true,
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                );
            } else {
                tracker.finish(false, "FailedIndexes", "Job has failed indexes");
            }
        }
    }

    /// Creates pods for the lowest indexes that are neither done nor running, up to
    /// `parallelism` active pods.
    fn create_pods(&mut self, job: &Value, spec: &Spec, tracker: &mut Tracker) {
        let namespace = meta(job, "namespace");
        let active: HashSet<u32> = tracker.pending.values().map(|(_, i)| *i).collect();
        let mut room = (spec.parallelism as usize).saturating_sub(tracker.pending.len());
        for index in 0..spec.completions {
            if room == 0 {
                return;
            }
            if tracker.done(index) || active.contains(&index) {
                continue;
            }
            let name = loop {
                let name = format!("{}-{index}-{}", meta(job, "name"), random_suffix());
                if self.store.get(&pods(), Some(namespace), &name).is_err() {
                    break name;
                }
            };
            let pod = pod_for(job, spec, tracker, index, &name);
            match self.store.create(&pods(), Some(namespace), pod, false) {
                Ok(created) => {
                    tracker
                        .pending
                        .insert(meta(&created, "uid").to_owned(), (name, index));
                    self.changed = true;
                    room -= 1;
                }
                Err(e) => tracing::warn!("kube-double cannot create pod {name}: {e}"),
            }
        }
    }
}

/// Admission of a Job `POST`: the validation code under test is likely to trip over, then
/// the API server's defaulting (selector, generated labels, limits).
pub(super) fn create(
    store: &mut Store,
    rt: &ResourceType,
    namespace: Option<&str>,
    job: Value,
) -> Result<Value, ApiError> {
    validate(&job)?;
    let created = store.create(rt, namespace, job, false)?;
    let (name, uid) = (meta(&created, "name"), meta(&created, "uid"));
    store.edit(rt, namespace, name, |job| apply_defaults(job, name, uid))
}

fn validate(job: &Value) -> Result<(), ApiError> {
    let name = meta(job, "name");
    let invalid = |field: &str, detail: &str| {
        ApiError::new(
            422,
            "Invalid",
            format!("Job.batch \"{name}\" is invalid: {field}: {detail}"),
        )
    };
    let spec = &job["spec"];
    match spec["completionMode"].as_str() {
        Some("Indexed") => {}
        None | Some("NonIndexed") => {
            return Err(ApiError::new(
                501,
                "NotImplemented",
                "kube-double simulates Jobs with completionMode Indexed only",
            ))
        }
        Some(other) => {
            return Err(invalid(
                "spec.completionMode",
                &format!(
                    "Unsupported value: \"{other}\": supported values: \"NonIndexed\", \"Indexed\""
                ),
            ))
        }
    }
    if !spec["completions"].is_u64() {
        return Err(invalid(
            "spec.completions",
            "Required value: when completion mode is Indexed",
        ));
    }
    if spec["template"]["spec"]["containers"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        return Err(invalid("spec.template.spec.containers", "Required value"));
    }
    let restart = spec["template"]["spec"]["restartPolicy"]
        .as_str()
        .unwrap_or("Always");
    if !matches!(restart, "Never" | "OnFailure") {
        return Err(invalid(
            "spec.template.spec.restartPolicy",
            &format!(
                "Unsupported value: \"{restart}\": supported values: \"OnFailure\", \"Never\""
            ),
        ));
    }
    for field in ["podFailurePolicy", "backoffLimitPerIndex"] {
        if !spec[field].is_null() && restart != "Never" {
            return Err(invalid(
                "spec.template.spec.restartPolicy",
                &format!("Invalid value: \"{restart}\": only \"Never\" is supported when {field} is specified"),
            ));
        }
    }
    Ok(())
}

fn apply_defaults(job: &mut Value, name: &str, uid: &str) {
    let spec = &mut job["spec"];
    let per_index = !spec["backoffLimitPerIndex"].is_null();
    let has_policy = !spec["podFailurePolicy"].is_null();
    let defaults = [
        ("parallelism", json!(1)),
        ("suspend", json!(false)),
        (
            "backoffLimit",
            json!(if per_index {
                UNLIMITED_BACKOFF
            } else {
                DEFAULT_BACKOFF_LIMIT
            }),
        ),
        (
            "podReplacementPolicy",
            json!(if has_policy {
                "Failed"
            } else {
                "TerminatingOrFailed"
            }),
        ),
    ];
    for (field, value) in defaults {
        if spec[field].is_null() {
            spec[field] = value;
        }
    }
    spec["selector"] = json!({"matchLabels": {CONTROLLER_UID: uid}});
    let labels = &mut spec["template"]["metadata"]["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    for (key, value) in [
        (CONTROLLER_UID, uid),
        (LEGACY_CONTROLLER_UID, uid),
        (JOB_NAME, name),
        (LEGACY_JOB_NAME, name),
    ] {
        labels[key] = json!(value);
    }
    let template_labels = labels.clone();
    let job_labels = &mut job["metadata"]["labels"];
    if job_labels.as_object().is_none_or(Map::is_empty) {
        *job_labels = template_labels;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_sets_use_the_api_notation() {
        let set = |v: &[u32]| v.iter().copied().collect::<BTreeSet<u32>>();
        assert_eq!(index_ranges(&set(&[])), "");
        assert_eq!(index_ranges(&set(&[0, 1, 2, 4])), "0-2,4");
        assert_eq!(index_ranges(&set(&[1, 2, 5, 7, 8, 9])), "1-2,5,7-9");
    }

    fn failed_pod(code: i64, conditions: Value) -> Value {
        json!({
            "metadata": {"name": "p", "namespace": "n"},
            "status": {
                "phase": "Failed",
                "conditions": conditions,
                "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": code}}}],
            },
        })
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let rules = vec![
            json!({"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}),
            json!({"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [2]}}),
            json!({"action": "FailIndex", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}}),
        ];
        let disrupted = json!([{"type": "DisruptionTarget", "status": "True"}]);
        assert_eq!(evaluate(&rules, &failed_pod(2, disrupted)), Action::Ignore);
        assert_eq!(
            evaluate(&rules, &failed_pod(2, json!([]))),
            Action::FailJob(
                "Container main for pod n/p failed with exit code 2 matching FailJob rule at index 1"
                    .into()
            )
        );
        assert_eq!(evaluate(&rules, &failed_pod(1, json!([]))), Action::Count);
        assert_eq!(
            evaluate(&rules, &failed_pod(3, json!([]))),
            Action::FailIndex
        );
        let other = vec![
            json!({"action": "FailJob", "onExitCodes": {"containerName": "side", "operator": "In", "values": [2]}}),
        ];
        assert_eq!(evaluate(&other, &failed_pod(2, json!([]))), Action::Count);
    }

    #[test]
    fn generated_suffixes_are_five_consonants() {
        let suffix = random_suffix();
        assert_eq!(suffix.len(), 5);
        assert!(suffix.bytes().all(|b| SUFFIX_ALPHABET.contains(&b)));
    }
}
