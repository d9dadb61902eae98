//! Real requests over loopback against a running target: the protocols it speaks, the
//! shaping it promises, its stall, its stats and its shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderMap, Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kpress_target::{Target, TargetError, TargetOptions, TargetStats};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// No network wait in these tests may take longer than this.
const WAIT: Duration = Duration::from_secs(10);

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

async fn start(tls: bool) -> Target {
    Target::start("127.0.0.1:0".parse().unwrap(), TargetOptions { tls })
        .await
        .expect("target starts")
}

async fn tcp(target: &Target) -> TcpStream {
    within("connect", TcpStream::connect(target.local_addr()))
        .await
        .expect("connect")
}

async fn tls(target: &Target, alpn: &[u8], name: ServerName<'static>) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let der = target
        .certificate_der()
        .expect("a TLS target has a certificate");
    roots.add(CertificateDer::from(der)).expect("certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let stream = tcp(target).await;
    let stream = within(
        "TLS handshake",
        TlsConnector::from(Arc::new(config)).connect(name, stream),
    )
    .await
    .expect("TLS handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn));
    stream
}

/// Extra request headers, as name and value.
type Headers<'a> = &'a [(&'a str, &'a str)];

struct Reply {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
}

/// One client connection, HTTP/1.1 or HTTP/2, through hyper's low-level client so that the
/// tests know exactly which connection each request uses.
#[derive(Clone)]
enum Client {
    Http1(Arc<tokio::sync::Mutex<http1::SendRequest<Full<Bytes>>>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

impl Client {
    async fn http1<I>(io: I) -> Client
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = within("HTTP/1.1 handshake", http1::handshake(TokioIo::new(io)))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        Client::Http1(Arc::new(tokio::sync::Mutex::new(sender)))
    }

    async fn http2<I>(io: I) -> Client
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = within(
            "HTTP/2 handshake",
            http2::handshake(TokioExecutor::new(), TokioIo::new(io)),
        )
        .await
        .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        Client::Http2(sender)
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    async fn send(&self, method: Method, path: &str, headers: Headers<'_>, body: Bytes) -> Reply {
        let mut request = Request::builder().method(method);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = match self {
            Client::Http1(sender) => {
                let request = request
                    .uri(path)
                    .header(HOST, "localhost")
                    .body(Full::new(body))
                    .expect("request");
                let mut sender = sender.lock().await;
                within("HTTP/1.1 ready", sender.ready())
                    .await
                    .expect("connection ready");
                within(path, sender.send_request(request)).await
            }
            Client::Http2(sender) => {
                let request = request
                    .uri(format!("http://localhost{path}"))
                    .body(Full::new(body))
                    .expect("request");
                within(path, sender.clone().send_request(request)).await
            }
        }
        .expect("response");
        let status = response.status();
        let version = response.version();
        let headers = response.headers().clone();
        let body = within("body", response.into_body().collect())
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            version,
            headers,
            body,
        }
    }
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

#[tokio::test]
async fn http1_keep_alive_serves_several_requests_on_one_connection() {
    let target = start(false).await;
    assert_eq!(target.url(), format!("http://{}", target.local_addr()));
    assert_eq!(target.certificate_der(), None);
    let client = Client::http1(tcp(&target).await).await;
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE"];
    for method in methods {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let reply = client
            .send(method, "/any/path?unrelated=1", &[], Bytes::new())
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.version, Version::HTTP_11);
        assert_eq!(reply.body, "ok\n");
    }
    let stats = target.stats();
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.requests, methods.len() as u64);
    within("shutdown", target.shutdown()).await;
}

#[tokio::test]
async fn h2c_with_prior_knowledge_multiplexes_on_one_connection() {
    let target = start(false).await;
    let client = Client::http2(tcp(&target).await).await;
    let mut requests = JoinSet::new();
    for _ in 0..20 {
        let client = client.clone();
        requests.spawn(async move { client.get("/h2c").await });
    }
    while let Some(reply) = requests.join_next().await {
        let reply = reply.expect("request task");
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.version, Version::HTTP_2);
        assert_eq!(reply.body, "ok\n");
    }
    let stats = target.stats();
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.requests, 20);
    within("shutdown", target.shutdown()).await;
}

