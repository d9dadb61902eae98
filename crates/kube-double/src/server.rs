//! The HTTP side of the double: binds a loopback port, records each request, serves injected
//! faults first and otherwise translates the request into a store operation, a watch stream or
//! a workload's `scale` subresource, or, with a cluster simulation, into the simulation's
//! admission, deletion and log endpoints.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::cluster::{
    self, Cluster, LogOutput, LogQuery, PodFault, RunningPod, Simulation, Verdict,
};
use crate::error::Error;
use crate::lock;
use crate::record::{Fault, RecordedRequest};
use crate::resource::ResourceType;
use crate::route::Route;
use crate::selector::LabelSelector;
use crate::status::ApiError;
use crate::store::{merge_patch, DeleteOptions, FieldSelector, ObjectRef, Page, Store};
use crate::watch;

/// Response body type; boxed so that streaming bodies (followed logs, watches) fit.
type Body = BoxBody<Bytes, Infallible>;

/// A chunked response body fed by a channel; ends when the sender is dropped.
struct Streamed(mpsc::Receiver<Bytes>);

impl hyper::body::Body for Streamed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

#[derive(Debug)]
struct Shared {
    store: Arc<Mutex<Store>>,
    requests: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<Vec<Fault>>,
    cluster: Option<Arc<Cluster>>,
}

