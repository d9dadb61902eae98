//! The center over a real socket: `Server` on 127.0.0.1 and a free port, a real HTTP
//! client, and a graceful shutdown.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use kpress_center::{Config, Error, Server};
use serde_json::{json, Value};

use crate::support::{create_body, TOKEN};

async fn call(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {TOKEN}"));
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let payload = body
        .map(|b| serde_json::to_vec(b).expect("json"))
        .unwrap_or_default();
    let response = tokio::time::timeout(
        Duration::from_secs(30),
        client.request(req.body(Full::new(Bytes::from(payload))).expect("request")),
    )
    .await
    .expect("answered in time")
    .expect("answered");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn serves_over_a_socket_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::new(
        format!("sqlite://{}", dir.path().join("c.db").display()),
        TOKEN,
    );
    config.listen = "127.0.0.1:0".parse().expect("addr");
    let server = Server::bind(&config).await.expect("binds");
    let addr = server.local_addr().expect("addr");
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let client = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{addr}");
    assert_eq!(
        call(&client, "GET", &format!("{base}/healthz"), None).await,
        (200, json!({"status": "ok"}))
    );
    let (status, created) = call(
        &client,
        "POST",
        &format!("{base}/api/runs"),
        Some(&create_body("sock", "t", 1)),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, list) = call(&client, "GET", &format!("{base}/api/runs"), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["runs"][0]["id"], "sock");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), serving)
        .await
        .expect("stops in time")
        .expect("joins")
        .expect("stops cleanly");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the port is closed after the shutdown"
    );
}

#[tokio::test]
async fn refuses_to_start_without_a_token_or_with_a_bad_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let mut config = Config::new(db.clone(), "");
    config.listen = "127.0.0.1:0".parse().expect("addr");
    assert!(matches!(Server::bind(&config).await, Err(Error::NoToken)));
    assert!(
        !dir.path().join("c.db").exists(),
        "nothing is created without a token"
    );
    config.token = TOKEN.into();
    config.db = "mysql://localhost/x".into();
    let e = Server::bind(&config).await.err().expect("refused");
    assert!(e.to_string().contains("sqlite://"), "{e}");
    config.db = format!("sqlite://{}/missing-dir/c.db", dir.path().display());
    assert!(matches!(Server::bind(&config).await, Err(Error::Store(_))));
}
