//! A target on its own thread and runtime, for callers that are not async themselves:
//! `kpress run --local-target`, and tests that drive the kpress binary or the engine
//! from plain threads. Dropping it shuts the server down.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use crate::{Target, TargetError, TargetOptions};

enum Control {
    Stall(Duration),
    Stop,
}

/// A target served from a background thread.
pub struct BackgroundTarget {
    url: String,
    certificate_der: Option<Vec<u8>>,
    control: tokio::sync::mpsc::UnboundedSender<Control>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundTarget {
    /// Binds `addr` (e.g. `127.0.0.1:0`) and serves from a new thread with a one-worker
    /// runtime; returns once the target is listening.
    pub fn start(
        addr: SocketAddr,
        options: TargetOptions,
    ) -> Result<BackgroundTarget, TargetError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (control, mut commands) = tokio::sync::mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("kpress-target".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(TargetError::Runtime(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let target = match Target::start(addr, options).await {
                        Ok(t) => t,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok((target.url(), target.certificate_der())));
                    while let Some(command) = commands.recv().await {
                        match command {
                            Control::Stall(d) => target.stall(d),
                            Control::Stop => break,
                        }
                    }
                    target.shutdown().await;
                });
            })
            .map_err(TargetError::Runtime)?;
        let (url, certificate_der) = ready_rx.recv().map_err(|_| {
            TargetError::Runtime(std::io::Error::other(
                "the target thread ended before listening",
            ))
        })??;
        Ok(BackgroundTarget {
            url,
            certificate_der,
            control,
            thread: Some(thread),
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The self-signed certificate (DER) when serving TLS.
    pub fn certificate_der(&self) -> Option<&[u8]> {
        self.certificate_der.as_deref()
    }

    /// Stalls the target for `duration` (see [`Target::stall`]).
    pub fn stall(&self, duration: Duration) {
        let _ = self.control.send(Control::Stall(duration));
    }
}

impl Drop for BackgroundTarget {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
