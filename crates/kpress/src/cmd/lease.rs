//! `kpress run --lease`: a runner pod of a `deployment`-mode run. A Deployment's pods
//! have no completion index and are restarted whenever they exit, so such a runner
//! asks the center for its share, waits for the common start the center announces once
//! every share is leased, runs, reports, and then idles until the Deployment is scaled
//! away, never exiting on its own. A restarted container or a replacement pod asks
//! again, and the center tells it to idle when its share already ran.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use kpress_engine::run::Control;
use kpress_engine::segment::Segment;
use kpress_engine::summary;
use kpress_report::client::Center;
use kpress_report::wire::{LeaseRequest, LeaseState};

use crate::cli::RunArgs;
use crate::exit::OK;

/// How often a runner asks again while the other shares are not all leased; each
/// request also renews its lease.
const POLL: Duration = Duration::from_millis(250);

/// What the center gave this runner.
pub enum Share {
    /// Run `segment` from `start_at`.
    Run {
        segment: Segment,
        start_at: SystemTime,
    },
    /// Run nothing (the share is done, was cut short, or the run is over).
    Idle(String),
}

/// Asks the center for this runner's share until it says to start or to idle.
pub async fn obtain(args: &RunArgs, control: &Control) -> Result<Share, String> {
    let (Some(url), Some(token), Some(run)) = (
        args.center.center.as_deref(),
        args.runner_token.as_deref(),
        args.run_id.as_deref(),
    ) else {
        return Err(
            "--lease needs the center (--center or KPRESS_CENTER_URL), the run's runner token \
             (KPRESS_RUNNER_TOKEN) and the run id (--run-id)"
                .into(),
        );
    };
    let center = Center::new(url, token).map_err(|e| e.to_string())?;
    let request = LeaseRequest {
        pod: pod_name(),
        process: summary::new_run_id(),
    };
    let deadline = Instant::now() + args.start_timeout;
    let mut said_waiting = false;
    loop {
        match center.lease(run, &request).await {
            Ok(lease) => match (lease.state, lease.index, lease.start_at) {
                (LeaseState::Start, Some(index), Some(at)) => {
                    let segment = Segment::new(index, lease.runners)?;
                    let start_at = humantime::parse_rfc3339_weak(&at)
                        .map_err(|e| format!("the center's start `{at}`: {e}"))?;
                    eprintln!(
                        "kpress: pod {} runs share {segment} of run {run}, starting at {at}",
                        request.pod
                    );
                    return Ok(Share::Run { segment, start_at });
                }
                (LeaseState::Idle, _, _) => {
                    return Ok(Share::Idle(lease.message.unwrap_or_default()));
                }
                (LeaseState::Wait, index, _) => {
                    if !said_waiting {
                        let share = index.map_or("no share yet".to_string(), |i| {
                            format!("share {i}/{}", lease.runners)
                        });
                        eprintln!(
                            "kpress: pod {} holds {share}; waiting for every runner",
                            request.pod
                        );
                        said_waiting = true;
                    }
                }
                (state, _, _) => {
                    return Err(format!(
                        "the center's lease answer is incomplete ({state:?})"
                    ));
                }
            },
            Err(e) if e.transient() => {
                eprintln!("kpress: {e}; asking again");
            }
            Err(e) => return Err(e.to_string()),
        }
        if control.stopping() {
            return Err("stopped while waiting for the start".into());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the center announced no start within {}",
                humantime::format_duration(args.start_timeout)
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Idles until Ctrl-C or SIGTERM (the Deployment scaled away), then exits 0: a
/// runner of a Deployment that exited would be restarted.
pub fn idle(runtime: &tokio::runtime::Runtime, why: &str) -> ExitCode {
    eprintln!("kpress: {why}; idling until the Deployment is scaled away");
    runtime.block_on(kpress_center::shutdown_signal());
    ExitCode::from(OK)
}

/// The pod's name (from the downward API), else the host name.
fn pod_name() -> String {
    std::env::var("KPRESS_POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(super::report::host_name)
}
