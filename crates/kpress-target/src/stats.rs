//! Counts of what the target has served, for tests to check what reached the server and
//! for `GET /__kpress/stats`. They are atomics so that counting a response costs one or two
//! additions and no lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use http::StatusCode;
use serde::{Deserialize, Serialize};

/// What a target has served so far, not counting its control endpoints. The counters are
/// read one by one while requests go on, so a snapshot taken under load may be off by the
/// requests in flight.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetStats {
    /// Responses produced, whatever their status.
    pub requests: u64,
    /// Responses produced, by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// Request body bytes read.
    pub bytes_received: u64,
    /// Response body bytes produced (none for HEAD, 204 and 304 responses).
    pub bytes_sent: u64,
    /// Connections accepted.
    pub connections: u64,
}

/// Status codes the target can answer with are below this.
const STATUS_LIMIT: usize = 600;

pub(crate) struct Counters {
    /// Indexed by status code; the total of requests is their sum, which saves the hot path
    /// an addition.
    by_status: [AtomicU64; STATUS_LIMIT],
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    connections: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            by_status: [const { AtomicU64::new(0) }; STATUS_LIMIT],
            bytes_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        }
    }
}

impl Counters {
    pub(crate) fn connection(&self) {
        self.connections.fetch_add(1, Relaxed);
    }

    pub(crate) fn response(&self, status: StatusCode, received: u64, sent: u64) {
        if let Some(count) = self.by_status.get(usize::from(status.as_u16())) {
            count.fetch_add(1, Relaxed);
        }
        // Most load is bodiless GETs: skipping zero additions keeps that path cheaper.
        if received > 0 {
            self.bytes_received.fetch_add(received, Relaxed);
        }
        if sent > 0 {
            self.bytes_sent.fetch_add(sent, Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> TargetStats {
        let by_status: BTreeMap<u16, u64> = (0u16..)
            .zip(&self.by_status)
            .map(|(code, count)| (code, count.load(Relaxed)))
            .filter(|&(_, count)| count > 0)
            .collect();
        TargetStats {
            requests: by_status.values().sum(),
            by_status,
            bytes_received: self.bytes_received.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            connections: self.connections.load(Relaxed),
        }
    }
}
