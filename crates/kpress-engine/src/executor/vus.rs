//! The closed model's VU count over time (`constant-vus`, `ramping-vus`): a
//! piecewise-linear target, of which a stripe runs the VUs whose global number is its.

use std::time::Duration;

use super::Stage;
use crate::segment::Stripe;

#[derive(Debug, Clone, PartialEq)]
pub struct VuSchedule {
    start: f64,
    stages: Vec<Stage>,
    stripe: Stripe,
}

impl VuSchedule {
    pub fn constant(vus: u64, duration: Duration) -> VuSchedule {
        VuSchedule {
            start: vus as f64,
            stages: vec![Stage {
                duration,
                target: vus as f64,
            }],
            stripe: Stripe::WHOLE,
        }
    }

    pub fn ramping(start_vus: u64, stages: &[Stage]) -> VuSchedule {
        VuSchedule {
            start: start_vus as f64,
            stages: stages.to_vec(),
            stripe: Stripe::WHOLE,
        }
    }

    pub fn stripe(mut self, stripe: Stripe) -> VuSchedule {
        self.stripe = stripe;
        self
    }

    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The whole test's VU target at `t` (rounded down while ramping, exact at stage ends).
    pub fn whole_at(&self, t: Duration) -> u64 {
        let mut from = self.start;
        let mut elapsed = Duration::ZERO;
        for stage in &self.stages {
            if t < elapsed + stage.duration {
                let frac = (t - elapsed).as_secs_f64() / stage.duration.as_secs_f64();
                return (from + (stage.target - from) * frac).floor().max(0.0) as u64;
            }
            elapsed += stage.duration;
            from = stage.target;
        }
        0
    }

    /// This stripe's VUs at `t`.
    pub fn at(&self, t: Duration) -> u64 {
        self.stripe.count_below(self.whole_at(t))
    }

    /// The most VUs this stripe ever runs.
    pub fn peak(&self) -> u64 {
        let whole = self
            .stages
            .iter()
            .map(|s| s.target.ceil() as u64)
            .fold(self.start.ceil() as u64, u64::max);
        self.stripe.count_below(whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn ramps_linearly_and_ends() {
        let s = VuSchedule::ramping(
            0,
            &[
                Stage {
                    duration: ms(1000),
                    target: 10.0,
                },
                Stage {
                    duration: ms(1000),
                    target: 0.0,
                },
            ],
        );
        assert_eq!(s.whole_at(ms(0)), 0);
        assert_eq!(s.whole_at(ms(500)), 5);
        assert_eq!(s.whole_at(ms(1000)), 10);
        assert_eq!(s.whole_at(ms(1500)), 5);
        assert_eq!(s.whole_at(ms(2000)), 0);
        assert_eq!(s.peak(), 10);
        assert_eq!(s.duration(), ms(2000));
    }

    proptest! {
        #[test]
        fn stripes_add_up_at_every_instant(
            start in 0u64..50,
            targets in proptest::collection::vec((1u64..5000, 0u64..300), 1..5),
            n in 1u64..16,
            probe in 0u64..25_000,
        ) {
            let stages: Vec<Stage> = targets.iter().map(|&(d, v)| Stage { duration: ms(d), target: v as f64 }).collect();
            let whole = VuSchedule::ramping(start, &stages);
            let t = ms(probe);
            let sum: u64 = (0..n).map(|i| whole.clone().stripe(Stripe { offset: i, stride: n }).at(t)).sum();
            prop_assert_eq!(sum, whole.whole_at(t));
        }
    }
}
