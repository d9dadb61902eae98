//! The listening socket, the accept loop and one task per connection, with the graceful
//! shutdown that [`Target::shutdown`](crate::Target::shutdown) asks for.
//!
//! hyper-util's auto builder reads the first bytes of each connection to tell HTTP/2's
//! preface from HTTP/1.1, which is how h2c with prior knowledge and HTTP/1.1 share a port,
//! and how TLS connections work whichever protocol ALPN picked.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::rt::{Read, Write};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::service::{self, Shared};
use crate::TargetError;

/// Room for the bursts of connections a load test opens at once.
const BACKLOG: u32 = 4096;

/// How long in-flight requests get to finish once shutdown starts.
const GRACE: Duration = Duration::from_secs(5);

/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// After an accept error such as running out of file descriptors, retrying at once would
/// spin; a pause lets connections close.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

pub(crate) fn bind(addr: SocketAddr) -> Result<TcpListener, TargetError> {
    let bind = || {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // A target restarted right after a run must not wait out its old connections'
        // TIME_WAIT. Elsewhere than Unix the option would let two servers share the port.
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(BACKLOG)
    };
    bind().map_err(|error| TargetError::Bind { addr, error })
}

/// Accepts until `shutdown` turns true (or its sender is gone), then drains connections.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let builder = Arc::new(Builder::new(TokioExecutor::new()));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.counters.connection();
                    connections.spawn(connection(
                        stream,
                        tls.clone(),
                        Arc::clone(&builder),
                        Arc::clone(&shared),
                        shutdown.clone(),
                    ));
                }
                Err(error) => {
                    tracing::warn!(%error, "kpress target cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            // Reaping finished connections keeps the set from growing with every one served.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stopping(&mut shutdown) => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            open = connections.len(),
            "kpress target closes connections still busy after the grace period"
        );
        connections.shutdown().await;
    }
}

async fn connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    builder: Arc<Builder<TokioExecutor>>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Small responses must leave at once, not wait for Nagle to batch them.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot disable Nagle's algorithm");
    }
    let Some(acceptor) = tls else {
        return serve_connection(TokioIo::new(stream), &builder, shared, &mut shutdown).await;
    };
    let handshake = tokio::select! {
        handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => handshake,
        () = stopping(&mut shutdown) => return,
    };
    match handshake {
        Ok(Ok(stream)) => {
            serve_connection(TokioIo::new(stream), &builder, shared, &mut shutdown).await;
        }
        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
        Err(_) => tracing::debug!("TLS handshake timed out"),
    }
}

async fn serve_connection<I>(
    io: I,
    builder: &Builder<TokioExecutor>,
    shared: Arc<Shared>,
    shutdown: &mut watch::Receiver<bool>,
) where
    I: Read + Write + Unpin + Send + 'static,
{
    let service = service_fn(move |request| service::handle(Arc::clone(&shared), request));
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopping(shutdown) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// Resolves once shutdown has been asked for, or once nobody can ask any more because the
/// [`Target`](crate::Target) is gone.
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    // Either outcome means stop, and the guard it returns must not be held across an await.
    let _ = shutdown.wait_for(|stop| *stop).await;
}
