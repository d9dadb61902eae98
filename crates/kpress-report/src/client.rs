//! The runner's side of the center: register a run, stream its seconds while it runs,
//! deliver its summary and completion signal at the end. A load test never waits on
//! the center and never fails because of it: points go through a bounded queue to a
//! background task, every call is retried with backoff for a bounded time, and what
//! could not be delivered is reported to the caller, who says so.

use std::time::Duration;

use kpress_engine::summary::{Summary, TimelinePoint};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::wire::{
    CreateRun, CreatedRun, Done, ErrorBody, Lease, LeaseRequest, Points, RunDetail, RunInfo,
    RunnerOutcome, Timeline,
};

/// Per request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Points waiting for the center; older ones are dropped first when it is away this
/// long (the final summary carries the whole timeline anyway).
const QUEUE: usize = 3600;
/// At most this many points per request.
const BATCH: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("`{0}` is not a center URL: {1}")]
    Url(String, String),
    #[error("the center at {url} is unreachable: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("the center refused {what}: HTTP {status}: {message}")]
    Refused {
        what: String,
        status: u16,
        message: String,
    },
    #[error("the center's answer to {what} is not understood: {cause}")]
    Answer { what: String, cause: String },
    #[error("the client cannot start: {0}")]
    Client(String),
}

impl ReportError {
    /// Whether trying again may help (the center is away or overloaded).
    pub fn transient(&self) -> bool {
        match self {
            ReportError::Unreachable { .. } => true,
            ReportError::Refused { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            _ => false,
        }
    }
}

/// How long a call keeps trying: backoff from 100 ms doubling to 5 s, until `budget`.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub budget: Duration,
}

impl Retry {
    pub const FINAL: Retry = Retry {
        budget: Duration::from_secs(60),
    };
    pub const LIVE: Retry = Retry {
        budget: Duration::from_secs(2),
    };
}

/// A connection to one center with one credential (the center's token for
/// registering runs, or a run's runner token for reporting).
#[derive(Clone)]
pub struct Center {
    base: reqwest::Url,
    token: String,
    http: reqwest::Client,
}

impl Center {
    pub fn new(url: &str, token: &str) -> Result<Center, ReportError> {
        let mut base =
            reqwest::Url::parse(url).map_err(|e| ReportError::Url(url.into(), e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ReportError::Url(
                url.into(),
                "it must be an http:// or https:// URL".into(),
            ));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ReportError::Client(e.to_string()))?;
        Ok(Center {
            base,
            token: token.to_string(),
            http,
        })
    }

    /// The same center, with another credential.
    pub fn with_token(&self, token: &str) -> Center {
        Center {
            token: token.to_string(),
            ..self.clone()
        }
    }

    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    /// Registers a run (with the center's token). Re-sending after a timeout is safe
    /// when `run.id` is set: the center answers with the same run and runner token.
    pub async fn create_run(&self, run: &CreateRun) -> Result<CreatedRun, ReportError> {
        self.call(
            reqwest::Method::POST,
            "api/runs",
            run,
            "registering the run",
            Retry::LIVE,
        )
        .await
    }

    /// Asks for this runner pod's share of a `deployment`-mode run (with the run's
    /// runner token).
    pub async fn lease(&self, run: &str, request: &LeaseRequest) -> Result<Lease, ReportError> {
        self.call(
            reqwest::Method::POST,
            &format!("api/runs/{run}/lease"),
            request,
            "the lease request",
            Retry::LIVE,
        )
        .await
    }

    /// Finishes a run now with what has arrived (runners not done count as missing).
    pub async fn finish(&self, run: &str, reason: &str) -> Result<RunInfo, ReportError> {
        let body = serde_json::json!({ "reason": reason });
        self.call(
            reqwest::Method::POST,
            &format!("api/runs/{run}/finish"),
            &body,
            "finishing the run",
            Retry::FINAL,
        )
        .await
    }

    /// A run with its merged summary, runners and Deployment (with the center's token).
    pub async fn run_detail(&self, run: &str) -> Result<RunDetail, ReportError> {
        self.call(
            reqwest::Method::GET,
            &format!("api/runs/{run}"),
            &(),
            "reading the run",
            Retry::LIVE,
        )
        .await
    }

