//! `run_forever` as the CLI uses it: serving until SIGTERM, then returning. It sends a signal
//! to its own process, so it lives in a test binary of its own.

use std::net::SocketAddr;
use std::time::Duration;

use kpress_target::{run_forever, TargetError, TargetOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

/// A port that was free a moment ago, since `run_forever` does not say which port 0 picked.
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_until_sigterm_then_returns() {
    let addr = free_addr();
    let server = tokio::spawn(run_forever(addr, TargetOptions::default()));

    let mut stream = tokio::time::timeout(WAIT, async {
        loop {
            match TcpStream::connect(addr).await {
                Ok(stream) => break stream,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await
    .expect("the target listens");
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(response.ends_with(b"\r\n\r\nok\n"));

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let stopped = tokio::time::timeout(WAIT, server)
        .await
        .expect("run_forever returns after SIGTERM")
        .expect("task");
    assert!(stopped.is_ok(), "{stopped:?}");
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
}

#[tokio::test]
async fn a_busy_address_is_an_error_not_a_hang() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("address");
    let result = tokio::time::timeout(WAIT, run_forever(addr, TargetOptions::default()))
        .await
        .expect("run_forever gives up at once");
    assert!(
        matches!(result, Err(TargetError::Bind { addr: failed, .. }) if failed == addr),
        "{result:?}"
    );
}
