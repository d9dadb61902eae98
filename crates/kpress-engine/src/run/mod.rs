//! Runs this process's segment of a test: one worker thread per core, each with its
//! own stripe of every scenario, and a coordinator that assembles their per-second
//! intervals into the run's timeline and totals, shows progress, and applies
//! `abortOnFail` thresholds. The same code runs a laptop test, one local worker
//! process of `--workers N`, and one pod of an Indexed Job.

mod closed;
pub mod control;
mod open;
mod vu;
mod wait;
mod worker;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use crate::executor::Executor;
use crate::metrics::join::SecondJoin;
use crate::metrics::Metrics;
use crate::scenario::TestSpec;
use crate::segment::Segment;
use crate::summary::TimelinePoint;
pub use control::{Control, Phase, StopReason};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub segment: Segment,
    /// Worker threads; defaults to the cores this process may use.
    pub threads: u64,
    /// Hold the start until this instant (all runners of a distributed test share it).
    pub start_at: Option<SystemTime>,
}

impl RunOptions {
    pub fn new(segment: Segment) -> RunOptions {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        RunOptions {
            segment,
            threads,
            start_at: None,
        }
    }
}

/// What one second of the run looked like, handed to the observer as it completes.
pub struct SecondReport<'a> {
    pub second: u64,
    pub interval: &'a Metrics,
    pub total: &'a Metrics,
    pub elapsed: Duration,
}

/// The result of a run, before it is turned into a summary.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub metrics: Metrics,
    pub timeline: Vec<TimelinePoint>,
    pub started: SystemTime,
    pub ended: SystemTime,
    pub elapsed: Duration,
    pub stop: Option<StopReason>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The test cannot be split as asked (exit code 2: nothing was sent).
    #[error("{0}")]
    Plan(String),
    /// The machine refused (threads, runtimes).
    #[error("{0}")]
    Runtime(String),
}

/// Checks that every runner of `segment.count` gets a usable share of every scenario.
pub fn check_split(spec: &TestSpec, runners: u64) -> Result<(), RunError> {
    for s in &spec.scenarios {
        let arrival = matches!(
            s.executor,
            Executor::ConstantArrivalRate { .. } | Executor::RampingArrivalRate { .. }
        );
        if arrival && s.executor.min_vus_per_part(runners) == 0 {
            return Err(RunError::Plan(format!(
                "scenario `{}`: maxVUs ({}) is less than the number of runners ({runners}); some runners would have no VU and drop all their iterations",
                s.name,
                s.executor.max_vus()
            )));
        }
    }
    Ok(())
}

/// Runs this process's segment of `spec`; `observe` sees every completed second.
pub async fn execute(
    spec: Arc<TestSpec>,
    options: RunOptions,
    control: Arc<Control>,
    mut observe: impl FnMut(SecondReport<'_>),
) -> Result<RunOutcome, RunError> {
    check_split(&spec, options.segment.count)?;
    let wait = options
        .start_at
        .and_then(|at| at.duration_since(SystemTime::now()).ok())
        .unwrap_or_default();
    let start = Instant::now() + wait;
    let started = SystemTime::now() + wait;
    let (events, mut inbox) = mpsc::unbounded_channel();
    let threads = options.threads.max(1);
    let mut handles = Vec::new();
    for index in 0..threads {
        let plan = worker::WorkerPlan {
            index,
            threads,
            spec: spec.clone(),
            segment: options.segment,
            start,
            control: control.clone(),
            events: events.clone(),
        };
        let handle = std::thread::Builder::new()
            .name(format!("kpress-worker-{index}"))
            .spawn(move || worker::run(plan))
            .map_err(|e| RunError::Runtime(format!("cannot start a worker thread: {e}")))?;
        handles.push(handle);
    }
    drop(events);

    let mut assembler = Assembler::new(threads as usize);
    let abort_rules: Vec<_> = spec
        .thresholds
        .iter()
        .filter(|t| t.abort_on_fail)
        .cloned()
        .collect();
    while let Some(event) = inbox.recv().await {
        for (second, interval) in assembler.accept(event) {
            let elapsed = Instant::now().saturating_duration_since(start);
            for t in &abort_rules {
                if elapsed >= t.delay_abort_eval && !t.evaluate(&assembler.total, elapsed).ok {
                    control.stop(
                        Phase::Halted,
                        StopReason::Threshold(format!("{} {} crossed", t.metric.name(), t.expr)),
                    );
                }
            }
            observe(SecondReport {
                second,
                interval: &interval,
                total: &assembler.total,
                elapsed,
            });
        }
    }
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(RunError::Runtime(format!(
                    "a worker could not start its runtime: {e}"
                )))
            }
            Err(_) => return Err(RunError::Runtime("a worker thread panicked".into())),
        }
    }
    let elapsed = Instant::now().saturating_duration_since(start);
    let (metrics, timeline) = assembler.finish();
    Ok(RunOutcome {
        metrics,
        timeline,
        started,
        ended: started + elapsed,
        elapsed,
        stop: control.reason(),
    })
}

/// Collects the workers' intervals into whole seconds. A second is complete when every
/// worker has reported it or finished.
struct Assembler {
    join: SecondJoin,
    timeline: Vec<TimelinePoint>,
    total: Metrics,
}

impl Assembler {
    fn new(workers: usize) -> Assembler {
        Assembler {
            join: SecondJoin::new(workers),
            timeline: Vec::new(),
            total: Metrics::default(),
        }
    }

    /// Takes one event; returns the seconds it completed, in order.
    fn accept(&mut self, event: Event) -> Vec<(u64, Metrics)> {
        match event {
            Event::Interval {
                worker,
                second,
                metrics,
            } => {
                self.total.add_counts(&metrics);
                self.join.add(worker as usize, second, &metrics);
            }
            Event::Done { worker } => self.join.end(worker as usize),
        }
        let done = self.join.complete();
        for (second, metrics) in &done {
            self.complete(*second, metrics);
        }
        done
    }

    fn complete(&mut self, second: u64, metrics: &Metrics) {
        let fresh = self.timeline.is_empty();
        self.total.vus.follow(&metrics.vus, fresh);
        self.total.vus_max.follow(&metrics.vus_max, fresh);
        self.timeline.push(TimelinePoint::new(second, metrics));
    }

    fn finish(mut self) -> (Metrics, Vec<TimelinePoint>) {
        for (second, metrics) in self.join.rest() {
            self.complete(second, &metrics);
        }
        (self.total, self.timeline)
    }
}

/// What worker threads tell the coordinator.
pub enum Event {
    Interval {
        worker: u64,
        second: u64,
        metrics: Box<Metrics>,
    },
    Done {
        worker: u64,
    },
}
