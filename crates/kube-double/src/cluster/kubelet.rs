//! The kubelet: binds pending pods to the one simulated node, runs the first container of each
//! as a real local process, captures its output, keeps its downward API files in step with the
//! pod object and reports the container's life in the pod status the way a real kubelet does,
//! because that status is all that code under test can observe.
//!
//! A pod with `restartPolicy: Always` (the default, and what a Deployment's pods have) gets its
//! container restarted in place whenever it exits, whatever the exit code: `restartCount` goes
//! up, `lastState.terminated` records the exit, and the container waits in `CrashLoopBackOff`
//! for a backoff that starts at 100 ms and doubles up to 2 s (the real kubelet's 10 s to 5 min
//! would only slow tests down). The restarted container gets the same environment and pod
//! directory, and a fresh log; the previous one stays readable with `previous=true`.
//!
//! Every container runs in its own process group and is killed as a group (a shell's children
//! die with it), whenever its main process exits, its pod is deleted, a fault kills it or the
//! double is dropped. Without a signal API in `std`, groups are killed through `/bin/sh`'s
//! `kill`, which also needs no extra dependency.

use std::collections::{BTreeMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::logs::LogBuffer;
use super::{fields, meta, pods, Cluster, Pass, PodFault};
use crate::lock;
use crate::store::now;

/// The node every scheduled pod is bound to.
const NODE: &str = "kube-double";
/// How long output still buffered in the pipes is read after the container's processes are
/// killed; only a process that escaped the group can hold a pipe open longer.
const PIPE_GRACE: Duration = Duration::from_secs(1);
/// The scheduler's message for a pod that fits nowhere, as tests of diagnostics expect it.
const UNSCHEDULABLE: &str = "0/3 nodes are available: 3 Insufficient cpu.";
/// The first and the longest wait before an exited container of an `Always` pod restarts.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The wait before the `restarts`-th restart: doubling from [`FIRST_BACKOFF`], capped.
fn backoff(restarts: u32) -> Duration {
    let doublings = restarts.saturating_sub(1).min(8);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// Whether the kubelet restarts the pod's containers when they exit.
fn restarts_always(pod: &Value) -> bool {
    pod["spec"]["restartPolicy"]
        .as_str()
        .is_none_or(|policy| policy == "Always")
}

/// Why the double itself ended a container, which decides how its termination is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Preempted: `DisruptionTarget` condition, exit code 137.
    Disrupted,
    /// Out of memory: reason `OOMKilled`, exit code 137.
    OomKilled,
    /// Its pod was deleted.
    Deleted,
    /// Killed by a test, as a crash: reported as the signal's exit code 137.
    Killed,
}

/// A pod the kubelet has taken on: its process while it runs and its output for good.
#[derive(Debug)]
pub(super) struct PodRuntime {
    pub(super) namespace: String,
    pub(super) name: String,
    /// Main process id, which is also the process group id; `None` once it has exited.
    pub(super) pid: Option<u32>,
    pub(super) verdict: Option<Verdict>,
    pub(super) log: Arc<LogBuffer>,
    /// The log of the container that ran before the latest restart.
    pub(super) previous_log: Option<Arc<LogBuffer>>,
    pub(super) task: Option<JoinHandle<()>>,
    pod_dir: PathBuf,
    info_dir: PathBuf,
    /// Downward API files as last written, so unchanged files are not rewritten.
    written: BTreeMap<String, Vec<u8>>,
    /// When the pod first started, and when its current container did.
    pod_started_at: String,
    started_at: String,
    pub(super) container_id: Option<String>,
    restarts: u32,
    /// `lastState.terminated` of the container, once it has been restarted.
    last_terminated: Option<Value>,
    /// When an exited container of an `Always` pod is due to restart.
    restart_at: Option<Instant>,
}

impl PodRuntime {
    /// Writes the downward API files that differ from what was last written. Each file is
    /// replaced by a rename, so a reader never sees it half written.
    fn sync_downward(&mut self, pod: &Value) {
        let files = fields::downward_files(pod);
        for (path, content) in &files {
            if self.written.get(path) == Some(content) {
                continue;
            }
            if let Err(e) = write_atomically(&self.info_dir.join(path), content) {
                tracing::warn!("kube-double cannot write downward API file {path}: {e}");
            }
        }
        self.written = files;
    }

    fn last_state(&self) -> Value {
        match &self.last_terminated {
            Some(terminated) => json!({"terminated": terminated}),
            None => json!({}),
        }
    }

    /// Records an exit of an `Always` pod's container, schedules its restart and returns the
    /// pod status for the backoff: still `Running`, the container waiting in
    /// `CrashLoopBackOff`.
    fn crash(&mut self, pod: &Value, exit: &Exit) -> Value {
        self.last_terminated = Some(terminated_state(self, exit, &now()));
        self.restarts += 1;
        self.verdict = None;
        let wait = backoff(self.restarts);
        self.restart_at = Some(Instant::now() + wait);
        let at = now();
        let (name, image) = container_identity(pod);
        let unready = format!("containers with unready status: [{name}]");
        let started = self.pod_started_at.as_str();
        json!({
            "phase": "Running",
            "startTime": started,
            "conditions": [
                condition("PodReadyToStartContainers", true, None, None, started),
                condition("Initialized", true, None, None, started),
                condition("Ready", false, Some("ContainersNotReady"), Some(&unready), &at),
                condition("ContainersReady", false, Some("ContainersNotReady"), Some(&unready), &at),
                condition("PodScheduled", true, None, None, started),
            ],
            "containerStatuses": [{
                "name": name,
                "image": image,
                "imageID": "",
                "containerID": self.container_id,
                "ready": false,
                "started": false,
                "restartCount": self.restarts,
                "state": {"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": format!(
                        "back-off {}ms restarting failed container={name} pod={}_{}({})",
                        wait.as_millis(),
                        meta(pod, "name"),
                        meta(pod, "namespace"),
                        meta(pod, "uid"),
                    ),
                }},
                "lastState": self.last_state(),
            }],
        })
    }
}

