//! The store's statements and the decoding of their rows. Portable SQL only (`$N`
//! placeholders, `ON CONFLICT DO NOTHING`, `CAST(... AS BIGINT)` around sums), since
//! one text must run on SQLite and PostgreSQL.

use std::collections::BTreeMap;

use kpress_engine::summary::{Summary, TimelinePoint};
use kpress_report::wire::{Mode, RunInfo, RunStatus, RunnerPhase, RunnerState};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use sqlx::Row;

use super::{LiveRun, NewRun, RunFilter, StoreError};
use crate::finish::Conclusion;
use crate::time;

pub const PENDING: &str = "pending";
pub const COMPLETED: &str = "completed";
pub const FAILED: &str = "failed";
const RUNNING: &str = "running";

/// Rows per statement when registering a run's runners.
const RUNNER_ROWS_PER_INSERT: u64 = 1000;

/// What the writes of one run need to know about it.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub test: String,
    pub runners: u64,
    pub status: RunStatus,
    pub started: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct RunnerRow {
    pub state: String,
    pub summary: Option<String>,
}

impl RunnerRow {
    /// Whether the runner has signalled done.
    pub fn done(&self) -> bool {
        self.state == COMPLETED || self.state == FAILED
    }
}

/// How a run was registered, to recognise the same registration re-sent.
#[derive(Debug, Clone)]
pub struct Registration {
    pub request_hash: String,
    pub token_nonce: String,
    pub token_hash: String,
}

/// The run's large or rarely needed columns.
#[derive(Debug, Clone)]
pub struct RunExtra {
    pub scenario: String,
    pub summary: Option<Summary>,
    pub finish_reason: Option<String>,
}

pub async fn sqlite_pragmas(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    for pragma in [
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = FULL",
        "PRAGMA busy_timeout = 10000",
    ] {
        sqlx::query(pragma).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The enum's serde name (`thresholds_failed`, `job`...), as stored.
pub fn name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

pub(super) fn parse_name<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| StoreError::Corrupt(format!("unknown value `{text}`")))
}

pub(super) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{v} is too large to store")))
}

pub(super) fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative count {v}")))
}

pub(super) fn json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

const RUN_INFO_COLUMNS: &str = "r.id, r.test, r.app, r.mode, r.started_by, r.status, \
     r.runners, r.created, r.started, r.ended, r.duration_s, r.requests, r.error_rate, \
     r.p99_ms, r.labels, \
     (SELECT COUNT(*) FROM runners x WHERE x.run_id = r.id \
      AND x.state IN ('completed', 'failed')) AS runners_done";

fn decode_run_info(row: &AnyRow) -> Result<RunInfo, StoreError> {
    let labels: BTreeMap<String, String> = json(&row.try_get::<String, _>("labels")?, "labels")?;
    Ok(RunInfo {
        id: row.try_get("id")?,
        test: row.try_get("test")?,
        app: row.try_get("app")?,
        mode: parse_name::<Mode>(&row.try_get::<String, _>("mode")?)?,
        started_by: row.try_get("started_by")?,
        status: parse_name::<RunStatus>(&row.try_get::<String, _>("status")?)?,
        runners: to_u64(row.try_get("runners")?)?,
        runners_done: to_u64(row.try_get("runners_done")?)?,
        created: time::rfc3339(row.try_get("created")?),
        started: row.try_get::<Option<i64>, _>("started")?.map(time::rfc3339),
        ended: row.try_get::<Option<i64>, _>("ended")?.map(time::rfc3339),
        duration_s: row.try_get("duration_s")?,
        requests: row
            .try_get::<Option<i64>, _>("requests")?
            .map(to_u64)
            .transpose()?,
        error_rate: row.try_get("error_rate")?,
        p99_ms: row.try_get("p99_ms")?,
        labels,
    })
}

