//! Two runs side by side: the headline numbers of their merged summaries and how the
//! second differs from the first (delta b − a, ratio b / a).

use axum::extract::State;
use axum::Json;
use kpress_engine::summary::Summary;
use kpress_report::wire::{ComparedMetric, Comparison};
use serde::Deserialize;

use crate::auth::Center;
use crate::error::ApiError;
use crate::extract::QueryArgs;
use crate::routes::{route, Route, Verb};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![route(Verb::Get, "/api/compare", compare)]
}

#[derive(Debug, Deserialize)]
struct CompareQuery {
    a: String,
    b: String,
}

/// Name, unit, and how to read the metric from a merged summary.
type Reading = (&'static str, &'static str, fn(&Summary) -> f64);

const METRICS: &[Reading] = &[
    ("requests", "requests", |s| s.metrics.http_reqs.count as f64),
    ("rate", "requests/s", |s| s.metrics.http_reqs.rate),
    ("error_rate", "fraction", |s| s.metrics.http_req_failed.rate),
    ("http_req_duration.p50", "ms", |s| {
        s.metrics.http_req_duration.p50
    }),
    ("http_req_duration.p90", "ms", |s| {
        s.metrics.http_req_duration.p90
    }),
    ("http_req_duration.p95", "ms", |s| {
        s.metrics.http_req_duration.p95
    }),
    ("http_req_duration.p99", "ms", |s| {
        s.metrics.http_req_duration.p99
    }),
    ("http_req_duration.p99.9", "ms", |s| {
        s.metrics.http_req_duration.p99_9
    }),
    ("http_req_duration.max", "ms", |s| {
        s.metrics.http_req_duration.max
    }),
];

/// The compared metrics of two (possibly missing) merged summaries.
pub fn compared(a: Option<&Summary>, b: Option<&Summary>) -> Vec<ComparedMetric> {
    METRICS
        .iter()
        .map(|(name, unit, read)| {
            let (va, vb) = (a.map(read), b.map(read));
            let both = va.zip(vb);
            ComparedMetric {
                name: name.to_string(),
                unit: unit.to_string(),
                a: va,
                b: vb,
                delta: both.map(|(x, y)| y - x),
                ratio: both.and_then(|(x, y)| (x != 0.0).then(|| y / x)),
            }
        })
        .collect()
}

async fn compare(
    State(state): State<AppState>,
    _: Center,
    QueryArgs(q): QueryArgs<CompareQuery>,
) -> Result<Json<Comparison>, ApiError> {
    let a = state.store().run_detail(&q.a).await?;
    let b = state.store().run_detail(&q.b).await?;
    Ok(Json(Comparison {
        metrics: compared(a.summary.as_ref(), b.summary.as_ref()),
        a: a.run,
        b: b.run,
    }))
}