/// `state.terminated` of a container that ended as `exit` at `at`.
fn terminated_state(runtime: &PodRuntime, exit: &Exit, at: &str) -> Value {
    let mut terminated = json!({
        "exitCode": exit.code,
        "reason": exit.reason,
        "startedAt": runtime.started_at,
        "finishedAt": at,
    });
    if let Some(id) = &runtime.container_id {
        terminated["containerID"] = json!(id);
    }
    if let Some(message) = &exit.message {
        terminated["message"] = json!(message);
    }
    terminated
}

fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut staging = path.as_os_str().to_owned();
    staging.push(".kube-double-tmp");
    std::fs::write(&staging, content)?;
    std::fs::rename(&staging, path)
}

/// Sends `SIGKILL` to each process group. Ids 0 and 1 are refused: as groups they would mean
/// "our own group" and "every process".
pub(super) fn kill_groups(pids: &[u32]) {
    let groups: Vec<String> = pids
        .iter()
        .filter(|pid| **pid > 1)
        .map(|pid| format!("-{pid}"))
        .collect();
    if groups.is_empty() {
        return;
    }
    let killed = std::process::Command::new("/bin/sh")
        .args(["-c", "kill -s KILL -- \"$@\"", "kill"])
        .args(&groups)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(e) = killed {
        tracing::warn!("kube-double cannot kill process groups {groups:?}: {e}");
    }
}

pub(super) fn is_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// How a container ended, as written into `state.terminated`.
struct Exit {
    code: i32,
    reason: &'static str,
    message: Option<String>,
}

impl Exit {
    fn of(status: Option<ExitStatus>) -> Self {
        let code = status
            .and_then(|s| s.code().or_else(|| s.signal().map(|signal| 128 + signal)))
            .unwrap_or(128);
        Self {
            code,
            reason: if code == 0 { "Completed" } else { "Error" },
            message: None,
        }
    }
}

fn condition(kind: &str, ok: bool, reason: Option<&str>, message: Option<&str>, at: &str) -> Value {
    let mut condition = json!({
        "type": kind,
        "status": if ok { "True" } else { "False" },
        "lastProbeTime": null,
        "lastTransitionTime": at,
    });
    if let Some(reason) = reason {
        condition["reason"] = json!(reason);
    }
    if let Some(message) = message {
        condition["message"] = json!(message);
    }
    condition
}

fn container_identity(pod: &Value) -> (&str, &str) {
    let container = &pod["spec"]["containers"][0];
    (
        container["name"].as_str().unwrap_or_default(),
        container["image"].as_str().unwrap_or_default(),
    )
}

