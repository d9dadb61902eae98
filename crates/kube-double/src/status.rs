//! The API's error answers: an HTTP status code with a `Status` object body, because that is
//! what `kube::Client` parses into `kube::Error::Api` and what code under test matches on.

use serde_json::{json, Value};

/// An error answer of the API: HTTP code, machine-readable reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code, also written to `Status.code`.
    pub code: u16,
    /// `Status.reason`, e.g. `NotFound`, `AlreadyExists`, `Conflict`.
    pub reason: String,
    /// Human-readable `Status.message`.
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// Any error answer.
    pub fn new(code: u16, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            message: message.into(),
        }
    }

    pub(crate) fn not_found(what: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{what} \"{name}\" not found"))
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub(crate) fn conflict(plural: &str, name: &str, detail: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {plural} \"{name}\": {detail}"),
        )
    }

    /// The `Status` object the server writes as the response body.
    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }
}

/// A numeric query parameter (`limit`, `tailLines`...): absent or empty is `None`, and a
/// value that is not a number is a 400, as the real API answers.
pub(crate) fn number_param(
    params: &std::collections::HashMap<String, String>,
    key: &str,
) -> Result<Option<usize>, ApiError> {
    params
        .get(key)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid {key} {v:?}")))
        })
        .transpose()
}
