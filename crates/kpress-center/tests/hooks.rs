//! Clean-up hooks: parsing `--hook` values, and running webhooks against a local server
//! and commands through `sh`, with millisecond retry pauses and every wait bounded.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use kpress_center::hooks::{run_all, Action, Hook, HookInput, HookOutcome, RetryPolicy};
use serde_json::Value;

/// Fast: pauses of 10, 20, 40 ms.
fn policy(attempts: u32, timeout: Duration) -> RetryPolicy {
    RetryPolicy {
        attempts,
        first_pause: Duration::from_millis(10),
        max_pause: Duration::from_millis(40),
        timeout,
    }
}

fn input() -> HookInput {
    HookInput {
        run: "r-17".into(),
        test: "checkout".into(),
        app: Some("tenc-app=press-client-148-online".into()),
        namespace: "load".into(),
        deployment: "kpress-r-17".into(),
        status: "passed".into(),
        labels: BTreeMap::from([
            ("kpress.io/job".to_string(), "kpress-x".to_string()),
            ("team".to_string(), "payments".to_string()),
        ]),
    }
}

fn webhook(name: &str, url: &str) -> Hook {
    Hook {
        name: name.into(),
        action: Action::Webhook(url.into()),
    }
}

/// `sh -c SCRIPT sh ARGS...`: the script sees ARGS as `$1`...
fn script(name: &str, script: &str, args: &[&Path]) -> Hook {
    let mut argv = vec!["sh".to_string(), "-c".into(), script.into(), "sh".into()];
    argv.extend(args.iter().map(|a| a.display().to_string()));
    Hook {
        name: name.into(),
        action: Action::Command(argv),
    }
}

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("finished in time")
}

async fn run_one(hook: Hook, policy: RetryPolicy) -> HookOutcome {
    let mut outcomes = bounded(run_all(&[hook], &input(), policy)).await;
    assert_eq!(outcomes.len(), 1);
    outcomes.remove(0)
}

/// What a webhook server received.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A webhook server on a free port answering `statuses` in turn, then the last one
/// again; returns its URL and what it received.
async fn serve(statuses: Vec<u16>) -> (String, Received) {
    let received: Received = Arc::default();
    let seen = Arc::clone(&received);
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let seen = Arc::clone(&seen);
            let statuses = statuses.clone();
            async move {
                let mut seen = seen.lock().expect("lock");
                seen.push((headers, body));
                let status = statuses
                    .get(seen.len() - 1)
                    .or(statuses.last())
                    .copied()
                    .unwrap_or(200);
                (
                    StatusCode::from_u16(status).expect("status"),
                    format!("answer {}", seen.len()),
                )
            }
        }),
    );
    (listen(app).await, received)
}

/// Serves `app` on a free loopback port; returns its `/hook` URL.
async fn listen(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

fn assert_finished_now(outcome: &HookOutcome) {
    let at = humantime::parse_rfc3339(&outcome.finished)
        .unwrap_or_else(|e| panic!("`{}` is not RFC 3339: {e}", outcome.finished));
    let age = std::time::SystemTime::now()
        .duration_since(at)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(60), "{outcome:?}");
}

#[test]
fn hooks_parse_from_their_flags() {
    let parse = |s: &str| s.parse::<Hook>().unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(
        parse("dns=http://127.0.0.1:8080/clean"),
        webhook("dns", "http://127.0.0.1:8080/clean")
    );
    assert_eq!(
        parse("registry-2=https://registry.example/x?token=a=b"),
        webhook("registry-2", "https://registry.example/x?token=a=b")
    );
    assert_eq!(
        parse("domains=cmd:/usr/local/bin/clean-domains  --zone\tprod x"),
        Hook {
            name: "domains".into(),
            action: Action::Command(vec![
                "/usr/local/bin/clean-domains".into(),
                "--zone".into(),
                "prod".into(),
                "x".into(),
            ]),
        }
    );
    let longest = "a".repeat(63);
    assert_eq!(parse(&format!("{longest}=cmd:true")).name, longest);
}