fn running_status(pod: &Value, runtime: &PodRuntime) -> Value {
    let at = runtime.started_at.as_str();
    let started = runtime.pod_started_at.as_str();
    let (name, image) = container_identity(pod);
    json!({
        "phase": "Running",
        "startTime": started,
        "conditions": [
            condition("PodReadyToStartContainers", true, None, None, started),
            condition("Initialized", true, None, None, started),
            condition("Ready", true, None, None, at),
            condition("ContainersReady", true, None, None, at),
            condition("PodScheduled", true, None, None, started),
        ],
        "containerStatuses": [{
            "name": name,
            "image": image,
            "imageID": "",
            "containerID": runtime.container_id,
            "ready": true,
            "started": true,
            "restartCount": runtime.restarts,
            "state": {"running": {"startedAt": at}},
            "lastState": runtime.last_state(),
        }],
    })
}

fn terminated_status(pod: &Value, runtime: &PodRuntime, exit: &Exit, disrupted: bool) -> Value {
    let at = now();
    let started = runtime.pod_started_at.as_str();
    let (name, image) = container_identity(pod);
    let completed = Some("PodCompleted");
    let mut conditions = vec![
        condition("PodReadyToStartContainers", false, None, None, &at),
        condition("Initialized", true, completed, None, started),
        condition("Ready", false, completed, None, &at),
        condition("ContainersReady", false, completed, None, &at),
        condition("PodScheduled", true, None, None, started),
    ];
    if disrupted {
        conditions.push(condition(
            "DisruptionTarget",
            true,
            Some("PreemptionByScheduler"),
            Some("Kubernetes default scheduler: preempting to accommodate a higher priority pod"),
            &at,
        ));
    }
    let terminated = terminated_state(runtime, exit, &at);
    json!({
        "phase": if exit.code == 0 { "Succeeded" } else { "Failed" },
        "startTime": started,
        "conditions": conditions,
        "containerStatuses": [{
            "name": name,
            "image": image,
            "imageID": "",
            "containerID": runtime.container_id,
            "ready": false,
            "started": false,
            "restartCount": runtime.restarts,
            "state": {"terminated": terminated},
            "lastState": runtime.last_state(),
        }],
    })
}

/// Pending with `PodScheduled=False`; written once so that the transition time stays put.
fn mark_unschedulable(pod: &mut Value) {
    let already = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "PodScheduled" && c["reason"] == "Unschedulable");
    if !already {
        pod["status"] = json!({
            "phase": "Pending",
            "conditions": [condition(
                "PodScheduled", false, Some("Unschedulable"), Some(UNSCHEDULABLE), &now(),
            )],
        });
    }
}

/// Bound to the node but stuck pulling the image; written once, like the above.
fn mark_pull_backoff(pod: &mut Value) {
    if pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff" {
        return;
    }
    let at = now();
    let (name, image) = container_identity(pod);
    let unready = format!("containers with unready status: [{name}]");
    let status = json!({
        "phase": "Pending",
        "startTime": at,
        "conditions": [
            condition("PodReadyToStartContainers", true, None, None, &at),
            condition("Initialized", true, None, None, &at),
            condition("Ready", false, Some("ContainersNotReady"), Some(&unready), &at),
            condition("ContainersReady", false, Some("ContainersNotReady"), Some(&unready), &at),
            condition("PodScheduled", true, None, None, &at),
        ],
        "containerStatuses": [{
            "name": name,
            "image": image,
            "imageID": "",
            "ready": false,
            "started": false,
            "restartCount": 0,
            "state": {"waiting": {
                "reason": "ImagePullBackOff",
                "message": format!("Back-off pulling image \"{image}\""),
            }},
        }],
    });
    pod["spec"]["nodeName"] = json!(NODE);
    pod["status"] = status;
}

