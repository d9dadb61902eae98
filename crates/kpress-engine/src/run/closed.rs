//! The closed model: VUs that loop, each starting its next iteration when the previous
//! one ends. `looping` follows a VU count over time (constant-vus, ramping-vus);
//! `counted` works through an iteration budget (per-vu-iterations, shared-iterations).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::{AbortHandle, JoinSet};

use super::control::{Control, Phase};
use super::vu::{ScenarioCtx, Vu, VuGauge};
use super::wait;
use crate::executor::vus::VuSchedule;

const RAMP_TICK: Duration = Duration::from_millis(10);

struct Running {
    stop: Arc<AtomicBool>,
    handle: AbortHandle,
    stopping_since: Option<Instant>,
}

/// Keeps `schedule.at(t)` VUs looping until the schedule ends.
pub async fn looping(
    ctx: Arc<ScenarioCtx>,
    schedule: VuSchedule,
    graceful_ramp_down: Duration,
    start: Instant,
    graceful_stop: Duration,
    control: Arc<Control>,
) {
    let mut wake = control.subscribe();
    if !wait::sleep_until(start, &mut wake).await {
        return;
    }
    let end = start + schedule.duration();
    let mut set = JoinSet::new();
    let mut vus: Vec<Running> = Vec::new();
    loop {
        let now = Instant::now();
        if now >= end || control.stopping() {
            break;
        }
        let target = schedule.at(now - start) as usize;
        let active = vus.iter().filter(|v| v.stopping_since.is_none()).count();
        for _ in active..target {
            let stop = Arc::new(AtomicBool::new(false));
            let handle = set.spawn(vu_loop(ctx.clone(), stop.clone(), control.clone(), None));
            vus.push(Running {
                stop,
                handle,
                stopping_since: None,
            });
        }
        let mut excess = active.saturating_sub(target);
        for v in vus.iter_mut().rev().filter(|v| v.stopping_since.is_none()) {
            if excess == 0 {
                break;
            }
            v.stop.store(true, Ordering::Relaxed);
            v.stopping_since = Some(now);
            excess -= 1;
        }
        for v in &vus {
            if v.stopping_since
                .is_some_and(|since| now - since > graceful_ramp_down)
            {
                v.handle.abort();
            }
        }
        vus.retain(|v| !v.handle.is_finished());
        while set.try_join_next().is_some() {}
        tokio::select! {
            _ = tokio::time::sleep(RAMP_TICK.min(end - now)) => {}
            _ = wait::phase_reached(&mut wake, Phase::Stopping) => {}
        }
    }
    for v in &vus {
        v.stop.store(true, Ordering::Relaxed);
    }
    wait::drain(&mut set, graceful_stop, &mut wake).await;
}

/// `vus` VUs work through `per_vu` iterations each, or `shared` iterations together,
/// within `max_duration`.
pub async fn counted(
    ctx: Arc<ScenarioCtx>,
    vus: u64,
    per_vu: Option<u64>,
    shared: Option<u64>,
    max_duration: Duration,
    start: Instant,
    graceful_stop: Duration,
    control: Arc<Control>,
) {
    let mut wake = control.subscribe();
    if vus == 0 || !wait::sleep_until(start, &mut wake).await {
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let budget = Budget {
        per_vu,
        shared: Arc::new(AtomicU64::new(shared.unwrap_or(0))),
    };
    let mut set = JoinSet::new();
    for _ in 0..vus {
        set.spawn(vu_loop(
            ctx.clone(),
            stop.clone(),
            control.clone(),
            Some(budget.clone()),
        ));
    }
    let deadline = start + max_duration;
    loop {
        tokio::select! {
            next = set.join_next() => if next.is_none() { return },
            _ = tokio::time::sleep_until(deadline.into()) => break,
            _ = wait::phase_reached(&mut wake, Phase::Stopping) => break,
        }
    }
    stop.store(true, Ordering::Relaxed);
    wait::drain(&mut set, graceful_stop, &mut wake).await;
}

#[derive(Clone)]
struct Budget {
    per_vu: Option<u64>,
    shared: Arc<AtomicU64>,
}

impl Budget {
    /// Takes one iteration; false when the budget is spent.
    fn take(&self, done_by_this_vu: u64) -> bool {
        match self.per_vu {
            Some(n) => done_by_this_vu < n,
            None => self
                .shared
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(1)
                })
                .is_ok(),
        }
    }
}

async fn vu_loop(
    ctx: Arc<ScenarioCtx>,
    stop: Arc<AtomicBool>,
    control: Arc<Control>,
    budget: Option<Budget>,
) {
    let _gauge = VuGauge::new(1, 1);
    let mut vu = Vu::new(ctx.origins.len());
    let mut done = 0u64;
    while !stop.load(Ordering::Relaxed) && !control.stopping() {
        if let Some(b) = &budget {
            if !b.take(done) {
                break;
            }
        }
        vu.iteration(&ctx, Instant::now()).await;
        done += 1;
    }
}
