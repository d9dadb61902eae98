//! What a run measures, in a form that adds up exactly: counters add, gauges keep their
//! extremes, latencies live in HDR histograms. The same type holds one thread's last
//! second, one process's whole run, and the merge of many pods.

pub mod histogram;
pub mod join;
pub mod recorder;

use std::collections::BTreeMap;

pub use histogram::Latency;

/// A gauge over an interval: last value and extremes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gauge {
    pub value: u64,
    pub min: u64,
    pub max: u64,
}

impl Gauge {
    pub fn set(&mut self, v: u64, first: bool) {
        self.value = v;
        if first {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }

    /// Gauges of concurrent parts (threads, runners) add: the whole test's VUs at an
    /// instant are the sum of every part's VUs at that instant.
    pub fn add_concurrent(&mut self, other: &Gauge) {
        self.value += other.value;
        self.min += other.min;
        self.max += other.max;
    }

    /// Successive readings of the same gauge: keep the newest value and the extremes.
    pub fn follow(&mut self, later: &Gauge, first: bool) {
        if first {
            *self = *later;
        } else {
            self.value = later.value;
            self.min = self.min.min(later.min);
            self.max = self.max.max(later.max);
        }
    }
}

/// Every metric of one slice of a run.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Latency from the intended send time to the end of the response (corrected).
    pub duration: Latency,
    /// Latency from the actual send to the end of the response (uncorrected).
    pub service: Latency,
    /// From the intended send time to the actual send: the generator's own lateness.
    pub send_lag: Latency,
    pub requests: u64,
    pub failed: u64,
    pub iterations: u64,
    pub dropped_iterations: u64,
    pub data_sent: u64,
    pub data_received: u64,
    pub vus: Gauge,
    pub vus_max: Gauge,
    pub errors: BTreeMap<String, u64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            duration: histogram::new_latency(),
            service: histogram::new_latency(),
            send_lag: histogram::new_latency(),
            requests: 0,
            failed: 0,
            iterations: 0,
            dropped_iterations: 0,
            data_sent: 0,
            data_received: 0,
            vus: Gauge::default(),
            vus_max: Gauge::default(),
            errors: BTreeMap::new(),
        }
    }
}

impl Metrics {
    /// Adds the counts and histograms of `other`. Gauges are left to the caller, since
    /// adding concurrent parts and following one part over time combine them differently.
    pub fn add_counts(&mut self, other: &Metrics) {
        histogram::add(&mut self.duration, &other.duration);
        histogram::add(&mut self.service, &other.service);
        histogram::add(&mut self.send_lag, &other.send_lag);
        self.requests += other.requests;
        self.failed += other.failed;
        self.iterations += other.iterations;
        self.dropped_iterations += other.dropped_iterations;
        self.data_sent += other.data_sent;
        self.data_received += other.data_received;
        for (class, n) in &other.errors {
            *self.errors.entry(class.clone()).or_default() += n;
        }
    }

    /// Adds a concurrent part (another thread or runner over the same interval).
    pub fn add_concurrent(&mut self, other: &Metrics) {
        self.add_counts(other);
        self.vus.add_concurrent(&other.vus);
        self.vus_max.add_concurrent(&other.vus_max);
    }

    /// Appends a later interval of the same run.
    pub fn append_later(&mut self, later: &Metrics, first: bool) {
        self.add_counts(later);
        self.vus.follow(&later.vus, first);
        self.vus_max.follow(&later.vus_max, first);
    }

    /// Fraction of requests that failed (0 when none were sent).
    pub fn failed_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failed as f64 / self.requests as f64
        }
    }
}
