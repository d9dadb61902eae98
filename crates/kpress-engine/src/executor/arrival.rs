//! The open model's arrival slots (`constant-arrival-rate`, `ramping-arrival-rate`):
//! iteration `k` of the whole test starts at the instant the cumulative arrival count
//! reaches `k`. A stripe walks only its own `k`s, so N runners together start exactly
//! the iterations one runner alone would, at the same instants.

use std::time::Duration;

use super::Stage;
use crate::segment::Stripe;

/// Arrival rate as a function of time: piecewise linear, in iterations per second.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalSchedule {
    start_rate: f64,
    /// (duration, rate at the end of the stage), rates per second.
    stages: Vec<(Duration, f64)>,
    stripe: Stripe,
}

impl ArrivalSchedule {
    pub fn constant(rate: f64, time_unit: Duration, duration: Duration) -> ArrivalSchedule {
        let per_sec = rate / time_unit.as_secs_f64();
        ArrivalSchedule {
            start_rate: per_sec,
            stages: vec![(duration, per_sec)],
            stripe: Stripe::WHOLE,
        }
    }

    pub fn ramping(start_rate: f64, time_unit: Duration, stages: &[Stage]) -> ArrivalSchedule {
        let unit = time_unit.as_secs_f64();
        ArrivalSchedule {
            start_rate: start_rate / unit,
            stages: stages
                .iter()
                .map(|s| (s.duration, s.target / unit))
                .collect(),
            stripe: Stripe::WHOLE,
        }
    }

    pub fn stripe(mut self, stripe: Stripe) -> ArrivalSchedule {
        self.stripe = stripe;
        self
    }

    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.0).sum()
    }

    /// Arrivals of the whole test over its whole duration (real-valued).
    fn total_area(&self) -> f64 {
        let mut from = self.start_rate;
        let mut area = 0.0;
        for &(d, to) in &self.stages {
            area += (from + to) / 2.0 * d.as_secs_f64();
            from = to;
        }
        area
    }

    /// Iterations the whole test starts: every `k` whose slot falls before the end.
    pub fn whole_total(&self) -> u64 {
        let area = self.total_area();
        // Guard against float noise turning an exact integer area into one slot more.
        let rounded = area.round();
        if (area - rounded).abs() < 1e-6 {
            rounded as u64
        } else {
            area.ceil() as u64
        }
    }

    /// Iterations this stripe starts.
    pub fn total(&self) -> u64 {
        self.stripe.count_below(self.whole_total())
    }

    /// This stripe's slots, as offsets from the scenario's start, in order.
    pub fn slots(&self) -> Slots<'_> {
        Slots {
            schedule: self,
            local: 0,
            total: self.total(),
            stage: 0,
            stage_start: 0.0,
            area_before: 0.0,
            from: self.start_rate,
        }
    }
}

/// Iterator over a stripe's slots; walks the stages forward once.
pub struct Slots<'a> {
    schedule: &'a ArrivalSchedule,
    local: u64,
    total: u64,
    stage: usize,
    stage_start: f64,
    area_before: f64,
    from: f64,
}

impl Iterator for Slots<'_> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.local >= self.total {
            return None;
        }
        let k = self.schedule.stripe.global(self.local) as f64;
        self.local += 1;
        while let Some(&(d, to)) = self.schedule.stages.get(self.stage) {
            let secs = d.as_secs_f64();
            let area = (self.from + to) / 2.0 * secs;
            let wanted = k - self.area_before;
            if wanted < area || self.stage + 1 == self.schedule.stages.len() {
                let tau = time_to_reach(self.from, to, secs, wanted.max(0.0)).min(secs);
                return Some(Duration::from_secs_f64(self.stage_start + tau));
            }
            self.stage += 1;
            self.stage_start += secs;
            self.area_before += area;
            self.from = to;
        }
        None
    }
}

/// Time within a stage (rate `r0` → `r1` over `d` seconds) at which `a` arrivals have
/// accumulated: solves `r0·τ + (r1 − r0)·τ²/(2d) = a` in a form that stays accurate
/// when the rate hardly changes.
fn time_to_reach(r0: f64, r1: f64, d: f64, a: f64) -> f64 {
    if a <= 0.0 {
        return 0.0;
    }
    let slope = (r1 - r0) / d;
    let disc = r0 * r0 + 2.0 * slope * a;
    if disc <= 0.0 {
        return d;
    }
    let denom = r0 + disc.sqrt();
    if denom <= 0.0 {
        d
    } else {
        2.0 * a / denom
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(v: f64) -> Duration {
        Duration::from_secs_f64(v)
    }

    #[test]
    fn constant_rate_slots_are_evenly_spaced() {
        let s = ArrivalSchedule::constant(10.0, secs(1.0), secs(2.0));
        let slots: Vec<f64> = s.slots().map(|d| d.as_secs_f64()).collect();
        assert_eq!(slots.len(), 20);
        for (i, t) in slots.iter().enumerate() {
            assert!((t - i as f64 * 0.1).abs() < 1e-9, "slot {i} at {t}");
        }
        let per_minute = ArrivalSchedule::constant(120.0, secs(60.0), secs(10.0));
        assert_eq!(per_minute.whole_total(), 20);
    }

    #[test]
    fn ramp_from_zero_accumulates_quadratically() {
        // 0 → 100/s over 10 s: 500 arrivals; half of them by t = 10/√2.
        let s = ArrivalSchedule::ramping(
            0.0,
            secs(1.0),
            &[Stage {
                duration: secs(10.0),
                target: 100.0,
            }],
        );
        assert_eq!(s.whole_total(), 500);
        let slots: Vec<Duration> = s.slots().collect();
        assert!((slots[250].as_secs_f64() - 10.0 / 2f64.sqrt()).abs() < 1e-6);
        assert!(slots.windows(2).all(|w| w[0] <= w[1]));
    }

    proptest! {
        #[test]
        fn stripes_partition_the_slots(
            start in 0u32..200,
            stages in proptest::collection::vec((1u32..3000, 0u32..400), 1..4),
            n in 1u64..12,
        ) {
            let stages: Vec<Stage> = stages.iter().map(|&(d, r)| Stage { duration: Duration::from_millis(d.into()), target: r.into() }).collect();
            let whole = ArrivalSchedule::ramping(start.into(), secs(1.0), &stages);
            let mut all: Vec<Duration> = whole.slots().collect();
            let mut parts: Vec<Duration> = (0..n)
                .flat_map(|i| whole.clone().stripe(Stripe { offset: i, stride: n }).slots().collect::<Vec<_>>())
                .collect();
            all.sort();
            parts.sort();
            prop_assert_eq!(parts.len() as u64, whole.whole_total());
            prop_assert_eq!(parts, all);
        }
    }
}
