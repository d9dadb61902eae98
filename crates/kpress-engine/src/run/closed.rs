//! The closed model: VUs that loop, each starting its next iteration when the previous
//! one ends. `looping` follows a VU count over time (constant-vus, ramping-vus);
//! `counted` works through an iteration budget (per-vu-iterations, shared-iterations).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::{AbortHandle, JoinSet};

use super::control::{Control, Phase};
use super::vu::{ScenarioCtx, Vu, VuGauge};
use super::wait;
use crate::executor::vus::VuSchedule;

const RAMP_TICK: Duration = Duration::from_millis(10);

struct Running {
    stop: Rc<Cell<bool>>,
    handle: AbortHandle,
    stopping_since: Option<Instant>,
}

/// Keeps `schedule.at(t)` VUs looping until the schedule ends.
pub async fn looping(
    ctx: Rc<ScenarioCtx>,
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
            let stop = Rc::new(Cell::new(false));
            let handle = set.spawn_local(vu_loop(ctx.clone(), stop.clone(), control.clone(), None));
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
            v.stop.set(true);
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
        v.stop.set(true);
    }
    wait::drain(&mut set, graceful_stop, &mut wake).await;
}

/// `vus` VUs work through `per_vu` iterations each, or `shared` iterations together,
/// within `max_duration`.
pub async fn counted(
    ctx: Rc<ScenarioCtx>,
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
    let stop = Rc::new(Cell::new(false));
    let budget = Budget {
        per_vu,
        shared: Rc::new(Cell::new(shared.unwrap_or(0))),
    };
    let mut set = JoinSet::new();
    for _ in 0..vus {
        set.spawn_local(vu_loop(
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
    stop.set(true);
    wait::drain(&mut set, graceful_stop, &mut wake).await;
}

#[derive(Clone)]
struct Budget {
    per_vu: Option<u64>,
    shared: Rc<Cell<u64>>,
}

impl Budget {
    /// Takes one iteration; false when the budget is spent.
    fn take(&self, done_by_this_vu: u64) -> bool {
        match self.per_vu {
            Some(n) => done_by_this_vu < n,
            None => {
                let left = self.shared.get();
                if left == 0 {
                    return false;
                }
                self.shared.set(left - 1);
                true
            }
        }
    }
}

async fn vu_loop(
    ctx: Rc<ScenarioCtx>,
    stop: Rc<Cell<bool>>,
    control: Arc<Control>,
    budget: Option<Budget>,
) {
    let _gauge = VuGauge::new(&ctx.recorder, 1, 1);
    let mut vu = Vu::new(ctx.origins.len());
    let mut done = 0u64;
    while !stop.get() && !control.stopping() {
        if let Some(b) = &budget {
            if !b.take(done) {
                break;
            }
        }
        vu.iteration(&ctx, Instant::now()).await;
        done += 1;
    }
}
