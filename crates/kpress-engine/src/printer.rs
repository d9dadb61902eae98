//! The end-of-test summary for humans: metrics with their percentiles, errors by
//! class, thresholds with ✓/✗. Built from the summary JSON, so a merged result prints
//! exactly like a local one.

use std::fmt::Write;

use crate::summary::{Counter, GaugeSummary, Status, Summary, Trend};
use crate::threshold::{Metric, MetricKind};

/// Renders `s` as the text kpress prints at the end of a test.
pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let m = &s.metrics;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  {} · run {} · {} · {:.1}s · {}",
        s.test,
        s.run,
        s.segment,
        s.duration_s,
        status_text(s.status)
    );
    if let Some(reason) = &s.stop_reason {
        let _ = writeln!(out, "  stopped early: {reason}");
    }
    if !s.missing_segments.is_empty() {
        let _ = writeln!(
            out,
            "  MISSING runner results: {} (the numbers below lack them)",
            s.missing_segments.join(", ")
        );
    }
    if let Some(skew) = s.start_skew_ms {
        let _ = writeln!(out, "  runners started within {skew:.0} ms of each other");
    }
    let _ = writeln!(out);
    row(&mut out, "http_reqs", &counter(&m.http_reqs, ""));
    row(
        &mut out,
        "http_req_failed",
        &format!(
            "{:.2}%  {} failed, {} ok",
            m.http_req_failed.rate * 100.0,
            m.http_req_failed.fails,
            m.http_req_failed.passes
        ),
    );
    row(&mut out, "http_req_duration", &trend(&m.http_req_duration));
    row(
        &mut out,
        "  service (sent→done)",
        &trend(&m.http_req_service_duration),
    );
    row(
        &mut out,
        "  send lag (due→sent)",
        &trend(&m.http_req_send_lag),
    );
    row(&mut out, "iterations", &counter(&m.iterations, ""));
    row(
        &mut out,
        "dropped_iterations",
        &counter(&m.dropped_iterations, ""),
    );
    row(&mut out, "data_sent", &bytes(&m.data_sent));
    row(&mut out, "data_received", &bytes(&m.data_received));
    row(&mut out, "vus", &gauge(&m.vus));
    row(&mut out, "vus_max", &gauge(&m.vus_max));
    if !s.errors.is_empty() {
        let _ = writeln!(out, "\n  errors");
        let mut errors: Vec<_> = s.errors.iter().collect();
        errors.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (class, n) in errors {
            let _ = writeln!(out, "    {class:.<32} {n}");
        }
    }
    if !s.thresholds.is_empty() {
        let _ = writeln!(out, "\n  thresholds");
        for (metric, list) in &s.thresholds {
            for t in list {
                let (mark, actual) = match (t.ok, t.actual) {
                    (Some(true), Some(a)) => ("✓", format!("  ({})", actual(metric, a))),
                    (Some(false), Some(a)) => ("✗", format!("  ({})", actual(metric, a))),
                    _ => ("·", "  (judged after the merge)".to_string()),
                };
                let _ = writeln!(out, "    {mark} {metric} {}{actual}", t.expr);
            }
        }
    }
    out
}

fn gauge(g: &GaugeSummary) -> String {
    format!("max {} (min {}, at the end {})", g.max, g.min, g.value)
}

/// A threshold's compared value in its metric's unit.
fn actual(metric: &str, v: f64) -> String {
    match Metric::from_name(metric).map(Metric::kind) {
        Ok(MetricKind::Trend) => ms(v),
        Ok(MetricKind::Rate) => format!("{:.2}%", v * 100.0),
        _ => number(v),
    }
}

fn status_text(status: Status) -> &'static str {
    match status {
        Status::Passed => "passed",
        Status::ThresholdsFailed => "THRESHOLDS FAILED",
        Status::Completed => "completed (thresholds are judged on the merged result)",
        Status::Interrupted => "INTERRUPTED",
        Status::Aborted => "ABORTED by a threshold",
        Status::Partial => "PARTIAL",
    }
}

fn row(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(out, "  {name:.<28} {value}");
}

fn counter(c: &Counter, unit: &str) -> String {
    format!("{}{unit}  {:.1}/s", c.count, c.rate)
}

fn bytes(c: &Counter) -> String {
    format!("{}  {}/s", human_bytes(c.count as f64), human_bytes(c.rate))
}

fn human_bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = v;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else if v >= 1.0 {
        format!("{v:.2}ms")
    } else {
        format!("{:.0}µs", v * 1000.0)
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

fn trend(t: &Trend) -> String {
    format!(
        "avg={} min={} med={} p90={} p95={} p99={} p99.9={} max={}",
        ms(t.mean),
        ms(t.min),
        ms(t.p50),
        ms(t.p90),
        ms(t.p95),
        ms(t.p99),
        ms(t.p99_9),
        ms(t.max)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_units() {
        assert_eq!(ms(0.25), "250µs");
        assert_eq!(ms(12.345), "12.35ms");
        assert_eq!(ms(2500.0), "2.50s");
        assert_eq!(human_bytes(999.0), "999 B");
        assert_eq!(human_bytes(1_500_000.0), "1.5 MB");
        assert_eq!(number(3.0), "3");
    }
}
