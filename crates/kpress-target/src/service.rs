//! The request handler: reads each request, shapes its response as asked, and answers the
//! control endpoints under `/__kpress/`.
//!
//! Response bodies are a type of their own so that the common ones cost no allocation: the
//! default `ok\n` is static, and a `size=` body is cut from one static buffer however large.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};

use crate::shape::{self, Shape};
use crate::stall::Stall;
use crate::stats::Counters;

const CONTROL_PREFIX: &str = "/__kpress/";

/// The default body, short enough to keep a saturating load about the server, not the bytes.
const OK: &[u8] = b"ok\n";

/// What `size=` bodies are cut from; 16 KiB is HTTP/2's default frame size.
static FILLER: [u8; 16 * 1024] = [b'x'; 16 * 1024];

/// State every connection shares.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) counters: Counters,
    pub(crate) stall: Stall,
}

/// A response body of known length.
pub(crate) enum Body {
    /// Sent in one frame, then taken.
    Full(Option<Bytes>),
    /// This many bytes of [`FILLER`] still to send.
    Filler(u64),
}

impl Body {
    fn text(text: impl Into<Bytes>) -> Body {
        Body::Full(Some(text.into()))
    }

    fn len(&self) -> u64 {
        match self {
            Body::Full(bytes) => bytes.as_ref().map_or(0, |bytes| bytes.len() as u64),
            Body::Filler(remaining) => *remaining,
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.get_mut() {
            Body::Full(bytes) => bytes.take(),
            Body::Filler(0) => None,
            Body::Filler(remaining) => {
                let chunk =
                    usize::try_from(*remaining).map_or(FILLER.len(), |r| r.min(FILLER.len()));
                *remaining -= chunk as u64;
                Some(Bytes::from_static(&FILLER[..chunk]))
            }
        };
        Poll::Ready(frame.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.len() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len())
    }
}

/// Serves one request. An error is a failure to read the request body, after which the
/// connection is of no more use.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, hyper::Error> {
    if let Some(endpoint) = request.uri().path().strip_prefix(CONTROL_PREFIX) {
        return Ok(control(&shared, endpoint, &request));
    }
    let shape = shape::parse(request.uri().query(), request.headers());
    let head = request.method() == Method::HEAD;
    let version = request.version();
    let received = drain(request.into_body()).await?;
    let response = match shape {
        Ok(None) => Response::new(Body::text(Bytes::from_static(OK))),
        Ok(Some(shape)) => shaped(&shape, version).await,
        Err(error) => text(StatusCode::BAD_REQUEST, format!("{error}\n")),
    };
    shared.stall.wait().await;
    let sent = if head { 0 } else { response.body().len() };
    shared.counters.response(response.status(), received, sent);
    Ok(response)
}

/// Reads the request body to its end, counting its bytes and keeping none.
async fn drain(mut body: Incoming) -> Result<u64, hyper::Error> {
    let mut received = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            received += data.len() as u64;
        }
    }
    Ok(received)
}

async fn shaped(shape: &Shape, version: Version) -> Response<Body> {
    if let Some(delay) = shape.delay {
        tokio::time::sleep(delay.pick()).await;
    }
    let status = shape.status.as_ref().map_or(StatusCode::OK, |s| s.pick());
    let body = match shape.size {
        // These statuses cannot carry a body, whatever size asked.
        _ if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED => {
            Body::Full(None)
        }
        Some(size) => Body::Filler(size),
        None => Body::text(Bytes::from_static(OK)),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    // HTTP/2 has no connection header: there it would be stripped with a warning.
    if shape.close && version <= Version::HTTP_11 {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn control(shared: &Shared, endpoint: &str, request: &Request<Incoming>) -> Response<Body> {
    let method = request.method();
    match endpoint {
        "stats" if method == Method::GET || method == Method::HEAD => {
            match serde_json::to_vec(&shared.counters.snapshot()) {
                Ok(json) => {
                    let mut response = Response::new(Body::text(json));
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    response
                }
                Err(error) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot encode the stats: {error}\n"),
                ),
            }
        }
        "stats" => not_allowed("GET, HEAD"),
        "stall" if method == Method::POST => match shape::parse_stall(request.uri().query()) {
            Ok(duration) => {
                shared.stall.start(duration);
                text(
                    StatusCode::OK,
                    format!("stalling for {}\n", humantime::format_duration(duration)),
                )
            }
            Err(error) => text(StatusCode::BAD_REQUEST, format!("{error}\n")),
        },
        "stall" => not_allowed("POST"),
        _ => text(
            StatusCode::NOT_FOUND,
            "unknown control endpoint: there are GET /__kpress/stats and POST /__kpress/stall?for=1s\n",
        ),
    }
}

fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed: use {allow}\n"),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

fn text(status: StatusCode, text: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Body::text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
