//! The open model: iterations start at their arrival slots whatever the system under
//! test does, each on an idle VU of the pool. Latency counts from the slot, so a late
//! start (a busy dispatcher, a new connection) is charged to the request, never hidden.
//! When no VU is idle a new one is added up to `maxVUs`; beyond that the iteration is
//! counted in `dropped_iterations`, as k6 does. Unlike k6, the iteration that made a VU
//! necessary runs on it instead of being dropped while the VU starts, since starting a
//! kpress VU costs nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::control::Control;
use super::vu::{ScenarioCtx, Vu, VuGauge};
use super::wait;
use crate::executor::arrival::ArrivalSchedule;
use crate::metrics::recorder;

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
    let pool: Arc<Mutex<Vec<Vu>>> = Arc::new(Mutex::new(
        (0..pre_allocated)
            .map(|_| Vu::new(ctx.origins.len()))
            .collect(),
    ));
    let mut allocated = pre_allocated;
    let _pool_gauge = VuGauge::new(0, pre_allocated as i64);
    let mut added_gauges = Vec::new();
    let mut set = JoinSet::new();
    for offset in schedule.slots() {
        let slot = start + offset;
        if slot > Instant::now() && !wait::sleep_until(slot, &mut wake).await {
            break;
        }
        if control.stopping() {
            break;
        }
        while set.try_join_next().is_some() {}
        let vu = pool.lock().ok().and_then(|mut p| p.pop());
        let vu = match vu {
            Some(vu) => vu,
            None if allocated < max_vus => {
                allocated += 1;
                added_gauges.push(VuGauge::new(0, 1));
                Vu::new(ctx.origins.len())
            }
            None => {
                recorder::with(|r| r.dropped_iteration());
                continue;
            }
        };
        let (ctx, pool) = (ctx.clone(), pool.clone());
        set.spawn(async move {
            let mut vu = vu;
            let busy = VuGauge::new(1, 0);
            vu.iteration(&ctx, slot).await;
            drop(busy);
            if let Ok(mut p) = pool.lock() {
                p.push(vu);
            }
        });
    }
    wait::drain(&mut set, graceful_stop, &mut wake).await;
}
