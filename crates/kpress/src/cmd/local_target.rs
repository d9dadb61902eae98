//! `kpress run --local-target`: the built-in target served from this process for the
//! length of the run, on a free loopback port, with the scenario's `defaults.baseUrl`
//! pointed at it. One command then runs a real load test with nothing else set up.

use std::sync::mpsc;
use std::time::Duration;

use kpress_target::{Target, TargetOptions};

pub struct LocalTarget {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LocalTarget {
    pub fn start() -> Result<LocalTarget, String> {
        let (url_tx, url_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("kpress-local-target".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = url_tx.send(Err(format!("cannot start the target's runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
                    match Target::start(addr, TargetOptions::default()).await {
                        Ok(target) => {
                            let _ = url_tx.send(Ok(target.url()));
                            let _ = stop_rx.await;
                            target.shutdown().await;
                        }
                        Err(e) => {
                            let _ = url_tx.send(Err(e.to_string()));
                        }
                    }
                });
            })
            .map_err(|e| format!("cannot start the target's thread: {e}"))?;
        let url = url_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the built-in target did not start".to_string())??;
        Ok(LocalTarget {
            url,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for LocalTarget {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