#[tokio::test]
async fn tls_with_alpn_h2() {
    let target = start(true).await;
    assert_eq!(target.url(), format!("https://{}", target.local_addr()));
    let name = ServerName::IpAddress(target.local_addr().ip().into());
    let client = Client::http2(tls(&target, b"h2", name).await).await;
    let reply = client.get("/?size=100&status=201").await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.version, Version::HTTP_2);
    assert_eq!(reply.body.len(), 100);
    within("shutdown", target.shutdown()).await;
}

#[tokio::test]
async fn tls_with_alpn_http1() {
    let target = start(true).await;
    let name = ServerName::try_from("localhost").unwrap();
    let client = Client::http1(tls(&target, b"http/1.1", name).await).await;
    for _ in 0..3 {
        let reply = client.get("/tls").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.version, Version::HTTP_11);
        assert_eq!(reply.body, "ok\n");
    }
    assert_eq!(target.stats().connections, 1);
    within("shutdown", target.shutdown()).await;
}

#[tokio::test]
async fn delays_are_applied() {
    let target = start(false).await;
    let client = Client::http1(tcp(&target).await).await;

    let started = Instant::now();
    assert_eq!(client.get("/?delay=200ms").await.status, StatusCode::OK);
    assert!(started.elapsed() >= ms(200), "{:?}", started.elapsed());

    let started = Instant::now();
    let reply = client
        .send(
            Method::GET,
            "/",
            &[("x-kpress-delay", "150ms")],
            Bytes::new(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(started.elapsed() >= ms(150), "{:?}", started.elapsed());

    let started = Instant::now();
    assert_eq!(
        client.get("/?delay=100ms-150ms").await.status,
        StatusCode::OK
    );
    let elapsed = started.elapsed();
    assert!(elapsed >= ms(100) && elapsed < WAIT, "{elapsed:?}");
    within("shutdown", target.shutdown()).await;
}

#[tokio::test]
async fn delays_overlap_on_one_http2_connection() {
    let target = start(false).await;
    let client = Client::http2(tcp(&target).await).await;
    let started = Instant::now();
    let mut requests = JoinSet::new();
    for _ in 0..10 {
        let client = client.clone();
        requests.spawn(async move { client.get("/?delay=300ms").await.status });
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.expect("request task"), StatusCode::OK);
    }
    let elapsed = started.elapsed();
    // One after the other they would take 3 s.
    assert!(elapsed >= ms(300) && elapsed < ms(1500), "{elapsed:?}");
    within("shutdown", target.shutdown()).await;
}

#[tokio::test]
async fn statuses_fixed_from_header_and_weighted() {
    let target = start(false).await;
    let client = Client::http2(tcp(&target).await).await;
    assert_eq!(
        client.get("/?status=503").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let teapot = [("x-kpress-status", "418")];
    let reply = client.send(Method::GET, "/", &teapot, Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::IM_A_TEAPOT);
    let reply = client
        .send(Method::GET, "/?status=201", &teapot, Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "the query wins");
    let reply = client.get("/?status=204&size=10").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(reply.body.is_empty());

    for _ in 0..20 {
        assert_eq!(
            client.get("/?status=502:100").await.status,
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(client.get("/?status=502:0").await.status, StatusCode::OK);
    }

    let mut requests = JoinSet::new();
    for _ in 0..200 {
        let client = client.clone();
        requests.spawn(async move { client.get("/?status=200:50,503:50").await.status });
    }
    let (mut ok, mut unavailable) = (0, 0);
    while let Some(status) = requests.join_next().await {
        match status.expect("request task") {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => unavailable += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    // 200 fair draws land outside this band with a chance below one in a billion.
    assert!((50..=150).contains(&ok), "{ok} × 200, {unavailable} × 503");
    assert_eq!(ok + unavailable, 200);
    within("shutdown", target.shutdown()).await;
}

#[tokio::test]
async fn sizes_are_exact_over_both_protocols() {
    let target = start(false).await;
    let h1 = Client::http1(tcp(&target).await).await;
    let h2 = Client::http2(tcp(&target).await).await;
    for size in [0usize, 1, 3, 16_384, 16_385, 100_000, 1_000_000] {
        for client in [&h1, &h2] {
            let reply = client.get(&format!("/?size={size}")).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.body.len(), size, "{:?}", reply.version);
            if size > 0 {
                assert_eq!(
                    reply
                        .headers
                        .get(CONTENT_LENGTH)
                        .map(|v| v.to_str().unwrap()),
                    Some(size.to_string().as_str()),
                    "{:?}",
                    reply.version,
                );
            }
        }
    }
    let reply = h1
        .send(Method::GET, "/", &[("x-kpress-size", "7")], Bytes::new())
        .await;
    assert_eq!(reply.body.len(), 7);
    within("shutdown", target.shutdown()).await;
}

#[tokio::test]
async fn close_closes_http1_connections() {
    let target = start(false).await;
    let mut stream = tcp(&target).await;
    stream
        .write_all(b"GET /?close=1 HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .expect("write");
    // Reading to the end proves the server closed the connection.
    let mut response = Vec::new();
    within("server close", stream.read_to_end(&mut response))
        .await
        .expect("read");
    let response = String::from_utf8(response).expect("text");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("connection: close\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nok\n"), "{response}");

    let client = Client::http1(tcp(&target).await).await;
    let reply = client
        .send(Method::GET, "/", &[("x-kpress-close", "1")], Bytes::new())
        .await;
    assert_eq!(reply.headers.get(CONNECTION).unwrap(), "close");

    // HTTP/2 has no per-response close: the parameter is accepted and the connection lives.
    let h2 = Client::http2(tcp(&target).await).await;
    let reply = h2.get("/?close=1").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers.get(CONNECTION).is_none());
    assert_eq!(h2.get("/").await.status, StatusCode::OK);
    within("shutdown", target.shutdown()).await;
}

#[tokio::test]
async fn bad_parameters_get_a_one_line_400() {
    let target = start(false).await;
    let client = Client::http1(tcp(&target).await).await;
    let cases: &[(&str, Headers, &str)] = &[
        ("/?delay=abc", &[], "delay"),
        ("/?delay=50ms-10ms", &[], "delay"),
        ("/?delay=2h", &[], "maximum"),
        ("/?status=99", &[], "status"),
        ("/?status=abc", &[], "status"),
        ("/?status=200:60,503:60", &[], "more than 100"),
        ("/?size=-1", &[], "size"),
        ("/?size=%zz", &[], "size"),
        ("/?close=maybe", &[], "close"),
        ("/", &[("x-kpress-size", "lots")], "size"),
        ("/", &[("x-kpress-delay", "soon")], "delay"),
    ];
    for (path, headers, mention) in cases {
        let reply = client.send(Method::GET, path, headers, Bytes::new()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path} {headers:?}");
        let body = std::str::from_utf8(&reply.body).expect("text");
        assert!(body.contains(mention), "{path}: {body}");
        assert!(
            body.ends_with('\n') && body.lines().count() == 1,
            "{body:?}"
        );
    }
    assert_eq!(client.get("/").await.status, StatusCode::OK);
    assert_eq!(
        target.stats().by_status.get(&400).copied(),
        Some(cases.len() as u64)
    );
    within("shutdown", target.shutdown()).await;
}

#[tokio::test]
async fn a_request_sent_during_a_stall_completes_after_it() {
    let target = start(false).await;
    let control = Client::http1(tcp(&target).await).await;
    let client = Client::http1(tcp(&target).await).await;

    let started = Instant::now();
    let reply = control
        .send(Method::POST, "/__kpress/stall?for=500ms", &[], Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let stalled = tokio::spawn(async move {
        let reply = client.get("/during-stall").await;
        (reply.status, started.elapsed())
    });

    // Control endpoints still answer, which is how a test can watch a stalled target.
    let reply = control.get("/__kpress/stats").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!stalled.is_finished(), "the stalled request answered early");

    let (status, elapsed) = within("stalled request", stalled).await.expect("task");
    assert_eq!(status, StatusCode::OK);
    assert!(elapsed >= ms(500), "{elapsed:?}");
    within("shutdown", target.shutdown()).await;
}

#[tokio::test]
async fn a_stall_holds_responses_already_in_flight() {
    let target = start(false).await;
    let client = Client::http2(tcp(&target).await).await;
    let started = Instant::now();
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.get("/?delay=200ms").await.status }
    });
    tokio::time::sleep(ms(50)).await;
    target.stall(ms(500));
    // A shorter stall does not cut the longer one short.
    target.stall(ms(100));
    let status = within("in-flight request", in_flight).await.expect("task");
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= ms(550), "{:?}", started.elapsed());

    // Once the stall is over, responses flow again.
    let started = Instant::now();
    assert_eq!(client.get("/").await.status, StatusCode::OK);
    assert!(started.elapsed() < ms(500), "{:?}", started.elapsed());
    within("shutdown", target.shutdown()).await;
}