impl Pass<'_> {
    /// Kills the processes of pods that are no longer stored (deleted through the API).
    pub(super) fn forget_vanished_pods(&mut self) {
        let live: HashSet<String> = self
            .store
            .all(&pods())
            .iter()
            .map(|pod| meta(pod, "uid").to_owned())
            .collect();
        let gone: Vec<String> = self
            .state
            .pods
            .keys()
            .filter(|uid| !live.contains(*uid))
            .cloned()
            .collect();
        for uid in gone {
            self.forget_pod(&uid);
        }
    }

    pub(super) fn forget_pod(&mut self, uid: &str) {
        if let Some(pid) = self.state.pods.remove(uid).and_then(|r| r.pid) {
            self.kills.push(pid);
        }
    }

    /// Starts pods that are due and keeps running pods' downward API files current.
    pub(super) fn run_pods(&mut self) {
        let mut due = Vec::new();
        for pod in self.store.all(&pods()) {
            let uid = meta(&pod, "uid");
            let deleting = !pod["metadata"]["deletionTimestamp"].is_null();
            if let Some(runtime) = self.state.pods.get_mut(uid) {
                match runtime.pid {
                    Some(pid) if deleting && runtime.verdict.is_none() => {
                        runtime.verdict = Some(Verdict::Deleted);
                        self.kills.push(pid);
                    }
                    Some(_) => runtime.sync_downward(&pod),
                    None if !deleting
                        && runtime.restart_at.is_some_and(|at| at <= Instant::now()) =>
                    {
                        due.push(pod.clone());
                    }
                    None => {}
                }
                continue;
            }
            let pending = matches!(pod["status"]["phase"].as_str(), None | Some("Pending"));
            if deleting || !pending || uid.is_empty() {
                continue;
            }
            let (namespace, name) = (meta(&pod, "namespace"), meta(&pod, "name"));
            match self.fault_of(&pod) {
                Some(PodFault::Unschedulable) => {
                    self.update(&pods(), namespace, name, mark_unschedulable);
                }
                Some(PodFault::ImagePullBackOff) => {
                    self.update(&pods(), namespace, name, mark_pull_backoff);
                }
                None => self.start(&pod),
            }
        }
        for pod in due {
            self.restart(&pod);
        }
    }

    fn fault_of(&self, pod: &Value) -> Option<PodFault> {
        let key = super::workload_index(self.state, pod)?;
        self.state.faults.get(&key).copied()
    }

    fn start(&mut self, pod: &Value) {
        let (namespace, name) = (meta(pod, "namespace"), meta(pod, "name"));
        let pod_dir = self.cluster.root.join(namespace).join(name);
        let runtime = PodRuntime {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            pid: None,
            verdict: None,
            log: Arc::new(LogBuffer::new()),
            previous_log: None,
            task: None,
            info_dir: pod_dir.join("info"),
            pod_dir,
            written: BTreeMap::new(),
            pod_started_at: now(),
            started_at: now(),
            container_id: None,
            restarts: 0,
            last_terminated: None,
            restart_at: None,
        };
        self.run_container(pod, runtime);
    }

    /// Starts the container of an `Always` pod again after its backoff, with a fresh log.
    fn restart(&mut self, pod: &Value) {
        let Some(mut runtime) = self.state.pods.remove(meta(pod, "uid")) else {
            return;
        };
        let fresh = Arc::new(LogBuffer::new());
        runtime.previous_log = Some(std::mem::replace(&mut runtime.log, fresh));
        runtime.started_at = now();
        runtime.restart_at = None;
        self.run_container(pod, runtime);
    }

    /// Launches the pod's container and records the outcome in the pod status.
    fn run_container(&mut self, pod: &Value, mut runtime: PodRuntime) {
        let (namespace, name) = (meta(pod, "namespace"), meta(pod, "name"));
        let status = match self.launch(pod, &mut runtime) {
            Ok(child) => {
                runtime.pid = child.id();
                runtime.container_id = runtime.pid.map(|pid| format!("kube-double://{pid}"));
                runtime.task = Some(tokio::spawn(supervise(
                    Arc::downgrade(self.cluster),
                    meta(pod, "uid").to_owned(),
                    child,
                    Arc::clone(&runtime.log),
                )));
                running_status(pod, &runtime)
            }
            Err(message) => {
                runtime.log.close();
                let exit = Exit {
                    code: 127,
                    reason: "ContainerCannotRun",
                    message: Some(message),
                };
                if restarts_always(pod) {
                    runtime.crash(pod, &exit)
                } else {
                    terminated_status(pod, &runtime, &exit, false)
                }
            }
        };
        self.update(&pods(), namespace, name, |pod| {
            pod["spec"]["nodeName"] = json!(NODE);
            pod["status"] = status;
        });
        self.state.pods.insert(meta(pod, "uid").to_owned(), runtime);
    }

    /// Spawns the first container's command; the error is the container's termination message.
    fn launch(&self, pod: &Value, runtime: &mut PodRuntime) -> Result<Child, String> {
        std::fs::create_dir_all(&runtime.info_dir)
            .map_err(|e| format!("cannot create {}: {e}", runtime.info_dir.display()))?;
        runtime.sync_downward(pod);
        let container = &pod["spec"]["containers"][0];
        let simulation = &self.cluster.simulation;
        let env = fields::container_env(pod, container, &simulation.env, &runtime.info_dir);
        let argv = fields::argv(container, &env);
        let command = argv.first().ok_or_else(|| {
            "the container has no command; kube-double cannot run an image's entrypoint".to_owned()
        })?;
        let program = simulation.program_for(command).ok_or_else(|| {
            format!("exec: \"{command}\": executable file not found in the kube-double simulation")
        })?;
        Command::new(program)
            .args(&argv[1..])
            .env_clear()
            .envs(env.vars())
            .current_dir(&runtime.pod_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))
    }
}