    /// A run's seconds, every runner's merged (with the center's token).
    pub async fn timeline(&self, run: &str) -> Result<Timeline, ReportError> {
        self.call(
            reqwest::Method::GET,
            &format!("api/runs/{run}/timeline"),
            &(),
            "reading the run's timeline",
            Retry::LIVE,
        )
        .await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
        what: &str,
        retry: Retry,
    ) -> Result<T, ReportError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| ReportError::Url(path.into(), e.to_string()))?;
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            match self.once(method.clone(), url.clone(), body, what).await {
                Err(e) if e.transient() && started.elapsed() + pause < retry.budget => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }

    async fn once<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        body: &B,
        what: &str,
    ) -> Result<T, ReportError> {
        let mut request = self
            .http
            .request(method.clone(), url)
            .bearer_auth(&self.token);
        if method != reqwest::Method::GET {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| ReportError::Unreachable {
            url: self.base.to_string(),
            cause: error_chain(&e),
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ReportError::Unreachable {
                url: self.base.to_string(),
                cause: error_chain(&e),
            })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ReportError::Answer {
                what: what.into(),
                cause: e.to_string(),
            });
        }
        let message = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|b| b.error.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        Err(ReportError::Refused {
            what: what.into(),
            status: status.as_u16(),
            message,
        })
    }
}

/// An error with every cause after it, `a: b: c`: reqwest's own message alone rarely
/// says what went wrong (refused, reset, DNS...).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// One runner of a registered run, reporting with the run's runner token.
pub struct Reporter {
    center: Center,
    run: String,
    index: u64,
    points: mpsc::Sender<TimelinePoint>,
    sender: JoinHandle<Option<ReportError>>,
}

impl Reporter {
    /// Starts the background task that streams points. Needs a tokio runtime.
    pub fn start(center: Center, run: &str, index: u64) -> Reporter {
        let (points, inbox) = mpsc::channel(QUEUE);
        let path = format!("api/runs/{run}/runners/{index}/points");
        let sender = tokio::spawn(stream_points(center.clone(), path, inbox));
        Reporter {
            center,
            run: run.to_string(),
            index,
            points,
            sender,
        }
    }

    /// Queues one completed second; never blocks the run. When the queue is full
    /// (the center has been away for a long time) the point is dropped: the summary
    /// sent at the end carries the whole timeline.
    pub fn point(&self, point: TimelinePoint) {
        let _ = self.points.try_send(point);
    }

    /// Delivers the runner's summary and its completion signal, after the queued
    /// points. Returns the first failure (live or final), if any.
    pub async fn finish(self, summary: Option<&Summary>) -> Result<(), ReportError> {
        drop(self.points);
        let live = self.sender.await.ok().flatten();
        let base = format!("api/runs/{}/runners/{}", self.run, self.index);
        if let Some(summary) = summary {
            self.center
                .call::<_, RunInfo>(
                    reqwest::Method::PUT,
                    &format!("{base}/summary"),
                    summary,
                    "the runner's summary",
                    Retry::FINAL,
                )
                .await?;
        }
        let done = Done {
            outcome: if summary.is_some() {
                RunnerOutcome::Completed
            } else {
                RunnerOutcome::Failed
            },
            message: None,
        };
        self.center
            .call::<_, RunInfo>(
                reqwest::Method::POST,
                &format!("{base}/done"),
                &done,
                "the runner's completion signal",
                Retry::FINAL,
            )
            .await?;
        match live {
            // Points lost live are in the summary's timeline, which the center keeps.
            Some(e) if summary.is_none() => Err(e),
            _ => Ok(()),
        }
    }
}

/// Sends queued points in batches; a batch that cannot be delivered within the live
/// retry budget is kept and sent with the next one. Returns the last failure.
async fn stream_points(
    center: Center,
    path: String,
    mut inbox: mpsc::Receiver<TimelinePoint>,
) -> Option<ReportError> {
    let mut pending: Vec<TimelinePoint> = Vec::new();
    let mut last_error = None;
    while let Some(point) = inbox.recv().await {
        pending.push(point);
        while pending.len() < QUEUE {
            match inbox.try_recv() {
                Ok(p) => pending.push(p),
                Err(_) => break,
            }
        }
        while !pending.is_empty() {
            let take = pending.len().min(BATCH);
            let batch = Points {
                points: pending[..take].to_vec(),
            };
            let sent: Result<serde_json::Value, _> = center
                .call(reqwest::Method::POST, &path, &batch, "points", Retry::LIVE)
                .await;
            match sent {
                Ok(_) => {
                    pending.drain(..take);
                    last_error = None;
                }
                Err(e) if e.transient() => {
                    last_error = Some(e);
                    if pending.len() > QUEUE {
                        let excess = pending.len() - QUEUE;
                        pending.drain(..excess);
                    }
                    break;
                }
                Err(e) => {
                    pending.clear();
                    last_error = Some(e);
                }
            }
        }
    }
    if !pending.is_empty() {
        let batch = Points { points: pending };
        if let Err(e) = center
            .call::<_, serde_json::Value>(
                reqwest::Method::POST,
                &path,
                &batch,
                "points",
                Retry::LIVE,
            )
            .await
        {
            last_error = Some(e);
        }
    }
    last_error
}
