//! Where runs, their runners and their points live: one struct over `sqlx::Any`, so
//! the same code and the same migrations serve SQLite (the default, one file) and
//! PostgreSQL (shared). Every write is one transaction that starts by locking the
//! run's row, so concurrent reports of one run are applied one after the other and a
//! run is finished exactly once; a write is acknowledged only after its commit.

mod deploy;
mod sql;

pub use deploy::{CleanupTarget, Due, LeaseTiming, NewDeployment};

use std::time::Duration;

use kpress_engine::summary::{Summary, TimelinePoint};
use kpress_report::wire::{CreateRun, Done, RunDetail, RunInfo, RunStatus, RunnerOutcome};
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyConnection, AnyPool, Transaction};

use crate::finish;
use crate::time;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why a store operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The run (or runner) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts what is stored (another body for the same id, a
    /// different summary for the same runner, a report to a finished run).
    #[error("{0}")]
    Conflict(String),
    /// The request does not fit the run (wrong segment, run id or test).
    #[error("{0}")]
    Invalid(String),
    /// The database URL is not one the center can use.
    #[error("{0}")]
    Url(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Something stored cannot be read back (edited by hand, or a bug).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The center's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// A run to register, with its runner token already issued.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: String,
    pub request: CreateRun,
    /// SHA-256 of the request as sent, to recognise a re-sent registration.
    pub request_hash: String,
    pub token_nonce: String,
    pub token_hash: String,
    /// Mode `deployment`: the Deployment the run is tied to.
    pub deployment: Option<NewDeployment>,
}

/// What registering a run did.
#[derive(Debug, Clone)]
pub enum Created {
    /// The run is new.
    New(RunInfo),
    /// The same registration was already stored: this is that run, and the nonce its
    /// runner token was derived from.
    Existing {
        run: RunInfo,
        token_nonce: String,
        token_hash: String,
    },
    /// Another registration holds this id.
    IdTaken,
}

/// `GET /api/runs` filters.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub test: Option<String>,
    pub app: Option<String>,
    pub status: Option<RunStatus>,
    /// Milliseconds since the epoch, on `created`, inclusive.
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

/// A running run as `/metrics` shows it.
#[derive(Debug, Clone)]
pub struct LiveRun {
    pub id: String,
    pub test: String,
    pub app: Option<String>,
    pub requests: u64,
    pub failed: u64,
    /// Every runner's point of the latest second all reporting runners have sent.
    pub latest: Vec<TimelinePoint>,
}

/// The most runners one run may have.
pub const MAX_RUNNERS: u64 = 10_000;

impl Store {
    /// Opens (SQLite: creates if missing) the database at `url` and applies the
    /// migrations. `sqlite://FILE` or `postgres://USER@HOST/DB`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            (Backend::Sqlite, sqlite_url(url))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::Url(
                "the database URL must start with sqlite:// or postgres://".into(),
            ));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sql::sqlite_pragmas(conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool, backend })
    }

    /// Closes every connection (pending writes have committed or failed by then).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction. SQLite takes its write lock at once (`BEGIN IMMEDIATE`),
    /// so two writers wait for each other instead of failing; PostgreSQL locks rows.
    async fn write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// A read transaction: one consistent snapshot for reads of several statements.
    async fn read(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
        })
    }

    pub async fn create_run(&self, run: &NewRun) -> Result<Created, StoreError> {
        let now = time::now_ms();
        let mut tx = self.write().await?;
        if sql::insert_run(&mut tx, run, now).await? {
            sql::insert_runners(&mut tx, &run.id, run.request.runners, now).await?;
            if let Some(d) = &run.deployment {
                deploy::insert_deployment(&mut tx, &run.id, d).await?;
            }
            let info = sql::run_info(&mut tx, &run.id).await?;
            tx.commit().await?;
            return Ok(Created::New(info));
        }
        let stored = sql::registration(&mut tx, &run.id).await?;
        tx.rollback().await?;
        match stored {
            Some(r) if r.request_hash == run.request_hash => Ok(Created::Existing {
                run: self.run_info(&run.id).await?,
                token_nonce: r.token_nonce,
                token_hash: r.token_hash,
            }),
            _ => Ok(Created::IdTaken),
        }
    }

    /// The run whose runner token hashes to `hash`, if any.
    pub async fn runner_token_owner(&self, hash: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        sql::runner_token_owner(&mut conn, hash).await
    }

    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        sql::list_runs(&mut conn, filter).await
    }

    pub async fn run_info(&self, id: &str) -> Result<RunInfo, StoreError> {
        let mut conn = self.pool.acquire().await?;
        sql::run_info(&mut conn, id).await
    }

    pub async fn run_detail(&self, id: &str) -> Result<RunDetail, StoreError> {
        let mut tx = self.read().await?;
        let run = sql::run_info(&mut tx, id).await?;
        let extra = sql::run_extra(&mut tx, id).await?;
        let runner_states = sql::runner_states(&mut tx, id).await?;
        let deployment = deploy::deployment_state(&mut tx, id).await?;
        tx.commit().await?;
        Ok(RunDetail {
            run,
            scenario: extra.scenario,
            summary: extra.summary,
            finish_reason: extra.finish_reason,
            runner_states,
            deployment,
        })
    }

    /// Every point every runner of the run reported, with the runner's index.
    pub async fn points(&self, id: &str) -> Result<Vec<(u64, TimelinePoint)>, StoreError> {
        let mut tx = self.read().await?;
        sql::run_info(&mut tx, id).await?;
        let points = sql::points(&mut tx, id).await?;
        tx.commit().await?;
        Ok(points)
    }

    /// Deletes the run, its runners and its points.
    pub async fn delete_run(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        deploy::delete(&mut tx, id).await?;
        if !sql::delete_run(&mut tx, id).await? {
            return Err(not_found(id));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores the points of seconds not yet stored for this runner; returns how many.
    pub async fn add_points(
        &self,
        id: &str,
        index: u64,
        points: &[TimelinePoint],
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let run = lock_runner(&mut tx, id, index).await?;
        if run.status != RunStatus::Running {
            for p in points {
                if !sql::point_exists(&mut tx, id, index, p.t).await? {
                    return Err(finished(id));
                }
            }
            return Ok(0);
        }
        let mut accepted = 0;
        for p in points {
            if sql::insert_point(&mut tx, id, index, p).await? {
                accepted += 1;
            }
        }
        sql::mark_running(&mut tx, id, index, time::now_ms()).await?;
        tx.commit().await?;
        Ok(accepted)
    }

    /// Stores runner `index`'s final summary (and its timeline's points not yet
    /// stored). The same summary again changes nothing.
    pub async fn put_summary(
        &self,
        id: &str,
        index: u64,
        summary: &Summary,
    ) -> Result<RunInfo, StoreError> {
        let text = serde_json::to_string(summary)
            .map_err(|e| StoreError::Invalid(format!("the summary cannot be stored: {e}")))?;
        let started = time::parse_ms(&summary.started).map_err(StoreError::Invalid)?;
        let mut tx = self.write().await?;
        let run = lock_runner(&mut tx, id, index).await?;
        let expected = format!("{index}/{}", run.runners);
        if summary.run != id {
            return Err(StoreError::Invalid(format!(
                "the summary is of run `{}`, not `{id}`",
                summary.run
            )));
        }
        if summary.test != run.test {
            return Err(StoreError::Invalid(format!(
                "the summary is of test `{}`; run `{id}` is test `{}`",
                summary.test, run.test
            )));
        }
        if summary.segment != expected || summary.segments != [expected.clone()] {
            return Err(StoreError::Invalid(format!(
                "runner {index} of run `{id}` runs segment {expected}; the summary is of {}",
                summary.segment
            )));
        }
        let runner = sql::runner(&mut tx, id, index).await?;
        match &runner.summary {
            Some(stored) if *stored == text => return sql::run_info(&mut tx, id).await,
            Some(_) => {
                return Err(StoreError::Conflict(format!(
                    "runner {index} of run `{id}` already sent a different summary"
                )))
            }
            None => {}
        }
        if run.status != RunStatus::Running {
            return Err(finished(id));
        }
        if runner.done() {
            return Err(StoreError::Conflict(format!(
                "runner {index} of run `{id}` has already signalled done"
            )));
        }
        let now = time::now_ms();
        sql::set_runner_summary(&mut tx, id, index, &text, now).await?;
        for p in &summary.timeline {
            sql::insert_point(&mut tx, id, index, p).await?;
        }
        let started = run.started.map_or(started, |s| s.min(started));
        sql::set_started(&mut tx, id, started).await?;
        let info = sql::run_info(&mut tx, id).await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Records runner `index`'s completion; the last one finishes the run.
    pub async fn done(&self, id: &str, index: u64, done: &Done) -> Result<RunInfo, StoreError> {
        let mut tx = self.write().await?;
        let run = lock_runner(&mut tx, id, index).await?;
        let runner = sql::runner(&mut tx, id, index).await?;
        let outcome = match done.outcome {
            RunnerOutcome::Completed => sql::COMPLETED,
            RunnerOutcome::Failed => sql::FAILED,
        };
        if runner.done() {
            if runner.state == outcome {
                return sql::run_info(&mut tx, id).await;
            }
            return Err(StoreError::Conflict(format!(
                "runner {index} of run `{id}` already signalled {}",
                runner.state
            )));
        }
        if run.status != RunStatus::Running {
            return Err(finished(id));
        }
        let message = match (done.outcome, &runner.summary, &done.message) {
            (RunnerOutcome::Completed, None, _) => {
                Some("signalled completion without sending its summary".to_string())
            }
            (_, _, m) => m.clone(),
        };
        let now = time::now_ms();
        sql::set_runner_done(&mut tx, id, index, outcome, message.as_deref(), now).await?;
        if sql::runners_done(&mut tx, id).await? >= run.runners {
            finish_in(&mut tx, id, run.runners, None, now).await?;
        }
        let info = sql::run_info(&mut tx, id).await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Finishes the run now with what has arrived; runners not done count as missing.
    /// A run already finished is left as it is.
    pub async fn finish(&self, id: &str, reason: &str) -> Result<RunInfo, StoreError> {
        let mut tx = self.write().await?;
        let run = lock_run(&mut tx, id).await?;
        if run.status == RunStatus::Running {
            finish_in(&mut tx, id, run.runners, Some(reason), time::now_ms()).await?;
        }
        let info = sql::run_info(&mut tx, id).await?;
        tx.commit().await?;
        Ok(info)
    }

    /// How many runs the store holds in each status (every status, zeros included).
    pub async fn status_counts(&self) -> Result<Vec<(RunStatus, u64)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        sql::status_counts(&mut conn).await
    }

    /// The running runs with their totals so far and their latest complete second.
    pub async fn live_runs(&self) -> Result<Vec<LiveRun>, StoreError> {
        let mut tx = self.read().await?;
        let live = sql::live_runs(&mut tx).await?;
        tx.commit().await?;
        Ok(live)
    }
}

/// Locks the run's row for the rest of the transaction and returns it.
async fn lock_run(conn: &mut AnyConnection, id: &str) -> Result<sql::RunRow, StoreError> {
    if !sql::lock_run(conn, id).await? {
        return Err(not_found(id));
    }
    sql::run_row(conn, id).await
}

/// [`lock_run`], checking that the run has runner `index`.
async fn lock_runner(
    conn: &mut AnyConnection,
    id: &str,
    index: u64,
) -> Result<sql::RunRow, StoreError> {
    let run = lock_run(conn, id).await?;
    if index >= run.runners {
        return Err(StoreError::NotFound(format!(
            "run `{id}` has {} runner(s): there is no runner {index}",
            run.runners
        )));
    }
    Ok(run)
}

/// Merges the completed runners' summaries, judges thresholds, and stores the verdict.
async fn finish_in(
    conn: &mut AnyConnection,
    id: &str,
    runners: u64,
    reason: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let parts = sql::completed_summaries(conn, id).await?;
    let conclusion = tokio::task::spawn_blocking(move || finish::conclude(runners, &parts))
        .await
        .map_err(|e| StoreError::Corrupt(format!("the merge did not complete: {e}")))?;
    if let Some(problem) = &conclusion.problem {
        tracing::warn!(run = id, "{problem}");
    }
    sql::set_finished(conn, id, &conclusion, reason, now).await
}

/// The name a status is stored and shown under (`thresholds_failed`...).
pub fn status_name(status: RunStatus) -> String {
    sql::name(&status)
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("there is no run `{id}`"))
}

fn finished(id: &str) -> StoreError {
    StoreError::Conflict(format!("run `{id}` is already finished"))
}

/// A SQLite URL that creates the file when missing (unless it says otherwise).
fn sqlite_url(url: &str) -> String {
    if url.contains(":memory:") || url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row;

    #[tokio::test]
    async fn sqlite_writes_ahead_syncs_fully_and_waits_for_locks() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("sqlite://{}", dir.path().join("new.db").display());
        let store = Store::connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(dir.path().join("new.db").exists(), "the file is created");
        let mut conn = store.pool.acquire().await.unwrap_or_else(|e| panic!("{e}"));
        for (pragma, want) in [("synchronous", 2), ("busy_timeout", 10_000)] {
            let row = sqlx::query(&format!("PRAGMA {pragma}"))
                .fetch_one(&mut *conn)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(row.try_get::<i64, _>(0).ok(), Some(want), "{pragma}");
        }
        let row = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(row.try_get::<String, _>(0).ok().as_deref(), Some("wal"));
        drop(conn);
        store.close().await;
        // Opening again applies no migration twice.
        Store::connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn other_databases_are_refused() {
        for url in ["mysql://localhost/x", "kpress.db", ""] {
            assert!(
                matches!(Store::connect(url).await, Err(StoreError::Url(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn sqlite_files_are_created_unless_the_url_says_otherwise() {
        for (given, want) in [
            ("sqlite://kpress.db", "sqlite://kpress.db?mode=rwc"),
            (
                "sqlite:///tmp/x.db?cache=shared",
                "sqlite:///tmp/x.db?cache=shared&mode=rwc",
            ),
            ("sqlite://x.db?mode=ro", "sqlite://x.db?mode=ro"),
            ("sqlite::memory:", "sqlite::memory:"),
        ] {
            assert_eq!(sqlite_url(given), want, "{given}");
        }
    }
}