/// Inserts the run unless its id exists; returns whether it did.
pub async fn insert_run(
    conn: &mut AnyConnection,
    run: &NewRun,
    now: i64,
) -> Result<bool, StoreError> {
    let r = &run.request;
    let labels = serde_json::to_string(&r.labels)
        .map_err(|e| StoreError::Invalid(format!("labels: {e}")))?;
    let done = sqlx::query(
        "INSERT INTO runs (id, test, app, mode, started_by, scenario, runners, labels, \
         status, created, request_hash, runner_token_nonce, runner_token_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&run.id)
    .bind(&r.test)
    .bind(&r.app)
    .bind(name(&r.mode))
    .bind(&r.started_by)
    .bind(&r.scenario)
    .bind(to_i64(r.runners)?)
    .bind(labels)
    .bind(RUNNING)
    .bind(now)
    .bind(&run.request_hash)
    .bind(&run.token_nonce)
    .bind(&run.token_hash)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Registers runners 0..n of the run as pending.
pub async fn insert_runners(
    conn: &mut AnyConnection,
    id: &str,
    n: u64,
    now: i64,
) -> Result<(), StoreError> {
    let mut first = 0;
    while first < n {
        let last = n.min(first + RUNNER_ROWS_PER_INSERT);
        // The indexes are our own numbers; only the run id and the instant are bound.
        let rows: Vec<String> = (first..last)
            .map(|i| format!("($1, {i}, '{PENDING}', $2)"))
            .collect();
        let text = format!(
            "INSERT INTO runners (run_id, idx, state, updated) VALUES {}",
            rows.join(", ")
        );
        sqlx::query(&text)
            .persistent(false)
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        first = last;
    }
    Ok(())
}

pub async fn registration(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<Registration>, StoreError> {
    let row = sqlx::query(
        "SELECT request_hash, runner_token_nonce, runner_token_hash FROM runs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| {
        Ok(Registration {
            request_hash: row.try_get("request_hash")?,
            token_nonce: row.try_get("runner_token_nonce")?,
            token_hash: row.try_get("runner_token_hash")?,
        })
    })
    .transpose()
}

pub async fn runner_token_owner(
    conn: &mut AnyConnection,
    hash: &str,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT id FROM runs WHERE runner_token_hash = $1")
        .bind(hash)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.try_get("id")).transpose()?)
}

pub async fn run_info(conn: &mut AnyConnection, id: &str) -> Result<RunInfo, StoreError> {
    let text = format!("SELECT {RUN_INFO_COLUMNS} FROM runs r WHERE r.id = $1");
    let row = sqlx::query(&text)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| super::not_found(id))?;
    decode_run_info(&row)
}

pub async fn list_runs(
    conn: &mut AnyConnection,
    filter: &RunFilter,
) -> Result<Vec<RunInfo>, StoreError> {
    let mut conditions = Vec::new();
    let mut texts = Vec::new();
    let mut instants = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    for (column, value) in [("test", &filter.test), ("app", &filter.app)] {
        if let Some(v) = value {
            conditions.push(format!("r.{column} = ${}", next()));
            texts.push(v.clone());
        }
    }
    if let Some(s) = filter.status {
        conditions.push(format!("r.status = ${}", next()));
        texts.push(name(&s));
    }
    for (op, value) in [(">=", filter.since_ms), ("<=", filter.until_ms)] {
        if let Some(v) = value {
            instants.push((op, v));
        }
    }
    for (op, _) in &instants {
        conditions.push(format!("r.created {op} ${}", next()));
    }
    let (limit, offset) = (next(), next());
    let text = format!(
        "SELECT {RUN_INFO_COLUMNS} FROM runs r {} ORDER BY r.created DESC, r.id DESC \
         LIMIT ${limit} OFFSET ${offset}",
        if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        }
    );
    let mut query = sqlx::query(&text).persistent(false);
    for t in &texts {
        query = query.bind(t);
    }
    for (_, v) in &instants {
        query = query.bind(*v);
    }
    let rows = query
        .bind(filter.limit)
        .bind(filter.offset)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(decode_run_info).collect()
}

