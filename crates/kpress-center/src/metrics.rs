//! `/metrics` in Prometheus's text format: the runs in the store by status, and for
//! every running run its totals so far and its latest complete second (the second
//! every reporting runner has sent), so a dashboard follows a test live.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use kpress_engine::metrics::histogram;
use kpress_report::wire::RunStatus;

use crate::auth;
use crate::error::ApiError;
use crate::routes::{route, Route, Verb};
use crate::state::AppState;
use crate::store::LiveRun;
use crate::store::StoreError;
use crate::timeline::Second;

pub fn routes() -> Vec<Route> {
    vec![route(Verb::Get, "/metrics", metrics)]
}

const CONTENT: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if !state.metrics_public() {
        auth::require_center(&headers, &state).await?;
    }
    let counts = state.store().status_counts().await?;
    let live = state.store().live_runs().await?;
    let text = tokio::task::spawn_blocking(move || render(&counts, &live))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::from)?;
    Ok(([(CONTENT_TYPE, CONTENT)], text).into_response())
}

/// The exposition text.
pub fn render(counts: &[(RunStatus, u64)], live: &[LiveRun]) -> Result<String, StoreError> {
    let mut out = String::new();
    family(
        &mut out,
        "kpress_center_runs",
        "gauge",
        "Runs in the store by status.",
    );
    for (status, n) in counts {
        let _ = writeln!(
            out,
            "kpress_center_runs{{status=\"{}\"}} {n}",
            crate::store::status_name(*status)
        );
    }
    let mut seconds = Vec::with_capacity(live.len());
    for run in live {
        let second = Second::of(&run.latest)
            .map_err(|e| StoreError::Corrupt(format!("run {}: stored point: {e}", run.id)))?;
        seconds.push(second);
    }
    family(
        &mut out,
        "kpress_run_requests_total",
        "counter",
        "Requests a running run's runners have reported so far.",
    );
    for run in live {
        let _ = writeln!(
            out,
            "kpress_run_requests_total{{{}}} {}",
            labels(run),
            run.requests
        );
    }
    family(
        &mut out,
        "kpress_run_failed_requests_total",
        "counter",
        "Failed requests a running run's runners have reported so far.",
    );
    for run in live {
        let _ = writeln!(
            out,
            "kpress_run_failed_requests_total{{{}}} {}",
            labels(run),
            run.failed
        );
    }
    family(
        &mut out,
        "kpress_run_vus",
        "gauge",
        "VUs of a running run in its latest complete second.",
    );
    for (run, second) in live.iter().zip(&seconds) {
        let _ = writeln!(
            out,
            "kpress_run_vus{{{}}} {}",
            labels(run),
            second.metrics.vus.value
        );
    }
    family(
        &mut out,
        "kpress_run_http_req_duration_seconds",
        "gauge",
        "Corrected request duration quantiles of a running run's latest complete second.",
    );
    for (run, second) in live.iter().zip(&seconds) {
        for (q, p) in [("0.5", 50.0), ("0.95", 95.0), ("0.99", 99.0)] {
            let seconds = histogram::percentile_ms(&second.metrics.duration, p) / 1000.0;
            let _ = writeln!(
                out,
                "kpress_run_http_req_duration_seconds{{{},quantile=\"{q}\"}} {seconds}",
                labels(run)
            );
        }
    }
    Ok(out)
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn labels(run: &LiveRun) -> String {
    format!(
        "app=\"{}\",test=\"{}\",run=\"{}\"",
        escape(run.app.as_deref().unwrap_or("")),
        escape(&run.test),
        escape(&run.id)
    )
}

/// A label value as the text format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("two\nlines"), "two\\nlines");
    }

    #[test]
    fn a_run_without_points_reports_zeros() {
        let run = LiveRun {
            id: "r1".into(),
            test: "t".into(),
            app: None,
            requests: 0,
            failed: 0,
            latest: Vec::new(),
        };
        let text = render(&[(RunStatus::Running, 1)], &[run]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            text.contains("kpress_center_runs{status=\"running\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("kpress_run_vus{app=\"\",test=\"t\",run=\"r1\"} 0\n"),
            "{text}"
        );
        assert!(text.contains(
            "kpress_run_http_req_duration_seconds{app=\"\",test=\"t\",run=\"r1\",quantile=\"0.99\"} 0\n"
        ));
    }
}
