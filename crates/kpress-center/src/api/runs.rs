//! Runs as a resource: register one (and issue its runner token), list and filter
//! them, read one with its merged summary and runners, its merged timeline, finish
//! one by hand, delete one. Every call needs the center's token.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use kpress_report::wire::{
    CreateRun, CreatedRun, Finish, Mode, RunDetail, RunInfo, RunList, RunStatus, Timeline,
};
use serde::Deserialize;

use k8s_openapi::api::apps::v1::Deployment;

use crate::auth::Center;
use crate::deploy::manifest;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathArgs, QueryArgs};
use crate::routes::{route, Route, Verb};
use crate::state::AppState;
use crate::store::{Created, NewRun, RunFilter, MAX_RUNNERS};
use crate::{time, timeline, token};

pub fn routes() -> Vec<Route> {
    vec![
        route(Verb::Post, "/api/runs", create),
        route(Verb::Get, "/api/runs", list),
        route(Verb::Get, "/api/runs/{id}", get),
        route(Verb::Delete, "/api/runs/{id}", delete),
        route(Verb::Get, "/api/runs/{id}/timeline", timeline),
        route(Verb::Post, "/api/runs/{id}/finish", finish),
    ]
}

/// The longest run id: it becomes part of Kubernetes names and label values.
const MAX_ID_LEN: usize = 63;
const MAX_TEST_LEN: usize = 256;
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// Attempts at a fresh generated id before giving up (a collision is already rare).
const ID_ATTEMPTS: usize = 5;

/// A run id the center accepts: 1 to 63 of `A-Z a-z 0-9 . _ -`.
pub fn check_id(id: &str) -> Result<(), ApiError> {
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "run id `{id}`: use 1 to {MAX_ID_LEN} letters, digits, `.`, `_` or `-`"
        )))
    }
}

fn check_create(req: &CreateRun) -> Result<(), ApiError> {
    if let Some(id) = &req.id {
        check_id(id)?;
    }
    if req.test.trim().is_empty() || req.test.len() > MAX_TEST_LEN {
        return Err(ApiError::BadRequest(format!(
            "test: give the test's name (1 to {MAX_TEST_LEN} characters)"
        )));
    }
    if req.runners == 0 || req.runners > MAX_RUNNERS {
        return Err(ApiError::BadRequest(format!(
            "runners: {} is not between 1 and {MAX_RUNNERS}",
            req.runners
        )));
    }
    Ok(())
}

async fn create(
    State(state): State<AppState>,
    _: Center,
    JsonBody(req): JsonBody<CreateRun>,
) -> Result<(StatusCode, Json<CreatedRun>), ApiError> {
    check_create(&req)?;
    if req.mode == Mode::Deployment && state.cluster().is_none() {
        return Err(ApiError::BadRequest(
            "mode: this center does not drive Deployments (start it with --kubernetes)".into(),
        ));
    }
    for _ in 0..ID_ATTEMPTS {
        let generated = req.id.is_none();
        let id = match &req.id {
            Some(id) => id.clone(),
            None => token::random_hex(5).map_err(|e| ApiError::Internal(e.to_string()))?,
        };
        let planned = manifest::plan(&req, &id, state.drive_settings().startup_timeout)?;
        let nonce = token::random_hex(32).map_err(|e| ApiError::Internal(e.to_string()))?;
        let runner_token = state.token().runner_token(&id, &nonce);
        // The registration as it stands, id included, so a re-send is recognised.
        let request = CreateRun {
            id: Some(id.clone()),
            ..req.clone()
        };
        let request_hash = serde_json::to_vec(&request)
            .map(|bytes| token::sha256_hex(&bytes))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let new = NewRun {
            id: id.clone(),
            request,
            request_hash,
            token_nonce: nonce,
            token_hash: token::sha256_hex(runner_token.as_bytes()),
            deployment: planned.as_ref().map(manifest::Planned::record),
        };
        match state.store().create_run(&new).await? {
            Created::New(run) => {
                tracing::info!(run = %run.id, test = %run.test, runners = run.runners, "run registered");
                let manifest = match &planned {
                    Some(p) => Some(launch(&state, &id, p, &runner_token).await?),
                    None => None,
                };
                return Ok((
                    StatusCode::CREATED,
                    Json(CreatedRun {
                        run,
                        runner_token,
                        manifest,
                    }),
                ));
            }
            Created::Existing {
                run,
                token_nonce,
                token_hash,
            } => {
                let runner_token = state.token().runner_token(&id, &token_nonce);
                if !token::same_digest(&token::sha256_hex(runner_token.as_bytes()), &token_hash) {
                    return Err(ApiError::Conflict(format!(
                        "run `{id}` was registered under another center token; its runner token cannot be issued again"
                    )));
                }
                let manifest = match (&planned, state.cluster()) {
                    (Some(p), Some(c)) => Some(yaml(&p.manifest(&c.runner_url, &runner_token))?),
                    _ => None,
                };
                return Ok((
                    StatusCode::OK,
                    Json(CreatedRun {
                        run,
                        runner_token,
                        manifest,
                    }),
                ));
            }
            Created::IdTaken if generated => continue,
            Created::IdTaken => {
                return Err(ApiError::Conflict(format!(
                    "run `{id}` already exists with another registration"
                )))
            }
        }
    }
    Err(ApiError::Internal(
        "no free run id after several attempts".into(),
    ))
}

