//! The stall switch behind [`Target::stall`](crate::Target::stall) and
//! `POST /__kpress/stall`: it holds every response back until a moment in the future, to
//! play a GC pause or a stuck backend for latency-correction tests.
//!
//! The end of the stall is one atomic, so that the check every response makes costs a load
//! (and, once some stall has happened, a clock read), never a lock or a timer.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

use crate::shape::MAX_DURATION;

pub(crate) struct Stall {
    epoch: Instant,
    /// Nanoseconds after `epoch` at which the stall ends; 0 if there never was one.
    until: AtomicU64,
}

impl Default for Stall {
    fn default() -> Self {
        Stall {
            epoch: Instant::now(),
            until: AtomicU64::new(0),
        }
    }
}

impl Stall {
    /// Stalls until `duration` (capped at [`MAX_DURATION`]) from now, unless a stall already
    /// runs longer.
    pub(crate) fn start(&self, duration: Duration) {
        let until = self.epoch.elapsed() + duration.min(MAX_DURATION);
        let nanos = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX);
        self.until.fetch_max(nanos.max(1), Relaxed);
    }

    /// Returns once no stall is active; a stall lengthened meanwhile is waited for too.
    pub(crate) async fn wait(&self) {
        loop {
            let nanos = self.until.load(Relaxed);
            if nanos == 0 {
                return;
            }
            let Some(end) = self.epoch.checked_add(Duration::from_nanos(nanos)) else {
                return;
            };
            if Instant::now() >= end {
                return;
            }
            tokio::time::sleep_until(end).await;
        }
    }
}
