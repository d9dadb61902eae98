//! Request and response bodies of the center's API (docs/center.md, openapi.yaml).

use std::collections::BTreeMap;

use kpress_engine::summary::{Summary, TimelinePoint};
use serde::{Deserialize, Serialize};

/// Where a run executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Local,
    Job,
    Deployment,
}

/// A run's state in the center. `Running` until every runner has signalled
/// completion (or the run is finished by hand); then the verdict of the merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Passed,
    ThresholdsFailed,
    /// Stopped by a threshold with `abortOnFail`.
    Aborted,
    /// Stopped by Ctrl-C, SIGTERM or a request.
    Interrupted,
    /// Some runners' results are missing.
    Partial,
    /// No runner delivered a result.
    Failed,
}

/// `POST /api/runs`: register a run before its runners start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRun {
    /// The run id the runners use; the center generates one when absent. Re-sending
    /// the same body with the same id returns the same run (a retry after a timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub test: String,
    /// The application label, `key=value` (e.g. `tenc-app=press-client-148-online`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    pub mode: Mode,
    /// Who or what started the run (user@host, a CI job URL...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// The scenario file's text, as run.
    #[serde(default)]
    pub scenario: String,
    /// Runner count N: the run is complete when runners 0..N have all signalled done.
    pub runners: u64,
    /// Further labels to keep on the run (`kpress.io/...`, the Job's name...).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Mode `deployment` only: the Deployment "version" that runs the test, which
    /// the center drives to completion and removes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentRequest>,
}

/// How a `deployment`-mode run's Deployment is made. The center builds it (one
/// builder for `submit` and `render`), hands its runners the run's token, leases them
/// their shares, starts them together and removes the Deployment when they are done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentRequest {
    pub namespace: String,
    /// The center creates the Deployment (`submit`); otherwise whoever applies the
    /// manifest in the answer does (`render`, a platform's own pipeline).
    pub create: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `REQUEST:LIMIT` CPU of each runner, e.g. `500m:1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// `REQUEST:LIMIT` memory of each runner, e.g. `128Mi:256Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default)]
    pub spread: bool,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// `KEY[=VALUE]:EFFECT`.
    #[serde(default)]
    pub tolerations: Vec<String>,
    /// Every share must be leased by then, or the run fails (and is cleaned up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_timeout_s: Option<u64>,
}

/// The answer to `POST /api/runs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedRun {
    pub run: RunInfo,
    /// The token this run's runners report with; it can write to this run only.
    pub runner_token: String,
    /// Mode `deployment`: the Deployment (YAML) the center created, or is to be applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

/// A run as the API lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    pub id: String,
    pub test: String,
    pub app: Option<String>,
    pub mode: Mode,
    pub started_by: Option<String>,
    pub status: RunStatus,
    pub runners: u64,
    /// Runners that have signalled completion.
    pub runners_done: u64,
    /// RFC 3339.
    pub created: String,
    /// RFC 3339: the earliest start a runner reported.
    pub started: Option<String>,
    /// RFC 3339: when the run was finished.
    pub ended: Option<String>,
    pub duration_s: Option<f64>,
    pub requests: Option<u64>,
    /// Fraction of failed requests.
    pub error_rate: Option<f64>,
    /// Corrected `http_req_duration` p99, milliseconds.
    pub p99_ms: Option<f64>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `POST /api/runs/{id}/runners/{index}/points`: seconds a runner has completed.
/// Idempotent per (runner, second): a second already stored is ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Points {
    pub points: Vec<TimelinePoint>,
}

/// `PUT /api/runs/{id}/runners/{index}/summary`: a runner's final summary, exactly
/// what `kpress run --summary-out` writes. Idempotent: the same summary again
/// changes nothing; a different one for the same runner is a conflict.
pub type RunnerSummary = Summary;

/// `POST /api/runs/{id}/runners/{index}/done`: the runner's completion signal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Done {
    pub outcome: RunnerOutcome,
    /// Why the runner failed, for the run's page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerOutcome {
    /// The runner's share ran and its summary was sent.
    Completed,
    /// The runner could not run its share (it has no summary to give).
    Failed,
}

/// Every API error: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `payload_too_large`, `unsupported_media_type`,
    /// `internal`.
    pub code: String,
    /// For humans; never contains internal details (SQL, file paths).
    pub message: String,
}

/// `GET /api/runs`: the runs matching the filters, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunList {
    pub runs: Vec<RunInfo>,
}