/// Creates a new `deployment`-mode run's Deployment when the registration asks the
/// center to; returns its manifest. A Deployment the cluster refuses finishes the run
/// (`failed`, with the cluster's reason), and the caller hears why.
async fn launch(
    state: &AppState,
    id: &str,
    planned: &manifest::Planned,
    runner_token: &str,
) -> Result<String, ApiError> {
    let cluster = state
        .cluster()
        .ok_or_else(|| ApiError::Internal("a deployment-mode run without a cluster".into()))?;
    let deployment = planned.manifest(&cluster.runner_url, runner_token);
    let text = yaml(&deployment)?;
    if !planned.request.create {
        return Ok(text);
    }
    let api: kube::Api<Deployment> =
        kube::Api::namespaced(cluster.client.clone(), &planned.options.namespace);
    match api
        .create(&kube::api::PostParams::default(), &deployment)
        .await
    {
        Ok(_) => {
            tracing::info!(run = id, deployment = %planned.name, namespace = %planned.options.namespace, "created the run's Deployment");
            Ok(text)
        }
        Err(e) => {
            let reason = format!(
                "the cluster refused Deployment {}/{}: {e}",
                planned.options.namespace, planned.name
            );
            state.store().finish(id, &reason).await?;
            Err(ApiError::Cluster(reason))
        }
    }
}

fn yaml(deployment: &Deployment) -> Result<String, ApiError> {
    kpress_k8s::to_yaml(std::slice::from_ref(deployment)).map_err(ApiError::Internal)
}

/// `GET /api/runs` parameters; an empty value is no filter.
#[derive(Debug, Deserialize)]
struct ListQuery {
    test: Option<String>,
    app: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

fn given(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

fn instant(name: &str, v: Option<String>) -> Result<Option<i64>, ApiError> {
    given(v)
        .map(|s| time::parse_ms(&s).map_err(|e| ApiError::BadRequest(format!("{name}: {e}"))))
        .transpose()
}

fn number(name: &str, v: Option<String>, default: i64, max: i64) -> Result<i64, ApiError> {
    let Some(text) = given(v) else {
        return Ok(default);
    };
    match text.parse::<i64>() {
        Ok(n) if (0..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "{name}: `{text}` is not a number from 0 to {max}"
        ))),
    }
}

impl ListQuery {
    fn filter(self) -> Result<RunFilter, ApiError> {
        let status = given(self.status)
            .map(|s| {
                serde_json::from_value::<RunStatus>(serde_json::Value::String(s.clone())).map_err(
                    |_| {
                        ApiError::BadRequest(format!(
                            "status: `{s}` is not one of running, passed, thresholds_failed, aborted, interrupted, partial, failed"
                        ))
                    },
                )
            })
            .transpose()?;
        Ok(RunFilter {
            test: given(self.test),
            app: given(self.app),
            status,
            since_ms: instant("since", self.since)?,
            until_ms: instant("until", self.until)?,
            limit: number("limit", self.limit, DEFAULT_LIMIT, MAX_LIMIT)?,
            offset: number("offset", self.offset, 0, i64::MAX)?,
        })
    }
}

async fn list(
    State(state): State<AppState>,
    _: Center,
    QueryArgs(query): QueryArgs<ListQuery>,
) -> Result<Json<RunList>, ApiError> {
    let filter = query.filter()?;
    Ok(Json(RunList {
        runs: state.store().list_runs(&filter).await?,
    }))
}

async fn get(
    State(state): State<AppState>,
    _: Center,
    PathArgs(id): PathArgs<String>,
) -> Result<Json<RunDetail>, ApiError> {
    Ok(Json(state.store().run_detail(&id).await?))
}

async fn delete(
    State(state): State<AppState>,
    _: Center,
    PathArgs(id): PathArgs<String>,
) -> Result<StatusCode, ApiError> {
    state.store().delete_run(&id).await?;
    tracing::info!(run = %id, "run deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn timeline(
    State(state): State<AppState>,
    _: Center,
    PathArgs(id): PathArgs<String>,
) -> Result<Json<Timeline>, ApiError> {
    let points = state.store().points(&id).await?;
    let merged =
        tokio::task::spawn_blocking(move || timeline::merge(points.iter().map(|(_, p)| p)))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::Internal(format!("run {id}: stored point: {e}")))?;
    Ok(Json(Timeline { points: merged }))
}

async fn finish(
    State(state): State<AppState>,
    _: Center,
    PathArgs(id): PathArgs<String>,
    JsonBody(body): JsonBody<Finish>,
) -> Result<Json<RunInfo>, ApiError> {
    let run = state.store().finish(&id, &body.reason).await?;
    tracing::info!(run = %id, status = ?run.status, reason = %body.reason, "run finished by request");
    Ok(Json(run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_short_and_plain() {
        for ok in ["a", "3f2a9c01de", "checkout-peak_2.1", &"x".repeat(63)] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(64), "a?b"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_parameters_are_checked() {
        let q = |limit: &str, status: &str, since: &str| ListQuery {
            test: Some(String::new()),
            app: None,
            status: Some(status.into()),
            since: Some(since.into()),
            until: None,
            limit: Some(limit.into()),
            offset: None,
        };
        let f = q("", "", "").filter().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((f.limit, f.offset, f.test, f.status), (100, 0, None, None));
        let f = q("1000", "thresholds_failed", "2026-01-01T00:00:00Z")
            .filter()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.limit, 1000);
        assert_eq!(f.status, Some(RunStatus::ThresholdsFailed));
        assert!(f.since_ms.is_some());
        assert!(q("1001", "", "").filter().is_err());
        assert!(q("-1", "", "").filter().is_err());
        assert!(q("ten", "", "").filter().is_err());
        assert!(q("", "done", "").filter().is_err());
        assert!(q("", "", "yesterday").filter().is_err());
    }
}
