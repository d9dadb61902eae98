//! `kpress run`: this machine runs the test (or one runner's segment of it), shows it
//! live, prints the summary, writes `--summary-out`, and exits with the verdict.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kpress_engine::printer;
use kpress_engine::run::{self, Control, Phase, RunError, RunOptions, StopReason};
use kpress_engine::scenario::{self, TestSpec};
use kpress_engine::segment::Segment;
use kpress_engine::summary::{self, Summary, TimelinePoint};

use crate::cli::{ProgressMode, RunArgs, ScenarioArgs};
use crate::exit::{self, fail, FAILURE, USAGE};
use crate::live::Live;

use super::{lease, report};

pub fn run(mut args: RunArgs) -> ExitCode {
    // Declared before everything that uses it, so it outlives the run (and workers).
    let _local_target = if args.local_target {
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        match kpress_target::BackgroundTarget::start(
            loopback,
            kpress_target::TargetOptions::default(),
        ) {
            Ok(t) => {
                eprintln!(
                    "kpress: serving the built-in target at {} for this run",
                    t.url()
                );
                args.scenario
                    .sets
                    .push(("defaults.baseUrl".into(), t.url().to_string()));
                Some(t)
            }
            Err(e) => return fail(FAILURE, e),
        }
    } else {
        None
    };
    let spec = match load_scenario(&args.scenario) {
        Ok(s) => Arc::new(s),
        Err(e) => return fail(USAGE, e),
    };

    if let Some(n) = args.workers {
        return super::workers::run(&args, &spec, n);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(FAILURE, format!("cannot start the runtime: {e}")),
    };
    let control = Arc::new(Control::default());
    let (segment, start_at) = if args.lease {
        runtime.spawn(watch_signals(control.clone()));
        match runtime.block_on(lease::obtain(&args, &control)) {
            Ok(lease::Share::Run { segment, start_at }) => (segment, Some(start_at)),
            Ok(lease::Share::Idle(why)) => return lease::idle(&runtime, &why),
            Err(e) => return fail(FAILURE, e),
        }
    } else {
        match segment_of(&args) {
            Ok(s) => (s, args.start_at),
            Err(e) => return fail(USAGE, e),
        }
    };
    let run_id = args.run_id.clone().unwrap_or_else(summary::new_run_id);
    let mut options = RunOptions::new(segment);
    options.start_at = start_at;
    if let Some(t) = args.threads {
        options.threads = t.max(1);
    }
    let mut live = Live::new(args.progress, spec.nominal_duration());
    let reporter = runtime.block_on(reporter_for(&args, &spec, segment, &run_id));
    let outcome = runtime.block_on(async {
        if !args.lease {
            tokio::spawn(watch_signals(control.clone()));
        }
        // A leased share's start comes from the center, never from a pod annotation.
        if let Some(dir) = args.pod_info_dir.as_ref().filter(|_| !args.lease) {
            options.start_at =
                Some(wait_for_start(&dir.join("start-at"), &control, args.start_timeout).await?);
        }
        run::execute(spec.clone(), options, control, |r| {
            live.second(r.second, r.interval, r.total, r.elapsed);
            if let Some(reporter) = &reporter {
                reporter.point(TimelinePoint::new(r.second, r.interval));
            }
        })
        .await
    });
    live.finish();
    let summary = outcome
        .as_ref()
        .ok()
        .map(|o| Summary::from_run(&spec.name, &run_id, segment, &spec.thresholds, o));
    if let Some(reporter) = reporter {
        report::say_if_undelivered(runtime.block_on(reporter.finish(summary.as_ref())));
    }
    match (outcome, summary) {
        // Signalled while running (scaled away): exit like any run.
        (Ok(_), Some(summary)) if args.lease && summary.status != summary::Status::Interrupted => {
            finish(&summary, args.summary_out.as_deref(), args.progress);
            lease::idle(&runtime, &format!("share {segment} is done and reported"))
        }
        (Ok(_), Some(summary)) => finish(&summary, args.summary_out.as_deref(), args.progress),
        (Err(RunError::Plan(e)), _) => fail(USAGE, e),
        (Err(e), _) => fail(FAILURE, e),
        (Ok(_), None) => fail(FAILURE, "the run left no summary"),
    }
}

/// This runner's reporter when the run goes to a center: as a runner of a run
/// registered elsewhere (a worker process, a runner pod), or registering it.
async fn reporter_for(
    args: &RunArgs,
    spec: &TestSpec,
    segment: Segment,
    run_id: &str,
) -> Option<kpress_report::client::Reporter> {
    if let Some(token) = &args.runner_token {
        return report::join(&args.center, token, run_id, segment.index);
    }
    let run = report::RunToRegister::local(args, spec, run_id, segment.count);
    let registered = report::register(&args.center, run).await?;
    Some(registered.reporter(segment.index))
}

