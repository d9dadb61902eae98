//! `kpress submit`: create the Job, follow its pods, publish one start instant to all
//! runners once every one of them runs, stream their per-second points from their
//! logs, collect their summaries, merge them exactly, delete the Job.
//!
//! The start is synchronised without a Service and without API credentials in the
//! pods: each runner waits for its `kpress.io/start-at` annotation to appear in its
//! downward-API volume; the submitter sets the same instant (now + a margin that covers
//! the kubelet's propagation) on every pod when the last one is running.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kpress_engine::metrics::join::SecondJoin;
use kpress_engine::metrics::Metrics;
use kpress_engine::scenario::TestSpec;
use kpress_engine::summary::{self, rfc3339, Summary, TimelinePoint};
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, PropagationPolicy,
};
use tokio::sync::mpsc;

use crate::job::{self, JobOptions, CONTAINER};
use crate::labels;
use crate::pods::{self, Phase, Runner};

#[derive(Debug, Clone)]
pub struct SubmitOptions {
    pub job: JobOptions,
    /// Give up (and delete the Job) if the runners are not all running by then.
    pub startup_timeout: Duration,
    /// The common start instant is this long after the last runner is running.
    pub start_margin: Duration,
    /// Leave the Job for `ttlSecondsAfterFinished` instead of deleting it.
    pub keep: bool,
    pub poll: Duration,
}

impl SubmitOptions {
    pub fn new(job: JobOptions) -> SubmitOptions {
        SubmitOptions {
            job,
            startup_timeout: Duration::from_secs(300),
            start_margin: Duration::from_secs(3),
            keep: false,
            poll: Duration::from_millis(250),
        }
    }
}

/// What the submitter reports while it works.
pub enum Event<'a> {
    Created {
        job: &'a str,
        namespace: &'a str,
    },
    Runners(&'a [Runner]),
    Starting {
        at: SystemTime,
    },
    Second {
        second: u64,
        interval: &'a Metrics,
        total: &'a Metrics,
    },
    Deleted {
        job: &'a str,
    },
}

/// A finished submit: the merged summary and what went wrong with which runner.
pub struct Outcome {
    pub summary: Summary,
    pub failures: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The API refused or could not be reached.
    #[error("{0}")]
    Api(String),
    #[error("the runners did not all start within {limit:?}; the Job was deleted. {details}")]
    StartTimeout { limit: Duration, details: String },
    #[error("aborted; the Job {0} was deleted")]
    Aborted(String),
    #[error("the runners rejected the test as invalid input: {0}")]
    InvalidInput(String),
    #[error("no runner left a summary: {0}")]
    NoResults(String),
}

enum LogEvent {
    Point(u32, TimelinePoint),
    Summary(u32, Box<Summary>),
    Line(u32, String),
    End,
}

