//! Pass/fail criteria in k6's syntax (`p(99)<250ms`, `rate<0.01`, `count>1000`),
//! evaluated on merged metrics: in a distributed run, never on one runner's slice.

use std::fmt;
use std::time::Duration;

use crate::metrics::{histogram, Latency, Metrics};
use crate::scenario::error::did_you_mean;

/// The metrics thresholds can name, with k6's names where k6 has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    HttpReqs,
    HttpReqDuration,
    HttpReqServiceDuration,
    HttpReqSendLag,
    HttpReqFailed,
    Iterations,
    DroppedIterations,
    DataSent,
    DataReceived,
    Vus,
    VusMax,
}

/// How a metric aggregates, which decides the aggregations a threshold may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Trend,
    Rate,
    Gauge,
}

impl Metric {
    pub const ALL: [Metric; 11] = [
        Metric::HttpReqs,
        Metric::HttpReqDuration,
        Metric::HttpReqServiceDuration,
        Metric::HttpReqSendLag,
        Metric::HttpReqFailed,
        Metric::Iterations,
        Metric::DroppedIterations,
        Metric::DataSent,
        Metric::DataReceived,
        Metric::Vus,
        Metric::VusMax,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::HttpReqs => "http_reqs",
            Metric::HttpReqDuration => "http_req_duration",
            Metric::HttpReqServiceDuration => "http_req_service_duration",
            Metric::HttpReqSendLag => "http_req_send_lag",
            Metric::HttpReqFailed => "http_req_failed",
            Metric::Iterations => "iterations",
            Metric::DroppedIterations => "dropped_iterations",
            Metric::DataSent => "data_sent",
            Metric::DataReceived => "data_received",
            Metric::Vus => "vus",
            Metric::VusMax => "vus_max",
        }
    }

    pub fn kind(self) -> MetricKind {
        match self {
            Metric::HttpReqDuration | Metric::HttpReqServiceDuration | Metric::HttpReqSendLag => {
                MetricKind::Trend
            }
            Metric::HttpReqFailed => MetricKind::Rate,
            Metric::Vus | Metric::VusMax => MetricKind::Gauge,
            _ => MetricKind::Counter,
        }
    }

    pub fn from_name(name: &str) -> Result<Metric, String> {
        if let Some(m) = Metric::ALL.iter().find(|m| m.name() == name) {
            return Ok(*m);
        }
        if name.contains('{') {
            return Err(format!(
                "sub-metric `{name}`: tag filters are not supported"
            ));
        }
        let mut msg = format!("unknown metric `{name}`");
        if let Some(hint) = did_you_mean(name, Metric::ALL.iter().map(|m| m.name())) {
            msg.push_str(&format!(", did you mean `{hint}`?"));
        }
        msg.push_str(&format!(
            " (known: {})",
            Metric::ALL
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Err(msg)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    Percentile(f64),
    Avg,
    Min,
    Max,
    Med,
    Rate,
    Count,
    Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub metric: Metric,
    /// The expression as written, shown in reports.
    pub expr: String,
    pub aggregation: Aggregation,
    pub op: Op,
    /// The bound, in milliseconds for trends.
    pub bound: f64,
    pub abort_on_fail: bool,
    pub delay_abort_eval: Duration,
}

/// The outcome of one threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub ok: bool,
    /// The value the threshold compared (milliseconds for trends).
    pub actual: f64,
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Aggregation::Percentile(p) => write!(f, "p({p})"),
            Aggregation::Avg => f.write_str("avg"),
            Aggregation::Min => f.write_str("min"),
            Aggregation::Max => f.write_str("max"),
            Aggregation::Med => f.write_str("med"),
            Aggregation::Rate => f.write_str("rate"),
            Aggregation::Count => f.write_str("count"),
            Aggregation::Value => f.write_str("value"),
        }
    }
}

const AGGREGATIONS: [&str; 8] = ["p(N)", "avg", "min", "max", "med", "rate", "count", "value"];

/// Parses `expr` for `metric`, e.g. `p(99.9) < 250ms`.
pub fn parse(metric_name: &str, expr: &str) -> Result<Threshold, String> {
    let metric = Metric::from_name(metric_name)?;
    let text = expr.trim();
    let op_at = text
        .find(['<', '>', '=', '!'])
        .ok_or_else(|| format!("`{expr}`: no comparison (use <, <=, >, >=, ==, !=)"))?;
    let (lhs, rest) = text.split_at(op_at);
    let (op, rhs) = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("===", Op::Eq),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ]
    .iter()
    .find_map(|(sym, op)| rest.strip_prefix(sym).map(|r| (*op, r)))
    .ok_or_else(|| format!("`{expr}`: unknown comparison at `{rest}`"))?;
    let aggregation = parse_aggregation(lhs.trim(), expr)?;
    check_applies(metric, aggregation, expr)?;
    let bound = parse_bound(rhs.trim(), metric.kind() == MetricKind::Trend, expr)?;
    Ok(Threshold {
        metric,
        expr: expr.to_string(),
        aggregation,
        op,
        bound,
        abort_on_fail: false,
        delay_abort_eval: Duration::ZERO,
    })
}

