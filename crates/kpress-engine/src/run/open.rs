//! The open model: iterations start at their arrival slots whatever the system under
//! test does, each on an idle VU of the pool. Latency counts from the slot, so a late
//! start (a busy dispatcher, a new connection) is charged to the request, never hidden.
//! When no VU is idle a new one is added up to `maxVUs`; beyond that the iteration
//! waits up to one timer tick for a VU to free up, then is counted in
//! `dropped_iterations`, as k6 does. Unlike k6, the iteration that made a VU necessary
//! runs on it instead of being dropped while the VU starts, since starting a kpress VU
//! costs nothing. The scenario lasts its whole duration; `gracefulStop` counts from
//! its end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::control::Control;
use super::vu::{ScenarioCtx, Vu, VuGauge};
use super::wait;
use crate::executor::arrival::ArrivalSchedule;
use crate::metrics::recorder;

/// How long after its slot an iteration may wait for a VU to free up before it is
/// dropped: the timer's resolution. Slots are dispatched in bursts, one per timer
/// tick, so without it a VU could take one iteration per tick where k6, whose timers
/// fire at each slot, would run several on it.
const VU_WAIT: Duration = Duration::from_millis(1);

/// Slots dispatched back to back, when behind schedule, before the dispatcher yields.
const CATCH_UP_BURST: u32 = 64;

pub async fn arrivals(
    ctx: Arc<ScenarioCtx>,
    schedule: ArrivalSchedule,
    pre_allocated: u64,
    max_vus: u64,
    start: Instant,
    graceful_stop: Duration,
    control: Arc<Control>,
) {
    let mut wake = control.subscribe();
    if !wait::sleep_until(start, &mut wake).await {
        return;
    }
    let mut pool = Pool::new(ctx);
    for _ in 0..pre_allocated {
        let vu = pool.add();
        pool.idle.push(vu);
    }
    let end = start + schedule.duration();
    let total = schedule.total();
    let mut late_in_a_row = 0u32;
    for (handled, offset) in (0..).zip(schedule.slots()) {
        let slot = start + offset;
        let now = Instant::now();
        if slot > now {
            late_in_a_row = 0;
            if !wait::sleep_until(slot, &mut wake).await {
                break;
            }
        } else if now >= end {
            // The generator fell so far behind that the scenario is over: the slots
            // not reached never start, and are counted, not lost.
            recorder::with(|r| r.dropped_iterations(total - handled));
            break;
        } else {
            // Catching up never sleeps: let the VUs run between bursts, or a rate this
            // thread cannot sustain would starve them.
            late_in_a_row += 1;
            if late_in_a_row.is_multiple_of(CATCH_UP_BURST) {
                tokio::task::yield_now().await;
            }
        }
        if control.stopping() {
            break;
        }
        while let Ok(vu) = pool.freed.try_recv() {
            pool.idle.push(vu);
        }
        let vu = match pool.idle.pop() {
            Some(vu) => vu,
            None if (pool.slots.len() as u64) < max_vus => pool.add(),
            None => match pool.next_freed(slot + VU_WAIT).await {
                Some(vu) => vu,
                None => {
                    recorder::with(|r| r.dropped_iterations(1));
                    continue;
                }
            },
        };
        // An idle VU's queue is empty, so this cannot fail for want of room.
        let _ = pool.slots[vu].try_send(slot);
    }
    // Closing the VUs' queues ends each of them after its iteration in flight.
    pool.slots.clear();
    // As in k6, the scenario lasts its whole duration, and `gracefulStop` counts from
    // its end, not from the last slot: the last iterations run to completion.
    if !control.stopping() {
        wait::sleep_until(end, &mut wake).await;
    }
    wait::drain(&mut pool.tasks, graceful_stop, &mut wake).await;
}

/// The scenario's VUs on this thread: each a long-lived task that runs the iterations
/// it is handed, so starting an iteration costs a message, not a task.
struct Pool {
    ctx: Arc<ScenarioCtx>,
    tasks: JoinSet<()>,
    /// Per VU, where its next iteration's slot goes.
    slots: Vec<mpsc::Sender<Instant>>,
    /// VUs free to take an iteration.
    idle: Vec<usize>,
    /// VUs that finished their iteration since the dispatcher last looked.
    freed: mpsc::UnboundedReceiver<usize>,
    free: mpsc::UnboundedSender<usize>,
}

impl Pool {
    fn new(ctx: Arc<ScenarioCtx>) -> Pool {
        let (free, freed) = mpsc::unbounded_channel();
        Pool {
            ctx,
            tasks: JoinSet::new(),
            slots: Vec::new(),
            idle: Vec::new(),
            freed,
            free,
        }
    }

    /// The next VU to finish its iteration, if one does by `deadline`.
    async fn next_freed(&mut self, deadline: Instant) -> Option<usize> {
        tokio::time::timeout_at(deadline.into(), self.freed.recv())
            .await
            .ok()
            .flatten()
    }

    /// Starts a VU; returns its number.
    fn add(&mut self) -> usize {
        let index = self.slots.len();
        let (tx, rx) = mpsc::channel(1);
        self.slots.push(tx);
        let allocated = VuGauge::new(0, 1);
        self.tasks.spawn(run_vu(
            self.ctx.clone(),
            rx,
            self.free.clone(),
            index,
            allocated,
        ));
        index
    }
}

async fn run_vu(
    ctx: Arc<ScenarioCtx>,
    mut slots: mpsc::Receiver<Instant>,
    free: mpsc::UnboundedSender<usize>,
    index: usize,
    _allocated: VuGauge,
) {
    let mut vu = Vu::new(ctx.origins.len());
    while let Some(slot) = slots.recv().await {
        let busy = VuGauge::new(1, 0);
        vu.iteration(&ctx, slot).await;
        drop(busy);
        if free.send(index).is_err() {
            return;
        }
    }
}
