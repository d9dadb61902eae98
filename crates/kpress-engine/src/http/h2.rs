//! HTTP/2 through hyper's client connection: h2c with prior knowledge over TCP, or h2
//! negotiated by ALPN over TLS. One connection per VU, like HTTP/1.1, so VUs mean the
//! same thing in both versions.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::ErrorClass;
use super::h1::Exchange;
use super::request::RequestSpec;

pub struct H2 {
    sender: http2::SendRequest<Full<Bytes>>,
}

impl H2 {
    pub async fn handshake<S>(io: S) -> Result<H2, ErrorClass>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| classify(&e))?;
        // The connection task ends when `sender` is dropped or the peer goes away.
        tokio::spawn(conn);
        Ok(H2 { sender })
    }

    pub async fn exchange(&mut self, spec: &RequestSpec) -> Result<(Exchange, u64), ErrorClass> {
        self.sender.ready().await.map_err(|e| classify(&e))?;
        let uri = format!("{}{}", spec.origin, spec.path);
        let mut builder = http::Request::builder()
            .method(spec.method.clone())
            .uri(uri);
        let mut sent =
            (spec.method.as_str().len() + spec.path.len() + spec.origin.authority().len()) as u64;
        for (name, value) in &spec.headers {
            builder = builder.header(name, value);
            sent += (name.as_str().len() + value.len()) as u64;
        }
        sent += spec.body.len() as u64;
        let request = builder
            .body(Full::new(spec.body.clone()))
            .map_err(|_| ErrorClass::Protocol)?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let mut received: u64 = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().len() + v.len()) as u64)
            .sum();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| classify(&e))?;
            if let Some(data) = frame.data_ref() {
                received += data.len() as u64;
            }
        }
        Ok((
            Exchange {
                status,
                received,
                reusable: true,
            },
            sent,
        ))
    }
}

fn classify(e: &hyper::Error) -> ErrorClass {
    if e.is_timeout() {
        return ErrorClass::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return ErrorClass::from_io(io);
        }
        source = s.source();
    }
    if e.is_closed() || e.is_canceled() {
        ErrorClass::Closed
    } else {
        ErrorClass::Protocol
    }
}
