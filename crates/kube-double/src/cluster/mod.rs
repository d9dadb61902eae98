//! The opt-in cluster simulation: a Job controller, a Deployment controller, a garbage
//! collector and a kubelet that runs real local processes, so that code which submits a Job or
//! a Deployment and watches it run can be tested end to end with real load and real results
//! instead of scripted status changes.
//!
//! Everything is level-triggered, as in Kubernetes: one reconcile pass looks at the whole
//! store and moves it one step towards the desired state. Passes run whenever a client or the
//! test changes something, whenever a process exits, and on a short tick (deadlines). The
//! store lock is always taken before the simulation's own state lock.

mod deployment;
mod fields;
mod gc;
mod job;
mod kubelet;
mod logs;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::lock;
use crate::resource::ResourceType;
use crate::status::ApiError;
use crate::store::{DeleteOptions, Store};

pub(crate) use logs::{LogOutput, LogQuery};

use kubelet::PodRuntime;
pub(crate) use kubelet::Verdict;

/// How often a pass runs when nothing wakes the simulation; bounds deadline accuracy.
const TICK: Duration = Duration::from_millis(25);
/// Passes run back to back while they keep changing the store, so that a pod created in one
/// pass is started in the next without waiting for a tick; the bound keeps a flapping rule
/// from spinning.
const SETTLE_PASSES: usize = 8;
/// How often test-facing waits look at the store again.
const POLL: Duration = Duration::from_millis(10);

/// Options for [`crate::ApiDouble::start_cluster`]: which local programs stand in for container
/// commands, extra environment for every container and where pods get their directories.
#[derive(Debug, Clone, Default)]
pub struct Simulation {
    executables: BTreeMap<String, PathBuf>,
    env: Vec<(String, String)>,
    work_dir: Option<PathBuf>,
}

impl Simulation {
    /// No executables mapped: every container fails with `ContainerCannotRun`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `path` for containers whose `command[0]` is `command`, or whose `command[0]` is a
    /// path ending in a file named `command` (images often use absolute paths).
    pub fn executable(mut self, command: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        self.executables.insert(command.into(), path.into());
        self
    }

    /// Adds a variable to every container's environment, overriding the pod's own.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Puts pod directories under `root` (kept afterwards) instead of a fresh directory under
    /// the system temp dir that is removed when the double is dropped.
    pub fn work_dir(mut self, root: impl Into<PathBuf>) -> Self {
        self.work_dir = Some(root.into());
        self
    }

    fn program_for(&self, command: &str) -> Option<&PathBuf> {
        self.executables.get(command).or_else(|| {
            let name = std::path::Path::new(command).file_name()?.to_str()?;
            self.executables.get(name)
        })
    }
}

/// The container a fault killed, to recognise its end in the pod status.
struct Target {
    namespace: String,
    name: String,
    uid: String,
    container: Option<String>,
}

/// A pod whose process is alive, for assertions about what runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningPod {
    /// Namespace of the pod.
    pub namespace: String,
    /// Name of the pod.
    pub name: String,
    /// Process id of the container's main process, also its process group id.
    pub pid: u32,
}

/// What a test made happen to the pods of one Job index or Deployment replica slot before they
/// start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PodFault {
    Unschedulable,
    ImagePullBackOff,
}

#[derive(Debug, Default)]
struct State {
    /// Pods the kubelet has started (or failed to start), by pod uid.
    pods: HashMap<String, PodRuntime>,
    /// Job controller bookkeeping, by Job uid.
    jobs: HashMap<String, job::Tracker>,
    /// Deployment controller bookkeeping, by Deployment uid.
    deployments: HashMap<String, deployment::Tracker>,
    /// Faults by (workload name, completion index or replica slot).
    faults: HashMap<(String, u32), PodFault>,
    stopped: bool,
}

/// The simulation attached to a double's store.
#[derive(Debug)]
pub(crate) struct Cluster {
    store: Arc<Mutex<Store>>,
    simulation: Simulation,
    root: PathBuf,
    owns_root: bool,
    state: Mutex<State>,
    wake: Notify,
    reconciler: Mutex<Option<JoinHandle<()>>>,
}

pub(crate) fn pods() -> ResourceType {
    ResourceType::new("", "v1", "Pod", "pods", true)
}

pub(crate) fn jobs() -> ResourceType {
    ResourceType::new("batch", "v1", "Job", "jobs", true)
}

pub(crate) fn deployments() -> ResourceType {
    ResourceType::new("apps", "v1", "Deployment", "deployments", true)
}

pub(crate) fn is_jobs(rt: &ResourceType) -> bool {
    rt.group == "batch" && rt.plural == "jobs"
}

pub(crate) fn is_deployments(rt: &ResourceType) -> bool {
    rt.group == "apps" && rt.plural == "deployments"
}

/// Whether the simulation's garbage collector handles the dependents of the type's objects.
pub(crate) fn is_owner(rt: &ResourceType) -> bool {
    is_jobs(rt) || is_deployments(rt)
}

