//! `kpress submit`, `list`, `delete`: the cluster side. `submit` behaves like `run`:
//! same live view, same summary, same `--summary-out`, same exit codes.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kpress_k8s::submit::{self, Event, SubmitError, SubmitOptions};

use crate::cli::{ClusterMode, DeleteArgs, ListArgs, SubmitArgs};
use crate::exit::{fail, FAILURE, OK, USAGE};
use crate::live::Live;

use super::report;

/// A small multi-threaded runtime for talking to a cluster or a center.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| fail(FAILURE, format!("cannot start the runtime: {e}")))
}

pub fn run(args: SubmitArgs) -> ExitCode {
    let spec = match super::run::load_scenario(&args.scenario) {
        Ok(s) => s,
        Err(e) => return fail(USAGE, e),
    };
    if args.cluster.mode == ClusterMode::Deployment {
        return super::deployment::submit(&args, &spec);
    }
    let job = match super::render::job_options(&args.cluster, &spec) {
        Ok(o) => o,
        Err(e) => return fail(USAGE, e),
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut job = job;
    let registered = rt.block_on(report::register(
        &args.center,
        report::RunToRegister {
            spec: &spec,
            run: &job.run_id,
            mode: kpress_report::wire::Mode::Job,
            runners: job.runners.into(),
            app: Some(job.app.to_string()),
            labels: [
                ("namespace".to_string(), job.namespace.clone()),
                (
                    "job".to_string(),
                    kpress_k8s::job::job_name(&spec.name, &job.run_id),
                ),
            ]
            .into(),
            deployment: None,
        },
    ));
    if let Some(r) = &registered {
        job.env = r.runner_env();
    }
    let mut opts = SubmitOptions::new(job);
    opts.keep = args.keep;
    opts.startup_timeout = args.startup_timeout;
    opts.start_margin = args.start_margin;
    let abort = Arc::new(AtomicBool::new(false));
    let mut live = Live::new(args.progress, spec.nominal_duration());
    let result = rt.block_on(async {
        let client = client(args.context.as_deref()).await?;
        let flag = abort.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nkpress: deleting the Job");
                flag.store(true, Ordering::Relaxed);
            }
        });
        submit::submit(client, &spec, &opts, abort.clone(), |event| match event {
            Event::Created { job, namespace } => {
                live.note(&format!("created Job {namespace}/{job}"))
            }
            Event::Runners(r) => live.note(&format!("runners: {}", kpress_k8s::pods::describe(r))),
            Event::Starting { at } => live.note(&format!(
                "all runners running; load starts at {}",
                kpress_engine::summary::rfc3339(at)
            )),
            Event::Second {
                second,
                interval,
                total,
            } => live.second(
                second,
                interval,
                total,
                std::time::Duration::from_secs(second + 1),
            ),
            Event::Deleted { job } => live.note(&format!("deleted Job {job} and its pods")),
        })
        .await
    });
    live.finish();
    if let Some(r) = &registered {
        let complete = matches!(&result, Ok(o) if o.summary.missing_segments.is_empty());
        if !complete {
            rt.block_on(r.finish("kpress submit ended without every runner's result"));
        }
    }
    match result {
        Ok(outcome) => {
            for f in &outcome.failures {
                eprintln!("kpress: {f}");
            }
            super::run::finish(&outcome.summary, args.summary_out.as_deref(), args.progress)
        }
        Err(e @ SubmitError::InvalidInput(_)) => fail(USAGE, e),
        Err(e) => fail(FAILURE, e),
    }
}

pub fn list(args: ListArgs) -> ExitCode {
    let rows = on_cluster(args.context.as_deref(), |client| async move {
        kpress_k8s::runs::list(client, &args.namespace).await
    });
    match rows {
        Err(code) => code,
        Ok(Err(e)) => fail(FAILURE, e),
        Ok(Ok(rows)) => {
            println!(
                "{:<22} {:<24} {:<40} {:>7} {:>8}  STATUS",
                "RUN", "TEST", "OBJECT", "RUNNERS", "AGE"
            );
            for r in rows {
                println!(
                    "{:<22} {:<24} {:<40} {:>7} {:>7}s  {}",
                    r.run, r.test, r.object, r.runners, r.age_seconds, r.status
                );
            }
            ExitCode::from(OK)
        }
    }
}

pub fn delete(args: DeleteArgs) -> ExitCode {
    let (namespace, run) = (args.namespace.clone(), args.run.clone());
    let deleted = on_cluster(args.context.as_deref(), |client| async move {
        kpress_k8s::runs::delete(client, &namespace, &run).await
    });
    match deleted {
        Err(code) => code,
        Ok(Err(e)) => fail(FAILURE, e),
        Ok(Ok(objects)) if objects.is_empty() => fail(
            FAILURE,
            format!("no run {} in namespace {}", args.run, args.namespace),
        ),
        Ok(Ok(objects)) => {
            for o in objects {
                println!("deleted {o} and its pods in namespace {}", args.namespace);
            }
            ExitCode::from(OK)
        }
    }
}

/// Runs `work` with a client for the configured cluster, on a fresh runtime.
fn on_cluster<T, F>(
    context: Option<&str>,
    work: impl FnOnce(kube::Client) -> F,
) -> Result<Result<T, SubmitError>, ExitCode>
where
    F: std::future::Future<Output = Result<T, SubmitError>>,
{
    let rt = runtime()?;
    Ok(rt.block_on(async { work(client(context).await?).await }))
}

/// A client for the configured cluster (`--context`, `KUBECONFIG`, or in-cluster).
async fn client(context: Option<&str>) -> Result<kube::Client, SubmitError> {
    kpress_k8s::connect(context)
        .await
        .map_err(|e| SubmitError::Api(format!("no usable cluster configuration: {e}")))
}
