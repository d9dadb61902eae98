//! An in-process Kubernetes API server double that the real `kube::Client` talks to.
//!
//! Tests of code that lists, creates, patches or deletes Kubernetes objects need a server that
//! speaks the API's HTTP protocol, not a mocked trait: only then do the request paths, query
//! parameters, `DeleteOptions` bodies and `Status` errors that `kube` produces and parses get
//! exercised. [`ApiDouble`] binds `127.0.0.1` on an ephemeral port and serves a generic object
//! store keyed by (group, version, plural, namespace, name):
//!
//! - `GET` a collection (namespaced or across namespaces) with `labelSelector`, `fieldSelector`
//!   (`metadata.name`, `metadata.namespace`), `limit` and `continue`;
//! - `GET`, `POST`, `PUT`, `PATCH` (JSON merge patch; strategic merge patch is applied as a merge
//!   patch) and `DELETE` (honouring `DeleteOptions.preconditions` and finalizers) of one object;
//! - `404` with a `Status` for unknown objects and for resource types that are not registered,
//!   which is how a missing CRD looks to a client.
//!
//! Every request is recorded ([`ApiDouble::requests`]), failures can be injected
//! ([`ApiDouble::inject`]) and objects can be edited behind the client's back
//! ([`ApiDouble::edit`]) to simulate a concurrent writer.
//!
//! Extension points: `watch=true` and subresources (`pods/NAME/log`, `status`) are parsed into a
//! [`route::Route`] but answered with `501`/`404` today; responses use a boxed body type so a
//! streaming watch or log body can be added in `server` without changing the public API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube_double::Error> {
//! let double = kube_double::ApiDouble::start().await?;
//! double.seed(serde_json::json!({
//!     "apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "settings", "namespace": "default"},
//! }))?;
//! let client = double.client()?;
//! # drop(client);
//! # Ok(()) }
//! ```

mod error;
mod record;
mod resource;
pub mod route;
mod selector;
mod server;
mod status;
mod store;

pub use error::Error;
pub use record::{Fault, RecordedRequest};
pub use resource::ResourceType;
pub use selector::{LabelSelector, SelectorError};
pub use server::ApiDouble;
pub use status::ApiError;
pub use store::ObjectRef;
