//! The HTTP client of one worker thread: connections per VU, HTTP/1.1 on the
//! hand-written fast path (`h1`), HTTP/2 (h2c with prior knowledge, or h2 over TLS via
//! ALPN) through hyper, TLS through rustls. Open-model scenarios of one request per
//! iteration put their plain HTTP/1.1 connections on tick-batched polling (`ticked`). Every outcome is an
//! `Exchange` or an `ErrorClass`; nothing here panics on what a server sends.

pub mod error;
mod h1;
mod h2;
pub mod request;
#[cfg(target_os = "linux")]
mod ticked;
mod tls;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::scenario::HttpOptions;
use error::ErrorClass;
pub use h1::Exchange;
use request::{HttpVersion, Origin, RequestSpec, Scheme};

/// What every connection of a run shares (cheap to clone: reference-counted).
#[derive(Clone)]
pub struct ClientConfig {
    pub options: HttpOptions,
    tls: TlsConnector,
    /// Poll plain HTTP/1.1 connections once per timer tick (open model).
    ticked: bool,
}

impl ClientConfig {
    pub fn new(options: HttpOptions) -> ClientConfig {
        let tls = TlsConnector::from(tls::client_config(
            options.version,
            options.insecure_skip_tls_verify,
            &options.extra_roots,
        ));
        ClientConfig {
            options,
            tls,
            ticked: false,
        }
    }

    /// The same client, with plain HTTP/1.1 connections polled once per timer tick
    /// and timed by the kernel: for arrival-rate scenarios of one request per
    /// iteration, where it spares the thread a wake-up per response. Wherever a
    /// response must be handled at once to send the next request (closed-model VUs,
    /// later requests of an iteration), connections stay event-driven.
    pub fn ticked(&self) -> ClientConfig {
        ClientConfig {
            ticked: true,
            ..self.clone()
        }
    }
}

/// A request ready to send: its spec plus its HTTP/1.1 bytes, built once per run.
pub struct Prepared {
    pub spec: RequestSpec,
    pub http1: Bytes,
    pub head: bool,
}

impl Prepared {
    pub fn new(spec: RequestSpec, options: &HttpOptions) -> Prepared {
        let http1 = spec.http1_bytes(options.no_connection_reuse);
        let head = spec.method == http::Method::HEAD;
        Prepared { spec, http1, head }
    }
}

/// An open connection.
pub enum Connection {
    Plain(h1::H1<TcpStream>),
    #[cfg(target_os = "linux")]
    Ticked(h1::H1<ticked::TickedTcp>),
    Tls(Box<h1::H1<TlsStream<TcpStream>>>),
    H2(h2::H2),
}

impl Connection {
    /// Opens a connection to `origin`, speaking the configured HTTP version.
    pub async fn open(origin: &Origin, config: &ClientConfig) -> Result<Connection, ErrorClass> {
        let tcp = connect_tcp(origin).await?;
        match origin.scheme {
            Scheme::Http => match config.options.version {
                HttpVersion::Http2 => Ok(Connection::H2(h2::H2::handshake(tcp).await?)),
                _ => Ok(plain(tcp, config)?),
            },
            Scheme::Https => {
                let name =
                    ServerName::try_from(origin.host.clone()).map_err(|_| ErrorClass::Tls)?;
                let stream = config.tls.connect(name, tcp).await.map_err(|e| {
                    match ErrorClass::from_io(&e) {
                        ErrorClass::Reset | ErrorClass::Closed | ErrorClass::Protocol => {
                            ErrorClass::Tls
                        }
                        other => other,
                    }
                })?;
                if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                    Ok(Connection::H2(h2::H2::handshake(stream).await?))
                } else if config.options.version == HttpVersion::Http2 {
                    Err(ErrorClass::Tls)
                } else {
                    Ok(Connection::Tls(Box::new(h1::H1::new(stream))))
                }
            }
        }
    }

    /// One request/response on this connection; returns the exchange and the bytes sent.
    pub async fn send(&mut self, req: &Prepared) -> Result<(Exchange, u64), ErrorClass> {
        match self {
            Connection::Plain(c) => c
                .exchange(&req.http1, req.head)
                .await
                .map(|x| (x, req.http1.len() as u64)),
            #[cfg(target_os = "linux")]
            Connection::Ticked(c) => {
                c.io_mut().take_received_at();
                c.exchange(&req.http1, req.head)
                    .await
                    .map(|x| (x, req.http1.len() as u64))
            }
            Connection::Tls(c) => c
                .exchange(&req.http1, req.head)
                .await
                .map(|x| (x, req.http1.len() as u64)),
            Connection::H2(c) => Box::pin(c.exchange(&req.spec)).await,
        }
    }
}

impl Connection {
    /// When the kernel received the end of the last response, if this connection is
    /// timed by the kernel.
    pub fn received_at(&mut self) -> Option<std::time::Instant> {
        match self {
            #[cfg(target_os = "linux")]
            Connection::Ticked(c) => c.io_mut().take_received_at(),
            _ => None,
        }
    }
}

/// A plain HTTP/1.1 connection: ticked when the client asks for it and the kernel
/// can timestamp receives, event-driven otherwise.
fn plain(tcp: TcpStream, config: &ClientConfig) -> Result<Connection, ErrorClass> {
    #[cfg(target_os = "linux")]
    if config.ticked {
        return match ticked::TickedTcp::take_over(tcp) {
            Ok(Ok(stream)) => Ok(Connection::Ticked(h1::H1::new(stream))),
            Ok(Err(e)) => Err(ErrorClass::from_io(&e)),
            Err(tcp) => Ok(Connection::Plain(h1::H1::new(tcp))),
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = config;
    Ok(Connection::Plain(h1::H1::new(tcp)))
}

async fn connect_tcp(origin: &Origin) -> Result<TcpStream, ErrorClass> {
    let addrs = tokio::net::lookup_host((origin.host.as_str(), origin.port))
        .await
        .map_err(|_| ErrorClass::Dns)?;
    let mut last = ErrorClass::Dns;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                // Requests are written whole; Nagle would only delay them.
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = ErrorClass::from_connect(&e),
        }
    }
    Err(last)
}
