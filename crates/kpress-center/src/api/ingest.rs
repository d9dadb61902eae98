//! What runners send while and after they run: their per-second points, their final
//! summary and their done signal. Each call is idempotent, so a runner retries after
//! any failure without counting anything twice; the center's token or the run's
//! runner token may send them.

use axum::extract::State;
use axum::Json;
use kpress_engine::summary::{Summary, TimelinePoint, SUMMARY_VERSION};
use kpress_report::wire::{Accepted, Done, Points, RunInfo};

use crate::auth::Reporter;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::routes::{route, Route, Verb};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![
        route(Verb::Post, "/api/runs/{id}/runners/{index}/points", points),
        route(Verb::Put, "/api/runs/{id}/runners/{index}/summary", summary),
        route(Verb::Post, "/api/runs/{id}/runners/{index}/done", done),
    ]
}

/// Every histogram of `points` decodes (off the async threads: this is inflating).
async fn check_points(points: Vec<TimelinePoint>) -> Result<Vec<TimelinePoint>, ApiError> {
    tokio::task::spawn_blocking(move || {
        for p in &points {
            p.to_metrics()
                .map_err(|e| ApiError::BadRequest(format!("point of second {}: {e}", p.t)))?;
        }
        Ok(points)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

async fn points(
    State(state): State<AppState>,
    who: Reporter,
    JsonBody(body): JsonBody<Points>,
) -> Result<Json<Accepted>, ApiError> {
    let points = check_points(body.points).await?;
    let accepted = state
        .store()
        .add_points(&who.run, who.index, &points)
        .await?;
    Ok(Json(Accepted { accepted }))
}

async fn summary(
    State(state): State<AppState>,
    who: Reporter,
    JsonBody(summary): JsonBody<Summary>,
) -> Result<Json<RunInfo>, ApiError> {
    if summary.version != SUMMARY_VERSION {
        return Err(ApiError::BadRequest(format!(
            "summary version {} is not supported (expected {SUMMARY_VERSION})",
            summary.version
        )));
    }
    let summary = tokio::task::spawn_blocking(move || {
        summary
            .to_metrics()
            .map_err(|e| ApiError::BadRequest(format!("summary: {e}")))?;
        for p in &summary.timeline {
            p.to_metrics().map_err(|e| {
                ApiError::BadRequest(format!("summary: timeline second {}: {e}", p.t))
            })?;
        }
        Ok::<_, ApiError>(summary)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let run = state
        .store()
        .put_summary(&who.run, who.index, &summary)
        .await?;
    Ok(Json(run))
}

async fn done(
    State(state): State<AppState>,
    who: Reporter,
    JsonBody(done): JsonBody<Done>,
) -> Result<Json<RunInfo>, ApiError> {
    let run = state.store().done(&who.run, who.index, &done).await?;
    if run.status != kpress_report::wire::RunStatus::Running {
        tracing::info!(run = %run.id, status = ?run.status, "run finished");
    }
    Ok(Json(run))
}
