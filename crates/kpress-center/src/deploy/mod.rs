//! `deployment`-mode runs (docs/center.md): for platforms that allow nothing but
//! Deployments, a test is one Deployment "version" of the shared application. The
//! center builds it ([`manifest`]), leases each runner pod its share and starts them
//! together (the store's leases), and when every share has reported, or a deadline
//! passed, scales it to 0, deletes it and its ConfigMaps and runs the clean-up hooks
//! ([`driver`]).

pub mod driver;
pub mod manifest;

use std::path::PathBuf;
use std::time::Duration;

use crate::hooks::{Hook, RetryPolicy};
use crate::store::LeaseTiming;

/// How to reach the cluster the center drives Deployments in.
#[derive(Debug, Clone, Default)]
pub struct KubeSettings {
    /// A kubeconfig file; by default `KUBECONFIG`, `~/.kube/config` or in-cluster.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// The center's URL as runner pods reach it (e.g. its Service's DNS name).
    pub runner_url: Option<String>,
}

/// What the center drives Deployments with.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub runner_url: String,
    pub settings: DriveSettings,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("runner_url", &self.runner_url)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The timing and hooks of `deployment`-mode runs.
#[derive(Debug, Clone)]
pub struct DriveSettings {
    pub timing: LeaseTiming,
    /// Every share must be leased this long after registration, unless the run says.
    pub startup_timeout: Duration,
    /// How often the driver looks for deadlines passed and clean-ups owed.
    pub tick: Duration,
    pub hooks: Vec<Hook>,
    pub hook_retry: RetryPolicy,
}

impl Default for DriveSettings {
    fn default() -> Self {
        DriveSettings {
            timing: LeaseTiming {
                ttl_ms: 10_000,
                start_margin_ms: 3_000,
                report_grace_ms: 60_000,
            },
            startup_timeout: Duration::from_secs(300),
            tick: Duration::from_millis(500),
            hooks: Vec::new(),
            hook_retry: RetryPolicy::default(),
        }
    }
}
