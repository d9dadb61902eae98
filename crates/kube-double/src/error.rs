//! Errors of the double's own API (starting it, seeding and editing objects), as opposed to
//! the HTTP errors it serves to clients, which are [`crate::ApiError`]s.

use crate::status::ApiError;

/// What can go wrong when a test drives the double directly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("cannot bind the API double: {0}")]
    Bind(#[source] std::io::Error),
    /// The object handed to [`crate::ApiDouble::seed`] lacks `apiVersion`, `kind` or
    /// `metadata.name`, or is not a JSON object.
    #[error("invalid object: {0}")]
    InvalidObject(String),
    /// The store refused the operation, exactly as it would answer a client.
    #[error("{}", .0.message)]
    Api(#[from] ApiError),
    /// A `kube::Client` could not be built for the double's address.
    #[error("cannot build a kube client for the double: {0}")]
    Client(#[source] kube::Error),
    /// The cluster simulation's work directory could not be created.
    #[error("cannot create the simulation's work directory: {0}")]
    WorkDir(#[source] std::io::Error),
    /// A simulation method was called on a double started without one.
    #[error("the double was not started with ApiDouble::start_cluster")]
    NotSimulating,
    /// A label selector handed to the double is malformed.
    #[error(transparent)]
    Selector(#[from] crate::selector::SelectorError),
}