#[test]
fn bad_hook_flags_say_what_is_wrong() {
    let cases = [
        ("dns", "has no `=`"),
        ("=http://x", "the hook name `` must be 1 to 63"),
        ("DNS=http://x", "the hook name `DNS` must be"),
        ("dns_1=http://x", "the hook name `dns_1`"),
        (
            &format!("{}=http://x", "a".repeat(64)),
            "1 to 63 characters",
        ),
        ("dns=", "the hook `dns` says nothing to do"),
        (
            "dns=ftp://x/y",
            "must be an http:// or https:// URL or cmd:",
        ),
        ("dns=/usr/bin/clean", "not `/usr/bin/clean`"),
        ("dns=http://", "the hook `dns` has a bad URL `http://`"),
        ("dns=https://exa mple.com/", "has a bad URL"),
        ("dns=cmd:", "the hook `dns` has `cmd:` but no program"),
        ("dns=cmd:   ", "but no program"),
    ];
    for (spec, expected) in cases {
        match spec.parse::<Hook>() {
            Ok(hook) => panic!("`{spec}` was accepted: {hook:?}"),
            Err(e) => assert!(
                e.to_string().contains(expected),
                "`{spec}`: `{e}` does not say `{expected}`"
            ),
        }
    }
}

#[tokio::test]
async fn a_webhook_is_retried_until_it_succeeds() {
    let (url, received) = serve(vec![503, 503, 204]).await;
    let outcome = run_one(webhook("dns", &url), policy(5, Duration::from_secs(10))).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.name, "dns");
    assert_eq!(outcome.attempts, 3);
    assert_eq!(outcome.error, None);
    assert_finished_now(&outcome);

    let received = received.lock().expect("lock");
    assert_eq!(received.len(), 3);
    let expected = serde_json::to_value(input()).expect("json");
    for (headers, body) in received.iter() {
        let body: Value = serde_json::from_slice(body).expect("a JSON body");
        assert_eq!(body, expected);
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header("x-kpress-event"), Some("cleanup"));
        assert_eq!(header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn a_webhook_refusing_the_call_is_not_retried() {
    let (url, received) = serve(vec![400]).await;
    let outcome = run_one(webhook("dns", &url), policy(5, Duration::from_secs(10))).await;
    assert!(!outcome.ok);
    assert_eq!(outcome.attempts, 1);
    assert_eq!(
        outcome.error.as_deref(),
        Some("HTTP 400 Bad Request: answer 1")
    );
    assert_eq!(received.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn a_webhook_overloaded_or_slow_is_retried_to_the_end() {
    let (url, received) = serve(vec![429, 408, 500]).await;
    let outcome = run_one(webhook("dns", &url), policy(4, Duration::from_secs(10))).await;
    assert!(!outcome.ok);
    assert_eq!(outcome.attempts, 4);
    assert_eq!(
        outcome.error.as_deref(),
        Some("HTTP 500 Internal Server Error: answer 4")
    );
    assert_eq!(received.lock().expect("lock").len(), 4);
}

/// A webhook server that answers 503 with `Retry-After: RETRY_AFTER` and then 204;
/// returns its URL and when each call arrived.
async fn serve_throttled(retry_after: &'static str) -> (String, Arc<Mutex<Vec<Instant>>>) {
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = Arc::clone(&arrivals);
    let app = Router::new().route(
        "/hook",
        post(move || {
            let seen = Arc::clone(&seen);
            async move {
                let mut seen = seen.lock().expect("lock");
                seen.push(Instant::now());
                if seen.len() == 1 {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [("retry-after", retry_after)],
                    )
                } else {
                    (StatusCode::NO_CONTENT, [("retry-after", "0")])
                }
            }
        }),
    );
    (listen(app).await, arrivals)
}

fn gap_between_calls(arrivals: &Mutex<Vec<Instant>>) -> Duration {
    let arrivals = arrivals.lock().expect("lock");
    arrivals[1] - arrivals[0]
}

#[tokio::test]
async fn a_webhook_asking_to_retry_later_is_retried_when_it_said() {
    let patient = RetryPolicy {
        max_pause: Duration::from_secs(5),
        ..policy(3, Duration::from_secs(10))
    };
    let (url, arrivals) = serve_throttled("1").await;
    let outcome = run_one(webhook("dns", &url), patient).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.attempts, 2);
    let gap = gap_between_calls(&arrivals);
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}, not 1 s"
    );

    // Never longer than the policy's longest pause, whatever the hook asks.
    let (url, arrivals) = serve_throttled("86400").await;
    let outcome = run_one(webhook("dns", &url), policy(3, Duration::from_secs(10))).await;
    assert!(outcome.ok, "{outcome:?}");
    let gap = gap_between_calls(&arrivals);
    assert!(gap < Duration::from_secs(5), "waited {gap:?}");

    // A date in the past, or a value that is neither, means the usual pause.
    for value in ["Wed, 21 Oct 2015 07:28:00 GMT", "soon"] {
        let (url, _) = serve_throttled(value).await;
        let outcome = run_one(webhook("dns", &url), policy(3, Duration::from_secs(10))).await;
        assert!(outcome.ok, "{value}: {outcome:?}");
        assert_eq!(outcome.attempts, 2, "{value}");
    }
}