/// Runs `spec` on the cluster `client` points at. `abort` set to true deletes the Job
/// at once.
pub async fn submit(
    client: kube::Client,
    spec: &TestSpec,
    opts: &SubmitOptions,
    abort: Arc<AtomicBool>,
    mut on: impl FnMut(Event<'_>),
) -> Result<Outcome, SubmitError> {
    let ns = opts.job.namespace.as_str();
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let manifest = job::build(spec, &opts.job);
    let name = job::job_name(&spec.name, &opts.job.run_id);
    jobs.create(&PostParams::default(), &manifest)
        .await
        .map_err(|e| {
            api_error(
                &format!("cannot create the Job {name} in namespace {ns}"),
                e,
            )
        })?;
    on(Event::Created {
        job: &name,
        namespace: ns,
    });

    let n = opts.job.runners;
    let selector = labels::run_selector(&opts.job.run_id);
    let created = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel::<LogEvent>();
    let mut followed: HashSet<String> = HashSet::new();
    let mut following = 0usize;
    let mut start_at: Option<SystemTime> = None;
    let mut annotated: HashSet<String> = HashSet::new();
    let mut last_runners: Vec<Runner> = Vec::new();
    let mut summaries: BTreeMap<u32, Summary> = BTreeMap::new();
    let mut last_lines: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut join = SecondJoin::new(n as usize);
    let mut total = Metrics::default();
    let mut tick = tokio::time::interval(opts.poll);

    let finished_job = loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(ev) = rx.recv() => {
                match ev {
                    LogEvent::Point(i, p) => {
                        if let Ok(m) = p.to_metrics() {
                            total.add_counts(&m);
                            join.add(i as usize, p.t, &m);
                        }
                    }
                    LogEvent::Summary(i, s) => { summaries.insert(i, *s); join.end(i as usize); }
                    LogEvent::Line(i, l) => {
                        let lines = last_lines.entry(i).or_default();
                        lines.push(l);
                        if lines.len() > 5 { lines.remove(0); }
                    }
                    LogEvent::End => following = following.saturating_sub(1),
                }
                for (second, m) in join.complete() {
                    total.vus = m.vus;
                    total.vus_max = m.vus_max;
                    on(Event::Second { second, interval: &m, total: &total });
                }
                continue;
            }
        }
        if abort.load(Ordering::Relaxed) {
            delete_run(&jobs, &pods, &name, &selector).await;
            on(Event::Deleted { job: &name });
            return Err(SubmitError::Aborted(name));
        }
        let pod_list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| api_error("cannot list the runner pods", e))?;
        let runners = pods::runners(&pod_list.items, n);
        if runners != last_runners {
            on(Event::Runners(&runners));
            last_runners = runners.clone();
        }
        // Publish the start once every runner runs; later replacements get the same instant.
        if start_at.is_none() && runners.iter().all(|r| r.phase == Phase::Running) {
            let at = SystemTime::now() + opts.start_margin;
            start_at = Some(at);
            on(Event::Starting { at });
        }
        if let Some(at) = start_at {
            for pod in pod_list
                .items
                .iter()
                .filter(|p| pods::state(p).0 == Phase::Running)
            {
                let Some(pod_name) = pod.metadata.name.clone() else {
                    continue;
                };
                if annotated.contains(&pod_name) {
                    continue;
                }
                let patch = serde_json::json!({ "metadata": { "annotations": { labels::START_AT: rfc3339(at) } } });
                pods.patch(&pod_name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|e| {
                        api_error(
                            &format!("cannot publish the start instant to pod {pod_name}"),
                            e,
                        )
                    })?;
                annotated.insert(pod_name);
            }
        } else if created.elapsed() > opts.startup_timeout {
            delete_run(&jobs, &pods, &name, &selector).await;
            on(Event::Deleted { job: &name });
            return Err(SubmitError::StartTimeout {
                limit: opts.startup_timeout,
                details: pods::describe(&runners),
            });
        }
        // Follow the log of every pod that has started.
        for pod in &pod_list.items {
            let (phase, _) = pods::state(pod);
            let (Some(pod_name), Some(index)) = (pod.metadata.name.clone(), pods::index_of(pod))
            else {
                continue;
            };
            if matches!(phase, Phase::Running | Phase::Succeeded | Phase::Failed)
                && followed.insert(pod_name.clone())
            {
                following += 1;
                tokio::spawn(follow(pods.clone(), pod_name, index, tx.clone()));
            }
        }
        let job_now = match jobs
            .get_opt(&name)
            .await
            .map_err(|e| api_error("cannot read the Job", e))?
        {
            Some(j) => j,
            None => {
                return Err(SubmitError::Aborted(format!(
                    "{name} (deleted by someone else)"
                )))
            }
        };
        if let Some(reason) = finished(&job_now) {
            break (job_now, reason);
        }
    };

    // Let the log followers deliver the last lines (bounded).
    let drain_until = Instant::now() + Duration::from_secs(15);
    while following > 0 && Instant::now() < drain_until {
        match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            Ok(Some(LogEvent::Summary(i, s))) => {
                summaries.insert(i, *s);
            }
            Ok(Some(LogEvent::Line(i, l))) => last_lines.entry(i).or_default().push(l),
            Ok(Some(LogEvent::End)) => following -= 1,
            Ok(Some(LogEvent::Point(..))) | Err(_) => {}
            Ok(None) => break,
        }
    }
    let final_pods = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| api_error("cannot list the runner pods", e))?;
    let runners = pods::runners(&final_pods.items, n);
    on(Event::Runners(&runners));
    // A log stream can fail to open or break; read the whole log of any succeeded runner
    // whose summary has not arrived.
    for r in runners.iter().filter(|r| r.phase == Phase::Succeeded) {
        let Some(pod_name) = r.pod.as_ref().filter(|_| !summaries.contains_key(&r.index)) else {
            continue;
        };

        let params = LogParams {
            container: Some(CONTAINER.into()),
            ..LogParams::default()
        };
        if let Ok(log) = pods.logs(pod_name, &params).await {
            if let Some(s) = log
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str::<Summary>(l).ok())
            {
                summaries.insert(r.index, s);
            }
        }
    }

    let mut failures = Vec::new();
    for r in &runners {
        if summaries.contains_key(&r.index) {
            continue;
        }
        let lines = last_lines
            .get(&r.index)
            .map(|l| l.join(" | "))
            .unwrap_or_default();
        failures.push(format!(
            "runner {}: {} after {} attempt(s){}{}",
            r.index,
            r.reason
                .clone()
                .unwrap_or_else(|| format!("{}, no summary in its log", r.phase.name())),
            r.attempts,
            if lines.is_empty() {
                ""
            } else {
                "; last log lines: "
            },
            lines
        ));
    }
    if !opts.keep {
        delete_run(&jobs, &pods, &name, &selector).await;
        on(Event::Deleted { job: &name });
    }
    let (_, reason) = finished_job;
    if reason == "PodFailurePolicy" && summaries.is_empty() {
        return Err(SubmitError::InvalidInput(failures.join("; ")));
    }
    let parts: Vec<Summary> = summaries.into_values().collect();
    if parts.is_empty() {
        return Err(SubmitError::NoResults(failures.join("; ")));
    }
    let summary = summary::merge(&parts, Some(n.into()))
        .map_err(|e| SubmitError::NoResults(e.to_string()))?;
    Ok(Outcome { summary, failures })
}

