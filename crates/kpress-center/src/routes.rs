//! The one list of the center's routes. The router is built from it, and the OpenAPI
//! test compares it with `openapi.yaml`, so a route cannot be served undocumented.

use axum::handler::Handler;
use axum::routing::{on, MethodFilter, MethodRouter};

use crate::state::AppState;

/// The HTTP methods the center serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    /// The lower-case name, as OpenAPI writes it.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Put => "put",
            Verb::Delete => "delete",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// One method on one path, with its handler.
pub struct Route {
    pub verb: Verb,
    /// axum's syntax, which is also OpenAPI's: `/api/runs/{id}`.
    pub path: &'static str,
    pub(crate) handler: MethodRouter<AppState>,
}

/// A route of `handler` for `verb` on `path`.
pub fn route<H, T>(verb: Verb, path: &'static str, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    Route {
        verb,
        path,
        handler: on(verb.filter(), handler),
    }
}

/// Every route the center serves.
pub fn all() -> Vec<Route> {
    let mut routes = crate::api::routes();
    routes.extend(crate::metrics::routes());
    routes.extend(crate::ui::routes());
    routes
}

/// `(method, path)` of every route, e.g. `("get", "/api/runs/{id}")`.
pub fn table() -> Vec<(&'static str, &'static str)> {
    all().iter().map(|r| (r.verb.name(), r.path)).collect()
}
