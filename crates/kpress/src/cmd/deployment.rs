//! `render|submit --mode deployment`: the test as one Deployment "version" of the
//! application, for platforms that allow nothing else. The center owns it: it builds
//! the Deployment (so `render` prints exactly what runs), creates it (`submit`), leases
//! the runners their shares, starts them together, merges their results and removes
//! the Deployment. This side registers the run and, for `submit`, follows it at the
//! center until it is over and cleaned up; it needs no cluster credentials.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kpress_engine::scenario::TestSpec;
use kpress_report::wire::{DeploymentRequest, Mode, RunDetail, RunStatus};

use crate::cli::{CenterLinkArgs, ClusterArgs, RenderArgs, SubmitArgs};
use crate::exit::{fail, FAILURE, OK, USAGE};
use crate::live::Live;

use super::report::{self, Registered};

/// How often `submit` reads the run at the center.
const POLL: Duration = Duration::from_secs(1);
/// How long `submit` waits past the test's end for the verdict and the clean-up.
const AFTER_END: Duration = Duration::from_secs(180);

/// Prints the run's Deployment, as the center built it for this run.
pub fn render(args: &RenderArgs, spec: &TestSpec) -> ExitCode {
    let rt = match super::submit::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let registered = match rt.block_on(register(&args.cluster, &args.center, spec, false, None)) {
        Ok(r) => r,
        Err(code) => return code,
    };
    match registered.manifest {
        Some(yaml) => {
            print!("{yaml}");
            ExitCode::from(OK)
        }
        None => fail(FAILURE, "the center returned no manifest for the run"),
    }
}

/// Has the center create and drive the run's Deployment, follows the run until it is
/// over and cleaned up, prints the merged summary and exits with its verdict.
pub fn submit(args: &SubmitArgs, spec: &TestSpec) -> ExitCode {
    let rt = match super::submit::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let registered = match rt.block_on(register(
        &args.cluster,
        &args.center,
        spec,
        true,
        Some(args.startup_timeout),
    )) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let abort = Arc::new(AtomicBool::new(false));
    let mut live = Live::new(args.progress, spec.nominal_duration());
    let limit = args.startup_timeout + spec.max_duration() + AFTER_END;
    let followed = rt.block_on(async {
        let flag = abort.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::Relaxed);
            }
        });
        follow(&registered, &abort, limit, &mut live).await
    });
    live.finish();
    let detail = match followed {
        Ok(d) => d,
        Err(e) => return fail(FAILURE, e),
    };
    if let Some(d) = &detail.deployment {
        if let Some(c) = &d.cleanup {
            say_cleanup(&d.namespace, &d.name, c);
        }
    }
    match &detail.summary {
        Some(summary) => {
            if let Some(reason) = &detail.finish_reason {
                eprintln!("kpress: the center finished the run: {reason}");
            }
            super::run::finish(summary, args.summary_out.as_deref(), args.progress)
        }
        None => fail(
            FAILURE,
            format!(
                "no runner delivered a result ({}): {}",
                kpress_center::store::status_name(detail.run.status),
                detail.finish_reason.as_deref().unwrap_or("no reason given")
            ),
        ),
    }
}

/// Registers the run in `deployment` mode; the center's answer carries the manifest.
async fn register(
    cluster: &ClusterArgs,
    link: &CenterLinkArgs,
    spec: &TestSpec,
    create: bool,
    startup_timeout: Option<Duration>,
) -> Result<Registered, ExitCode> {
    let options = super::render::job_options(cluster, spec).map_err(|e| fail(USAGE, e))?;
    if link.center.is_none() {
        return Err(fail(
            USAGE,
            "--mode deployment needs the center that drives the run: --center URL (or KPRESS_CENTER_URL), with KPRESS_CENTER_TOKEN",
        ));
    }
    let request = DeploymentRequest {
        namespace: options.namespace.clone(),
        create,
        image: Some(options.image.clone()),
        cpu: Some(format!("{}:{}", options.cpu_request, options.cpu_limit)),
        memory: Some(format!(
            "{}:{}",
            options.memory_request, options.memory_limit
        )),
        spread: options.spread,
        node_selector: options.node_selector.clone(),
        tolerations: cluster.toleration.iter().map(toleration_text).collect(),
        startup_timeout_s: startup_timeout.map(|d| d.as_secs().max(1)),
    };
    let run = report::RunToRegister {
        spec,
        run: &options.run_id,
        mode: Mode::Deployment,
        runners: options.runners.into(),
        app: Some(options.app.to_string()),
        labels: [("namespace".to_string(), options.namespace.clone())].into(),
        deployment: Some(request),
    };
    report::try_register(link, run)
        .await
        .map_err(|e| fail(FAILURE, e))
}

