//! How a run is stopped from outside its worker threads (Ctrl-C, SIGTERM, a threshold
//! with `abortOnFail`): a phase every VU loop reads with one relaxed atomic load, plus
//! a watch channel that wakes sleeping dispatchers.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Running = 0,
    /// Start no new iteration; let running ones finish within each scenario's gracefulStop.
    Stopping = 1,
    /// Stop now; in-flight requests are abandoned.
    Halted = 2,
}

/// Why a run ended before its schedule did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Ctrl-C, SIGTERM or an API call.
    Interrupted(String),
    /// A threshold with `abortOnFail` failed.
    Threshold(String),
}

pub struct Control {
    phase: AtomicU8,
    wake: watch::Sender<Phase>,
    reason: Mutex<Option<StopReason>>,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            phase: AtomicU8::new(0),
            wake: watch::Sender::new(Phase::Running),
            reason: Mutex::new(None),
        }
    }
}

impl Control {
    #[inline]
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Running,
            1 => Phase::Stopping,
            _ => Phase::Halted,
        }
    }

    #[inline]
    pub fn stopping(&self) -> bool {
        self.phase.load(Ordering::Relaxed) != 0
    }

    /// Moves to `phase` (never backwards) and records the first reason given.
    pub fn stop(&self, phase: Phase, reason: StopReason) {
        if let Ok(mut r) = self.reason.lock() {
            r.get_or_insert(reason);
        }
        self.phase.fetch_max(phase as u8, Ordering::SeqCst);
        let now = self.phase();
        self.wake.send_replace(now);
    }

    pub fn reason(&self) -> Option<StopReason> {
        self.reason.lock().ok().and_then(|r| r.clone())
    }

    pub fn subscribe(&self) -> watch::Receiver<Phase> {
        self.wake.subscribe()
    }
}
