//! `kpress run --workers N`: N runner processes of this same binary on this machine,
//! one segment each, started together with `--start-at`, their per-second points
//! merged into one live view and their summaries merged exactly at the end. This is
//! the distributed mode in miniature: a cluster only changes who starts the processes.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, SystemTime};

use kpress_engine::metrics::join::SecondJoin;
use kpress_engine::metrics::Metrics;
use kpress_engine::run::check_split;
use kpress_engine::scenario::TestSpec;
use kpress_engine::summary::{self, rfc3339, Summary, TimelinePoint};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::cli::{ProgressMode, RunArgs};
use crate::exit::{fail, FAILURE, USAGE};
use crate::live::Live;

use super::report;

/// Time for the worker processes to start before the common start instant.
const START_DELAY: Duration = Duration::from_millis(1500);

pub fn run(args: &RunArgs, spec: &TestSpec, n: u64) -> ExitCode {
    if n == 0 {
        return fail(USAGE, "--workers must be at least 1");
    }
    if let Err(e) = check_split(spec, n) {
        return fail(USAGE, e);
    }
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            return fail(
                FAILURE,
                format!("cannot create a directory for the worker summaries: {e}"),
            )
        }
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail(FAILURE, format!("cannot find the kpress binary: {e}")),
    };
    let run_id = args.run_id.clone().unwrap_or_else(summary::new_run_id);
    let start_at = args
        .start_at
        .unwrap_or_else(|| SystemTime::now() + START_DELAY);
    let cores = std::thread::available_parallelism()
        .map(|c| c.get() as u64)
        .unwrap_or(1);
    let threads = args.threads.unwrap_or((cores / n).max(1));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(FAILURE, format!("cannot start the runtime: {e}")),
    };
    let paths: Vec<_> = (0..n)
        .map(|i| dir.path().join(format!("{i}.json")))
        .collect();
    let run = report::RunToRegister::local(args, spec, &run_id, n);
    let registered = runtime.block_on(report::register(&args.center, run));
    let result = runtime.block_on(async {
        let mut children = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            let mut cmd = Command::new(&exe);
            cmd.arg("run")
                .arg(&args.scenario.scenario)
                .args(["--segment", &format!("{i}/{n}")])
                .args(["--start-at", &rfc3339(start_at)])
                .args(["--run-id", &run_id])
                .args(["--threads", &threads.to_string()])
                .args(["--progress", "jsonl"])
                .arg("--summary-out")
                .arg(path)
                .env_remove("KPRESS_RUNNERS")
                .env_remove("KPRESS_POD_INFO_DIR")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                // Own process group: a terminal's Ctrl-C reaches only this parent,
                // which forwards it once, so a single press stays a graceful stop.
                .process_group(0)
                .kill_on_drop(true);
            for (k, v) in &args.scenario.sets {
                cmd.arg("--set").arg(format!("{k}={v}"));
            }
            // Each worker reports its own share; without a registered run, none does.
            cmd.env_remove("KPRESS_CENTER_URL")
                .env_remove("KPRESS_RUNNER_TOKEN");
            for (k, v) in registered.iter().flat_map(|r| r.runner_env()) {
                cmd.env(k, v);
            }
            match cmd.spawn() {
                Ok(child) => children.push(child),
                Err(e) => return Err(format!("cannot start worker {i}: {e}")),
            }
        }
        Ok(supervise(children, args.progress, spec).await)
    });
    let statuses = match result {
        Ok(s) => s,
        Err(e) => return fail(FAILURE, e),
    };
    let mut parts = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        match std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str::<Summary>(&t).ok())
        {
            Some(s) => parts.push(s),
            None => eprintln!(
                "kpress: worker {i}/{n} left no summary (exit status {})",
                statuses[i]
            ),
        }
    }
    if let Some(r) = &registered {
        if parts.len() < n as usize {
            runtime.block_on(r.finish("some worker processes left no summary"));
        }
    }
    if parts.is_empty() {
        return fail(FAILURE, "every worker failed; no result to report");
    }
    match summary::merge(&parts, Some(n)) {
        Ok(merged) => super::run::finish(&merged, args.summary_out.as_deref(), args.progress),
        Err(e) => fail(FAILURE, e),
    }
}

/// Streams the workers' points into the live view, forwards signals, and waits for
/// every worker; returns their exit statuses, as text.
async fn supervise(
    mut children: Vec<Child>,
    progress: ProgressMode,
    spec: &TestSpec,
) -> Vec<String> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Option<TimelinePoint>)>();
    for (i, child) in children.iter_mut().enumerate() {
        if let Some(out) = child.stdout.take() {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(point) = serde_json::from_str::<TimelinePoint>(&line) {
                        let _ = tx.send((i, Some(point)));
                    }
                }
                let _ = tx.send((i, None));
            });
        }
    }
    drop(tx);
    let pids: Vec<Option<u32>> = children.iter().map(Child::id).collect();
    let forward = tokio::spawn(forward_signals(pids));
    let view = if progress == ProgressMode::Jsonl {
        ProgressMode::None
    } else {
        progress
    };
    let mut live = Live::new(view, spec.nominal_duration());
    let mut join = SecondJoin::new(children.len());
    let mut total = Metrics::default();
    while let Some((worker, point)) = rx.recv().await {
        match point.map(|p| p.to_metrics().map(|m| (p.t, m))) {
            Some(Ok((t, m))) => join.add(worker, t, &m),
            Some(Err(_)) => {}
            None => join.end(worker),
        }
        for (second, m) in join.complete() {
            total.add_counts(&m);
            total.vus = m.vus;
            total.vus_max = m.vus_max;
            live.second(second, &m, &total, Duration::from_secs(second + 1));
        }
    }
    live.finish();
    let mut statuses = Vec::new();
    for mut child in children {
        statuses.push(match child.wait().await {
            Ok(s) => s.to_string(),
            Err(e) => format!("unknown: {e}"),
        });
    }
    forward.abort();
    statuses
}

/// Forwards each SIGINT/SIGTERM this process receives to every worker, once.
async fn forward_signals(pids: Vec<Option<u32>>) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        let signal = tokio::select! {
            r = tokio::signal::ctrl_c() => { if r.is_err() { return } Signal::SIGINT }
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => Signal::SIGTERM,
        };
        for pid in pids.iter().flatten() {
            if let Ok(pid) = i32::try_from(*pid) {
                let _ = kill(Pid::from_raw(pid), signal);
            }
        }
    }
}