/// `KEY[=VALUE]:EFFECT`, as `--toleration` takes it.
fn toleration_text(t: &k8s_openapi::api::core::v1::Toleration) -> String {
    let key = t.key.as_deref().unwrap_or_default();
    let effect = t.effect.as_deref().unwrap_or_default();
    match &t.value {
        Some(value) => format!("{key}={value}:{effect}"),
        None => format!("{key}:{effect}"),
    }
}

/// Reads the run at the center until it is finished and its Deployment removed.
async fn follow(
    registered: &Registered,
    abort: &AtomicBool,
    limit: Duration,
    live: &mut Live,
) -> Result<RunDetail, String> {
    let center = &registered.center;
    let run = registered.run.as_str();
    let deadline = Instant::now() + limit;
    let mut shown = 0;
    let mut asked_to_finish = false;
    let mut announced_start = false;
    loop {
        if abort.load(Ordering::Relaxed) && !asked_to_finish {
            eprintln!("\nkpress: finishing the run; the center removes its Deployment");
            center
                .finish(run, "interrupted by the submitter (Ctrl-C)")
                .await
                .map_err(|e| e.to_string())?;
            asked_to_finish = true;
        }
        let detail = center.run_detail(run).await.map_err(|e| e.to_string())?;
        if let Some(d) = &detail.deployment {
            if let (Some(at), false) = (&d.start_at, announced_start) {
                live.note(&format!(
                    "every runner of Deployment {}/{} holds its share; load starts at {at}",
                    d.namespace, d.name
                ));
                announced_start = true;
            }
        }
        let timeline = center.timeline(run).await.map_err(|e| e.to_string())?;
        for s in timeline.points.iter().skip(shown) {
            live.note(&format!(
                "{:>4}s {:>9.1} req/s  errors {:>5.2} %  p50 {:.2} ms  p99 {:.2} ms  ({} runner(s))",
                s.t + 1,
                s.rate,
                s.error_rate * 100.0,
                s.p50,
                s.p99,
                s.runners
            ));
        }
        shown = shown.max(timeline.points.len());
        let cleaned = detail
            .deployment
            .as_ref()
            .is_none_or(|d| d.cleanup.is_some());
        if detail.run.status != RunStatus::Running && cleaned {
            return Ok(detail);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "run {run} is not over and cleaned up after {}; see it at {}runs/{run}",
                humantime::format_duration(limit),
                center.url()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn say_cleanup(namespace: &str, name: &str, c: &kpress_report::wire::Cleanup) {
    match &c.error {
        None => eprintln!(
            "kpress: the center scaled Deployment {namespace}/{name} to 0 and deleted it{}",
            if c.config_maps.is_empty() {
                String::new()
            } else {
                format!(" with ConfigMap(s) {}", c.config_maps.join(", "))
            }
        ),
        Some(e) => {
            eprintln!("kpress: the center could not remove Deployment {namespace}/{name}: {e}")
        }
    }
    for h in &c.hooks {
        match &h.error {
            None if h.ok => eprintln!("kpress: clean-up hook {} ran", h.name),
            e => eprintln!(
                "kpress: clean-up hook {} failed after {} attempt(s): {}",
                h.name,
                h.attempts,
                e.as_deref().unwrap_or("no detail")
            ),
        }
    }
}
