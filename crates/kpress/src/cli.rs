//! Every command and flag of `kpress`. Parsing only: each command's module turns these
//! into engine calls.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cmd::audit::AuditArgs;

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
    /// Find, price and prune the leftovers of one-off workloads in a cluster.
    Audit(AuditArgs),
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
    /// Serve the built-in target from this process for the run and point
    /// `defaults.baseUrl` at it (for trying kpress with nothing else set up).
    #[arg(long, conflicts_with_all = ["segment", "runners"])]
    pub local_target: bool,
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

fn parse_time(s: &str) -> Result<std::time::SystemTime, String> {
    humantime::parse_rfc3339_weak(s).map_err(|e| format!("`{s}` is not an RFC 3339 time: {e}"))
}