/// `GET /api/runs/{id}`: the run with its scenario, merged summary and runners.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunInfo,
    /// The scenario file's text, as registered.
    pub scenario: String,
    /// The runners' merged summary (histograms, thresholds, timeline); null while running
    /// and when no runner delivered one.
    pub summary: Option<Summary>,
    /// Why the run was finished by `POST /api/runs/{id}/finish`, if it was.
    #[serde(default)]
    pub finish_reason: Option<String>,
    pub runner_states: Vec<RunnerState>,
    /// Mode `deployment`: the Deployment, its start barrier and its clean-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentState>,
}

/// Where a `deployment`-mode run stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentState {
    pub namespace: String,
    pub name: String,
    /// Whether the center created the Deployment.
    pub created_by_center: bool,
    /// RFC 3339: every share must be leased by then.
    pub start_by: String,
    /// RFC 3339: the common start, once every share is leased.
    pub start_at: Option<String>,
    /// RFC 3339: runners that have not reported by then are given up.
    pub report_by: Option<String>,
    /// Shares leased to a runner.
    pub leased: u64,
    /// What removing the Deployment did; null until the run is finished and cleaned.
    pub cleanup: Option<Cleanup>,
}

/// The removal of a finished `deployment`-mode run's objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cleanup {
    /// Whether everything went: the Deployment scaled to 0 and deleted, and every hook ran.
    pub ok: bool,
    pub scaled: bool,
    pub deleted: bool,
    /// The run's ConfigMaps that were deleted.
    pub config_maps: Vec<String>,
    /// Why the Kubernetes part failed, if it did.
    pub error: Option<String>,
    pub hooks: Vec<HookOutcome>,
    /// RFC 3339.
    pub finished: String,
}

/// What became of one clean-up hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookOutcome {
    pub name: String,
    pub ok: bool,
    pub attempts: u32,
    /// The last error, short.
    pub error: Option<String>,
    /// RFC 3339.
    pub finished: String,
}

/// `POST /api/runs/{id}/lease`: a `deployment`-mode runner asks for its share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// The pod's name: a container restarted in the same pod gets the same share.
    pub pod: String,
    /// Drawn at process start: tells a restarted container from the one before it.
    pub process: String,
}

/// The center's answer to a lease request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub state: LeaseState,
    /// The share, `index` of `runners`.
    pub index: Option<u64>,
    pub runners: u64,
    /// RFC 3339: when every runner starts (with `state: start`).
    pub start_at: Option<String>,
    /// Why there is nothing to run (with `state: idle`).
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// Hold the share and ask again: not every share is leased yet.
    Wait,
    /// Run the share from `start_at`.
    Start,
    /// Run nothing: the share is done, was cut short, or the run is over. Idle until
    /// scaled away.
    Idle,
}

/// What one runner of a run has done.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunnerState {
    pub index: u64,
    pub state: RunnerPhase,
    /// Why it failed, or what is odd about it (a completion without a summary).
    pub message: Option<String>,
    /// RFC 3339: the runner's last report.
    pub updated: String,
}

/// A runner's progress: `pending` until it reports, `running` while points or its
/// summary arrive, then `completed` or `failed` with its done signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerPhase {
    Pending,
    Running,
    Completed,
    Failed,
}

/// `GET /api/runs/{id}/timeline`: every second the runners reported, merged exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timeline {
    pub points: Vec<TimelineSecond>,
}

/// One second of a run, all runners together (histograms added, then percentiles).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineSecond {
    /// Seconds since the start.
    pub t: u64,
    pub requests: u64,
    pub failed: u64,
    /// Requests per second.
    pub rate: f64,
    /// Fraction of this second's requests that failed.
    pub error_rate: f64,
    /// Corrected `http_req_duration`, milliseconds.
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub vus: u64,
    /// How many runners' points this second holds.
    pub runners: u64,
}

/// `GET /api/compare?a=ID&b=ID`: two runs side by side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub a: RunInfo,
    pub b: RunInfo,
    pub metrics: Vec<ComparedMetric>,
}

/// One metric of a comparison; null where a run has no merged summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparedMetric {
    /// `requests`, `rate`, `error_rate`, `http_req_duration.p50` ... `.p99.9`, `.max`.
    pub name: String,
    /// `requests`, `requests/s`, `fraction` or `ms`.
    pub unit: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// b − a.
    pub delta: Option<f64>,
    /// b / a (null when a is 0).
    pub ratio: Option<f64>,
}

/// The answer to `POST /api/runs/{id}/runners/{index}/points`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// Points stored by this call (seconds already stored are not counted).
    pub accepted: u64,
}

/// `POST /api/runs/{id}/finish`: finish the run now with what has arrived.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finish {
    pub reason: String,
}

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
}
