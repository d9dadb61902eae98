//! kpress's management center (`kpress center`, docs/center.md): the one long-lived
//! service of kpress. It registers runs, receives their runners' per-second points and
//! final summaries, merges them exactly with the engine's `summary::merge`, judges
//! thresholds on the merge, keeps the history in SQLite or PostgreSQL, and shows it in
//! a JSON API, a web UI and on `/metrics`.
//!
//! [`app`] is the whole service as a router (tests drive it without a socket);
//! [`Server`] binds it to an address, and [`serve`] runs it until Ctrl-C or SIGTERM.

pub mod api;
pub mod auth;
pub mod deploy;
pub mod error;
pub mod extract;
pub mod finish;
pub mod hooks;
pub mod metrics;
pub mod routes;
pub mod state;
pub mod store;
pub mod time;
pub mod timeline;
pub mod token;
pub mod ui;

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::Router;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use state::AppState;
pub use store::{Store, StoreError};

/// Where the center listens unless told otherwise: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8070";
/// The largest request body accepted unless told otherwise: 32 MiB.
pub const DEFAULT_MAX_BODY: usize = 32 * 1024 * 1024;

/// How to run a center.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `sqlite://FILE` (created if missing) or `postgres://...`.
    pub db: String,
    /// The center's token: every call but `/healthz` (and `/metrics` when public)
    /// needs it, or a run's runner token for that run's reports.
    pub token: String,
    /// Serve `/metrics` without a token.
    pub metrics_public: bool,
    /// The largest request body, in bytes.
    pub max_body: usize,
    /// Drive `deployment`-mode runs in this cluster (`--kubernetes`).
    pub kube: Option<deploy::KubeSettings>,
    pub drive: deploy::DriveSettings,
}

impl Config {
    /// A center on the default address with the default body limit.
    pub fn new(db: impl Into<String>, token: impl Into<String>) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8070)),
            db: db.into(),
            token: token.into(),
            metrics_public: false,
            max_body: DEFAULT_MAX_BODY,
            kube: None,
            drive: deploy::DriveSettings::default(),
        }
    }
}

/// Why the center could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the center needs a token: pass --token or set KPRESS_CENTER_TOKEN")]
    NoToken,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot reach the cluster: {0}")]
    Cluster(String),
    #[error("--runner-url is needed: runner pods cannot reach the center at {0}")]
    RunnerUrl(SocketAddr),
}

/// The whole service: API, UI, `/metrics`, `/healthz`.
pub fn app(state: AppState) -> Router {
    let limit = state.max_body();
    let mut router = Router::new();
    for r in routes::all() {
        router = router.route(r.path, r.handler);
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("there is nothing at {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not served at {}", uri.path()))
}

/// A center bound to its address, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    store: Store,
    app: Router,
    cluster: Option<deploy::Cluster>,
}

impl Server {
    /// Opens the store (applying migrations) and binds `config.listen`.
    pub async fn bind(config: &Config) -> Result<Server, Error> {
        if config.token.is_empty() {
            return Err(Error::NoToken);
        }
        let client = match &config.kube {
            Some(kube) => Some(
                kpress_k8s::connect_to(kube.kubeconfig.as_deref(), kube.context.as_deref())
                    .await
                    .map_err(Error::Cluster)?,
            ),
            None => None,
        };
        Server::bind_with_client(config, client).await
    }

    /// [`Server::bind`] with this cluster client (tests hand one of an API double).
    pub async fn bind_with_client(
        config: &Config,
        client: Option<kube::Client>,
    ) -> Result<Server, Error> {
        if config.token.is_empty() {
            return Err(Error::NoToken);
        }
        let store = Store::connect(&config.db).await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Listen {
                addr: config.listen,
                source,
            })?;
        let local = listener.local_addr().map_err(Error::Serve)?;
        let cluster = match client {
            Some(client) => Some(deploy::Cluster {
                client,
                runner_url: runner_url(config, local)?,
                settings: config.drive.clone(),
            }),
            None => None,
        };
        let state = match &cluster {
            Some(c) => AppState::with_cluster(store.clone(), config, c.clone()),
            None => AppState::new(store.clone(), config),
        };
        Ok(Server {
            listener,
            store,
            app: app(state),
            cluster,
        })
    }

    /// The address it listens on (the port chosen when `listen` had port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener.local_addr().map_err(Error::Serve)
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let driver = self.cluster.map(|cluster| {
            let mut stopped = stopped.clone();
            tokio::spawn(deploy::driver::drive(
                self.store.clone(),
                cluster,
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                },
            ))
        });
        let served = axum::serve(self.listener, self.app)
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = stop.send(true);
        if let Some(driver) = driver {
            let _ = driver.await;
        }
        self.store.close().await;
        served.map_err(Error::Serve)
    }
}

/// The center's URL as runner pods reach it: `--runner-url`, else the address it
/// listens on, unless that is a wildcard.
fn runner_url(config: &Config, local: SocketAddr) -> Result<String, Error> {
    if let Some(url) = config.kube.as_ref().and_then(|k| k.runner_url.clone()) {
        return Ok(url);
    }
    if local.ip().is_unspecified() {
        return Err(Error::RunnerUrl(local));
    }
    Ok(format!("http://{local}/"))
}

/// Runs a center with `config` until Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> Result<(), Error> {
    let server = Server::bind(&config).await?;
    tracing::info!(addr = %server.local_addr()?, "the center is listening");
    server.run(shutdown_signal()).await
}

/// Completes at the first Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
