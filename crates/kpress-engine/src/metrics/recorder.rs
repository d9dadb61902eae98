//! The one function every sample goes through. Each worker thread owns a `Recorder`:
//! no lock, atomic or channel per request. Once a second the thread hands its interval
//! over (`take_interval`) and the coordinator adds it to the run.

use std::time::Instant;

use super::{histogram, Metrics};
use crate::http::error::ErrorClass;

/// The three instants of one request (wrk2's model): when it should have been sent,
/// when it was sent, when its response was complete.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub intended: Instant,
    pub sent: Instant,
    pub done: Instant,
}

thread_local! {
    /// This worker thread's recorder: tasks on the thread reach it without a lock, and
    /// their futures stay `Send`, so the thread's runtime needs no `LocalSet` (whose
    /// wake-ups cost an eventfd write each).
    static RECORDER: std::cell::RefCell<Recorder> = std::cell::RefCell::new(Recorder::default());
}

/// Runs `f` on this thread's recorder.
#[inline]
pub fn with<R>(f: impl FnOnce(&mut Recorder) -> R) -> R {
    RECORDER.with_borrow_mut(f)
}

/// One thread's metrics for the current interval.
pub struct Recorder {
    interval: Metrics,
    errors: Vec<(ErrorClass, u64)>,
    vus: u64,
    vus_max: u64,
    gauge_fresh: bool,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            interval: Metrics::default(),
            errors: Vec::new(),
            vus: 0,
            vus_max: 0,
            gauge_fresh: true,
        }
    }
}

fn micros(later: Instant, earlier: Instant) -> u64 {
    later.saturating_duration_since(earlier).as_micros() as u64
}

impl Recorder {
    /// Records one completed (or failed) request.
    #[inline]
    pub fn request(
        &mut self,
        t: Timing,
        sent_bytes: u64,
        received_bytes: u64,
        error: Option<ErrorClass>,
    ) {
        let m = &mut self.interval;
        histogram::record(&mut m.duration, micros(t.done, t.intended));
        histogram::record(&mut m.service, micros(t.done, t.sent));
        histogram::record(&mut m.send_lag, micros(t.sent, t.intended));
        m.requests += 1;
        m.data_sent += sent_bytes;
        m.data_received += received_bytes;
        if let Some(class) = error {
            m.failed += 1;
            match self.errors.iter_mut().find(|(c, _)| *c == class) {
                Some((_, n)) => *n += 1,
                None => self.errors.push((class, 1)),
            }
        }
    }

    #[inline]
    pub fn iteration(&mut self) {
        self.interval.iterations += 1;
    }

    #[inline]
    pub fn dropped_iterations(&mut self, n: u64) {
        self.interval.dropped_iterations += n;
    }

    /// Adjusts the running VUs (`vus`) and allocated VUs (`vus_max`) by a delta.
    #[inline]
    pub fn vus_changed(&mut self, vus_delta: i64, vus_max_delta: i64) {
        self.vus = self.vus.saturating_add_signed(vus_delta);
        self.vus_max = self.vus_max.saturating_add_signed(vus_max_delta);
        let fresh = self.gauge_fresh;
        self.interval.vus.set(self.vus, fresh);
        self.interval.vus_max.set(self.vus_max, fresh);
        self.gauge_fresh = false;
    }

    /// Hands over the interval so far and starts a new one.
    pub fn take_interval(&mut self) -> Metrics {
        if self.gauge_fresh {
            // No VU change this interval: the gauges held their value throughout.
            self.interval.vus.set(self.vus, true);
            self.interval.vus_max.set(self.vus_max, true);
        }
        let mut out = std::mem::take(&mut self.interval);
        for (class, n) in self.errors.drain(..) {
            *out.errors.entry(class.to_string()).or_default() += n;
        }
        self.gauge_fresh = true;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn records_corrected_service_and_lag() {
        let mut r = Recorder::default();
        let intended = Instant::now();
        let sent = intended + Duration::from_millis(40);
        let done = sent + Duration::from_millis(10);
        r.request(
            Timing {
                intended,
                sent,
                done,
            },
            100,
            200,
            None,
        );
        r.request(
            Timing {
                intended,
                sent,
                done,
            },
            100,
            0,
            Some(ErrorClass::Status(503)),
        );
        r.iteration();
        r.dropped_iterations(1);
        r.vus_changed(3, 5);
        r.vus_changed(-1, 0);
        let m = r.take_interval();
        assert_eq!(
            (m.requests, m.failed, m.iterations, m.dropped_iterations),
            (2, 1, 1, 1)
        );
        assert_eq!((m.data_sent, m.data_received), (200, 200));
        assert!((histogram::percentile_ms(&m.duration, 50.0) - 50.0).abs() < 0.1);
        assert!((histogram::percentile_ms(&m.service, 50.0) - 10.0).abs() < 0.1);
        assert!((histogram::percentile_ms(&m.send_lag, 50.0) - 40.0).abs() < 0.1);
        assert_eq!(m.errors.get("status 503"), Some(&1));
        assert_eq!((m.vus.value, m.vus.min, m.vus.max), (2, 2, 3));
        let next = r.take_interval();
        assert_eq!(next.requests, 0);
        assert_eq!((next.vus.value, next.vus.min, next.vus.max), (2, 2, 2));
    }
}
