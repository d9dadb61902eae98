//! The HTTP side of the double: binds a loopback port, records each request, serves injected
//! faults first and otherwise translates the request into a store operation.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::record::{Fault, RecordedRequest};
use crate::resource::ResourceType;
use crate::route::Route;
use crate::selector::LabelSelector;
use crate::status::ApiError;
use crate::store::{DeleteOptions, FieldSelector, ObjectRef, Page, Store};

/// Response body type; boxed so that streaming bodies (watch, logs) can be served later.
type Body = BoxBody<Bytes, Infallible>;

#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    requests: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<Vec<Fault>>,
}

/// Locks a mutex even if a panicking test thread poisoned it: the data is plain and stays valid.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running API double. Dropping it stops the server.
#[derive(Debug)]
pub struct ApiDouble {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ApiDouble {
    /// Starts a double serving [`ResourceType::builtins`].
    pub async fn start() -> Result<Self, Error> {
        Self::start_with(ResourceType::builtins()).await
    }

    /// Starts a double serving exactly `types`.
    pub async fn start_with(types: Vec<ResourceType>) -> Result<Self, Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(Error::Bind)?;
        let addr = listener.local_addr().map_err(Error::Bind)?;
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(types)),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
        });
        let (shutdown, stop) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stop));
        Ok(Self {
            shared,
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A real `kube::Client` pointed at the double (default namespace `default`).
    pub fn client(&self) -> Result<kube::Client, Error> {
        let uri = self
            .url()
            .parse::<http::Uri>()
            .map_err(|e| Error::InvalidObject(e.to_string()))?;
        kube::Client::try_from(kube::Config::new(uri)).map_err(Error::Client)
    }

    /// Serves one more resource type, e.g. a CRD's.
    pub fn register(&self, rt: ResourceType) {
        lock(&self.shared.store).register(rt);
    }

    /// Stores an object as if it had been created earlier, resolving its type from `apiVersion`
    /// and `kind`. A given `metadata.uid` and `metadata.creationTimestamp` are kept; `status`
    /// is stored as given. Returns the stored object.
    pub fn seed(&self, object: Value) -> Result<Value, Error> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        if api_version.is_empty() || kind.is_empty() {
            return Err(Error::InvalidObject(
                "apiVersion and kind are required".into(),
            ));
        }
        let namespace = object["metadata"]["namespace"].as_str().map(str::to_owned);
        let mut store = lock(&self.shared.store);
        let rt = store.type_of(&api_version, &kind)?;
        Ok(store.create(&rt, namespace.as_deref(), object, true)?)
    }

    /// The stored object, if it exists.
    pub fn object(&self, target: &ObjectRef) -> Option<Value> {
        let store = lock(&self.shared.store);
        let rt = store.type_of(&target.api_version, &target.kind).ok()?;
        store
            .get(&rt, target.namespace.as_deref(), &target.name)
            .ok()
    }

    /// Edits an object behind every client's back, bumping its resourceVersion as a concurrent
    /// writer would. Returns the stored result.
    pub fn edit(&self, target: &ObjectRef, edit: impl FnOnce(&mut Value)) -> Result<Value, Error> {
        let mut store = lock(&self.shared.store);
        let rt = store.type_of(&target.api_version, &target.kind)?;
        Ok(store.edit(&rt, target.namespace.as_deref(), &target.name, edit)?)
    }

    /// Every request served so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Queues a failure for the next matching request.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ApiDouble {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("kube-double accept failed: {e}");
                    continue;
                }
            },
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(Arc::clone(&shared), req));
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("kube-double connection ended: {e}");
            }
        });
    }
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    let body = Full::new(Bytes::from(value.to_string())).boxed();
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let error = ApiError::bad_request(format!("cannot read the request body: {e}"));
            return Ok(json_response(error.code, &error.to_status()));
        }
    };
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    lock(&shared.requests).push(RecordedRequest {
        method: parts.method.clone(),
        path: path.clone(),
        query: query.clone(),
        body: body.to_vec(),
    });
    let fault = {
        let mut faults = lock(&shared.faults);
        faults
            .iter()
            .position(|f| f.matches(&parts.method, &path))
            .map(|i| faults.remove(i))
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let answer = match fault {
        Some(fault) => Err(fault.error),
        None => {
            let request = ApiRequest {
                method: &parts.method,
                content_type,
                query: query.as_deref().unwrap_or_default(),
                body: &body,
            };
            Route::parse(&path)
                .ok_or_else(|| ApiError::not_found("path", &path))
                .and_then(|route| request.answer(&mut lock(&shared.store), &route))
        }
    };
    Ok(match answer {
        Ok((code, value)) => json_response(code, &value),
        Err(error) => json_response(error.code, &error.to_status()),
    })
}

