//! What tests inspect and steer: the log of requests the double served, and failures to inject
//! into the next matching request.

use http::Method;

use crate::status::ApiError;

/// One request as the double received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: Method,
    /// Path without the query string, e.g. `/api/v1/namespaces/a/services/web`.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Raw request body (empty for most `GET`s).
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The body parsed as JSON, or `None` when it is empty or not JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A failure served instead of the normal answer to the next request matching `method` and
/// `path` (exact, without query). Each fault is used once.
#[derive(Debug, Clone)]
pub struct Fault {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) error: ApiError,
}

impl Fault {
    /// Fail the next `method` request to `path` with `error`.
    pub fn new(method: Method, path: impl Into<String>, error: ApiError) -> Self {
        Self {
            method,
            path: path.into(),
            error,
        }
    }

    pub(crate) fn matches(&self, method: &Method, path: &str) -> bool {
        self.method == method && self.path == path
    }
}
