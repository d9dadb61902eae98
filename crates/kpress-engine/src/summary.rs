//! The summary JSON (`--summary-out`, what `kpress merge` reads, what the center
//! stores): the run's totals with its HDR histograms, so any number of runner
//! summaries merge exactly, and thresholds are judged on the merged data only.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::metrics::{histogram, Gauge, Latency, Metrics};
use crate::run::{RunOutcome, StopReason};
use crate::segment::Segment;
use crate::threshold::{self, Threshold};

pub const SUMMARY_VERSION: u32 = 1;

/// The outcome of a run or of a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every threshold held (or there were none).
    Passed,
    /// At least one threshold was crossed.
    ThresholdsFailed,
    /// A runner's share ran to its end; thresholds are judged after the merge.
    Completed,
    /// Stopped early by Ctrl-C, SIGTERM or a request.
    Interrupted,
    /// Stopped early by a threshold with `abortOnFail`.
    Aborted,
    /// Some runners' results are missing from this merge.
    Partial,
}

/// A run's or a merge's summary.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// Format version; this is version 1.
    pub version: u32,
    /// The test's name (`name:` in the scenario).
    pub test: String,
    /// The run id; every runner of one run shares it.
    pub run: String,
    /// `I/N` for one runner's share; `all/N` for a complete merge, `partial/N` otherwise.
    pub segment: String,
    /// The runner shares this summary contains.
    pub segments: Vec<String>,
    /// Runner shares that should be here and are not (a failed or lost runner).
    #[serde(default)]
    pub missing_segments: Vec<String>,
    /// RFC 3339: when load generation started.
    pub started: String,
    /// RFC 3339: when the last request ended.
    pub ended: String,
    /// Seconds from start to end.
    pub duration_s: f64,
    pub status: Status,
    /// Why the run stopped early, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Spread of the runners' actual start instants, in milliseconds (merges only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_skew_ms: Option<f64>,
    pub metrics: SummaryMetrics,
    /// Failed requests by class (`connect refused`, `timeout`, `status 503`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Thresholds by metric; `ok` is null where they are not judged (one runner of many).
    pub thresholds: BTreeMap<String, Vec<ThresholdResult>>,
    /// One point per second of the run.
    #[serde(default)]
    pub timeline: Vec<TimelinePoint>,
}

