//! The store's side of `deployment`-mode runs: the Deployment a run is tied to, the
//! leases that give each runner pod its share, the start barrier, the deadlines the
//! center's driver enforces, and the record of the clean-up.
//!
//! A share is leased to a pod (by name) and a process (drawn at process start). The
//! same pod asking again keeps its share; a new pod takes a free share, or the share of
//! a holder silent for longer than the lease's time to live. Once a holder has been
//! told the start, its share is never run again: a restarted container or a
//! replacement pod is told to idle, and the share is marked failed (cut short) unless
//! it is done, so no load is generated twice.

use std::collections::BTreeMap;

use kpress_report::wire::{Cleanup, DeploymentState, Lease, LeaseState, RunStatus};
use sqlx::AnyConnection;
use sqlx::Row;

use super::sql::{self, to_i64, to_u64};
use super::{lock_run, Store, StoreError};
use crate::time;

/// A `deployment`-mode run's Deployment, stored with the run.
#[derive(Debug, Clone)]
pub struct NewDeployment {
    pub namespace: String,
    pub name: String,
    pub created_by_center: bool,
    /// Every share must be leased by then (ms since the epoch).
    pub start_by_ms: i64,
    /// The longest the test runs (with graceful stops), for the reporting deadline.
    pub max_duration_ms: i64,
}

/// The timing of leases and the barrier.
#[derive(Debug, Clone, Copy)]
pub struct LeaseTiming {
    /// A holder silent for this long may lose its share to a new pod (before the start).
    pub ttl_ms: i64,
    /// The start is this long after the last share is leased, so every runner hears of
    /// it in time.
    pub start_margin_ms: i64,
    /// Runners must have reported this long after the longest the test can run.
    pub report_grace_ms: i64,
}

/// A run the driver must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    /// Not every share was leased in time.
    StartMissed {
        id: String,
        leased: u64,
        runners: u64,
    },
    /// The start was long enough ago for every runner to have reported.
    ReportMissed { id: String, missing: Vec<u64> },
    /// Finished: its objects are to be removed.
    Cleanup(CleanupTarget),
}

/// What removing a finished run's objects needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanupTarget {
    pub id: String,
    pub test: String,
    pub app: Option<String>,
    pub status: RunStatus,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct LeaseRow {
    idx: u64,
    pod: String,
    process: String,
    renewed: i64,
    started: bool,
}

#[derive(Debug, Clone)]
struct DeploymentRow {
    start_at: Option<i64>,
    max_duration_ms: i64,
}

impl Store {
    /// Leases runner pod `pod` (process `process`) its share of run `id`, and says
    /// whether to wait, start, or idle.
    pub async fn lease(
        &self,
        id: &str,
        pod: &str,
        process: &str,
        timing: LeaseTiming,
    ) -> Result<Lease, StoreError> {
        let now = time::now_ms();
        let mut tx = self.write().await?;
        let run = lock_run(&mut tx, id).await?;
        let deployment = deployment_row(&mut tx, id).await?;
        let idle = |index, message: String| Lease {
            state: LeaseState::Idle,
            index,
            runners: run.runners,
            start_at: None,
            message: Some(message),
        };
        if run.status != RunStatus::Running {
            tx.rollback().await?;
            return Ok(idle(None, format!("run `{id}` is finished")));
        }
        let leases = leases(&mut tx, id).await?;
        let done = done_runners(&mut tx, id).await?;
        let held = match leases.iter().find(|l| l.pod == pod) {
            Some(own) => Some(own.clone()),
            None => {
                let taken: Vec<u64> = leases.iter().map(|l| l.idx).collect();
                let free = (0..run.runners).find(|i| !taken.contains(i) && !done.contains(i));
                match free {
                    Some(idx) => {
                        insert_lease(&mut tx, id, idx, pod, process, now).await?;
                        Some(LeaseRow {
                            idx,
                            pod: pod.into(),
                            process: process.into(),
                            renewed: now,
                            started: false,
                        })
                    }
                    None => leases
                        .iter()
                        .filter(|l| l.renewed < now - timing.ttl_ms && !done.contains(&l.idx))
                        .min_by_key(|l| l.idx)
                        .cloned(),
                }
            }
        };
        let Some(lease) = held else {
            tx.rollback().await?;
            if done.len() as u64 >= run.runners {
                return Ok(idle(None, "every share is done".into()));
            }
            return Ok(Lease {
                state: LeaseState::Wait,
                index: None,
                runners: run.runners,
                start_at: None,
                message: Some("every share is held by a live runner".into()),
            });
        };
        let idx = lease.idx;
        let successor = lease.pod != pod || lease.process != process;
        if done.contains(&idx) {
            tx.commit().await?;
            return Ok(idle(Some(idx), format!("share {idx} is done")));
        }
        if successor && lease.started {
            let message = format!(
                "runner {idx} was restarted or replaced after the start (now pod {pod}): \
                 its share was cut short and is not run again"
            );
            sql::set_runner_done(&mut tx, id, idx, sql::FAILED, Some(&message), now).await?;
            set_lease_holder(&mut tx, id, idx, pod, process, now).await?;
            if sql::runners_done(&mut tx, id).await? >= run.runners {
                super::finish_in(&mut tx, id, run.runners, None, now).await?;
            }
            tx.commit().await?;
            return Ok(idle(Some(idx), message));
        }
        set_lease_holder(&mut tx, id, idx, pod, process, now).await?;
        let mut start_at = deployment.start_at;
        if start_at.is_none() {
            let fresh = leases_renewed_since(&mut tx, id, now - timing.ttl_ms).await?;
            if fresh >= run.runners {
                let at = now + timing.start_margin_ms;
                let report_by = at + deployment.max_duration_ms + timing.report_grace_ms;
                set_start(&mut tx, id, at, report_by).await?;
                start_at = Some(at);
            }
        }
        let answer = match start_at {
            Some(at) => {
                mark_started(&mut tx, id, idx).await?;
                Lease {
                    state: LeaseState::Start,
                    index: Some(idx),
                    runners: run.runners,
                    start_at: Some(time::rfc3339(at)),
                    message: None,
                }
            }
            None => Lease {
                state: LeaseState::Wait,
                index: Some(idx),
                runners: run.runners,
                start_at: None,
                message: None,
            },
        };
        tx.commit().await?;
        Ok(answer)
    }

