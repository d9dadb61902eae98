//! The waits every executor needs: until an instant unless the run stops, and the
//! graceful drain of in-flight iterations (k6's `gracefulStop`).

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::control::Phase;

/// Resolves once the phase reaches `at_least`.
pub async fn phase_reached(wake: &mut watch::Receiver<Phase>, at_least: Phase) {
    loop {
        if *wake.borrow_and_update() >= at_least {
            return;
        }
        if wake.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Sleeps until `at`; false if the run began stopping first.
pub async fn sleep_until(at: Instant, wake: &mut watch::Receiver<Phase>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep_until(at.into()) => true,
        _ = phase_reached(wake, Phase::Stopping) => false,
    }
}

/// Lets the tasks of `set` finish for up to `grace`, then aborts what is left; an
/// immediate halt aborts at once.
pub async fn drain(set: &mut JoinSet<()>, grace: Duration, wake: &mut watch::Receiver<Phase>) {
    let deadline = Instant::now() + grace;
    loop {
        tokio::select! {
            next = set.join_next() => if next.is_none() { return },
            _ = tokio::time::sleep_until(deadline.into()) => break,
            _ = phase_reached(wake, Phase::Halted) => break,
        }
    }
    set.shutdown().await;
}
