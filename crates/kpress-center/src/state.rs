//! What every handler shares: the store, the center's token and the settings that
//! shape the API. Cheap to clone.

use std::sync::Arc;

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
            }),
        }
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
