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
