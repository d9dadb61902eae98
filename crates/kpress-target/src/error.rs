//! The ways starting or running a target can fail, as one type for the CLI to report.
//!
//! Each message carries its cause, since the CLI prints it as the last word on why
//! `kpress target` did not start.

use std::net::SocketAddr;

/// Why a target could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The address could not be bound: in use, not local, or not allowed.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        error: std::io::Error,
    },
    /// The self-signed certificate could not be generated.
    #[error("cannot generate the self-signed certificate: {0}")]
    Certificate(rcgen::Error),
    /// The TLS configuration was refused.
    #[error("cannot set up TLS: {0}")]
    Tls(rustls::Error),
    /// [`run_forever`](crate::run_forever) could not listen for the signals that stop it.
    #[error("cannot listen for stop signals: {0}")]
    Signal(std::io::Error),
    /// A [`BackgroundTarget`](crate::BackgroundTarget)'s thread or runtime could not start.
    #[error("cannot start the target's thread: {0}")]
    Runtime(std::io::Error),
}
