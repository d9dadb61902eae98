//! The web UI: the files under `ui/`, compiled into the binary (no build step, nothing
//! to deploy beside it). Pages need the `kpress_token` cookie and send the browser to
//! `/login` without it; the scripts and the style sheet are open, being code, not
//! data.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::{self, COOKIE_NAME};
use crate::error::ApiError;
use crate::extract::{FormBody, PathArgs};
use crate::routes::{route, Route, Verb};
use crate::state::AppState;

const INDEX: &str = include_str!("../ui/index.html");
const RUN: &str = include_str!("../ui/run.html");
const COMPARE: &str = include_str!("../ui/compare.html");
const LOGIN: &str = include_str!("../ui/login.html");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The assets under `/ui/`: name, content type, text.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("../ui/app.js")),
    ("chart.js", JS, include_str!("../ui/chart.js")),
    ("style.css", CSS, include_str!("../ui/style.css")),
];

/// Where a failed login sends the browser back to.
pub const LOGIN_FAILED: &str = "/login?error=invalid_token";

pub fn routes() -> Vec<Route> {
    vec![
        route(Verb::Get, "/", index),
        route(Verb::Get, "/runs/{id}", run),
        route(Verb::Get, "/compare", compare),
        route(Verb::Get, "/login", login_page),
        route(Verb::Post, "/login", login),
        route(Verb::Get, "/ui/{file}", asset),
    ]
}

const NOSNIFF: (HeaderName, &str) = (HeaderName::from_static("x-content-type-options"), "nosniff");

/// The pages load only their own scripts and styles, and cannot be framed.
const CSP: (HeaderName, &str) = (
    HeaderName::from_static("content-security-policy"),
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
);

const REFERRER: (HeaderName, &str) = (HeaderName::from_static("referrer-policy"), "same-origin");

fn html(text: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HTML),
            (CACHE_CONTROL, "no-store"),
            NOSNIFF,
            CSP,
            REFERRER,
        ],
        text,
    )
        .into_response()
}

fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
}

/// The page for a browser holding the cookie; the login page's address otherwise.
fn page(headers: &HeaderMap, state: &AppState, text: &'static str) -> Response {
    if auth::has_center_cookie(headers, state) {
        html(text)
    } else {
        see_other("/login")
    }
}

async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&headers, &state, INDEX)
}

/// The page reads the run id from its own address.
async fn run(
    State(state): State<AppState>,
    headers: HeaderMap,
    PathArgs(_id): PathArgs<String>,
) -> Response {
    page(&headers, &state, RUN)
}

async fn compare(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&headers, &state, COMPARE)
}

async fn login_page() -> Response {
    html(LOGIN)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
}

/// A right token sets the cookie and goes to the runs; a wrong one goes back to the
/// login page with an error.
async fn login(
    State(state): State<AppState>,
    FormBody(form): FormBody<LoginForm>,
) -> Result<Response, ApiError> {
    if !state.token().matches(&form.token) {
        tracing::warn!("a login with a wrong token");
        return Ok(see_other(LOGIN_FAILED));
    }
    let cookie = format!(
        "{COOKIE_NAME}={}; HttpOnly; SameSite=Strict; Path=/",
        auth::cookie_value(&form.token)
    );
    let cookie = HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut response = see_other("/");
    response.headers_mut().insert(SET_COOKIE, cookie);
    Ok(response)
}

async fn asset(PathArgs(file): PathArgs<String>) -> Result<Response, ApiError> {
    let (_, kind, text) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| ApiError::NotFound(format!("there is no UI file `{file}`")))?;
    Ok((
        [(CONTENT_TYPE, *kind), (CACHE_CONTROL, "no-cache"), NOSNIFF],
        *text,
    )
        .into_response())
}