/// Writes and prints a summary and returns its exit code (shared with `--workers`).
pub fn finish(summary: &Summary, out: Option<&Path>, progress: ProgressMode) -> ExitCode {
    let mut write_failed = false;
    if let Some(path) = out {
        if let Err(e) = write_summary(summary, path) {
            eprintln!(
                "kpress: cannot write the summary to {}: {e}",
                path.display()
            );
            write_failed = true;
        }
    }
    let to_stdout = out.is_some_and(|p| p == Path::new("-"));
    if progress != ProgressMode::Jsonl {
        if to_stdout {
            eprint!("{}", printer::render(summary));
        } else {
            print!("{}", printer::render(summary));
        }
    }
    let code = summary.exit_code();
    if write_failed && code == 0 {
        return ExitCode::from(FAILURE);
    }
    exit::of_summary(code)
}

fn write_summary(summary: &Summary, path: &Path) -> std::io::Result<()> {
    if path == Path::new("-") {
        // One line, written at once: a pod's log may interleave it with other output.
        let mut line = serde_json::to_vec(summary).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut out = std::io::stdout().lock();
        out.write_all(&line)?;
        return out.flush();
    }
    let json = serde_json::to_vec_pretty(summary).map_err(std::io::Error::other)?;
    // Write beside and rename, so a reader never sees half a summary.
    let tmp = path.with_extension("json.partial");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path)
}

/// Waits until `file` (a pod's downward-API view of its `kpress.io/start-at`
/// annotation) holds the start instant the submitter published.
async fn wait_for_start(
    file: &Path,
    control: &Control,
    limit: Duration,
) -> Result<SystemTime, RunError> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            let text = text.trim();
            if !text.is_empty() {
                return humantime::parse_rfc3339_weak(text).map_err(|e| {
                    RunError::Runtime(format!(
                        "{}: `{text}` is not an RFC 3339 instant: {e}",
                        file.display()
                    ))
                });
            }
        }
        if control.stopping() {
            return Err(RunError::Runtime(
                "stopped while waiting for the start instant".into(),
            ));
        }
        if Instant::now() >= deadline {
            return Err(RunError::Runtime(format!(
                "no start instant was published in {} within {}",
                file.display(),
                humantime::format_duration(limit)
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads and validates the scenario: a file, or `env:NAME` for the text of an
/// environment variable (how a runner pod receives it).
pub fn load_scenario(args: &ScenarioArgs) -> Result<TestSpec, String> {
    let given = args.scenario.to_string_lossy();
    let result = match given.strip_prefix("env:") {
        Some(var) => match std::env::var(var) {
            Ok(text) => scenario::parse(&given, &text, &args.sets),
            Err(_) => {
                return Err(format!(
                    "{given}: the environment variable {var} is not set"
                ))
            }
        },
        None => scenario::load(&args.scenario, &args.sets),
    };
    result.map_err(|e| format!("invalid scenario\n{e}"))
}

fn segment_of(args: &RunArgs) -> Result<Segment, String> {
    if let Some(s) = args.segment {
        return Ok(s);
    }
    let Some(n) = args.runners else {
        return Ok(Segment::WHOLE);
    };
    let index = match std::env::var("JOB_COMPLETION_INDEX") {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("JOB_COMPLETION_INDEX=`{v}` is not a number"))?,
        Err(_) => return Err(
            "--runners needs JOB_COMPLETION_INDEX (set in Indexed Job pods) or use --segment I/N"
                .into(),
        ),
    };
    Segment::new(index, n)
}

/// First Ctrl-C or SIGTERM: stop starting iterations and finish gracefully. A second
/// Ctrl-C: stop at once. Either way a summary is written, marked interrupted.
pub async fn watch_signals(control: Arc<Control>) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut presses = 0;
    loop {
        let reason = tokio::select! {
            r = tokio::signal::ctrl_c() => { if r.is_err() { return } "interrupted (Ctrl-C)" }
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => "terminated (SIGTERM)",
        };
        presses += 1;
        if presses == 1 {
            eprintln!("\nkpress: stopping gracefully; press Ctrl-C again to stop at once");
            control.stop(Phase::Stopping, StopReason::Interrupted(reason.into()));
        } else {
            control.stop(Phase::Halted, StopReason::Interrupted(reason.into()));
        }
    }
}

/// The plan one scenario file makes, for `validate` and for logs.
pub fn describe(spec: &TestSpec) -> String {
    use kpress_engine::scenario::duration::format_duration as d;
    let mut out = format!("{}: valid\n", spec.name);
    for s in &spec.scenarios {
        out.push_str(&format!(
            "  scenario {}: {}, {} request(s) per iteration, up to {} VUs, starts at {}, runs {}, done by {}\n",
            s.name,
            s.executor.name(),
            s.requests.len(),
            s.executor.max_vus(),
            d(s.start_time),
            d(s.executor.nominal_duration()),
            d(s.end_bound()),
        ));
    }
    out.push_str(&format!("  thresholds: {}\n", spec.thresholds.len()));
    out.push_str(&format!(
        "  the test runs {} (at most {} with graceful stops)\n",
        d(spec.nominal_duration()),
        d(spec.max_duration())
    ));
    out
}
