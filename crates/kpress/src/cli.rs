//! Every command and flag of `kpress`. Parsing only: each command's module turns these
//! into engine calls.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cmd::audit::AuditArgs;
use crate::cmd::center::CenterArgs;

#[derive(Parser, Debug)]
#[command(
    name = "kpress",
    version,
    about = "Load testing for Kubernetes: one Indexed Job, exact merged results, nothing left behind"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a load test on this machine (all of it, or one runner's segment).
    Run(RunArgs),
    /// Check a scenario file and show its plan; sends nothing.
    Validate(ValidateArgs),
    /// Merge runner summaries exactly and judge thresholds on the merged data.
    Merge(MergeArgs),
    /// Serve the built-in HTTP target, for trying kpress and for tests.
    Target(TargetArgs),
    /// Print the Kubernetes manifests of a test (YAML); creates nothing.
    Render(RenderArgs),
    /// Run a test on the cluster as one Indexed Job: follow, collect, merge, clean up.
    Submit(SubmitArgs),
    /// The tests kpress runs or ran in a namespace.
    List(ListArgs),
    /// Delete a run's Job or Deployment and its pods.
    Delete(DeleteArgs),
    /// Find, price and prune the leftovers of one-off workloads in a cluster.
    Audit(AuditArgs),
    /// Serve the management center: run history, exact merges, web UI, /metrics.
    Center(CenterArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ScenarioArgs {
    /// The scenario file (YAML).
    pub scenario: PathBuf,
    /// Override a field of the scenario, e.g. `--set scenarios.steady.rate=500`.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub sets: Vec<(String, String)>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Run N worker processes on this machine, one segment each, and merge their results.
    #[arg(long, value_name = "N", conflicts_with = "segment")]
    pub workers: Option<u64>,
    /// Run only segment I of N (0-based), e.g. `--segment 2/4`.
    #[arg(long, value_name = "I/N")]
    pub segment: Option<kpress_engine::segment::Segment>,
    /// The number of runners; with JOB_COMPLETION_INDEX set (an Indexed Job's pod),
    /// the segment is JOB_COMPLETION_INDEX/N.
    #[arg(long, value_name = "N", env = "KPRESS_RUNNERS", conflicts_with_all = ["segment", "workers"])]
    pub runners: Option<u64>,
    /// Hold the start until this instant (RFC 3339), so several runners start together.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub start_at: Option<std::time::SystemTime>,
    /// Write the summary JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary_out: Option<PathBuf>,
    /// The run id (shared by all runners of one run); generated when absent.
    #[arg(long, value_name = "ID", env = "KPRESS_RUN_ID")]
    pub run_id: Option<String>,
    /// Worker threads in this process (default: the cores it may use).
    #[arg(long, value_name = "N")]
    pub threads: Option<u64>,
    /// How to show progress while running.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Wait for the start instant a submitter publishes in DIR/start-at (a runner
    /// pod's downward-API volume), then start at it.
    #[arg(
        long,
        value_name = "DIR",
        env = "KPRESS_POD_INFO_DIR",
        conflicts_with = "start_at"
    )]
    pub pod_info_dir: Option<PathBuf>,
    /// How long to wait for that start instant.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub start_timeout: std::time::Duration,
    /// Serve the built-in target from this process for the run and point
    /// `defaults.baseUrl` at it (for trying kpress with nothing else set up).
    #[arg(long, conflicts_with_all = ["segment", "runners"])]
    pub local_target: bool,
    #[command(flatten)]
    pub center: CenterLinkArgs,
    /// The application label kept on the run in the center, e.g.
    /// `tenc-app=press-client-148-online`.
    #[arg(long = "app", value_name = "KEY=VALUE", requires = "center")]
    pub app: Option<String>,
    /// Run as a runner pod of a `deployment`-mode run: take a share from the center
    /// (--center, KPRESS_RUNNER_TOKEN, --run-id), start when it says, report, then idle
    /// until scaled away.
    #[arg(long, conflicts_with_all = ["segment", "runners", "workers", "local_target", "start_at"])]
    pub lease: bool,
    /// A registered run's runner token: report as one of its runners instead of
    /// registering a run (set for worker processes and runner pods).
    #[arg(long, hide = true, env = "KPRESS_RUNNER_TOKEN", hide_env_values = true)]
    pub runner_token: Option<String>,
}

/// Reporting to a management center (`kpress center`).
#[derive(Args, Debug, Clone)]
pub struct CenterLinkArgs {
    /// Register the run with the center at URL and send its results there as it
    /// runs; the center's token comes from KPRESS_CENTER_TOKEN.
    #[arg(long, value_name = "URL", env = "KPRESS_CENTER_URL")]
    pub center: Option<String>,
    /// The center's token (registers runs).
    #[arg(long, hide = true, env = "KPRESS_CENTER_TOKEN", hide_env_values = true)]
    pub center_token: Option<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A live line on a terminal, periodic plain lines otherwise.
    Auto,
    /// Periodic plain lines on stderr.
    Plain,
    /// One JSON timeline point per second on stdout, and no text summary (for a parent
    /// process or a collector).
    Jsonl,
    /// Nothing while running.
    None,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Also check that the test splits into N runners.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub runners: u64,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Runner summaries (JSON written by `kpress run --summary-out`).
    #[arg(required = true)]
    pub summaries: Vec<PathBuf>,
    /// Write the merged summary JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary_out: Option<PathBuf>,
    /// How many runners the run had, so missing ones are reported (default: from the summaries).
    #[arg(long, value_name = "N")]
    pub runners: Option<u64>,
}