fn parse_aggregation(lhs: &str, expr: &str) -> Result<Aggregation, String> {
    if let Some(inner) = lhs.strip_prefix("p(").and_then(|r| r.strip_suffix(')')) {
        let p: f64 = inner
            .trim()
            .parse()
            .map_err(|_| format!("`{expr}`: `{inner}` is not a percentile"))?;
        if !(0.0..=100.0).contains(&p) {
            return Err(format!("`{expr}`: percentile {p} is not between 0 and 100"));
        }
        return Ok(Aggregation::Percentile(p));
    }
    Ok(match lhs {
        "avg" => Aggregation::Avg,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        "med" => Aggregation::Med,
        "rate" => Aggregation::Rate,
        "count" => Aggregation::Count,
        "value" => Aggregation::Value,
        other => {
            let mut msg = format!("`{expr}`: unknown aggregation `{other}`");
            if let Some(hint) = did_you_mean(other, AGGREGATIONS) {
                msg.push_str(&format!(", did you mean `{hint}`?"));
            }
            msg.push_str(&format!(" (use one of: {})", AGGREGATIONS.join(", ")));
            return Err(msg);
        }
    })
}

fn check_applies(metric: Metric, agg: Aggregation, expr: &str) -> Result<(), String> {
    let ok = match metric.kind() {
        MetricKind::Trend => matches!(
            agg,
            Aggregation::Percentile(_)
                | Aggregation::Avg
                | Aggregation::Min
                | Aggregation::Max
                | Aggregation::Med
        ),
        MetricKind::Rate => matches!(agg, Aggregation::Rate),
        MetricKind::Counter => matches!(agg, Aggregation::Count | Aggregation::Rate),
        MetricKind::Gauge => matches!(
            agg,
            Aggregation::Value | Aggregation::Min | Aggregation::Max
        ),
    };
    if ok {
        return Ok(());
    }
    let allowed = match metric.kind() {
        MetricKind::Trend => "p(N), avg, min, max, med",
        MetricKind::Rate => "rate",
        MetricKind::Counter => "count, rate",
        MetricKind::Gauge => "value, min, max",
    };
    Err(format!(
        "`{expr}`: `{agg}` does not apply to `{}` (use {allowed})",
        metric.name()
    ))
}