    /// The runs the driver must act on now: deadlines passed, clean-ups owed.
    pub async fn due(&self) -> Result<Vec<Due>, StoreError> {
        let now = time::now_ms();
        let mut conn = self.pool.acquire().await?;
        let mut due = Vec::new();
        let late = sqlx::query(
            "SELECT r.id, r.runners, d.start_at FROM runs r JOIN deployments d ON d.run_id = r.id \
             WHERE r.status = 'running' AND ((d.start_at IS NULL AND d.start_by < $1) \
             OR (d.report_by IS NOT NULL AND d.report_by < $1)) ORDER BY r.created",
        )
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
        for row in late {
            let id: String = row.try_get("id")?;
            let runners = to_u64(row.try_get("runners")?)?;
            if row.try_get::<Option<i64>, _>("start_at")?.is_none() {
                let leased = leases_renewed_since(&mut conn, &id, i64::MIN).await?;
                due.push(Due::StartMissed {
                    id,
                    leased,
                    runners,
                });
            } else {
                let done = done_runners(&mut conn, &id).await?;
                let missing = (0..runners).filter(|i| !done.contains(i)).collect();
                due.push(Due::ReportMissed { id, missing });
            }
        }
        let finished = sqlx::query(
            "SELECT r.id, r.test, r.app, r.status, r.labels, d.namespace, d.name \
             FROM runs r JOIN deployments d ON d.run_id = r.id \
             WHERE r.status <> 'running' AND d.cleanup IS NULL ORDER BY r.created",
        )
        .fetch_all(&mut *conn)
        .await?;
        for row in finished {
            due.push(Due::Cleanup(CleanupTarget {
                id: row.try_get("id")?,
                test: row.try_get("test")?,
                app: row.try_get("app")?,
                status: sql::parse_name(&row.try_get::<String, _>("status")?)?,
                namespace: row.try_get("namespace")?,
                name: row.try_get("name")?,
                labels: sql::json(&row.try_get::<String, _>("labels")?, "labels")?,
            }));
        }
        Ok(due)
    }