/// How a test becomes Kubernetes objects (shared by `render` and `submit`).
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Runner pods (the test is split into this many exact shares).
    #[arg(long, value_name = "N")]
    pub runners: u32,
    /// The runner image.
    #[arg(long, value_name = "IMAGE", default_value = kpress_k8s::job::DEFAULT_IMAGE)]
    pub image: String,
    /// The namespace of the test's objects.
    #[arg(long, short = 'n', value_name = "NS", default_value = "default")]
    pub namespace: String,
    /// The application label on every object, the same for every test.
    #[arg(
        long,
        value_name = "KEY=VALUE",
        default_value = "app.kubernetes.io/part-of=kpress"
    )]
    pub app: kpress_k8s::labels::AppLabel,
    /// The run id (generated when absent).
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// How long a finished Job stays before Kubernetes removes it.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub ttl: std::time::Duration,
    /// Time allowed for runners to schedule and start, added to the Job's deadline.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub startup_allowance: std::time::Duration,
    /// Retries of a runner index that failed (disruptions are retried without counting).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub retries: u32,
    /// CPU request and limit of each runner, e.g. `500m:1`.
    #[arg(long, value_name = "REQUEST:LIMIT", default_value = "500m:1", value_parser = parse_pair)]
    pub cpu: (String, String),
    /// Memory request and limit of each runner, e.g. `128Mi:256Mi`.
    #[arg(long, value_name = "REQUEST:LIMIT", default_value = "128Mi:256Mi", value_parser = parse_pair)]
    pub memory: (String, String),
    /// Spread the runners over nodes.
    #[arg(long)]
    pub spread: bool,
    /// Run only on nodes with this label (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub node_selector: Vec<(String, String)>,
    /// Tolerate a taint, `KEY[=VALUE]:EFFECT` (repeatable).
    #[arg(long, value_name = "TAINT", value_parser = kpress_k8s::job::parse_toleration)]
    pub toleration: Vec<k8s_openapi::api::core::v1::Toleration>,
    /// `job`: one Indexed Job. `deployment`: one Deployment version of the
    /// application, which the center (--center) creates, drives and removes.
    #[arg(long, value_enum, default_value_t = ClusterMode::Job)]
    pub mode: ClusterMode,
}

/// How the runners run on the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterMode {
    Job,
    Deployment,
}

#[derive(Args, Debug)]
pub struct RenderArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// `--mode deployment`: the center that issues the run's token and drives it.
    #[command(flatten)]
    pub center: CenterLinkArgs,
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The kubeconfig context (default: the current one, or the in-cluster config).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Keep the Job when done; ttlSecondsAfterFinished removes it later.
    #[arg(long)]
    pub keep: bool,
    /// Give up if the runners are not all running within this time.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub startup_timeout: std::time::Duration,
    /// The common start is this long after the last runner is running (covers the
    /// kubelet's update of the pods' downward-API volume).
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub start_margin: std::time::Duration,
    /// Write the merged summary JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary_out: Option<PathBuf>,
    /// How to show progress while running.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    #[command(flatten)]
    pub center: CenterLinkArgs,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long, short = 'n', value_name = "NS", default_value = "default")]
    pub namespace: String,
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// The run id (see `kpress list`).
    pub run: String,
    #[arg(long, short = 'n', value_name = "NS", default_value = "default")]
    pub namespace: String,
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Args, Debug)]
pub struct TargetArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with a generated self-signed certificate.
    #[arg(long)]
    pub tls: bool,
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: write KEY=VALUE, e.g. scenarios.steady.rate=500"))?;
    if k.trim().is_empty() {
        return Err(format!("`{s}`: the key is empty"));
    }
    Ok((k.trim().to_string(), v.to_string()))
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    let (request, limit) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: write REQUEST:LIMIT, e.g. 500m:1"))?;
    for q in [request, limit] {
        if !kpress_k8s::job::valid_quantity(q) {
            return Err(format!(
                "`{q}` is not a Kubernetes quantity (e.g. 500m, 1, 256Mi)"
            ));
        }
    }
    Ok((request.to_string(), limit.to_string()))
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: write KEY=VALUE"))?;
    Ok((k.to_string(), v.to_string()))
}

pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    kpress_engine::scenario::duration::parse_duration(s)
}

fn parse_time(s: &str) -> Result<std::time::SystemTime, String> {
    humantime::parse_rfc3339_weak(s).map_err(|e| format!("`{s}` is not an RFC 3339 time: {e}"))
}