#[tokio::test]
async fn stats_count_what_was_served() {
    let target = start(false).await;
    assert_eq!(target.stats(), TargetStats::default());
    let client = Client::http1(tcp(&target).await).await;

    let upload = Bytes::from(vec![b'u'; 1000]);
    let replies = [
        client.send(Method::POST, "/?size=500", &[], upload).await,
        client.get("/?status=404").await,
        client.get("/?delay=abc").await,
        client.get("/").await,
    ];
    let head = client
        .send(Method::HEAD, "/?size=10", &[], Bytes::new())
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());

    let stats = target.stats();
    assert_eq!(stats.requests, 5);
    assert_eq!(
        stats.by_status.into_iter().collect::<Vec<_>>(),
        [(200, 3), (400, 1), (404, 1)]
    );
    assert_eq!(stats.bytes_received, 1000);
    let sent: usize = replies.iter().map(|reply| reply.body.len()).sum();
    assert_eq!(stats.bytes_sent, sent as u64);
    assert_eq!(stats.connections, 1);

    let reply = client.get("/__kpress/stats").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers.get(CONTENT_TYPE).unwrap(), "application/json");
    let served: TargetStats = serde_json::from_slice(&reply.body).expect("stats JSON");
    assert_eq!(served, target.stats(), "control endpoints are not counted");
    within("shutdown", target.shutdown()).await;
}