/// Owns one container process: copies its output into the log, and when it exits tears the
/// container down and reports the exit, logs first so that a finished pod's log is complete.
async fn supervise(cluster: Weak<Cluster>, uid: String, mut child: Child, log: Arc<LogBuffer>) {
    let pid = child.id();
    let readers: Vec<JoinHandle<()>> = [
        child
            .stdout
            .take()
            .map(|out| tokio::spawn(pump(out, Arc::clone(&log)))),
        child
            .stderr
            .take()
            .map(|err| tokio::spawn(pump(err, Arc::clone(&log)))),
    ]
    .into_iter()
    .flatten()
    .collect();
    let status = child.wait().await;
    if let Some(pid) = pid {
        kill_groups(&[pid]);
    }
    for mut reader in readers {
        if tokio::time::timeout(PIPE_GRACE, &mut reader).await.is_err() {
            reader.abort();
        }
    }
    log.close();
    if let Some(cluster) = cluster.upgrade() {
        cluster.finish_pod(&uid, status.ok());
        cluster.wake();
    }
}

async fn pump(mut from: impl AsyncRead + Unpin, log: Arc<LogBuffer>) {
    let mut buffer = vec![0; 8192];
    while let Ok(read) = from.read(&mut buffer).await {
        if read == 0 {
            return;
        }
        log.append(&buffer[..read]);
    }
}

impl Cluster {
    /// Records a container's exit in its pod's status.
    fn finish_pod(&self, uid: &str, status: Option<ExitStatus>) {
        let mut store = lock(&self.store);
        let mut state = lock(&self.state);
        if state.stopped {
            return;
        }
        let Some(runtime) = state.pods.get_mut(uid) else {
            return;
        };
        runtime.pid = None;
        let exit = match runtime.verdict {
            Some(Verdict::OomKilled) => Exit {
                code: 137,
                reason: "OOMKilled",
                message: None,
            },
            Some(Verdict::Disrupted) => Exit {
                code: 137,
                reason: "Error",
                message: None,
            },
            Some(Verdict::Deleted | Verdict::Killed) | None => Exit::of(status),
        };
        let disrupted = runtime.verdict == Some(Verdict::Disrupted);
        let (namespace, name) = (runtime.namespace.clone(), runtime.name.clone());
        let namespace = Some(namespace.as_str());
        let Ok(pod) = store.get(&pods(), namespace, &name) else {
            return;
        };
        if meta(&pod, "uid") != uid {
            return;
        }
        let restart = restarts_always(&pod)
            && pod["metadata"]["deletionTimestamp"].is_null()
            && !matches!(runtime.verdict, Some(Verdict::Disrupted | Verdict::Deleted));
        let status = if restart {
            runtime.crash(&pod, &exit)
        } else {
            terminated_status(&pod, runtime, &exit, disrupted)
        };
        if let Err(e) = store.edit(&pods(), namespace, &name, |pod| {
            pod["status"] = status;
        }) {
            tracing::warn!("kube-double cannot record the exit of pod {name}: {e}");
        }
    }
}
