//! axum's extractors with the API's JSON errors as their rejections, so a malformed
//! body, path or query never reaches a client as axum's plain text.

use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// An `application/x-www-form-urlencoded` body.
#[derive(Debug)]
pub struct FormBody<T>(pub T);

/// Path parameters.
#[derive(Debug)]
pub struct PathArgs<T>(pub T);

/// Query parameters.
#[derive(Debug)]
pub struct QueryArgs<T>(pub T);

/// Maps a body rejection by its status: too large, wrong type, or malformed.
fn body_rejection(status: StatusCode, text: String, kind: &str) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(
            "the body is larger than the center accepts (--max-body)".into(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::UnsupportedMediaType(format!("the body must be sent as {kind}"))
        }
        _ => ApiError::BadRequest(text),
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(r) => Err(json_rejection(r)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    body_rejection(
        r.status(),
        r.body_text(),
        "JSON (content-type: application/json)",
    )
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for FormBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(FormBody(v)),
            Err(r) => Err(form_rejection(r)),
        }
    }
}

fn form_rejection(r: FormRejection) -> ApiError {
    body_rejection(
        r.status(),
        r.body_text(),
        "a form (content-type: application/x-www-form-urlencoded)",
    )
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PathArgs(v)),
            Err(r) => Err(path_rejection(r)),
        }
    }
}

fn path_rejection(r: PathRejection) -> ApiError {
    if r.status().is_server_error() {
        ApiError::Internal(r.body_text())
    } else {
        ApiError::BadRequest(r.body_text())
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(QueryArgs(v)),
            Err(r) => Err(query_rejection(r)),
        }
    }
}

fn query_rejection(r: QueryRejection) -> ApiError {
    ApiError::BadRequest(r.body_text())
}
