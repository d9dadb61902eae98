//! What every handler shares: the store, the center's token and the settings that
//! shape the API. Cheap to clone.

use std::sync::Arc;

use crate::deploy::{Cluster, DriveSettings};
use crate::store::Store;
use crate::token::CenterToken;
use crate::Config;

#[derive(Debug, Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: Store,
    token: CenterToken,
    metrics_public: bool,
    max_body: usize,
    /// Set when the center drives `deployment`-mode runs.
    cluster: Option<Cluster>,
    drive: DriveSettings,
}

impl AppState {
    /// The state of a center serving `store` with `config`'s token and settings.
    pub fn new(store: Store, config: &Config) -> AppState {
        AppState {
            shared: Arc::new(Shared {
                store,
                token: CenterToken::new(&config.token),
                metrics_public: config.metrics_public,
                max_body: config.max_body,
                cluster: None,
                drive: config.drive.clone(),
            }),
        }
    }

    /// The same, driving `deployment`-mode runs in `cluster`.
    pub fn with_cluster(store: Store, config: &Config, cluster: Cluster) -> AppState {
        let mut state = AppState::new(store, config);
        if let Some(shared) = Arc::get_mut(&mut state.shared) {
            shared.cluster = Some(cluster);
        }
        state
    }

    pub fn cluster(&self) -> Option<&Cluster> {
        self.shared.cluster.as_ref()
    }

    pub fn drive_settings(&self) -> &DriveSettings {
        &self.shared.drive
    }

    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    pub fn token(&self) -> &CenterToken {
        &self.shared.token
    }

    pub fn metrics_public(&self) -> bool {
        self.shared.metrics_public
    }

    pub fn max_body(&self) -> usize {
        self.shared.max_body
    }
}
