//! One worker thread: a single-threaded tokio runtime running this thread's stripe of
//! every scenario, with its own recorder. Once a second it hands its interval to the
//! coordinator; nothing else crosses threads while the test runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;

use super::control::{Control, Phase};
use super::vu::ScenarioCtx;
use super::{closed, open, wait, Event};
use crate::executor::{Executor, Work};
use crate::http::{ClientConfig, Prepared};
use crate::metrics::recorder;
use crate::scenario::{ScenarioSpec, TestSpec};
use crate::segment::Segment;

pub struct WorkerPlan {
    pub index: u64,
    pub threads: u64,
    pub spec: Arc<TestSpec>,
    pub segment: Segment,
    pub start: Instant,
    pub control: Arc<Control>,
    pub events: UnboundedSender<Event>,
}

/// How many of the `threads` share a scenario: never more than it has VUs in this
/// segment, so no thread is handed arrivals without a VU to run them.
pub fn scenario_threads(executor: &Executor, segment: Segment, threads: u64) -> u64 {
    let vus = segment.stripe().count_below(executor.max_vus());
    threads.min(vus).max(1)
}

/// The VU time per arrival an open-model pool needs before its connections tick.
const TICKED_VU_TIME_PER_ARRIVAL: Duration = Duration::from_millis(5);

pub fn run(plan: WorkerPlan) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(work(plan));
    Ok(())
}

async fn work(plan: WorkerPlan) {
    let client = ClientConfig::new(plan.spec.http.clone());
    let mut scenarios = JoinSet::new();
    for scenario in &plan.spec.scenarios {
        let parts = scenario_threads(&scenario.executor, plan.segment, plan.threads);
        if plan.index >= parts {
            continue;
        }
        let stripe = plan.segment.stripe().split(plan.index, parts);
        let ctx = Arc::new(context(scenario, &client, &plan.spec));
        let start = plan.start + scenario.start_time;
        let control = plan.control.clone();
        let grace = scenario.graceful_stop;
        match scenario.executor.work(stripe) {
            Work::Looping {
                schedule,
                graceful_ramp_down,
            } => {
                scenarios.spawn(closed::looping(
                    ctx,
                    schedule,
                    graceful_ramp_down,
                    start,
                    grace,
                    control,
                ));
            }
            Work::Counted {
                vus,
                per_vu,
                shared,
                max_duration,
            } => {
                scenarios.spawn(closed::counted(
                    ctx,
                    vus,
                    per_vu,
                    shared,
                    max_duration,
                    start,
                    grace,
                    control,
                ));
            }
            Work::Arrivals {
                schedule,
                pre_allocated_vus,
                max_vus,
            } => {
                scenarios.spawn(open::arrivals(
                    ctx,
                    schedule,
                    pre_allocated_vus,
                    max_vus,
                    start,
                    grace,
                    control,
                ));
            }
        }
    }
    let ticker = tokio::spawn(tick(plan.index, plan.start, plan.events.clone()));
    let mut wake = plan.control.subscribe();
    tokio::select! {
        _ = async { while scenarios.join_next().await.is_some() {} } => {}
        _ = wait::phase_reached(&mut wake, Phase::Halted) => scenarios.abort_all(),
    }
    scenarios.shutdown().await;
    ticker.abort();
    let second = Instant::now()
        .saturating_duration_since(plan.start)
        .as_secs();
    let metrics = Box::new(recorder::with(|r| r.take_interval()));
    let _ = plan.events.send(Event::Interval {
        worker: plan.index,
        second,
        metrics,
    });
    let _ = plan.events.send(Event::Done { worker: plan.index });
}

fn context(scenario: &ScenarioSpec, client: &ClientConfig, spec: &TestSpec) -> ScenarioCtx {
    let mut origins = Vec::new();
    let mut requests = Vec::new();
    for r in &scenario.requests {
        let index = match origins.iter().position(|o| *o == r.origin) {
            Some(i) => i,
            None => {
                origins.push(r.origin.clone());
                origins.len() - 1
            }
        };
        requests.push((Prepared::new(r.clone(), &spec.http), index));
    }
    // Tick-batched reads delay the processing of a response by up to a tick, so a
    // request that follows another in the same iteration would go out that much
    // later: only single-request iterations, where nothing waits on the processing.
    // And a ticked VU is busy for a tick or two per iteration however fast the server
    // answers, so only a pool with room for that may tick; a tight one must turn its
    // VUs around at once, or it would drop iterations the server could have served.
    let executor = &scenario.executor;
    let ticked = requests.len() == 1
        && executor.peak_arrival_rate().is_some_and(|rate| {
            executor.max_vus() as f64 >= rate * TICKED_VU_TIME_PER_ARRIVAL.as_secs_f64()
        });
    ScenarioCtx {
        requests,
        origins,
        client: if ticked {
            client.ticked()
        } else {
            client.clone()
        },
    }
}

/// Hands the interval over at every whole second after the start; the second is
/// computed from the clock, so a late tick still lands in the right second.
async fn tick(worker: u64, start: Instant, events: UnboundedSender<Event>) {
    let mut next = start + Duration::from_secs(1);
    loop {
        tokio::time::sleep_until(next.into()).await;
        let elapsed = Instant::now()
            .saturating_duration_since(start)
            .as_secs_f64();
        let second = (elapsed.round() as u64).saturating_sub(1);
        let metrics = Box::new(recorder::with(|r| r.take_interval()));
        if events
            .send(Event::Interval {
                worker,
                second,
                metrics,
            })
            .is_err()
        {
            return;
        }
        next += Duration::from_secs(1);
        let now = Instant::now();
        while next <= now {
            next += Duration::from_secs(1);
        }
    }
}
