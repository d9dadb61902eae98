//! Who is calling. The center's token (a bearer token, or the web UI's `kpress_token`
//! cookie) may do everything; a run's runner token (bearer only) may only report to
//! that run. No token, or one the center does not know, is `401`; a runner token
//! anywhere else is `403`.

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::error::ApiError;
use crate::extract::PathArgs;
use crate::state::AppState;
use crate::token;

/// The cookie the web UI carries the center's token in.
pub const COOKIE_NAME: &str = "kpress_token";

/// A caller with a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Center,
    /// Holds the runner token of this run.
    Runner(String),
}

/// Identifies the caller from its headers.
pub async fn identify(headers: &HeaderMap, state: &AppState) -> Result<Caller, ApiError> {
    if headers.contains_key(AUTHORIZATION) {
        let token = bearer(headers).ok_or(ApiError::Unauthorized)?;
        if state.token().matches(token) {
            return Ok(Caller::Center);
        }
        let hash = token::sha256_hex(token.as_bytes());
        return match state.store().runner_token_owner(&hash).await? {
            Some(run) => Ok(Caller::Runner(run)),
            None => Err(ApiError::Unauthorized),
        };
    }
    if has_center_cookie(headers, state) {
        return Ok(Caller::Center);
    }
    Err(ApiError::Unauthorized)
}

/// Whether the request carries the center's token in the UI's cookie.
pub fn has_center_cookie(headers: &HeaderMap, state: &AppState) -> bool {
    cookie(headers).is_some_and(|t| state.token().matches(&t))
}

/// Requires the center's token.
pub async fn require_center(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    match identify(headers, state).await? {
        Caller::Center => Ok(()),
        Caller::Runner(_) => Err(ApiError::Forbidden(
            "a runner token may only report to its own run".into(),
        )),
    }
}

/// Extractor: the caller holds the center's token.
#[derive(Debug)]
pub struct Center;

impl FromRequestParts<AppState> for Center {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        require_center(&parts.headers, state).await?;
        Ok(Center)
    }
}

/// Extractor for `/api/runs/{id}/runners/{index}/...`: the caller may report as that
/// runner (the center's token, or the run's runner token).
#[derive(Debug)]
pub struct Reporter {
    pub run: String,
    pub index: u64,
}

impl FromRequestParts<AppState> for Reporter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = identify(&parts.headers, state).await?;
        let PathArgs((run, index)) =
            PathArgs::<(String, u64)>::from_request_parts(parts, state).await?;
        may_report(&caller, &run)?;
        Ok(Reporter { run, index })
    }
}

/// Extractor for `/api/runs/{id}/...` calls of a run's runners: the caller holds the
/// center's token or this run's runner token.
#[derive(Debug)]
pub struct RunReporter {
    pub run: String,
}

impl FromRequestParts<AppState> for RunReporter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = identify(&parts.headers, state).await?;
        let PathArgs(run) = PathArgs::<String>::from_request_parts(parts, state).await?;
        may_report(&caller, &run)?;
        Ok(RunReporter { run })
    }
}

/// Whether `caller` may report to run `run`: the center, or that run's runners.
fn may_report(caller: &Caller, run: &str) -> Result<(), ApiError> {
    match caller {
        Caller::Center => Ok(()),
        Caller::Runner(own) if own == run => Ok(()),
        Caller::Runner(_) => Err(ApiError::Forbidden(
            "this runner token belongs to another run".into(),
        )),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The token in the `kpress_token` cookie, if there is one.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .and_then(|(_, value)| percent_decode(value))
}

/// A cookie value carrying `token`: everything but unreserved characters escaped, so
/// any token fits a header.
pub fn cookie_value(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    for b in token.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(axum::http::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(
                name.clone(),
                HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        h
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        for (value, want) in [
            ("Bearer abc", Some("abc")),
            ("bearer  abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearer ", None),
            ("Bearer", None),
        ] {
            assert_eq!(bearer(&headers(&[(AUTHORIZATION, value)])), want, "{value}");
        }
    }

    #[test]
    fn any_token_survives_the_cookie() {
        for token in ["plain", "with space; and=equals", "ünï%25", ""] {
            let value = cookie_value(token);
            assert!(HeaderValue::from_str(&value).is_ok());
            let h = headers(&[(COOKIE, &format!("other=1; {COOKIE_NAME}={value}; x=y"))]);
            assert_eq!(cookie(&h).as_deref(), Some(token));
        }
        assert_eq!(cookie(&headers(&[(COOKIE, "other=1")])), None);
        assert_eq!(cookie(&headers(&[(COOKIE, "kpress_token=%zz")])), None);
        assert_eq!(cookie(&headers(&[(COOKIE, "kpress_token=%4")])), None);
    }
}