/// The parts of an HTTP request that decide the store operation.
struct ApiRequest<'a> {
    method: &'a Method,
    content_type: &'a str,
    query: &'a str,
    body: &'a [u8],
}

impl ApiRequest<'_> {
    fn answer(&self, store: &mut Store, route: &Route) -> Result<(u16, Value), ApiError> {
        let rt: ResourceType = store.type_at(&route.group, &route.version, &route.plural)?;
        if route.namespace.is_some() && !rt.namespaced {
            return Err(ApiError::not_found("path", &route.plural));
        }
        if let Some(sub) = &route.subresource {
            return Err(ApiError::new(
                404,
                "NotFound",
                format!(
                    "subresource {}/{sub} is not served by kube-double",
                    rt.plural
                ),
            ));
        }
        let ns = route.namespace.as_deref();
        let params: HashMap<String, String> = form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect();
        match (self.method, route.name.as_deref()) {
            (&Method::GET, None) => {
                if params.get("watch").is_some_and(|w| w == "true" || w == "1") {
                    return Err(ApiError::new(
                        501,
                        "NotImplemented",
                        "watch is not implemented by kube-double yet",
                    ));
                }
                let labels =
                    LabelSelector::parse(params.get("labelSelector").map_or("", String::as_str))
                        .map_err(|e| ApiError::bad_request(e.to_string()))?;
                let fields =
                    FieldSelector::parse(params.get("fieldSelector").map_or("", String::as_str))?;
                let number = |key: &str| -> Result<Option<usize>, ApiError> {
                    params
                        .get(key)
                        .filter(|v| !v.is_empty())
                        .map(|v| {
                            v.parse()
                                .map_err(|_| ApiError::bad_request(format!("invalid {key} {v:?}")))
                        })
                        .transpose()
                };
                let page = Page {
                    limit: number("limit")?,
                    continue_from: number("continue")?,
                };
                Ok((200, store.list(&rt, ns, &labels, &fields, &page)))
            }
            (&Method::GET, Some(name)) => Ok((200, store.get(&rt, ns, name)?)),
            (&Method::POST, None) => Ok((201, store.create(&rt, ns, self.json()?, false)?)),
            (&Method::PUT, Some(name)) => Ok((200, store.replace(&rt, ns, name, self.json()?)?)),
            (&Method::PATCH, Some(name)) => {
                let media = self
                    .content_type
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim();
                if !matches!(
                    media,
                    "application/merge-patch+json" | "application/strategic-merge-patch+json"
                ) {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        format!("kube-double applies merge patches only, not {media:?}"),
                    ));
                }
                Ok((200, store.patch(&rt, ns, name, &self.json()?)?))
            }
            (&Method::DELETE, Some(name)) => {
                let options = DeleteOptions::from_body(self.body)?;
                Ok((200, store.delete(&rt, ns, name, &options)?))
            }
            (method, _) => Err(ApiError::new(
                405,
                "MethodNotAllowed",
                format!("{method} is not supported on this path by kube-double"),
            )),
        }
    }

    fn json(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(self.body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not JSON: {e}")))
    }
}
