//! HTTP/1.1, h2c, TLS with ALPN, timeouts and failure classes, against real servers.

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::support::{run_yaml, TestTarget};

fn yaml(url: &str, defaults: &str, request: &str, iterations: u64) -> String {
    format!(
        "name: proto\ndefaults: {{ baseUrl: '{url}'{defaults} }}\nscenarios:\n  s:\n    executor: per-vu-iterations\n    vus: 2\n    iterations: {iterations}\n    requests:\n      - {request}\n"
    )
}

#[test]
fn http1_h2c_and_tls_all_complete() {
    let plain = TestTarget::start(false);
    let tls = TestTarget::start(true);
    let cases = [
        (&plain.url, ""),
        (&plain.url, ", httpVersion: '1.1'"),
        (&plain.url, ", httpVersion: '2'"),
        (&tls.url, ", insecureSkipTLSVerify: true"),
        (
            &tls.url,
            ", insecureSkipTLSVerify: true, httpVersion: '1.1'",
        ),
        (&tls.url, ", insecureSkipTLSVerify: true, httpVersion: '2'"),
    ];
    for (url, defaults) in cases {
        let (summary, _) = run_yaml(&yaml(url, defaults, "'POST /?size=5000'", 10), 1);
        let m = &summary.metrics;
        assert_eq!(
            (m.http_reqs.count, m.http_req_failed.fails),
            (20, 0),
            "{url} {defaults}: {:?}",
            summary.errors
        );
        assert!(
            m.data_received.count >= 20 * 5000,
            "{url} {defaults}: {}",
            m.data_received.count
        );
    }
}

#[test]
fn tls_is_verified_unless_told_otherwise() {
    let tls = TestTarget::start(true);
    let (summary, _) = run_yaml(&yaml(&tls.url, "", "GET /", 3), 1);
    assert_eq!(
        summary.errors.get("tls error"),
        Some(&6),
        "{:?}",
        summary.errors
    );
}

#[test]
fn http2_is_really_spoken_when_asked() {
    // A server that only speaks HTTP/1.1: an h2c client must fail against it.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        }
    });
    let (summary, _) = run_yaml(
        &yaml(&format!("http://{addr}"), ", httpVersion: '2'", "GET /", 1),
        1,
    );
    let _ = server.join();
    assert_eq!(
        summary.metrics.http_req_failed.fails, 2,
        "{:?}",
        summary.errors
    );
    assert!(
        !summary.errors.contains_key("status 400"),
        "h2 must not parse an HTTP/1.1 answer: {:?}",
        summary.errors
    );
}

#[test]
fn failures_are_classified() {
    let plain = TestTarget::start(false);
    let cases: &[(&str, &str, &str)] = &[
        ("'GET /?delay=1s'", ", timeout: 200ms", "timeout"),
        ("'GET /?status=503'", "", "status 503"),
        (
            "{ method: GET, url: /, expect: { status: 201 } }",
            "",
            "status 200",
        ),
    ];
    for (request, defaults, class) in cases {
        let (summary, _) = run_yaml(&yaml(&plain.url, defaults, request, 2), 1);

        assert_eq!(
            summary.errors.get(*class),
            Some(&4),
            "{request}: {:?}",
            summary.errors
        );
        assert_eq!(summary.metrics.http_req_failed.rate, 1.0);
    }
    let (summary, _) = run_yaml(&yaml(&plain.url, "", "'GET /?close=1'", 5), 1);
    assert_eq!(
        summary.metrics.http_req_failed.fails, 0,
        "connection: close is handled: {:?}",
        summary.errors
    );
    let (summary, _) = run_yaml(
        &yaml(&plain.url, ", noConnectionReuse: true", "GET /", 5),
        1,
    );
    assert_eq!(
        summary.metrics.http_req_failed.fails, 0,
        "{:?}",
        summary.errors
    );
}

#[test]
fn a_private_ca_is_trusted_through_tls_ca_certs() {
    let tls = TestTarget::start(true);
    let pem = tls.certificate_pem().replace('\n', "\\n");
    let (summary, _) = run_yaml(
        &yaml(&tls.url, &format!(", tlsCACerts: \"{pem}\""), "GET /", 3),
        1,
    );
    assert_eq!(
        summary.metrics.http_req_failed.fails, 0,
        "verified against the given CA: {:?}",
        summary.errors
    );
    assert_eq!(summary.metrics.http_reqs.count, 6);
    let bad = kpress_engine::scenario::parse(
        "t.yaml",
        &yaml(&tls.url, ", tlsCACerts: 'not a certificate'", "GET /", 1),
        &[],
    );
    let err = bad.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("defaults.tlsCACerts"), "{err}");
}

#[test]
fn each_request_times_out_at_its_own_deadline() {
    // A VU keeps one timeout timer across its requests. It must fire at each request's
    // own deadline: not at an earlier request's (a 100 ms request then a 250 ms one,
    // both allowed 300 ms, both succeed), and not at a later one (a request allowed
    // 200 ms after one allowed 5 s still times out, though its answer comes at 1 s).
    let plain = TestTarget::start(false);
    let iteration = |requests: &str| {
        format!(
            "name: t\ndefaults: {{ baseUrl: '{}' }}\nscenarios:\n  s:\n    executor: per-vu-iterations\n    vus: 2\n    iterations: 3\n    requests:\n{requests}",
            plain.url
        )
    };
    let early = iteration(
        "      - { url: '/?delay=100ms', timeout: 300ms }\n      - { url: '/?delay=250ms', timeout: 300ms }\n",
    );
    let (summary, _) = run_yaml(&early, 1);
    assert_eq!(summary.metrics.http_reqs.count, 12);
    assert_eq!(
        summary.metrics.http_req_failed.fails, 0,
        "timed out early: {:?}",
        summary.errors
    );

    let late = iteration(
        "      - { url: '/', timeout: 5s }\n      - { url: '/?delay=1s', timeout: 200ms }\n",
    );
    let (summary, _) = run_yaml(&late, 1);
    assert_eq!(
        summary.errors.get("timeout"),
        Some(&6),
        "{:?}",
        summary.errors
    );
    assert_eq!(summary.metrics.http_req_failed.fails, 6);
    assert!(
        summary.metrics.http_req_duration.max < 900.0,
        "the slowest request took {} ms: the 200 ms timeout fired late",
        summary.metrics.http_req_duration.max
    );
}
