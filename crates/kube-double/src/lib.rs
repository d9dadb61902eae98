//! An in-process Kubernetes API server double that the real `kube::Client` talks to.
//!
//! Tests of code that lists, creates, patches or deletes Kubernetes objects need a server that
//! speaks the API's HTTP protocol, not a mocked trait: only then do the request paths, query
//! parameters, `DeleteOptions` bodies and `Status` errors that `kube` produces and parses get
//! exercised. [`ApiDouble`] binds `127.0.0.1` on an ephemeral port and serves a generic object
//! store keyed by (group, version, plural, namespace, name):
//!
//! - `GET` a collection (namespaced or across namespaces) with `labelSelector`, `fieldSelector`
//!   (`metadata.name`, `metadata.namespace`), `limit` and `continue`;
//! - `GET`, `POST`, `PUT`, `PATCH` (JSON merge patch; strategic merge patch is applied as a merge
//!   patch) and `DELETE` (honouring `DeleteOptions.preconditions` and finalizers) of one object;
//! - watches (`watch=true` on a collection): `ADDED`/`MODIFIED`/`DELETED` events streamed from
//!   a bounded change history, with `resourceVersion` (unset or `0` replays the current objects
//!   first, `N` resumes after `N`, too old gets a `410 Expired` `ERROR` event), selectors (an
//!   object leaving the selector reads as `DELETED`), `sendInitialEvents` with its closing
//!   `BOOKMARK`, and `timeoutSeconds`; dropping the double ends every watch;
//! - the `scale` subresource of Deployments, ReplicaSets and StatefulSets: `GET` answers an
//!   `autoscaling/v1` Scale, `PATCH` (merge or strategic merge, as `Api::patch_scale` sends)
//!   and `PUT` set `spec.replicas`;
//! - `metadata.generation` for `apps` workloads (1 on create, +1 on every `spec` change);
//! - `404` with a `Status` for unknown objects and for resource types that are not registered,
//!   which is how a missing CRD looks to a client.
//!
//! Every request is recorded ([`ApiDouble::requests`]), failures can be injected
//! ([`ApiDouble::inject`]) and objects can be edited behind the client's back
//! ([`ApiDouble::edit`]) to simulate a concurrent writer.
//!
//! Extension points: subresources other than `scale` and a simulated pod's `log` are parsed
//! into a [`route::Route`] but answered with `404` today.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube_double::Error> {
//! let double = kube_double::ApiDouble::start().await?;
//! double.seed(serde_json::json!({
//!     "apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "settings", "namespace": "default"},
//! }))?;
//! let client = double.client()?;
//! # drop(client);
//! # Ok(()) }
//! ```
//!
//! # Cluster simulation
//!
//! [`ApiDouble::start_cluster`] adds, opt-in, what a tool that submits a Job or a Deployment
//! and follows it needs from a cluster: a Job controller, a Deployment controller, a garbage
//! collector and a kubelet that runs every pod as a **real local process**, so the test exercises real load and real results. A
//! [`Simulation`] says which executable stands in for each container `command[0]` (matched
//! exactly, or by file name for absolute paths: `"kpress"` also serves `/usr/bin/kpress`),
//! which extra environment every container gets, and where pod directories go (by default a
//! fresh directory under the system temp dir, removed on drop).
//!
//! **Jobs** (`batch/v1`, `completionMode: Indexed`; a `NonIndexed` Job is refused with `501`,
//! and missing `completions`, a `restartPolicy` other than `Never`/`OnFailure`, or a failure
//! policy without `Never` with `422 Invalid`). Creation defaults the selector
//! (`batch.kubernetes.io/controller-uid`), the generated template labels, the Job's labels,
//! `parallelism`, `backoffLimit` (6, or unlimited with `backoffLimitPerIndex`), `suspend` and
//! `podReplacementPolicy`. The controller then:
//!
//! - creates one pod per index `0..completions` (at most `parallelism` active), named
//!   `<job>-<index>-<5 random lowercase letters>`, with the template's labels plus
//!   `batch.kubernetes.io/job-name`, `job-name`, `batch.kubernetes.io/controller-uid`,
//!   `controller-uid` and `batch.kubernetes.io/job-completion-index`, the completion-index
//!   annotation (and `batch.kubernetes.io/job-index-failure-count` /
//!   `…-ignored-failure-count` with `backoffLimitPerIndex`), a controlling owner reference with
//!   `blockOwnerDeletion`, `hostname: <job>-<index>` and `JOB_COMPLETION_INDEX` from that
//!   annotation in every container's `env`;
//! - applies `podFailurePolicy` rules in order (`FailJob`, `FailIndex`, `Ignore`, `Count`;
//!   `onExitCodes` with optional `containerName` and `In`/`NotIn`, never matching exit code 0;
//!   `onPodConditions`): `FailJob` fails the Job at once and deletes its running pods; an
//!   ignored failure is not counted and its index gets a replacement pod;
//! - retries a failed index with a new pod until its failures exceed `backoffLimitPerIndex`,
//!   then fails the index; fails the Job when all failures exceed `backoffLimit`, when
//!   failed indexes exceed `maxFailedIndexes`, or after `activeDeadlineSeconds` (deleting
//!   its running pods); a pod deleted by someone else counts as a failure;
//! - writes `status` as the real controller does: `startTime`, `active`, `ready`,
//!   `succeeded`, `failed` (zeros omitted), `completedIndexes` and `failedIndexes` (`"0-2,4"`),
//!   `uncountedTerminatedPods`, and when all indexes are done the condition pair
//!   `SuccessCriteriaMet` + `Complete` (reason `CompletionsReached`, with `completionTime`) or
//!   `FailureTarget` + `Failed` (reasons `PodFailurePolicy`, `BackoffLimitExceeded`,
//!   `FailedIndexes`, `MaxFailedIndexesExceeded`, `DeadlineExceeded`).
//!
//! **Deployments** (`apps/v1`): creation refuses a missing selector, a selector that does not
//! match the template's labels, no containers or a `restartPolicy` other than `Always` (`422
//! Invalid`), and defaults `replicas` (1), `strategy` (RollingUpdate, 25%/25%),
//! `revisionHistoryLimit`, `progressDeadlineSeconds` and the template's `restartPolicy:
//! Always`. The controller then:
//!
//! - keeps `spec.replicas` pods of the template active, named
//!   `<deployment>-<pod-template-hash>-<5 random lowercase letters>`, labelled
//!   `pod-template-hash`, with a controlling owner reference to the **Deployment itself** (no
//!   ReplicaSet object is simulated); a pod that is deleted or ends (`disrupt`) is replaced;
//! - gives every pod a **replica slot**: slots `0..replicas` are filled lowest first, a
//!   replacement takes its predecessor's slot, scaling down deletes the highest slots first
//!   (killing their processes); faults address a Deployment's pods by slot;
//! - replaces all pods at once when the template changes (no rolling update);
//! - writes `status`: `observedGeneration`, `replicas`, `updatedReplicas`, `readyReplicas`,
//!   `availableReplicas`, `unavailableReplicas` (zeros omitted) and the conditions `Available`
//!   (`MinimumReplicasAvailable`/`MinimumReplicasUnavailable`, against `maxUnavailable`) and
//!   `Progressing` (`NewReplicaSetAvailable` once all replicas are updated and ready, else
//!   `ReplicaSetUpdated`).
//!
//! **Pods** are bound to node `kube-double` and go `Pending` → `Running` (conditions
//! `PodScheduled`, `Initialized`, `Ready`, …, `containerStatuses[0].state.running`, `ready`)
//! → `Succeeded`/`Failed` (`state.terminated` with `exitCode` and reason `Completed` or
//! `Error`). The kubelet runs the first container's `command + args` (`$(VAR)` expanded)
//! with the host's `PATH`, `HOSTNAME`, the container's `env` (`value`, or `fieldRef` to
//! `metadata.name`, `.namespace`, `.uid`, `.labels['k']`, `.annotations['k']`,
//! `spec.nodeName`, `spec.serviceAccountName`; other sources are skipped), then the
//! simulation's extra env, then `KPRESS_POD_INFO_DIR`, a per-pod directory holding the files
//! of every `downwardAPI` volume (`fieldRef` items: the fields above, whole label and
//! annotation maps in the kubelet's `key="value"` format). Those files are rewritten,
//! atomically, whenever the pod object changes, e.g. when a client patches an annotation.
//! An unmapped `command[0]` fails the pod with `ContainerCannotRun`, exit code 127.
//! With `restartPolicy: Always` (a pod's default, and a Deployment's pods') a container that
//! exits, with any code, is **restarted in the same pod**: `restartCount` goes up,
//! `lastState.terminated` keeps the exit, and the container waits in `CrashLoopBackOff`
//! (`Ready=False`) for a backoff of 100 ms doubling up to 2 s; it gets the same environment and
//! pod directory, and a fresh log (`previous=true` reads the one before).
//! Every container runs in its own process group, killed as a whole when its main process
//! exits, its pod is deleted, a fault hits it or the double is dropped (also while a test
//! panics), so no process outlives a test.
//!
//! **Logs**: stdout and stderr, interleaved as written, are served by `GET
//! .../pods/NAME/log` as `text/plain`; `follow=true` streams (chunked) until the container
//! exits, `tailLines` and `limitBytes` are honoured, `container` is checked, `timestamps`,
//! `sinceSeconds` are ignored, `previous=true` reads the log of the container that ran before
//! the latest restart. A pod that never started answers `400`,
//! `container "C" in pod "P" is waiting to start: …`, like the real API.
//!
//! **Deletion**: deleting a Job or Deployment with `propagationPolicy: Background` deletes its
//! dependents of any type (pods, killing their processes, but also e.g. a ConfigMap owned by
//! the Deployment); `Foreground` keeps the owner (with a `deletionTimestamp` and the
//! `foregroundDeletion` finalizer) until its dependents are gone; `Orphan` strips the owner
//! references and leaves the dependents running. Without a policy a `batch/v1` Job orphans
//! (the real API's legacy default) and a Deployment deletes in the background. Deleting a pod
//! kills its process. Deletion is immediate (no grace period).
//!
//! **Faults** for tests, addressed by workload name and index (a Job's completion index, a
//! Deployment's replica slot): [`ApiDouble::never_schedule`] (Pending, `PodScheduled=False`,
//! `Unschedulable`), [`ApiDouble::image_pull_backoff`] (Pending, waiting in
//! `ImagePullBackOff`), [`ApiDouble::disrupt`] (killed, `Failed` with a `DisruptionTarget`
//! condition), [`ApiDouble::oom_kill`] (killed, `OOMKilled`, exit 137) and
//! [`ApiDouble::kill_container`] (killed once, exit 137, as a crash); an `Always` pod restarts
//! after `oom_kill` and `kill_container`. For assertions: [`ApiDouble::running_pods`] and
//! [`ApiDouble::wait_for_absence`].
//!
//! Not simulated: `ttlSecondsAfterFinished` (finished Jobs stay until deleted), Job retry
//! backoff delays (retries are immediate), `suspend` beyond not creating pods, `restartPolicy:
//! OnFailure` restarts (the pod fails instead), ReplicaSets, rolling updates, `paused`,
//! `minReadySeconds` and `progressDeadlineSeconds` of Deployments, the garbage collection of
//! ended Deployment pods (they stay until the Deployment goes), init and sidecar containers
//! (only the first container runs), resources and limits, `volumeMounts` and `workingDir` (the
//! process runs in its pod directory), the `batch.kubernetes.io/job-tracking` finalizer,
//! `podIP`, Events, periodic watch bookmarks, and Jobs' `NonIndexed` mode.
//!
//! A test drives a Job end to end like this (`kpress` stands for any mapped program):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
//! use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
//! use kube_double::{ApiDouble, Simulation};
//!
//! let simulation = Simulation::new()
//!     .executable("kpress", "/path/to/target/debug/kpress") // env!("CARGO_BIN_EXE_kpress")
//!     .env("RUST_LOG", "warn");
//! let double = ApiDouble::start_cluster(simulation).await?;
//! let jobs: Api<Job> = Api::namespaced(double.client()?, "load");
//! let pods: Api<Pod> = Api::namespaced(double.client()?, "load");
//! let job: Job = serde_json::from_value(serde_json::json!({
//!     "metadata": {"name": "smoke", "namespace": "load"},
//!     "spec": {
//!         "completionMode": "Indexed", "completions": 2, "parallelism": 2,
//!         "template": {"spec": {"restartPolicy": "Never", "containers": [{
//!             "name": "runner", "image": "kpress", "command": ["kpress", "--version"],
//!         }]}},
//!     },
//! }))?;
//! jobs.create(&PostParams::default(), &job).await?;
//! double.never_schedule("smoke", 1)?; // or disrupt / oom_kill / image_pull_backoff
//! let selector = "batch.kubernetes.io/job-name=smoke";
//! for pod in pods.list(&ListParams::default().labels(selector)).await? {
//!     let name = pod.metadata.name.unwrap_or_default();
//!     let _log = pods.logs(&name, &LogParams::default()).await;
//! }
//! jobs.delete("smoke", &DeleteParams::background()).await?;
//! tokio::time::timeout(
//!     std::time::Duration::from_secs(10),
//!     double.wait_for_absence("v1", "Pod", selector),
//! )
//! .await??;
//! assert!(double.running_pods().is_empty());
//! # Ok(()) }
//! ```
//!
//! A Deployment whose runners restart, scaled to 0 and deleted as a management center would:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use k8s_openapi::api::apps::v1::Deployment;
//! use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
//! use kube_double::{ApiDouble, Simulation};
//!
//! let double = ApiDouble::start_cluster(Simulation::new().executable("sh", "/bin/sh")).await?;
//! let api: Api<Deployment> = Api::namespaced(double.client()?, "load");
//! let deployment: Deployment = serde_json::from_value(serde_json::json!({
//!     "metadata": {"name": "runners", "namespace": "load"},
//!     "spec": {
//!         "replicas": 3,
//!         "selector": {"matchLabels": {"app": "kpress"}},
//!         "template": {
//!             "metadata": {"labels": {"app": "kpress"}},
//!             "spec": {"containers": [{
//!                 "name": "runner", "image": "kpress", "command": ["sh", "-c", "sleep 30"],
//!             }]},
//!         },
//!     },
//! }))?;
//! api.create(&PostParams::default(), &deployment).await?;
//! double.kill_container("runners", 1).await?; // restarted in place, restartCount 1
//! let zero = Patch::Merge(serde_json::json!({"spec": {"replicas": 0}}));
//! api.patch_scale("runners", &PatchParams::default(), &zero).await?;
//! api.delete("runners", &DeleteParams::background()).await?;
//! # Ok(()) }
//! ```

mod cluster;
mod error;
mod record;
mod resource;
pub mod route;
mod selector;
mod server;
mod status;
mod store;
mod watch;

pub use cluster::{RunningPod, Simulation};
pub use error::Error;
pub use record::{Fault, RecordedRequest};
pub use resource::ResourceType;
pub use selector::{LabelSelector, SelectorError};
pub use server::{kubeconfig_for, ApiDouble};
pub use status::ApiError;
pub use store::ObjectRef;

/// Locks a mutex even if a panicking test thread poisoned it: the data is plain and stays valid.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