#[tokio::test]
async fn a_webhook_that_is_not_listening_fails_after_every_attempt() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}/hook?secret=s3cr3t");
    let outcome = run_one(webhook("dns", &url), policy(3, Duration::from_secs(10))).await;
    assert!(!outcome.ok);
    assert_eq!(outcome.attempts, 3);
    let error = outcome.error.expect("an error");
    assert!(error.to_lowercase().contains("connect"), "{error}");
    assert!(!error.contains("s3cr3t"), "the URL is kept out: {error}");
}

#[tokio::test]
async fn a_command_gets_the_input_on_stdin_and_in_its_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = script(
        "registry",
        r#"cat > "$1/input.json" && env > "$1/env.txt""#,
        &[dir.path()],
    );
    let outcome = run_one(hook, policy(3, Duration::from_secs(10))).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.attempts, 1);
    assert_finished_now(&outcome);

    let json = std::fs::read(dir.path().join("input.json")).expect("input.json");
    let json: HookInput = serde_json::from_slice(&json).expect("the input as JSON");
    assert_eq!(json, input());
    let env = std::fs::read_to_string(dir.path().join("env.txt")).expect("env.txt");
    let env: Vec<&str> = env.lines().collect();
    for line in [
        "KPRESS_RUN=r-17",
        "KPRESS_TEST=checkout",
        "KPRESS_APP=tenc-app=press-client-148-online",
        "KPRESS_NAMESPACE=load",
        "KPRESS_DEPLOYMENT=kpress-r-17",
        "KPRESS_STATUS=passed",
        "KPRESS_LABEL_KPRESS_IO_JOB=kpress-x",
        "KPRESS_LABEL_TEAM=payments",
    ] {
        assert!(env.contains(&line), "`{line}` missing from {env:?}");
    }
    assert!(
        env.iter().any(|l| l.starts_with("PATH=")),
        "the center's environment is kept"
    );
}

#[tokio::test]
async fn a_command_without_an_app_gets_it_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = script("registry", r#"env > "$1/env.txt""#, &[dir.path()]);
    let input = HookInput {
        app: None,
        ..input()
    };
    let outcomes = bounded(run_all(&[hook], &input, policy(1, Duration::from_secs(10)))).await;
    assert!(outcomes[0].ok, "{outcomes:?}");
    let env = std::fs::read_to_string(dir.path().join("env.txt")).expect("env.txt");
    assert!(env.lines().any(|l| l == "KPRESS_APP="), "{env}");
}

#[tokio::test]
async fn a_command_is_retried_until_it_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("tried");
    let hook = script(
        "dns",
        r#"if [ -e "$1" ]; then exit 0; fi; touch "$1"; echo "zone busy" >&2; exit 3"#,
        &[&marker],
    );
    let outcome = run_one(hook, policy(5, Duration::from_secs(10))).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.attempts, 2);
    assert_eq!(outcome.error, None);
}

#[tokio::test]
async fn a_failing_command_reports_its_exit_code_and_the_end_of_its_stderr() {
    let hook = script(
        "dns",
        concat!(
            "yes noise-noise | head -n 100 | tr '\\n' ' ' >&2; ",
            r#"echo "the zone is locked" >&2; exit 7"#,
        ),
        &[],
    );
    let outcome = run_one(hook, policy(2, Duration::from_secs(10))).await;
    assert!(!outcome.ok);
    assert_eq!(outcome.attempts, 2);
    let error = outcome.error.expect("an error");
    assert!(error.starts_with("`sh` exited with code 7: "), "{error}");
    assert!(error.ends_with("noise-noise the zone is locked"), "{error}");
    assert!(
        error.len() <= "`sh` exited with code 7: ".len() + 200,
        "{error}"
    );
}

