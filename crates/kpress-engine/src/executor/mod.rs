//! The six executors of k6, as validated values, and what each one asks of the runtime
//! for one stripe of the test. One module per executor holds its arithmetic; the
//! runtime (`crate::run`) only knows the three shapes they reduce to.

pub mod arrival;
pub mod vus;

use std::time::Duration;

use crate::segment::Stripe;

/// One step of a ramp: reach `target` (VUs, or iterations per time unit) linearly over
/// `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Executor {
    ConstantVus {
        vus: u64,
        duration: Duration,
    },
    RampingVus {
        start_vus: u64,
        stages: Vec<Stage>,
        graceful_ramp_down: Duration,
    },
    PerVuIterations {
        vus: u64,
        iterations: u64,
        max_duration: Duration,
    },
    SharedIterations {
        vus: u64,
        iterations: u64,
        max_duration: Duration,
    },
    ConstantArrivalRate {
        rate: f64,
        time_unit: Duration,
        duration: Duration,
        pre_allocated_vus: u64,
        max_vus: u64,
    },
    RampingArrivalRate {
        start_rate: f64,
        time_unit: Duration,
        stages: Vec<Stage>,
        pre_allocated_vus: u64,
        max_vus: u64,
    },
}

/// What the runtime executes for one stripe of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// Closed model: keep a number of VUs looping, the number following `schedule`.
    Looping {
        schedule: vus::VuSchedule,
        graceful_ramp_down: Duration,
    },
    /// Closed model with an iteration budget: `vus` VUs, each doing `per_vu`
    /// iterations, or sharing `shared` iterations between them.
    Counted {
        vus: u64,
        per_vu: Option<u64>,
        shared: Option<u64>,
        max_duration: Duration,
    },
    /// Open model: iterations start at the arrival slots, on a pool of VUs.
    Arrivals {
        schedule: arrival::ArrivalSchedule,
        pre_allocated_vus: u64,
        max_vus: u64,
    },
}