fn parse_bound(rhs: &str, is_time: bool, expr: &str) -> Result<f64, String> {
    let split = rhs
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(rhs.len());
    let (num, unit) = rhs.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{expr}`: `{rhs}` is not a number"))?;
    if !value.is_finite() {
        return Err(format!("`{expr}`: `{rhs}` is not a finite number"));
    }
    let scale = match (unit.trim(), is_time) {
        ("", _) => 1.0,
        ("ms", true) => 1.0,
        ("s", true) => 1000.0,
        ("us" | "µs", true) => 0.001,
        ("m", true) => 60_000.0,
        (u, true) => {
            return Err(format!(
                "`{expr}`: unknown time unit `{u}` (use us, ms, s, m)"
            ))
        }
        (u, false) => return Err(format!("`{expr}`: `{u}`: this metric takes a plain number")),
    };
    Ok(value * scale)
}

impl Threshold {
    /// Evaluates on `m`, where `elapsed` is the run's duration (for counter rates).
    pub fn evaluate(&self, m: &Metrics, elapsed: Duration) -> Verdict {
        let actual = self.actual(m, elapsed);
        let ok = match self.op {
            Op::Lt => actual < self.bound,
            Op::Le => actual <= self.bound,
            Op::Gt => actual > self.bound,
            Op::Ge => actual >= self.bound,
            Op::Eq => (actual - self.bound).abs() < 1e-9,
            Op::Ne => (actual - self.bound).abs() >= 1e-9,
        };
        Verdict { ok, actual }
    }

    fn actual(&self, m: &Metrics, elapsed: Duration) -> f64 {
        let trend = |h: &Latency| match self.aggregation {
            Aggregation::Percentile(p) => histogram::percentile_ms(h, p),
            Aggregation::Med => histogram::percentile_ms(h, 50.0),
            Aggregation::Avg => histogram::mean_ms(h),
            Aggregation::Min => histogram::min_ms(h),
            _ => histogram::max_ms(h),
        };
        let counter = |n: u64| match self.aggregation {
            Aggregation::Rate => {
                let secs = elapsed.as_secs_f64();
                if secs > 0.0 {
                    n as f64 / secs
                } else {
                    0.0
                }
            }
            _ => n as f64,
        };
        let gauge = |g: &crate::metrics::Gauge| match self.aggregation {
            Aggregation::Min => g.min as f64,
            Aggregation::Max => g.max as f64,
            _ => g.value as f64,
        };
        match self.metric {
            Metric::HttpReqDuration => trend(&m.duration),
            Metric::HttpReqServiceDuration => trend(&m.service),
            Metric::HttpReqSendLag => trend(&m.send_lag),
            Metric::HttpReqFailed => m.failed_rate(),
            Metric::HttpReqs => counter(m.requests),
            Metric::Iterations => counter(m.iterations),
            Metric::DroppedIterations => counter(m.dropped_iterations),
            Metric::DataSent => counter(m.data_sent),
            Metric::DataReceived => counter(m.data_received),
            Metric::Vus => gauge(&m.vus),
            Metric::VusMax => gauge(&m.vus_max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        let mut m = Metrics::default();
        // 10 µs to 1 ms: below 2048 µs the histogram is exact, so the expected values are too.
        for step in 1..=100u64 {
            histogram::record(&mut m.duration, step * 10);
        }
        m.requests = 100;
        m.failed = 2;
        m.iterations = 50;
        m.dropped_iterations = 0;
        m.data_sent = 1000;
        m.vus.set(10, true);
        m.vus.set(4, false);
        m
    }

    #[test]
    fn every_operator_and_aggregation_passes_and_fails() {
        let m = metrics();
        let ten = Duration::from_secs(10);
        let cases: &[(&str, &str, bool)] = &[
            ("http_req_duration", "p(99)<1ms", true),
            ("http_req_duration", "p(99)<0.99", false),
            ("http_req_duration", "p(50)<=0.5", true),
            ("http_req_duration", "p(50)<=0.49", false),
            ("http_req_duration", "avg>0.5", true),
            ("http_req_duration", "avg>0.51", false),
            ("http_req_duration", "min>=0.01", true),
            ("http_req_duration", "min>=0.02", false),
            ("http_req_duration", "max==1", true),
            ("http_req_duration", "max!=1", false),
            ("http_req_duration", "med<0.0006s", true),
            ("http_req_duration", "med<490us", false),
            ("http_req_failed", "rate<0.03", true),
            ("http_req_failed", "rate<0.01", false),
            ("http_reqs", "count>=100", true),
            ("http_reqs", "count>100", false),
            ("http_reqs", "rate==10", true),
            ("http_reqs", "rate>10", false),
            ("iterations", "count===50", true),
            ("dropped_iterations", "count==0", true),
            ("dropped_iterations", "count>0", false),
            ("data_sent", "count<=1000", true),
            ("vus", "value==4", true),
            ("vus", "max==10", true),
            ("vus", "min>4", false),
        ];
        for (metric, expr, expected) in cases {
            let t = parse(metric, expr).unwrap_or_else(|e| panic!("{metric} {expr}: {e}"));
            let v = t.evaluate(&m, ten);
            assert_eq!(v.ok, *expected, "{metric} {expr} -> {v:?}");
        }
    }

    #[test]
    fn rejects_bad_expressions() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "http_req_duraton",
                "p(99)<1",
                "did you mean `http_req_duration`",
            ),
            ("http_req_duration", "p(99)", "no comparison"),
            ("http_req_duration", "p(101)<1", "between 0 and 100"),
            ("http_req_duration", "p(x)<1", "not a percentile"),
            ("http_req_duration", "avgg<1", "did you mean `avg`"),
            ("http_req_duration", "rate<1", "does not apply"),
            ("http_req_failed", "p(99)<1", "does not apply"),
            ("http_reqs", "count<1ms", "plain number"),
            ("http_req_duration", "p(99)<1h", "unknown time unit"),
            ("http_req_duration", "p(99)<abc", "not a number"),
            ("http_req_duration", "p(99)=>1", "unknown comparison"),
            ("http_req_duration{scenario:a}", "p(99)<1", "tag filters"),
        ];
        for (metric, expr, needle) in cases {
            match parse(metric, expr) {
                Ok(t) => panic!("{metric} {expr} parsed as {t:?}"),
                Err(e) => assert!(
                    e.contains(needle),
                    "{metric} {expr}: `{e}` lacks `{needle}`"
                ),
            }
        }
    }
}