/// k6's metrics, plus the uncorrected service time and the send lag beside the
/// corrected duration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SummaryMetrics {
    pub http_reqs: Counter,
    pub http_req_failed: Rate,
    /// Latency from the intended send time (corrected for coordinated omission).
    pub http_req_duration: Trend,
    /// Latency from the actual send (what a closed-loop tool would report).
    pub http_req_service_duration: Trend,
    /// How late requests were sent compared with their schedule.
    pub http_req_send_lag: Trend,
    pub iterations: Counter,
    pub dropped_iterations: Counter,
    /// Bytes.
    pub data_sent: Counter,
    /// Bytes.
    pub data_received: Counter,
    pub vus: GaugeSummary,
    pub vus_max: GaugeSummary,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Counter {
    pub count: u64,
    /// Per second over the run.
    pub rate: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Rate {
    /// Fraction of requests that failed.
    pub rate: f64,
    pub fails: u64,
    pub passes: u64,
}

/// Milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Trend {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
    pub max: f64,
    /// The whole distribution: HdrHistogram V2 (deflate), base64, microseconds.
    pub hdr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GaugeSummary {
    pub value: u64,
    pub min: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdResult {
    /// The expression as written, e.g. `p(99)<250ms`.
    pub expr: String,
    /// Whether it held; null when not judged on this data.
    pub ok: Option<bool>,
    /// The value compared (milliseconds for durations); null when not judged.
    pub actual: Option<f64>,
    #[serde(default)]
    pub abort_on_fail: bool,
    /// Milliseconds.
    #[serde(default)]
    pub delay_abort_eval_ms: u64,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TimelinePoint {
    /// Seconds since the start.
    pub t: u64,
    pub requests: u64,
    pub failed: u64,
    pub iterations: u64,
    pub dropped_iterations: u64,
    pub data_sent: u64,
    pub data_received: u64,
    pub vus: u64,
    pub vus_max: u64,
    pub http_req_duration: PointLatency,
    pub http_req_service_duration: PointLatency,
    /// This second's histograms, so timelines of several runners merge exactly.
    pub hdr: PointHdr,
}

/// Milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PointLatency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PointHdr {
    pub http_req_duration: String,
    pub http_req_service_duration: String,
}

impl PointLatency {
    fn of(h: &Latency) -> PointLatency {
        PointLatency {
            p50: histogram::percentile_ms(h, 50.0),
            p95: histogram::percentile_ms(h, 95.0),
            p99: histogram::percentile_ms(h, 99.0),
            max: histogram::max_ms(h),
        }
    }
}

impl TimelinePoint {
    pub fn new(t: u64, m: &Metrics) -> TimelinePoint {
        TimelinePoint {
            t,
            requests: m.requests,
            failed: m.failed,
            iterations: m.iterations,
            dropped_iterations: m.dropped_iterations,
            data_sent: m.data_sent,
            data_received: m.data_received,
            vus: m.vus.value,
            vus_max: m.vus_max.value,
            http_req_duration: PointLatency::of(&m.duration),
            http_req_service_duration: PointLatency::of(&m.service),
            hdr: PointHdr {
                http_req_duration: histogram::encode(&m.duration),
                http_req_service_duration: histogram::encode(&m.service),
            },
        }
    }

    /// Back to metrics (counts, gauges, the two histograms).
    pub fn to_metrics(&self) -> Result<Metrics, String> {
        let mut m = Metrics {
            requests: self.requests,
            failed: self.failed,
            iterations: self.iterations,
            dropped_iterations: self.dropped_iterations,
            data_sent: self.data_sent,
            data_received: self.data_received,
            ..Metrics::default()
        };
        m.duration = histogram::decode(&self.hdr.http_req_duration)?;
        m.service = histogram::decode(&self.hdr.http_req_service_duration)?;
        m.vus = Gauge {
            value: self.vus,
            min: self.vus,
            max: self.vus,
        };
        m.vus_max = Gauge {
            value: self.vus_max,
            min: self.vus_max,
            max: self.vus_max,
        };
        Ok(m)
    }
}

fn trend(h: &Latency) -> Trend {
    Trend {
        min: histogram::min_ms(h),
        mean: histogram::mean_ms(h),
        p50: histogram::percentile_ms(h, 50.0),
        p90: histogram::percentile_ms(h, 90.0),
        p95: histogram::percentile_ms(h, 95.0),
        p99: histogram::percentile_ms(h, 99.0),
        p99_9: histogram::percentile_ms(h, 99.9),
        max: histogram::max_ms(h),
        hdr: histogram::encode(h),
    }
}

fn counter(n: u64, secs: f64) -> Counter {
    Counter {
        count: n,
        rate: if secs > 0.0 { n as f64 / secs } else { 0.0 },
    }
}

fn gauge(g: &Gauge) -> GaugeSummary {
    GaugeSummary {
        value: g.value,
        min: g.min,
        max: g.max,
    }
}

fn metrics_json(m: &Metrics, elapsed: Duration) -> SummaryMetrics {
    let secs = elapsed.as_secs_f64();
    SummaryMetrics {
        http_reqs: counter(m.requests, secs),
        http_req_failed: Rate {
            rate: m.failed_rate(),
            fails: m.failed,
            passes: m.requests - m.failed.min(m.requests),
        },
        http_req_duration: trend(&m.duration),
        http_req_service_duration: trend(&m.service),
        http_req_send_lag: trend(&m.send_lag),
        iterations: counter(m.iterations, secs),
        dropped_iterations: counter(m.dropped_iterations, secs),
        data_sent: counter(m.data_sent, secs),
        data_received: counter(m.data_received, secs),
        vus: gauge(&m.vus),
        vus_max: gauge(&m.vus_max),
    }
}

/// Judges `thresholds` on `m` (or records them unjudged when `judge` is false).
fn judge(
    thresholds: &[Threshold],
    m: &Metrics,
    elapsed: Duration,
    judge: bool,
) -> BTreeMap<String, Vec<ThresholdResult>> {
    let mut out: BTreeMap<String, Vec<ThresholdResult>> = BTreeMap::new();
    for t in thresholds {
        let verdict = judge.then(|| t.evaluate(m, elapsed));
        out.entry(t.metric.name().to_string())
            .or_default()
            .push(ThresholdResult {
                expr: t.expr.clone(),
                ok: verdict.as_ref().map(|v| v.ok),
                actual: verdict.map(|v| v.actual),
                abort_on_fail: t.abort_on_fail,
                delay_abort_eval_ms: t.delay_abort_eval.as_millis() as u64,
            });
    }
    out
}

fn any_failed(thresholds: &BTreeMap<String, Vec<ThresholdResult>>) -> bool {
    thresholds.values().flatten().any(|t| t.ok == Some(false))
}

/// Parses the thresholds a summary carries, so a merge can judge them again.
fn thresholds_of(s: &Summary) -> Result<Vec<Threshold>, String> {
    let mut out = Vec::new();
    for (metric, list) in &s.thresholds {
        for r in list {
            let mut t = threshold::parse(metric, &r.expr)?;
            t.abort_on_fail = r.abort_on_fail;
            t.delay_abort_eval = Duration::from_millis(r.delay_abort_eval_ms);
            out.push(t);
        }
    }
    Ok(out)
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn parse_time(s: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(s).map_err(|e| format!("`{s}` is not an RFC 3339 time: {e}"))
}

impl Summary {
    /// The summary of this process's run of `segment`. Thresholds are judged only
    /// when this process ran the whole test.
    pub fn from_run(
        test: &str,
        run: &str,
        segment: Segment,
        thresholds: &[Threshold],
        outcome: &RunOutcome,
    ) -> Summary {
        let whole = segment.count == 1;
        let judged = judge(thresholds, &outcome.metrics, outcome.elapsed, whole);
        let status = match &outcome.stop {
            Some(StopReason::Threshold(_)) => Status::Aborted,
            Some(StopReason::Interrupted(_)) => Status::Interrupted,
            None if !whole => Status::Completed,
            None if any_failed(&judged) => Status::ThresholdsFailed,
            None => Status::Passed,
        };
        Summary {
            version: SUMMARY_VERSION,
            test: test.to_string(),
            run: run.to_string(),
            segment: segment.to_string(),
            segments: vec![segment.to_string()],
            missing_segments: Vec::new(),
            started: rfc3339(outcome.started),
            ended: rfc3339(outcome.ended),
            duration_s: outcome.elapsed.as_secs_f64(),
            status,
            stop_reason: outcome.stop.as_ref().map(|r| match r {
                StopReason::Interrupted(s) | StopReason::Threshold(s) => s.clone(),
            }),
            start_skew_ms: None,
            metrics: metrics_json(&outcome.metrics, outcome.elapsed),
            errors: outcome.metrics.errors.clone(),
            thresholds: judged,
            timeline: outcome.timeline.clone(),
        }
    }

    /// The totals as metrics again (histograms decoded).
    pub fn to_metrics(&self) -> Result<Metrics, String> {
        let m = &self.metrics;
        Ok(Metrics {
            duration: histogram::decode(&m.http_req_duration.hdr)?,
            service: histogram::decode(&m.http_req_service_duration.hdr)?,
            send_lag: histogram::decode(&m.http_req_send_lag.hdr)?,
            requests: m.http_reqs.count,
            failed: m.http_req_failed.fails,
            iterations: m.iterations.count,
            dropped_iterations: m.dropped_iterations.count,
            data_sent: m.data_sent.count,
            data_received: m.data_received.count,
            vus: Gauge {
                value: m.vus.value,
                min: m.vus.min,
                max: m.vus.max,
            },
            vus_max: Gauge {
                value: m.vus_max.value,
                min: m.vus_max.min,
                max: m.vus_max.max,
            },
            errors: self.errors.clone(),
        })
    }

    /// The exit code this summary calls for: 99 when a threshold was crossed or aborted
    /// the run; 1 when the result is incomplete (interrupted, or runners missing), since
    /// thresholds judged on part of a test say nothing about the whole; 0 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self.status {
            Status::Aborted | Status::ThresholdsFailed => 99,
            Status::Interrupted | Status::Partial => 1,
            Status::Passed | Status::Completed if any_failed(&self.thresholds) => 99,
            Status::Passed | Status::Completed => 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    #[error("{0}")]
    Mismatch(String),
    #[error("{0}")]
    Invalid(String),
}

/// Merges runner summaries exactly: counts and histograms add; percentiles are
/// recomputed from the merged histograms; thresholds are judged on the merged data.
/// `expected_runners` (when known) marks the merge partial if shares are missing.
pub fn merge(parts: &[Summary], expected_runners: Option<u64>) -> Result<Summary, MergeError> {
    let first = parts.first().ok_or(MergeError::Empty)?;
    let mut segments: Vec<Segment> = Vec::new();
    for p in parts {
        if p.version != SUMMARY_VERSION {
            return Err(MergeError::Invalid(format!(
                "summary version {} is not supported (expected {SUMMARY_VERSION})",
                p.version
            )));
        }
        if p.test != first.test || p.run != first.run {
            return Err(MergeError::Mismatch(format!(
                "summaries of different runs: {}/{} and {}/{}",
                first.test, first.run, p.test, p.run
            )));
        }
        for s in &p.segments {
            let seg: Segment = s.parse().map_err(MergeError::Invalid)?;
            if segments.contains(&seg) {
                return Err(MergeError::Mismatch(format!("segment {seg} appears twice")));
            }
            if segments.first().is_some_and(|f| f.count != seg.count) {
                return Err(MergeError::Mismatch(format!(
                    "segments of different splits: {} and {seg}",
                    segments[0]
                )));
            }
            segments.push(seg);
        }
    }
    segments.sort_by_key(|s| s.index);
    let n = expected_runners
        .or(segments.first().map(|s| s.count))
        .unwrap_or(1);
    let mut missing: Vec<String> = (0..n)
        .filter(|i| !segments.iter().any(|s| s.index == *i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    for p in parts {
        missing.extend(p.missing_segments.iter().cloned());
    }
    missing.sort();
    missing.dedup();

    let mut total = Metrics::default();
    let (mut started, mut ended) = (None::<SystemTime>, None::<SystemTime>);
    for p in parts {
        total.add_concurrent(&p.to_metrics().map_err(MergeError::Invalid)?);
        let (s, e) = (
            parse_time(&p.started).map_err(MergeError::Invalid)?,
            parse_time(&p.ended).map_err(MergeError::Invalid)?,
        );
        started = Some(started.map_or(s, |x| x.min(s)));
        ended = Some(ended.map_or(e, |x| x.max(e)));
    }
    let starts: Vec<SystemTime> = parts
        .iter()
        .filter_map(|p| parse_time(&p.started).ok())
        .collect();
    let skew = match (starts.iter().min(), starts.iter().max()) {
        (Some(a), Some(b)) => b.duration_since(*a).unwrap_or_default().as_secs_f64() * 1000.0,
        _ => 0.0,
    };
    let (started, ended) = (
        started.unwrap_or(SystemTime::UNIX_EPOCH),
        ended.unwrap_or(SystemTime::UNIX_EPOCH),
    );
    let elapsed = ended.duration_since(started).unwrap_or_default();
    let timeline = merge_timelines(parts).map_err(MergeError::Invalid)?;

    let thresholds = thresholds_of(first).map_err(MergeError::Invalid)?;
    let judged = judge(&thresholds, &total, elapsed, true);
    let stop_reason = parts.iter().find_map(|p| p.stop_reason.clone());
    let status = if parts.iter().any(|p| p.status == Status::Aborted) {
        Status::Aborted
    } else if parts.iter().any(|p| p.status == Status::Interrupted) {
        Status::Interrupted
    } else if !missing.is_empty() || parts.iter().any(|p| p.status == Status::Partial) {
        Status::Partial
    } else if any_failed(&judged) {
        Status::ThresholdsFailed
    } else {
        Status::Passed
    };
    Ok(Summary {
        version: SUMMARY_VERSION,
        test: first.test.clone(),
        run: first.run.clone(),
        segment: if missing.is_empty() {
            format!("all/{n}")
        } else {
            format!("partial/{n}")
        },
        segments: segments.iter().map(|s| s.to_string()).collect(),
        missing_segments: missing,
        started: rfc3339(started),
        ended: rfc3339(ended),
        duration_s: elapsed.as_secs_f64(),
        status,
        stop_reason,
        start_skew_ms: (parts.len() > 1).then_some(skew),
        metrics: metrics_json(&total, elapsed),
        errors: total.errors.clone(),
        thresholds: judged,
        timeline,
    })
}

fn merge_timelines(parts: &[Summary]) -> Result<Vec<TimelinePoint>, String> {
    let mut by_second: BTreeMap<u64, Metrics> = BTreeMap::new();
    for p in parts {
        for point in &p.timeline {
            by_second
                .entry(point.t)
                .or_default()
                .add_concurrent(&point.to_metrics()?);
        }
    }
    Ok(by_second
        .iter()
        .map(|(t, m)| TimelinePoint::new(*t, m))
        .collect())
}

/// A fresh run id: 10 lowercase hex characters, unique enough to tell runs apart in
/// one namespace, short enough for object names and label values.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    format!("{:010x}", h.finish() & 0xff_ffff_ffff)
}

/// The JSON Schema of the summary, as committed in `schema/summary.schema.json`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Summary)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schema_is_current() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/summary.schema.json");
        let generated = serde_json::to_string_pretty(&json_schema()).unwrap_or_default() + "\n";
        if std::env::var_os("KPRESS_BLESS").is_some() {
            std::fs::write(&path, &generated)
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            committed, generated,
            "schema/summary.schema.json is stale: rerun with KPRESS_BLESS=1"
        );
    }

    #[test]
    fn run_ids_are_short_and_distinct() {
        let a = new_run_id();
        let b = new_run_id();
        assert_eq!(a.len(), 10);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