pub async fn run_extra(conn: &mut AnyConnection, id: &str) -> Result<RunExtra, StoreError> {
    let row = sqlx::query("SELECT scenario, summary, finish_reason FROM runs WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| super::not_found(id))?;
    Ok(RunExtra {
        scenario: row.try_get("scenario")?,
        summary: row
            .try_get::<Option<String>, _>("summary")?
            .map(|s| json(&s, "merged summary"))
            .transpose()?,
        finish_reason: row.try_get("finish_reason")?,
    })
}

pub async fn runner_states(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Vec<RunnerState>, StoreError> {
    let rows = sqlx::query(
        "SELECT idx, state, message, updated FROM runners WHERE run_id = $1 ORDER BY idx",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(RunnerState {
                index: to_u64(row.try_get("idx")?)?,
                state: parse_name::<RunnerPhase>(&row.try_get::<String, _>("state")?)?,
                message: row.try_get("message")?,
                updated: time::rfc3339(row.try_get("updated")?),
            })
        })
        .collect()
}

pub async fn points(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Vec<(u64, TimelinePoint)>, StoreError> {
    let rows = sqlx::query("SELECT idx, point FROM points WHERE run_id = $1 ORDER BY t, idx")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    decode_points(&rows)
}

fn decode_points(rows: &[AnyRow]) -> Result<Vec<(u64, TimelinePoint)>, StoreError> {
    rows.iter()
        .map(|row| {
            Ok((
                to_u64(row.try_get("idx")?)?,
                json(&row.try_get::<String, _>("point")?, "point")?,
            ))
        })
        .collect()
}

/// Deletes the run and everything of it; returns whether it existed.
pub async fn delete_run(conn: &mut AnyConnection, id: &str) -> Result<bool, StoreError> {
    for table in [
        "DELETE FROM points WHERE run_id = $1",
        "DELETE FROM runners WHERE run_id = $1",
    ] {
        sqlx::query(table).bind(id).execute(&mut *conn).await?;
    }
    let done = sqlx::query("DELETE FROM runs WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Locks the run's row until the transaction ends; returns whether the run exists.
pub async fn lock_run(conn: &mut AnyConnection, id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE runs SET runners = runners WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn run_row(conn: &mut AnyConnection, id: &str) -> Result<RunRow, StoreError> {
    let row = sqlx::query("SELECT test, runners, status, started FROM runs WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| super::not_found(id))?;
    Ok(RunRow {
        test: row.try_get("test")?,
        runners: to_u64(row.try_get("runners")?)?,
        status: parse_name(&row.try_get::<String, _>("status")?)?,
        started: row.try_get("started")?,
    })
}

pub async fn runner(
    conn: &mut AnyConnection,
    id: &str,
    index: u64,
) -> Result<RunnerRow, StoreError> {
    let row = sqlx::query("SELECT state, summary FROM runners WHERE run_id = $1 AND idx = $2")
        .bind(id)
        .bind(to_i64(index)?)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("run `{id}` lacks its runner {index}")))?;
    Ok(RunnerRow {
        state: row.try_get("state")?,
        summary: row.try_get("summary")?,
    })
}

pub async fn point_exists(
    conn: &mut AnyConnection,
    id: &str,
    index: u64,
    t: u64,
) -> Result<bool, StoreError> {
    let row =
        sqlx::query("SELECT COUNT(*) AS n FROM points WHERE run_id = $1 AND idx = $2 AND t = $3")
            .bind(id)
            .bind(to_i64(index)?)
            .bind(to_i64(t)?)
            .fetch_one(&mut *conn)
            .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Stores the point unless the runner's second is stored; returns whether it did.
pub async fn insert_point(
    conn: &mut AnyConnection,
    id: &str,
    index: u64,
    point: &TimelinePoint,
) -> Result<bool, StoreError> {
    let text = serde_json::to_string(point)
        .map_err(|e| StoreError::Invalid(format!("the point cannot be stored: {e}")))?;
    let done = sqlx::query(
        "INSERT INTO points (run_id, idx, t, requests, failed, point) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(to_i64(index)?)
    .bind(to_i64(point.t)?)
    .bind(to_i64(point.requests)?)
    .bind(to_i64(point.failed)?)
    .bind(text)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A runner that reports is running (unless it is already further).
pub async fn mark_running(
    conn: &mut AnyConnection,
    id: &str,
    index: u64,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE runners SET state = CASE WHEN state = 'pending' THEN 'running' ELSE state END, \
         updated = $3 WHERE run_id = $1 AND idx = $2",
    )
    .bind(id)
    .bind(to_i64(index)?)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_runner_summary(
    conn: &mut AnyConnection,
    id: &str,
    index: u64,
    summary: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE runners SET summary = $3, state = 'running', updated = $4 \
         WHERE run_id = $1 AND idx = $2",
    )
    .bind(id)
    .bind(to_i64(index)?)
    .bind(summary)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_runner_done(
    conn: &mut AnyConnection,
    id: &str,
    index: u64,
    state: &str,
    message: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE runners SET state = $3, message = $4, updated = $5 \
         WHERE run_id = $1 AND idx = $2",
    )
    .bind(id)
    .bind(to_i64(index)?)
    .bind(state)
    .bind(message)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_started(conn: &mut AnyConnection, id: &str, ms: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE runs SET started = $2 WHERE id = $1")
        .bind(id)
        .bind(ms)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn runners_done(conn: &mut AnyConnection, id: &str) -> Result<u64, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM runners WHERE run_id = $1 AND state IN ('completed', 'failed')",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    to_u64(row.try_get("n")?)
}

/// The summaries of the runners that completed, by index.
pub async fn completed_summaries(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Vec<Summary>, StoreError> {
    let rows = sqlx::query(
        "SELECT summary FROM runners WHERE run_id = $1 AND state = 'completed' \
         AND summary IS NOT NULL ORDER BY idx",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| json(&row.try_get::<String, _>("summary")?, "runner summary"))
        .collect()
}

/// Stores the verdict of a finished run and its listing columns.
pub async fn set_finished(
    conn: &mut AnyConnection,
    id: &str,
    conclusion: &Conclusion,
    reason: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let merged = conclusion.summary.as_ref();
    let text = merged
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Invalid(format!("the merged summary cannot be stored: {e}")))?;
    let started = merged
        .map(|s| time::parse_ms(&s.started))
        .transpose()
        .map_err(StoreError::Corrupt)?;
    let requests = merged
        .map(|s| to_i64(s.metrics.http_reqs.count))
        .transpose()?;
    sqlx::query(
        "UPDATE runs SET status = $2, ended = $3, summary = $4, requests = $5, \
         error_rate = $6, p99_ms = $7, duration_s = $8, started = COALESCE($9, started), \
         finish_reason = $10 WHERE id = $1",
    )
    .bind(id)
    .bind(name(&conclusion.status))
    .bind(now)
    .bind(text)
    .bind(requests)
    .bind(merged.map(|s| s.metrics.http_req_failed.rate))
    .bind(merged.map(|s| s.metrics.http_req_duration.p99))
    .bind(merged.map(|s| s.duration_s))
    .bind(started)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn status_counts(conn: &mut AnyConnection) -> Result<Vec<(RunStatus, u64)>, StoreError> {
    let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM runs GROUP BY status")
        .fetch_all(&mut *conn)
        .await?;
    let mut counts: Vec<(RunStatus, u64)> = [
        RunStatus::Running,
        RunStatus::Passed,
        RunStatus::ThresholdsFailed,
        RunStatus::Aborted,
        RunStatus::Interrupted,
        RunStatus::Partial,
        RunStatus::Failed,
    ]
    .into_iter()
    .map(|s| (s, 0))
    .collect();
    for row in rows {
        let status: RunStatus = parse_name(&row.try_get::<String, _>("status")?)?;
        let n = to_u64(row.try_get("n")?)?;
        if let Some(entry) = counts.iter_mut().find(|(s, _)| *s == status) {
            entry.1 = n;
        }
    }
    Ok(counts)
}

pub async fn live_runs(conn: &mut AnyConnection) -> Result<Vec<LiveRun>, StoreError> {
    let runs = sqlx::query("SELECT id, test, app FROM runs WHERE status = $1 ORDER BY created, id")
        .bind(RUNNING)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(runs.len());
    for run in runs {
        let id: String = run.try_get("id")?;
        let totals = sqlx::query(
            "SELECT CAST(SUM(requests) AS BIGINT) AS requests, \
             CAST(SUM(failed) AS BIGINT) AS failed FROM points WHERE run_id = $1",
        )
        .bind(&id)
        .fetch_one(&mut *conn)
        .await?;
        // The latest second every runner that has reported has reached.
        let complete = sqlx::query(
            "SELECT MIN(last) AS t FROM \
             (SELECT MAX(t) AS last FROM points WHERE run_id = $1 GROUP BY idx) AS latest",
        )
        .bind(&id)
        .fetch_one(&mut *conn)
        .await?;
        let latest = match complete.try_get::<Option<i64>, _>("t")? {
            Some(t) => {
                let rows =
                    sqlx::query("SELECT idx, point FROM points WHERE run_id = $1 AND t = $2")
                        .bind(&id)
                        .bind(t)
                        .fetch_all(&mut *conn)
                        .await?;
                decode_points(&rows)?.into_iter().map(|(_, p)| p).collect()
            }
            None => Vec::new(),
        };
        out.push(LiveRun {
            test: run.try_get("test")?,
            app: run.try_get("app")?,
            requests: to_u64(totals.try_get::<Option<i64>, _>("requests")?.unwrap_or(0))?,
            failed: to_u64(totals.try_get::<Option<i64>, _>("failed")?.unwrap_or(0))?,
            latest,
            id,
        });
    }
    Ok(out)
}
