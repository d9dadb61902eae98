//! `deployment`-mode runners ask here for their share: a Deployment's pods have no
//! completion index, so the center leases each one a distinct share, tells them all
//! the same start once every share is leased, and tells a restarted or replacing
//! runner whose share already ran to idle (docs/center.md).

use axum::extract::State;
use axum::Json;
use kpress_report::wire::{Lease, LeaseRequest};

use crate::auth::RunReporter;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::routes::{route, Route, Verb};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![route(Verb::Post, "/api/runs/{id}/lease", lease)]
}

/// The longest pod name (a DNS subdomain) and process id accepted.
const MAX_HOLDER_LEN: usize = 253;

async fn lease(
    State(state): State<AppState>,
    who: RunReporter,
    JsonBody(req): JsonBody<LeaseRequest>,
) -> Result<Json<Lease>, ApiError> {
    for (field, value) in [("pod", &req.pod), ("process", &req.process)] {
        if value.is_empty() || value.len() > MAX_HOLDER_LEN {
            return Err(ApiError::BadRequest(format!(
                "{field}: give 1 to {MAX_HOLDER_LEN} characters"
            )));
        }
    }
    let timing = state.drive_settings().timing;
    let lease = state
        .store()
        .lease(&who.run, &req.pod, &req.process, timing)
        .await?;
    Ok(Json(lease))
}
