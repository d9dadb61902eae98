//! The runners' per-second points merged into the run's seconds: each second's
//! histograms are decoded and added, then its percentiles computed from the sum, never
//! averaged from the runners' percentiles.

use std::collections::BTreeMap;

use kpress_engine::metrics::{histogram, Metrics};
use kpress_engine::summary::TimelinePoint;
use kpress_report::wire::TimelineSecond;

/// One second of all runners together.
#[derive(Debug, Clone, Default)]
pub struct Second {
    pub metrics: Metrics,
    /// How many runners' points it holds.
    pub runners: u64,
}

impl Second {
    /// Adds one runner's point of this second.
    pub fn add(&mut self, point: &TimelinePoint) -> Result<(), String> {
        self.metrics.add_concurrent(&point.to_metrics()?);
        self.runners += 1;
        Ok(())
    }

    /// Merges points that all belong to one second.
    pub fn of(points: &[TimelinePoint]) -> Result<Second, String> {
        let mut second = Second::default();
        for p in points {
            second.add(p)?;
        }
        Ok(second)
    }

    pub fn answer(&self, t: u64) -> TimelineSecond {
        let m = &self.metrics;
        TimelineSecond {
            t,
            requests: m.requests,
            failed: m.failed,
            // Each point covers one second.
            rate: m.requests as f64,
            error_rate: m.failed_rate(),
            p50: histogram::percentile_ms(&m.duration, 50.0),
            p95: histogram::percentile_ms(&m.duration, 95.0),
            p99: histogram::percentile_ms(&m.duration, 99.0),
            max: histogram::max_ms(&m.duration),
            vus: m.vus.value,
            runners: self.runners,
        }
    }
}

/// Every second of `points` (any order, any runners), merged.
pub fn merge<'a>(
    points: impl IntoIterator<Item = &'a TimelinePoint>,
) -> Result<Vec<TimelineSecond>, String> {
    let mut seconds: BTreeMap<u64, Second> = BTreeMap::new();
    for p in points {
        seconds
            .entry(p.t)
            .or_default()
            .add(p)
            .map_err(|e| format!("second {}: {e}", p.t))?;
    }
    Ok(seconds.iter().map(|(t, s)| s.answer(*t)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t: u64, latencies_us: &[u64], failed: u64, vus: u64) -> TimelinePoint {
        let mut m = Metrics {
            requests: latencies_us.len() as u64,
            failed,
            ..Metrics::default()
        };
        for us in latencies_us {
            histogram::record(&mut m.duration, *us);
            histogram::record(&mut m.service, *us);
        }
        m.vus.set(vus, true);
        TimelinePoint::new(t, &m)
    }

    #[test]
    fn seconds_add_histograms_instead_of_averaging_percentiles() {
        // Runner 0 is fast, runner 1 slow: the second's p50 is neither runner's p50 nor
        // their mean, but the p50 of all the samples.
        let fast: Vec<u64> = (1..=99).map(|i| i * 10).collect();
        let slow = vec![50_000];
        let merged = merge(&[point(3, &fast, 1, 4), point(3, &slow, 0, 2)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(merged.len(), 1);
        let s = &merged[0];
        let mut all = histogram::new_latency();
        for us in fast.iter().chain(&slow) {
            histogram::record(&mut all, *us);
        }
        assert_eq!(s.t, 3);
        assert_eq!(s.requests, 100);
        assert_eq!(s.failed, 1);
        assert_eq!(s.error_rate, 0.01);
        assert_eq!(s.rate, 100.0);
        assert_eq!(s.vus, 6);
        assert_eq!(s.runners, 2);
        assert_eq!(s.p50, histogram::percentile_ms(&all, 50.0));
        assert_eq!(s.p99, histogram::percentile_ms(&all, 99.0));
        assert_eq!(s.max, histogram::max_ms(&all));
        assert!(s.max >= 50.0);
        assert!(s.p50 < 1.0, "p50 {} is pulled up by the slow runner", s.p50);
    }

    #[test]
    fn seconds_come_out_in_order() {
        let merged = merge(&[
            point(2, &[10], 0, 1),
            point(0, &[10], 0, 1),
            point(1, &[10], 0, 1),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let ts: Vec<u64> = merged.iter().map(|s| s.t).collect();
        assert_eq!(ts, [0, 1, 2]);
    }

    #[test]
    fn an_undecodable_histogram_is_an_error() {
        let mut p = point(0, &[10], 0, 1);
        p.hdr.http_req_duration = "not base64!".into();
        assert!(merge(&[p]).is_err());
    }
}