#[tokio::test]
async fn control_endpoints_refuse_what_they_do_not_know() {
    let target = start(false).await;
    let client = Client::http1(tcp(&target).await).await;
    let reply = client.get("/__kpress/nothing").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = client.get("/__kpress/stall?for=1s").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers.get(ALLOW).unwrap(), "POST");
    let reply = client
        .send(Method::DELETE, "/__kpress/stats", &[], Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    for bad in [
        "/__kpress/stall",
        "/__kpress/stall?for=soon",
        "/__kpress/stall?for=2h",
    ] {
        let reply = client.send(Method::POST, bad, &[], Bytes::new()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // None of that stalled the target.
    let started = Instant::now();
    assert_eq!(client.get("/").await.status, StatusCode::OK);
    assert!(started.elapsed() < ms(500), "{:?}", started.elapsed());
    assert_eq!(target.stats().requests, 1);
    within("shutdown", target.shutdown()).await;
}

#[tokio::test]
async fn binding_a_busy_address_names_it() {
    let target = start(false).await;
    let addr: SocketAddr = target.local_addr();
    match Target::start(addr, TargetOptions::default()).await {
        Err(error @ TargetError::Bind { .. }) => {
            assert!(error.to_string().contains(&addr.to_string()), "{error}");
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
    within("shutdown", target.shutdown()).await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_then_stops_listening() {
    let target = start(false).await;
    let addr = target.local_addr();
    let client = Client::http1(tcp(&target).await).await;
    let in_flight = tokio::spawn(async move { client.get("/?delay=300ms").await.status });
    tokio::time::sleep(ms(50)).await;
    let started = Instant::now();
    within("shutdown", target.shutdown()).await;
    assert!(started.elapsed() >= ms(200), "{:?}", started.elapsed());
    let status = within("in-flight request", in_flight).await.expect("task");
    assert_eq!(status, StatusCode::OK);
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
}