/// How often [`ApiDouble::wait_for_absence`] looks at the store again.
const ABSENCE_POLL: std::time::Duration = std::time::Duration::from_millis(10);

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
        Self::launch(types, None).await
    }

    /// Starts a double serving [`ResourceType::builtins`] with a simulated cluster: a Job
    /// controller and a kubelet that runs pods as local processes (see the crate docs).
    pub async fn start_cluster(simulation: Simulation) -> Result<Self, Error> {
        Self::launch(ResourceType::builtins(), Some(simulation)).await
    }

    async fn launch(
        types: Vec<ResourceType>,
        simulation: Option<Simulation>,
    ) -> Result<Self, Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(Error::Bind)?;
        let addr = listener.local_addr().map_err(Error::Bind)?;
        let store = Arc::new(Mutex::new(Store::new(types)));
        let cluster = simulation
            .map(|simulation| Cluster::start(Arc::clone(&store), simulation))
            .transpose()?;
        let shared = Arc::new(Shared {
            store,
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            cluster,
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

    /// Writes a kubeconfig pointing at the double into `dir` and returns its path, for
    /// tests that run a binary which finds its cluster the usual way (`KUBECONFIG`).
    pub fn write_kubeconfig(&self, dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
        kubeconfig_for(dir, &self.url())
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

    fn wake_cluster(&self) {
        if let Some(cluster) = &self.shared.cluster {
            cluster.wake();
        }
    }

    fn cluster(&self) -> Result<&Arc<Cluster>, Error> {
        self.shared.cluster.as_ref().ok_or(Error::NotSimulating)
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
        let seeded = {
            let mut store = lock(&self.shared.store);
            let rt = store.type_of(&api_version, &kind)?;
            store.create(&rt, namespace.as_deref(), object, true)?
        };
        self.wake_cluster();
        Ok(seeded)
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
        let edited = {
            let mut store = lock(&self.shared.store);
            let rt = store.type_of(&target.api_version, &target.kind)?;
            store.edit(&rt, target.namespace.as_deref(), &target.name, edit)?
        };
        self.wake_cluster();
        Ok(edited)
    }

    /// Every request served so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Queues a failure for the next matching request.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// Waits until no object of `kind` in any namespace matches `label_selector`, e.g. until
    /// a deleted Job's pods are gone. Works with or without a simulation. It does not time out
    /// by itself: wrap it in `tokio::time::timeout`.
    pub async fn wait_for_absence(
        &self,
        api_version: &str,
        kind: &str,
        label_selector: &str,
    ) -> Result<(), Error> {
        let selector = LabelSelector::parse(label_selector)?;
        loop {
            let present = {
                let store = lock(&self.shared.store);
                let rt = store.type_of(api_version, kind)?;
                let list = store.list(
                    &rt,
                    None,
                    &selector,
                    &FieldSelector::default(),
                    &Page::default(),
                );
                list["items"]
                    .as_array()
                    .is_some_and(|items| !items.is_empty())
            };
            if !present {
                return Ok(());
            }
            tokio::time::sleep(ABSENCE_POLL).await;
        }
    }

    /// Keeps every future pod of `workload`'s `index` (in any namespace) Pending with
    /// `PodScheduled=False`, reason `Unschedulable`. For a Job the index is the completion
    /// index, for a Deployment the replica slot (see the crate docs). Pods already started are
    /// unaffected.
    pub fn never_schedule(&self, workload: &str, index: u32) -> Result<(), Error> {
        self.cluster()?
            .set_fault(workload, index, PodFault::Unschedulable);
        Ok(())
    }

    /// Keeps every future pod of `workload`'s `index` Pending with its container waiting in
    /// `ImagePullBackOff`. Pods already started are unaffected.
    pub fn image_pull_backoff(&self, workload: &str, index: u32) -> Result<(), Error> {
        self.cluster()?
            .set_fault(workload, index, PodFault::ImagePullBackOff);
        Ok(())
    }

    /// Waits for the running pod of `workload`'s `index`, kills its processes and marks it
    /// Failed with a `DisruptionTarget` condition (reason `PreemptionByScheduler`), as a
    /// preemption does; a Deployment then replaces the pod. Returns the pod's name once its
    /// status shows the failure. It does not time out by itself: wrap it in
    /// `tokio::time::timeout`.
    pub async fn disrupt(&self, workload: &str, index: u32) -> Result<String, Error> {
        Ok(self
            .cluster()?
            .terminate(workload, index, Verdict::Disrupted)
            .await)
    }

    /// Like [`ApiDouble::disrupt`], but the container terminates with reason `OOMKilled` and
    /// exit code 137 and no disruption condition, as when it exceeds its memory limit. A pod
    /// with `restartPolicy: Always` (a Deployment's) restarts the container instead of failing.
    pub async fn oom_kill(&self, workload: &str, index: u32) -> Result<String, Error> {
        Ok(self
            .cluster()?
            .terminate(workload, index, Verdict::OomKilled)
            .await)
    }

    /// Kills the container of the running pod of `workload`'s `index` once (`SIGKILL` to its
    /// process group: exit code 137, reason `Error`), as a crash would. A Job's pod fails; a
    /// pod with `restartPolicy: Always` restarts the container in the same pod. Returns the
    /// pod's name once its status shows the termination. It does not time out by itself:
    /// wrap it in `tokio::time::timeout`.
    pub async fn kill_container(&self, workload: &str, index: u32) -> Result<String, Error> {
        Ok(self
            .cluster()?
            .terminate(workload, index, Verdict::Killed)
            .await)
    }

    /// Pods whose container process is alive right now, sorted by namespace and name; empty
    /// without a simulation.
    pub fn running_pods(&self) -> Vec<RunningPod> {
        self.shared
            .cluster
            .as_ref()
            .map(|cluster| cluster.running_pods())
            .unwrap_or_default()
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
        lock(&self.shared.store).close();
        if let Some(cluster) = &self.shared.cluster {
            cluster.stop();
        }
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

fn response(code: u16, content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    let body = Full::new(Bytes::from(value.to_string())).boxed();
    response(code, "application/json", body)
}

/// `GET pods/NAME/log`: plain text, chunked while following.
fn log_response(cluster: &Cluster, route: &Route, query: &str) -> Response<Body> {
    let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let namespace = route.namespace.as_deref().unwrap_or_default();
    let name = route.name.as_deref().unwrap_or_default();
    let answer = LogQuery::parse(&params).and_then(|q| cluster.log(namespace, name, &q));
    match answer {
        Ok(LogOutput::Complete(text)) => response(200, "text/plain", Full::new(text).boxed()),
        Ok(LogOutput::Follow(chunks)) => response(200, "text/plain", Streamed(chunks).boxed()),
        Err(error) => json_response(error.code, &error.to_status()),
    }
}

/// `GET` a collection with `watch=true`: a stream of watch events.
fn watch_response(shared: &Shared, route: &Route, query: &str) -> Response<Body> {
    let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let opened = {
        let store = lock(&shared.store);
        store.type_at(&route.group, &route.version, &route.plural)
    }
    .and_then(|rt| {
        if route.namespace.is_some() && !rt.namespaced {
            return Err(ApiError::not_found("path", &route.plural));
        }
        watch::open(&shared.store, rt, route.namespace.clone(), &params)
    });
    match opened {
        Ok(events) => response(200, "application/json", Streamed(events).boxed()),
        Err(error) => json_response(error.code, &error.to_status()),
    }
}

/// Whether the request is a watch of a collection.
fn is_watch(method: &Method, route: &Route, query: &str) -> bool {
    let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    method == Method::GET
        && route.name.is_none()
        && route.subresource.is_none()
        && watch::requested(&params)
}

/// Whether the route is a pod's log, which only a simulation serves.
fn is_pod_log(route: &Route) -> bool {
    route.group.is_empty()
        && route.plural == "pods"
        && route.namespace.is_some()
        && route.name.is_some()
        && route.subresource.as_deref() == Some("log")
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
    let route = Route::parse(&path);
    if let (None, Some(route)) = (&fault, &route) {
        let query = query.as_deref().unwrap_or_default();
        if is_watch(&parts.method, route, query) {
            return Ok(watch_response(&shared, route, query));
        }
    }
    if let (None, Some(cluster), Some(route)) = (&fault, &shared.cluster, &route) {
        if parts.method == Method::GET && is_pod_log(route) {
            return Ok(log_response(
                cluster,
                route,
                query.as_deref().unwrap_or_default(),
            ));
        }
    }
    let answer = match fault {
        Some(fault) => Err(fault.error),
        None => {
            let request = ApiRequest {
                method: &parts.method,
                content_type,
                query: query.as_deref().unwrap_or_default(),
                body: &body,
                cluster: shared.cluster.as_deref(),
            };
            let answer = route
                .ok_or_else(|| ApiError::not_found("path", &path))
                .and_then(|route| request.answer(&mut lock(&shared.store), &route));
            if let Some(cluster) = &shared.cluster {
                if parts.method != Method::GET {
                    cluster.wake();
                }
            }
            answer
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
    /// The simulation, which takes over Job creation and deletion when present.
    cluster: Option<&'a Cluster>,
}

impl ApiRequest<'_> {
    fn answer(&self, store: &mut Store, route: &Route) -> Result<(u16, Value), ApiError> {
        let rt: ResourceType = store.type_at(&route.group, &route.version, &route.plural)?;
        if route.namespace.is_some() && !rt.namespaced {
            return Err(ApiError::not_found("path", &route.plural));
        }
        if let (Some("scale"), Some(name)) = (route.subresource.as_deref(), &route.name) {
            if has_scale(&rt) {
                return self.scale(store, &rt, route.namespace.as_deref(), name);
            }
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
                let labels =
                    LabelSelector::parse(params.get("labelSelector").map_or("", String::as_str))
                        .map_err(|e| ApiError::bad_request(e.to_string()))?;
                let fields =
                    FieldSelector::parse(params.get("fieldSelector").map_or("", String::as_str))?;
                let page = Page {
                    limit: crate::status::number_param(&params, "limit")?,
                    continue_from: crate::status::number_param(&params, "continue")?,
                };
                Ok((200, store.list(&rt, ns, &labels, &fields, &page)))
            }
            (&Method::GET, Some(name)) => Ok((200, store.get(&rt, ns, name)?)),
            (&Method::POST, None) => match self.cluster {
                Some(cluster) if cluster::is_jobs(&rt) => {
                    Ok((201, cluster.create_job(store, &rt, ns, self.json()?)?))
                }
                Some(cluster) if cluster::is_deployments(&rt) => Ok((
                    201,
                    cluster.create_deployment(store, &rt, ns, self.json()?)?,
                )),
                _ => Ok((201, store.create(&rt, ns, self.json()?, false)?)),
            },
            (&Method::PUT, Some(name)) => Ok((200, store.replace(&rt, ns, name, self.json()?)?)),
            (&Method::PATCH, Some(name)) => {
                self.check_merge_patch()?;
                Ok((200, store.patch(&rt, ns, name, &self.json()?)?))
            }
            (&Method::DELETE, Some(name)) => {
                let mut options = DeleteOptions::from_body(self.body)?;
                if options.propagation_policy.is_none() {
                    options.propagation_policy = params.get("propagationPolicy").cloned();
                }
                match self.cluster {
                    Some(cluster) if cluster::is_owner(&rt) => {
                        Ok((200, cluster.delete_owner(store, &rt, ns, name, &options)?))
                    }
                    _ => Ok((200, store.delete(&rt, ns, name, &options)?)),
                }
            }
            (method, _) => Err(ApiError::new(
                405,
                "MethodNotAllowed",
                format!("{method} is not supported on this path by kube-double"),
            )),
        }
    }

    /// Refuses patch types other than merge patches (strategic ones are applied as such).
    fn check_merge_patch(&self) -> Result<(), ApiError> {
        let media = self
            .content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        if matches!(
            media,
            "application/merge-patch+json" | "application/strategic-merge-patch+json"
        ) {
            Ok(())
        } else {
            Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!("kube-double applies merge patches only, not {media:?}"),
            ))
        }
    }

    /// The `scale` subresource: `GET` reads an `autoscaling/v1` Scale, `PATCH` (merge or
    /// strategic merge patch of a Scale) and `PUT` (a whole Scale) set `spec.replicas`. A
    /// `metadata.resourceVersion` in the body is a precondition.
    fn scale(
        &self,
        store: &mut Store,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(u16, Value), ApiError> {
        let current = store.get(rt, ns, name)?;
        let wanted = match *self.method {
            Method::GET => return Ok((200, scale_of(&current))),
            Method::PATCH => {
                self.check_merge_patch()?;
                let mut scale = scale_of(&current);
                if let Some(metadata) = scale["metadata"].as_object_mut() {
                    metadata.remove("resourceVersion");
                }
                merge_patch(&mut scale, &self.json()?);
                scale
            }
            Method::PUT => self.json()?,
            ref method => {
                return Err(ApiError::new(
                    405,
                    "MethodNotAllowed",
                    format!("{method} is not supported on the scale subresource"),
                ))
            }
        };
        let replicas = wanted["spec"]["replicas"]
            .as_u64()
            .filter(|r| i32::try_from(*r).is_ok())
            .ok_or_else(|| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!(
                        "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {}: must be greater than or equal to 0",
                        wanted["spec"]["replicas"]
                    ),
                )
            })?;
        let mut patch = json!({"spec": {"replicas": replicas}});
        if let Some(version) = wanted["metadata"]["resourceVersion"].as_str() {
            patch["metadata"] = json!({"resourceVersion": version});
        }
        let updated = store.patch(rt, ns, name, &patch)?;
        Ok((200, scale_of(&updated)))
    }

    fn json(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(self.body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not JSON: {e}")))
    }
}

/// Whether the type has a `scale` subresource: the `apps` workloads with `spec.replicas`.
fn has_scale(rt: &ResourceType) -> bool {
    rt.group == "apps"
        && matches!(
            rt.plural.as_str(),
            "deployments" | "replicasets" | "statefulsets"
        )
}

/// The `autoscaling/v1` Scale of a workload: desired replicas, current replicas and its
/// selector in label selector syntax.
fn scale_of(object: &Value) -> Value {
    let selector = crate::selector::selector_text(&object["spec"]["selector"]);
    let metadata = &object["metadata"];
    json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
            "resourceVersion": metadata["resourceVersion"],
            "creationTimestamp": metadata["creationTimestamp"],
        },
        "spec": {"replicas": object["spec"]["replicas"].as_u64().unwrap_or(1)},
        "status": {
            "replicas": object["status"]["replicas"].as_u64().unwrap_or(0),
            "selector": selector,
        },
    })
}

/// Writes a kubeconfig for the API server at `server` into `dir` (also usable for an
/// address where nothing listens, to test an unreachable cluster).
pub fn kubeconfig_for(dir: &std::path::Path, server: &str) -> std::io::Result<std::path::PathBuf> {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: double\nclusters:\n- name: double\n  cluster:\n    server: {server}\nusers:\n- name: tester\n  user: {{}}\ncontexts:\n- name: double\n  context:\n    cluster: double\n    user: tester\n"
    );
    std::fs::write(&path, text)?;
    Ok(path)
}