    /// Records what removing the run's objects did; the run is then no longer due.
    pub async fn set_cleanup(&self, id: &str, cleanup: &Cleanup) -> Result<(), StoreError> {
        let text = serde_json::to_string(cleanup)
            .map_err(|e| StoreError::Invalid(format!("the clean-up cannot be stored: {e}")))?;
        let mut tx = self.write().await?;
        lock_run(&mut tx, id).await?;
        sqlx::query("UPDATE deployments SET cleanup = $2 WHERE run_id = $1")
            .bind(id)
            .bind(text)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Stores a new run's Deployment (in the registration's transaction).
pub(super) async fn insert_deployment(
    conn: &mut AnyConnection,
    id: &str,
    d: &NewDeployment,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO deployments (run_id, namespace, name, created_by_center, start_by, \
         max_duration_ms) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(&d.namespace)
    .bind(&d.name)
    .bind(i64::from(d.created_by_center))
    .bind(d.start_by_ms)
    .bind(d.max_duration_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The run's Deployment as the API shows it; none for other modes.
pub(super) async fn deployment_state(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<DeploymentState>, StoreError> {
    let row = sqlx::query(
        "SELECT namespace, name, created_by_center, start_by, start_at, report_by, cleanup \
         FROM deployments WHERE run_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let leased = leases_renewed_since(conn, id, i64::MIN).await?;
    Ok(Some(DeploymentState {
        namespace: row.try_get("namespace")?,
        name: row.try_get("name")?,
        created_by_center: row.try_get::<i64, _>("created_by_center")? != 0,
        start_by: time::rfc3339(row.try_get("start_by")?),
        start_at: row
            .try_get::<Option<i64>, _>("start_at")?
            .map(time::rfc3339),
        report_by: row
            .try_get::<Option<i64>, _>("report_by")?
            .map(time::rfc3339),
        leased,
        cleanup: row
            .try_get::<Option<String>, _>("cleanup")?
            .map(|t| sql::json(&t, "clean-up"))
            .transpose()?,
    }))
}

/// Deletes the run's Deployment record and leases (with the run).
pub(super) async fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    for text in [
        "DELETE FROM leases WHERE run_id = $1",
        "DELETE FROM deployments WHERE run_id = $1",
    ] {
        sqlx::query(text).bind(id).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn deployment_row(conn: &mut AnyConnection, id: &str) -> Result<DeploymentRow, StoreError> {
    let row = sqlx::query("SELECT start_at, max_duration_ms FROM deployments WHERE run_id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "run `{id}` is not a deployment-mode run: its runners have their shares already"
            ))
        })?;
    Ok(DeploymentRow {
        start_at: row.try_get("start_at")?,
        max_duration_ms: row.try_get("max_duration_ms")?,
    })
}

async fn leases(conn: &mut AnyConnection, id: &str) -> Result<Vec<LeaseRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT idx, pod, process, renewed, started FROM leases WHERE run_id = $1 ORDER BY idx",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(LeaseRow {
                idx: to_u64(row.try_get("idx")?)?,
                pod: row.try_get("pod")?,
                process: row.try_get("process")?,
                renewed: row.try_get("renewed")?,
                started: row.try_get::<i64, _>("started")? != 0,
            })
        })
        .collect()
}

/// The indexes of the runners that signalled done.
async fn done_runners(conn: &mut AnyConnection, id: &str) -> Result<Vec<u64>, StoreError> {
    let rows = sqlx::query(
        "SELECT idx FROM runners WHERE run_id = $1 AND state IN ('completed', 'failed')",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| to_u64(r.try_get("idx")?)).collect()
}

async fn insert_lease(
    conn: &mut AnyConnection,
    id: &str,
    idx: u64,
    pod: &str,
    process: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO leases (run_id, idx, pod, process, renewed, started) \
         VALUES ($1, $2, $3, $4, $5, 0)",
    )
    .bind(id)
    .bind(to_i64(idx)?)
    .bind(pod)
    .bind(process)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn set_lease_holder(
    conn: &mut AnyConnection,
    id: &str,
    idx: u64,
    pod: &str,
    process: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE leases SET pod = $3, process = $4, renewed = $5 WHERE run_id = $1 AND idx = $2",
    )
    .bind(id)
    .bind(to_i64(idx)?)
    .bind(pod)
    .bind(process)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn mark_started(conn: &mut AnyConnection, id: &str, idx: u64) -> Result<(), StoreError> {
    sqlx::query("UPDATE leases SET started = 1 WHERE run_id = $1 AND idx = $2")
        .bind(id)
        .bind(to_i64(idx)?)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Leases renewed since `since` (all of them with `i64::MIN`), counted in the database.
async fn leases_renewed_since(
    conn: &mut AnyConnection,
    id: &str,
    since: i64,
) -> Result<u64, StoreError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM leases WHERE run_id = $1 AND renewed >= $2")
        .bind(id)
        .bind(since)
        .fetch_one(&mut *conn)
        .await?;
    to_u64(row.try_get("n")?)
}

async fn set_start(
    conn: &mut AnyConnection,
    id: &str,
    at: i64,
    report_by: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE deployments SET start_at = $2, report_by = $3 WHERE run_id = $1")
        .bind(id)
        .bind(at)
        .bind(report_by)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
