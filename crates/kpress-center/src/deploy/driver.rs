//! The center's driver of `deployment`-mode runs: a loop that, every tick, finishes the
//! runs whose deadlines passed (not every share leased in time: `failed`; runners
//! silent past the end: `partial`, with what arrived) and removes the objects of every
//! finished run: the Deployment scaled to 0 and deleted, the run's ConfigMaps deleted,
//! then the clean-up hooks run. The clean-up is recorded on the run only when it is
//! over, so a center that restarts in the middle does it again (every step is
//! idempotent).

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kpress_report::wire::Cleanup;

use super::Cluster;
use crate::hooks::{self, HookInput};
use crate::store::{CleanupTarget, Due, Store};

/// Attempts at removing a run's Kubernetes objects before the failure is recorded.
const TEAR_DOWN_ATTEMPTS: u32 = 6;

/// Drives every `deployment`-mode run until `shutdown` completes.
pub async fn drive(store: Store, cluster: Cluster, shutdown: impl Future<Output = ()>) {
    let cleaning: Arc<Mutex<HashSet<String>>> = Arc::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(cluster.settings.tick) => {}
        }
        let due = match store.due().await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!("the driver cannot read the runs due: {e}");
                continue;
            }
        };
        for item in due {
            match item {
                Due::StartMissed {
                    id,
                    leased,
                    runners,
                } => {
                    let reason = format!(
                        "only {leased} of {runners} runner(s) leased their share within the start-up time"
                    );
                    finish(&store, &id, &reason).await;
                }
                Due::ReportMissed { id, missing } => {
                    let list: Vec<String> = missing.iter().map(u64::to_string).collect();
                    let reason = format!(
                        "runner(s) {} did not report by the deadline",
                        list.join(", ")
                    );
                    finish(&store, &id, &reason).await;
                }
                Due::Cleanup(target) => {
                    let fresh = lock(&cleaning).insert(target.id.clone());
                    if fresh {
                        let (store, cluster, cleaning) =
                            (store.clone(), cluster.clone(), cleaning.clone());
                        tokio::spawn(async move {
                            clean_up(&store, &cluster, &target).await;
                            lock(&cleaning).remove(&target.id);
                        });
                    }
                }
            }
        }
    }
}

/// Locks the set even if a clean-up task panicked while holding it: it stays valid.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn finish(store: &Store, id: &str, reason: &str) {
    match store.finish(id, reason).await {
        Ok(run) => tracing::info!(run = id, status = ?run.status, "{reason}"),
        Err(e) => tracing::warn!(run = id, "cannot finish the run: {e}"),
    }
}

/// Removes a finished run's objects, runs its hooks and records what happened.
async fn clean_up(store: &Store, cluster: &Cluster, target: &CleanupTarget) {
    let mut pause = Duration::from_secs(1);
    let mut attempt = 1;
    let removed = loop {
        match kpress_k8s::deployment::tear_down(
            cluster.client.clone(),
            &target.namespace,
            &target.name,
            &target.id,
            false,
        )
        .await
        {
            Ok(done) => break Ok(done),
            Err(e) if attempt >= TEAR_DOWN_ATTEMPTS => break Err(e),
            Err(e) => {
                tracing::warn!(run = %target.id, attempt, "removing the Deployment failed: {e}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(15));
                attempt += 1;
            }
        }
    };
    let input = HookInput {
        run: target.id.clone(),
        test: target.test.clone(),
        app: target.app.clone(),
        namespace: target.namespace.clone(),
        deployment: target.name.clone(),
        status: crate::store::status_name(target.status),
        labels: target.labels.clone(),
    };
    let hooks = hooks::run_all(&cluster.settings.hooks, &input, cluster.settings.hook_retry).await;
    let record = match removed {
        Ok(done) => Cleanup {
            ok: done.gone && hooks.iter().all(|h| h.ok),
            scaled: done.scaled,
            deleted: done.gone,
            config_maps: done.config_maps,
            error: (!done.gone).then(|| {
                format!(
                    "Deployment {}/{} was deleted but is still there (a finalizer?)",
                    target.namespace, target.name
                )
            }),
            hooks,
            finished: crate::time::rfc3339(crate::time::now_ms()),
        },
        Err(e) => Cleanup {
            ok: false,
            scaled: false,
            deleted: false,
            config_maps: Vec::new(),
            error: Some(e),
            hooks,
            finished: crate::time::rfc3339(crate::time::now_ms()),
        },
    };
    if record.ok {
        tracing::info!(run = %target.id, deployment = %target.name, "removed the run's Deployment");
    } else {
        tracing::warn!(run = %target.id, deployment = %target.name, error = ?record.error, "the clean-up did not all succeed");
    }
    if let Err(e) = store.set_cleanup(&target.id, &record).await {
        tracing::warn!(run = %target.id, "cannot record the clean-up: {e}");
    }
}