/// The reason a Job is over (`Complete`, or the reason of its `Failed` condition).
fn finished(job: &Job) -> Option<String> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| c.status == "True" && (c.type_ == "Complete" || c.type_ == "Failed"))
        .map(|c| {
            if c.type_ == "Complete" {
                "Complete".to_string()
            } else {
                c.reason.clone().unwrap_or_else(|| "Failed".into())
            }
        })
}

/// Streams one pod's log: timeline points, its summary line, and other lines kept for
/// error reports.
async fn follow(pods: Api<Pod>, name: String, index: u32, tx: mpsc::UnboundedSender<LogEvent>) {
    let params = LogParams {
        follow: true,
        container: Some(CONTAINER.into()),
        ..LogParams::default()
    };
    if let Ok(stream) = pods.log_stream(&name, &params).await {
        let mut lines = stream.lines();
        while let Ok(Some(line)) = lines.try_next().await {
            let event = if let Ok(p) = serde_json::from_str::<TimelinePoint>(&line) {
                LogEvent::Point(index, p)
            } else if let Ok(s) = serde_json::from_str::<Summary>(&line) {
                LogEvent::Summary(index, Box::new(s))
            } else {
                LogEvent::Line(index, line)
            };
            if tx.send(event).is_err() {
                return;
            }
        }
    }
    let _ = tx.send(LogEvent::End);
}

/// Deletes the Job and its pods (background propagation) and waits, briefly, until
/// no pod of the run is left. Errors are not fatal here: the Job's TTL is the backstop.
async fn delete_run(jobs: &Api<Job>, pods: &Api<Pod>, name: &str, selector: &str) {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    let _ = jobs.delete(name, &params).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match pods.list(&ListParams::default().labels(selector)).await {
            Ok(list) if list.items.is_empty() => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(_) => return,
        }
    }
}

pub(crate) fn api_error(what: &str, e: kube::Error) -> SubmitError {
    let detail = match &e {
        kube::Error::Api(s) => format!("{} ({} {})", s.message, s.code, s.reason),
        other => {
            // The useful part ("Connection refused") is at the end of the source chain.
            let mut text = format!("cannot reach the Kubernetes API: {other}");
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    };

    SubmitError::Api(format!("{what}: {detail}"))
}
