//! The JSON API under `/api` (docs/center.md, openapi.yaml): runs, the runners'
//! reports, comparisons; and `/healthz`.

pub mod compare;
pub mod ingest;
pub mod lease;
pub mod runs;

use axum::Json;
use kpress_report::wire::Health;

use crate::routes::{route, Route, Verb};

pub fn routes() -> Vec<Route> {
    let mut routes = vec![route(Verb::Get, "/healthz", health)];
    routes.extend(runs::routes());
    routes.extend(ingest::routes());
    routes.extend(lease::routes());
    routes.extend(compare::routes());
    routes
}

/// Open: says the process serves, nothing more.
async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}
