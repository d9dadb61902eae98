//! `kpress-target` is the HTTP server behind `kpress target`: something to point kpress at
//! when there is nothing else to load, and the server kpress's own tests measure against.
//!
//! It answers any method on any path, over HTTP/1.1 with keep-alive and HTTP/2 with prior
//! knowledge (h2c) on one port, or over TLS with ALPN offering `h2` and `http/1.1`. Each
//! response can be shaped by the request, with query parameters or the same-named
//! `x-kpress-*` headers (a query parameter wins over its header):
//!
//! | parameter | header | meaning |
//! | --- | --- | --- |
//! | `delay=100ms`, `delay=10ms-50ms` | `x-kpress-delay` | wait that long, or a uniformly drawn time in the range, before responding (durations such as `250us`, `10ms`, `1.5s`, `1m30s`; at most 1h; timer resolution is about 1 ms) |
//! | `status=503`, `status=200:90,503:10` | `x-kpress-status` | the status code (200 to 599), or codes drawn by percentage weights; weights may add up to less than 100, the rest is 200 |
//! | `size=1024` | `x-kpress-size` | a body of exactly that many bytes instead of `ok\n` |
//! | `close=1` | `x-kpress-close` | answer with `connection: close` and close the connection (HTTP/1.x only; `1`, `0`, `true` or `false`) |
//!
//! Unknown parameters are ignored; a bad value gets a 400 whose body is a one-line explanation.
//! A request that asks for nothing takes a fast path with no parsing beyond the check that
//! nothing was asked.
//!
//! Under `/__kpress/` sit the control endpoints, which are neither shaped, stalled nor counted:
//! `GET /__kpress/stats` returns [`TargetStats`] as JSON, and `POST /__kpress/stall?for=1s` does
//! what [`Target::stall`] does.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kpress_target::TargetError> {
//! use kpress_target::{Target, TargetOptions};
//!
//! let target = Target::start("127.0.0.1:0".parse().unwrap(), TargetOptions::default()).await?;
//! println!("send requests to {}/?delay=10ms", target.url());
//! target.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod background;
mod error;
mod server;
mod service;
mod shape;
mod stall;
mod stats;
mod tls;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use background::BackgroundTarget;
pub use error::TargetError;
pub use stats::TargetStats;

use service::Shared;

/// How to serve; `TargetOptions::default()` is plain HTTP (HTTP/1.1 and h2c).
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    /// Serve TLS with a certificate generated at start for `localhost` and `127.0.0.1`,
    /// offering `h2` and `http/1.1` by ALPN. Clients trust it through
    /// [`Target::certificate_der`].
    pub tls: bool,
}

/// A running target. Dropping it stops the server at once, cutting open connections;
/// [`Target::shutdown`] lets in-flight requests finish first.
pub struct Target {
    local_addr: SocketAddr,
    certificate_der: Option<Vec<u8>>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl Target {
    /// Binds `addr` (for example `127.0.0.1:0`, which picks a free port) and serves in the
    /// background on the current tokio runtime, so it must be called from within one.
    pub async fn start(addr: SocketAddr, options: TargetOptions) -> Result<Target, TargetError> {
        let tls = options.tls.then(tls::self_signed).transpose()?;
        let listener = server::bind(addr)?;
        let local_addr = listener
            .local_addr()
            .map_err(|error| TargetError::Bind { addr, error })?;
        let shared = Arc::new(Shared::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (acceptor, certificate_der) = tls.map(|t| (t.acceptor, t.certificate_der)).unzip();
        let server = tokio::spawn(server::serve(
            listener,
            acceptor,
            Arc::clone(&shared),
            shutdown_rx,
        ));
        Ok(Target {
            local_addr,
            certificate_der,
            shared,
            shutdown,
            server,
        })
    }

    /// The address actually bound, with the port the system picked for port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL to send requests to, such as `http://127.0.0.1:8080`. A wildcard bind
    /// (`0.0.0.0`, `::`) is given as loopback, since a wildcard is no address to connect to.
    pub fn url(&self) -> String {
        let scheme = if self.certificate_der.is_some() {
            "https"
        } else {
            "http"
        };
        let ip = match self.local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("{scheme}://{}", SocketAddr::new(ip, self.local_addr.port()))
    }

    /// What has been served so far. Control endpoints are not counted.
    pub fn stats(&self) -> TargetStats {
        self.shared.counters.snapshot()
    }

    /// The DER encoding of the self-signed certificate when serving TLS, for clients to trust.
    pub fn certificate_der(&self) -> Option<Vec<u8>> {
        self.certificate_der.clone()
    }

    /// Stalls the server for `duration` (at most one hour) from now: every response not yet
    /// sent, including those of requests arriving meanwhile, waits until the stall ends.
    /// A stall can be lengthened by another, never shortened.
    pub fn stall(&self, duration: Duration) {
        self.shared.stall.start(duration);
    }

    /// Stops accepting connections, lets in-flight requests finish for up to five seconds,
    /// then closes whatever is left.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Err(error) = (&mut self.server).await {
            tracing::warn!(%error, "kpress target server task failed");
        }
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The `kpress target` command: starts a target on `addr`, prints
/// `kpress target listening on http://127.0.0.1:8080 (HTTP/1.1 and h2c)` to stdout, serves
/// until SIGINT or SIGTERM (Ctrl-C elsewhere than Unix), then shuts down gracefully.
///
/// It is async so that the CLI runs it on the runtime it already has; that runtime should be
/// multi-threaded for the target to keep up with load.
pub async fn run_forever(addr: SocketAddr, options: TargetOptions) -> Result<(), TargetError> {
    // Listening for signals before binding means that once the URL is printed, a signal can
    // only mean a graceful stop, never the default action of killing the process.
    let signals = Signals::install()?;
    let target = Target::start(addr, options).await?;
    let protocols = if target.certificate_der.is_some() {
        "HTTP/1.1 and h2 over TLS, self-signed certificate"
    } else {
        "HTTP/1.1 and h2c"
    };
    announce(&format!(
        "kpress target listening on {} ({protocols})",
        target.url()
    ));
    let stopped = signals.recv().await;
    target.shutdown().await;
    stopped
}

/// Prints the line scripts wait for before sending requests.
fn announce(line: &str) {
    let mut stdout = std::io::stdout().lock();
    // Printing is a courtesy: a closed stdout must not stop the server.
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

/// The signals that stop [`run_forever`].
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn install() -> Result<Signals, TargetError> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).map_err(TargetError::Signal)?,
            terminate: signal(SignalKind::terminate()).map_err(TargetError::Signal)?,
        })
    }

    #[cfg(unix)]
    async fn recv(mut self) -> Result<(), TargetError> {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn install() -> Result<Signals, TargetError> {
        Ok(Signals {})
    }

    #[cfg(not(unix))]
    async fn recv(self) -> Result<(), TargetError> {
        tokio::signal::ctrl_c().await.map_err(TargetError::Signal)
    }
}