impl Executor {
    pub fn name(&self) -> &'static str {
        match self {
            Executor::ConstantVus { .. } => "constant-vus",
            Executor::RampingVus { .. } => "ramping-vus",
            Executor::PerVuIterations { .. } => "per-vu-iterations",
            Executor::SharedIterations { .. } => "shared-iterations",
            Executor::ConstantArrivalRate { .. } => "constant-arrival-rate",
            Executor::RampingArrivalRate { .. } => "ramping-arrival-rate",
        }
    }

    /// How long the executor runs before its graceful stop, at most.
    pub fn nominal_duration(&self) -> Duration {
        match self {
            Executor::ConstantVus { duration, .. }
            | Executor::ConstantArrivalRate { duration, .. } => *duration,
            Executor::RampingVus { stages, .. } | Executor::RampingArrivalRate { stages, .. } => {
                stages.iter().map(|s| s.duration).sum()
            }
            Executor::PerVuIterations { max_duration, .. }
            | Executor::SharedIterations { max_duration, .. } => *max_duration,
        }
    }

    /// The largest number of VUs the whole test can run at once.
    pub fn max_vus(&self) -> u64 {
        match self {
            Executor::ConstantVus { vus, .. }
            | Executor::PerVuIterations { vus, .. }
            | Executor::SharedIterations { vus, .. } => *vus,
            Executor::RampingVus {
                start_vus, stages, ..
            } => stages
                .iter()
                .map(|s| s.target.ceil() as u64)
                .fold(*start_vus, u64::max),
            Executor::ConstantArrivalRate { max_vus, .. }
            | Executor::RampingArrivalRate { max_vus, .. } => *max_vus,
        }
    }

    /// The highest arrival rate of an open-model executor, in iterations per second of
    /// the whole test; `None` for the closed model.
    pub fn peak_arrival_rate(&self) -> Option<f64> {
        match self {
            Executor::ConstantArrivalRate {
                rate, time_unit, ..
            } => Some(rate / time_unit.as_secs_f64()),
            Executor::RampingArrivalRate {
                start_rate,
                time_unit,
                stages,
                ..
            } => Some(
                stages.iter().map(|s| s.target).fold(*start_rate, f64::max)
                    / time_unit.as_secs_f64(),
            ),
            _ => None,
        }
    }

    /// The work of one stripe (a runner, or a thread of a runner).
    pub fn work(&self, stripe: Stripe) -> Work {
        match self {
            Executor::ConstantVus { vus, duration } => Work::Looping {
                schedule: vus::VuSchedule::constant(*vus, *duration).stripe(stripe),
                graceful_ramp_down: Duration::ZERO,
            },
            Executor::RampingVus {
                start_vus,
                stages,
                graceful_ramp_down,
            } => Work::Looping {
                schedule: vus::VuSchedule::ramping(*start_vus, stages).stripe(stripe),
                graceful_ramp_down: *graceful_ramp_down,
            },
            Executor::PerVuIterations {
                vus,
                iterations,
                max_duration,
            } => Work::Counted {
                vus: stripe.count_below(*vus),
                per_vu: Some(*iterations),
                shared: None,
                max_duration: *max_duration,
            },
            Executor::SharedIterations {
                vus,
                iterations,
                max_duration,
            } => Work::Counted {
                vus: stripe.count_below(*vus),
                per_vu: None,
                shared: Some(stripe.count_below(*iterations)),
                max_duration: *max_duration,
            },
            Executor::ConstantArrivalRate {
                rate,
                time_unit,
                duration,
                pre_allocated_vus,
                max_vus,
            } => Work::Arrivals {
                schedule: arrival::ArrivalSchedule::constant(*rate, *time_unit, *duration)
                    .stripe(stripe),
                pre_allocated_vus: stripe.count_below(*pre_allocated_vus),
                max_vus: stripe.count_below(*max_vus),
            },
            Executor::RampingArrivalRate {
                start_rate,
                time_unit,
                stages,
                pre_allocated_vus,
                max_vus,
            } => Work::Arrivals {
                schedule: arrival::ArrivalSchedule::ramping(*start_rate, *time_unit, stages)
                    .stripe(stripe),
                pre_allocated_vus: stripe.count_below(*pre_allocated_vus),
                max_vus: stripe.count_below(*max_vus),
            },
        }
    }

    /// The smallest share of VUs any stripe of `parts` gets; a stripe with no VU but
    /// with arrivals could only drop them, so planning rejects such splits.
    pub fn min_vus_per_part(&self, parts: u64) -> u64 {
        let vus = match self {
            Executor::ConstantArrivalRate { max_vus, .. }
            | Executor::RampingArrivalRate { max_vus, .. } => *max_vus,
            other => other.max_vus(),
        };
        vus / parts.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::Segment;
    use proptest::prelude::*;

    /// What a piece of work amounts to: (peak VUs or VU budget, iterations if counted, arrival slots).
    fn totals(work: &Work) -> (u64, Option<u64>, u64) {
        match work {
            Work::Looping { schedule, .. } => (schedule.peak(), None, 0),
            Work::Counted {
                vus,
                per_vu,
                shared,
                ..
            } => (*vus, Some(shared.unwrap_or(per_vu.unwrap_or(0) * vus)), 0),
            Work::Arrivals {
                schedule, max_vus, ..
            } => (*max_vus, None, schedule.total()),
        }
    }

    fn executors() -> impl Strategy<Value = Executor> {
        let secs = |s: u64| Duration::from_millis(s);
        let stage = (1u64..5_000, 0u32..400).prop_map(move |(d, t)| Stage {
            duration: secs(d),
            target: t.into(),
        });
        prop_oneof![
            (1u64..500, 1u64..10_000).prop_map(move |(vus, d)| Executor::ConstantVus {
                vus,
                duration: secs(d)
            }),
            (0u64..50, proptest::collection::vec(stage.clone(), 1..4)).prop_map(
                |(start_vus, stages)| Executor::RampingVus {
                    start_vus,
                    stages,
                    graceful_ramp_down: Duration::ZERO
                }
            ),
            (1u64..300, 1u64..300).prop_map(|(vus, iterations)| Executor::PerVuIterations {
                vus,
                iterations,
                max_duration: Duration::from_secs(60)
            }),
            (1u64..300, 0u64..10_000).prop_map(|(vus, extra)| Executor::SharedIterations {
                vus,
                iterations: vus + extra,
                max_duration: Duration::from_secs(60)
            }),
            (1u32..5_000, 1u64..3, 1u64..20_000, 1u64..200, 0u64..500).prop_map(
                |(rate, unit, d, pre, extra)| Executor::ConstantArrivalRate {
                    rate: rate.into(),
                    time_unit: Duration::from_secs(unit),
                    duration: Duration::from_millis(d),
                    pre_allocated_vus: pre,
                    max_vus: pre + extra,
                }
            ),
            (0u32..300, proptest::collection::vec(stage, 1..4), 1u64..200).prop_map(
                |(start, stages, pre)| Executor::RampingArrivalRate {
                    start_rate: start.into(),
                    time_unit: Duration::from_secs(1),
                    stages,
                    pre_allocated_vus: pre,
                    max_vus: pre * 2,
                }
            ),
        ]
    }

    proptest! {
        #[test]
        fn the_segments_of_every_executor_add_up_to_the_whole(executor in executors(), n in 1u64..40) {
            let whole = totals(&executor.work(Segment::WHOLE.stripe()));
            let mut sum = (0u64, None::<u64>, 0u64);
            for i in 0..n {
                let part = totals(&executor.work(Segment { index: i, count: n }.stripe()));
                sum.0 += part.0;
                sum.1 = part.1.map(|x| sum.1.unwrap_or(0) + x);
                sum.2 += part.2;
            }
            prop_assert_eq!(sum, whole, "{:?} split {} ways", executor, n);
        }
    }
}