#[tokio::test]
async fn a_command_that_does_not_exist_is_not_retried() {
    let hook = Hook {
        name: "dns".into(),
        action: Action::Command(vec!["/nonexistent/kpress-clean-dns".into(), "x".into()]),
    };
    let outcome = run_one(hook, policy(5, Duration::from_secs(10))).await;
    assert!(!outcome.ok);
    assert_eq!(outcome.attempts, 1);
    let error = outcome.error.expect("an error");
    assert!(
        error.contains("`/nonexistent/kpress-clean-dns` cannot be found"),
        "{error}"
    );
}

#[tokio::test]
async fn a_command_past_its_timeout_is_killed_and_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let hook = script("dns", r#"echo $$ >> "$1"; exec sleep 30"#, &[&pids]);
    let started = Instant::now();
    let outcome = run_one(hook, policy(3, Duration::from_millis(300))).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not waited out"
    );
    assert!(!outcome.ok);
    assert_eq!(outcome.attempts, 3);
    assert_eq!(
        outcome.error.as_deref(),
        Some("did not finish within 300ms, so it was killed")
    );

    let pids = std::fs::read_to_string(&pids).expect("pids");
    let pids: Vec<&str> = pids.lines().collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
    for pid in pids {
        let gone = || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // Killed but not yet reaped.
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z')),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone() {
            assert!(Instant::now() < deadline, "process {pid} still runs");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn hooks_run_together_and_report_in_their_order() {
    let (url, _) = serve(vec![204]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    // Each waits (up to 5 s) for the other to start: run one after the other, the
    // first would fail.
    let meet = concat!(
        r#"touch "$1"; i=0; while [ ! -e "$2" ]; do "#,
        r#"i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.05; done"#,
    );
    let hooks = [
        script("first", meet, &[&a, &b]),
        webhook("dns", &url),
        script("failing", "exit 1", &[]),
        script("second", meet, &[&b, &a]),
    ];
    let outcomes = bounded(run_all(
        &hooks,
        &input(),
        policy(1, Duration::from_secs(10)),
    ))
    .await;
    let summary: Vec<(&str, bool)> = outcomes.iter().map(|o| (o.name.as_str(), o.ok)).collect();
    assert_eq!(
        summary,
        [
            ("first", true),
            ("dns", true),
            ("failing", false),
            ("second", true)
        ]
    );
    assert!(bounded(run_all(&[], &input(), RetryPolicy::default()))
        .await
        .is_empty());
}

#[tokio::test]
async fn zero_attempts_means_one() {
    let (url, received) = serve(vec![503]).await;
    let outcome = run_one(webhook("dns", &url), policy(0, Duration::from_secs(10))).await;
    assert!(!outcome.ok);
    assert_eq!(outcome.attempts, 1);
    assert_eq!(received.lock().expect("lock").len(), 1);
}

#[test]
fn the_default_policy_tries_five_times_over_a_bounded_time() {
    let p = RetryPolicy::default();
    assert_eq!(p.attempts, 5);
    assert_eq!(p.first_pause, Duration::from_secs(1));
    assert_eq!(p.max_pause, Duration::from_secs(30));
    assert_eq!(p.timeout, Duration::from_secs(30));
}

#[test]
fn an_outcome_is_recorded_as_json() {
    let outcome = HookOutcome {
        name: "dns".into(),
        ok: false,
        attempts: 2,
        error: Some("HTTP 400 Bad Request".into()),
        finished: "2026-01-02T03:04:05Z".into(),
    };
    let json = serde_json::to_value(&outcome).expect("json");
    assert_eq!(
        json,
        serde_json::json!({"name": "dns", "ok": false, "attempts": 2,
            "error": "HTTP 400 Bad Request", "finished": "2026-01-02T03:04:05Z"})
    );
    assert_eq!(
        serde_json::from_value::<HookOutcome>(json).expect("back"),
        outcome
    );
}