fn meta<'a>(object: &'a Value, field: &str) -> &'a str {
    object["metadata"][field].as_str().unwrap_or_default()
}

fn is_deleting(object: &Value) -> bool {
    !object["metadata"]["deletionTimestamp"].is_null()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The workload name and index a pod belongs to, which faults are keyed by: a Job pod's
/// completion index, or a Deployment pod's replica slot.
fn workload_index(state: &State, pod: &Value) -> Option<(String, u32)> {
    let labels = &pod["metadata"]["labels"];
    if let (Some(job), Some(index)) = (
        labels[job::JOB_NAME].as_str(),
        labels[job::COMPLETION_INDEX].as_str(),
    ) {
        return Some((job.to_owned(), index.parse().ok()?));
    }
    deployment::slot_of(&state.deployments, pod)
}

/// A fresh directory per double, so parallel tests never share pod directories.
fn fresh_root() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "kube-double-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

impl Cluster {
    /// Creates the work directory and starts reconciling; must run inside a tokio runtime.
    pub(crate) fn start(
        store: Arc<Mutex<Store>>,
        simulation: Simulation,
    ) -> Result<Arc<Self>, Error> {
        let (root, owns_root) = match &simulation.work_dir {
            Some(root) => (root.clone(), false),
            None => (fresh_root(), true),
        };
        std::fs::create_dir_all(&root).map_err(Error::WorkDir)?;
        let cluster = Arc::new(Self {
            store,
            simulation,
            root,
            owns_root,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            reconciler: Mutex::new(None),
        });
        let task = tokio::spawn(reconcile_loop(Arc::downgrade(&cluster)));
        *lock(&cluster.reconciler) = Some(task);
        Ok(cluster)
    }

    /// Asks for a reconcile pass soon; cheap, and coalesces with pending requests.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Kills every process (whole process groups, so shells' children die too), stops all
    /// tasks and removes the work directory if the simulation created it. Idempotent.
    pub(crate) fn stop(&self) {
        let (pids, tasks) = {
            let mut state = lock(&self.state);
            state.stopped = true;
            let runtimes: Vec<PodRuntime> = state.pods.drain().map(|(_, r)| r).collect();
            let pids: Vec<u32> = runtimes.iter().filter_map(|r| r.pid).collect();
            let tasks: Vec<JoinHandle<()>> = runtimes.into_iter().filter_map(|r| r.task).collect();
            (pids, tasks)
        };
        kubelet::kill_groups(&pids);
        for task in tasks {
            task.abort();
        }
        if let Some(task) = lock(&self.reconciler).take() {
            task.abort();
        }
        if self.owns_root {
            if let Err(e) = std::fs::remove_dir_all(&self.root) {
                tracing::debug!("kube-double could not remove {}: {e}", self.root.display());
            }
        }
    }

    /// One pass over the whole store; returns whether it changed anything.
    fn reconcile(self: &Arc<Self>) -> bool {
        let mut kills = Vec::new();
        let changed = {
            let mut store = lock(&self.store);
            let mut state = lock(&self.state);
            if state.stopped {
                return false;
            }
            let mut pass = Pass {
                cluster: self,
                store: &mut store,
                state: &mut state,
                kills: &mut kills,
                changed: false,
            };
            pass.forget_vanished_pods();
            pass.collect_garbage();
            pass.sync_jobs();
            pass.sync_deployments();
            pass.run_pods();
            pass.changed
        };
        kubelet::kill_groups(&kills);
        changed
    }

    pub(crate) fn set_fault(&self, job: &str, index: u32, fault: PodFault) {
        lock(&self.state)
            .faults
            .insert((job.to_owned(), index), fault);
        self.wake();
    }

    pub(crate) fn running_pods(&self) -> Vec<RunningPod> {
        let state = lock(&self.state);
        let mut running: Vec<RunningPod> = state
            .pods
            .values()
            .filter_map(|r| {
                Some(RunningPod {
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                    pid: r.pid?,
                })
            })
            .collect();
        running.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        running
    }

    /// Waits for the running pod of `workload`'s `index`, kills it as `verdict` says and waits
    /// until the pod shows it: terminated, or for a restarting pod, the killed container in
    /// `lastState`. Returns the pod's name. Unbounded: callers wrap it in a timeout.
    pub(crate) async fn terminate(&self, workload: &str, index: u32, verdict: Verdict) -> String {
        let (target, pid) = loop {
            if let Some(found) = self.mark_running(workload, index, verdict) {
                break found;
            }
            tokio::time::sleep(POLL).await;
        };
        kubelet::kill_groups(&[pid]);
        loop {
            let ended = {
                let store = lock(&self.store);
                store
                    .get(&pods(), Some(&target.namespace), &target.name)
                    .ok()
                    .filter(|pod| meta(pod, "uid") == target.uid)
                    .is_none_or(|pod| {
                        let last = &pod["status"]["containerStatuses"][0]["lastState"];
                        kubelet::is_terminal(&pod)
                            || last["terminated"]["containerID"].as_str()
                                == target.container.as_deref()
                    })
            };
            if ended {
                return target.name;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn mark_running(&self, workload: &str, index: u32, verdict: Verdict) -> Option<(Target, u32)> {
        let store = lock(&self.store);
        let mut state = lock(&self.state);
        store.all(&pods()).into_iter().find_map(|pod| {
            let (name, at) = workload_index(&state, &pod)?;
            if name != workload || at != index {
                return None;
            }
            let uid = meta(&pod, "uid").to_owned();
            let runtime = state.pods.get_mut(&uid)?;
            let pid = runtime.pid.filter(|_| runtime.verdict.is_none())?;
            runtime.verdict = Some(verdict);
            let target = Target {
                namespace: runtime.namespace.clone(),
                name: runtime.name.clone(),
                uid,
                container: runtime.container_id.clone(),
            };
            Some((target, pid))
        })
    }

    /// Answers `GET pods/NAME/log`.
    pub(crate) fn log(
        &self,
        namespace: &str,
        name: &str,
        query: &LogQuery,
    ) -> Result<LogOutput, ApiError> {
        let store = lock(&self.store);
        let pod = store.get(&pods(), Some(namespace), name)?;
        let first = pod["spec"]["containers"][0]["name"]
            .as_str()
            .unwrap_or_default();
        let container = query.container.as_deref().unwrap_or(first);
        let known = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["name"] == container);
        if !known {
            return Err(ApiError::bad_request(format!(
                "container {container} is not valid for pod {name}"
            )));
        }
        let state = lock(&self.state);
        // Only the first container runs, so any other one is forever about to start.
        let runtime = state
            .pods
            .get(meta(&pod, "uid"))
            .filter(|_| container == first);
        match runtime {
            Some(runtime) if query.previous => match &runtime.previous_log {
                Some(log) => Ok(log.read(query)),
                None => Err(ApiError::bad_request(format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                ))),
            },
            Some(runtime) => Ok(runtime.log.read(query)),
            None => {
                let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
                let reason = match waiting["reason"].as_str() {
                    Some("ImagePullBackOff" | "ErrImagePull") => "trying and failing to pull image",
                    _ => "ContainerCreating",
                };
                Err(ApiError::bad_request(format!(
                    "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
                )))
            }
        }
    }

    /// Admission of a Job `POST`: validation and the API server's defaulting.
    pub(crate) fn create_job(
        &self,
        store: &mut Store,
        rt: &ResourceType,
        namespace: Option<&str>,
        job: Value,
    ) -> Result<Value, ApiError> {
        job::create(store, rt, namespace, job)
    }

    /// Admission of a Deployment `POST`: validation and the API server's defaulting.
    pub(crate) fn create_deployment(
        &self,
        store: &mut Store,
        rt: &ResourceType,
        namespace: Option<&str>,
        deployment: Value,
    ) -> Result<Value, ApiError> {
        deployment::create(store, rt, namespace, deployment)
    }

    /// A Job or Deployment `DELETE` with its propagation policy.
    pub(crate) fn delete_owner(
        &self,
        store: &mut Store,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let default_policy = if is_jobs(rt) { "Orphan" } else { "Background" };
        gc::delete(store, rt, namespace, name, options, default_policy)
    }
}

async fn reconcile_loop(cluster: Weak<Cluster>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        {
            let Some(cluster) = cluster.upgrade() else {
                return;
            };
            tokio::select! {
                () = cluster.wake.notified() => {}
                _ = tick.tick() => {}
            }
            for _ in 0..SETTLE_PASSES {
                if !cluster.reconcile() {
                    break;
                }
            }
        }
    }
}

/// One reconcile pass: the locked store and state plus what the pass decided to kill, which
/// happens after the locks are released.
struct Pass<'a> {
    cluster: &'a Arc<Cluster>,
    store: &'a mut Store,
    state: &'a mut State,
    kills: &'a mut Vec<u32>,
    changed: bool,
}

impl Pass<'_> {
    /// Applies `edit` to an object and stores it only if it changed, so that passes over a
    /// settled cluster do not bump resource versions.
    fn update(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        edit: impl FnOnce(&mut Value),
    ) {
        let Ok(current) = self.store.get(rt, Some(namespace), name) else {
            return;
        };
        let mut updated = current.clone();
        edit(&mut updated);
        if updated != current
            && self
                .store
                .edit(rt, Some(namespace), name, |o| *o = updated)
                .is_ok()
        {
            self.changed = true;
        }
    }

    /// Deletes a pod and kills its process, as the API server plus kubelet do for a pod
    /// deleted with a zero grace period.
    fn delete_pod(&mut self, namespace: &str, name: &str) {
        if let Ok(pod) =
            self.store
                .delete(&pods(), Some(namespace), name, &DeleteOptions::default())
        {
            self.changed = true;
            if pod["metadata"]["deletionTimestamp"].is_null() {
                self.forget_pod(meta(&pod, "uid"));
            }
        }
    }
}
