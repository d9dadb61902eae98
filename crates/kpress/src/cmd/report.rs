//! `--center URL` for `run` and `submit`: register the run with the management
//! center, hand its runners the run's runner token, and say what became of the
//! upload. The center is never in the way of a test: when it cannot be reached the
//! test runs all the same, reports locally, and the failure is printed.

use std::collections::BTreeMap;

use kpress_engine::scenario::TestSpec;
use kpress_report::client::{Center, Reporter};
use kpress_report::wire::{CreateRun, DeploymentRequest, Mode};

use crate::cli::{CenterLinkArgs, RunArgs};

/// A run registered with a center, and the credential its runners report with.
pub struct Registered {
    pub center: Center,
    pub run: String,
    pub runner_token: String,
    /// Mode `deployment`: the run's Deployment, as the center built it.
    pub manifest: Option<String>,
}

impl Registered {
    /// The environment a runner process or pod of this run reports with.
    pub fn runner_env(&self) -> Vec<(String, String)> {
        vec![
            ("KPRESS_CENTER_URL".into(), self.center.url().to_string()),
            ("KPRESS_RUNNER_TOKEN".into(), self.runner_token.clone()),
        ]
    }

    /// The reporter for runner `index` of this run.
    pub fn reporter(&self, index: u64) -> Reporter {
        Reporter::start(self.center.with_token(&self.runner_token), &self.run, index)
    }

    /// Finishes the run with what has arrived (when some runner could not report).
    pub async fn finish(&self, reason: &str) {
        if let Err(e) = self.center.finish(&self.run, reason).await {
            eprintln!("kpress: could not finish the run at the center: {e}");
        }
    }
}

/// What to register.
pub struct RunToRegister<'a> {
    pub spec: &'a TestSpec,
    pub run: &'a str,
    pub mode: Mode,
    pub runners: u64,
    pub app: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub deployment: Option<DeploymentRequest>,
}

impl<'a> RunToRegister<'a> {
    /// A run of `kpress run` on this machine, in `runners` shares.
    pub fn local(
        args: &RunArgs,
        spec: &'a TestSpec,
        run: &'a str,
        runners: u64,
    ) -> RunToRegister<'a> {
        RunToRegister {
            spec,
            run,
            mode: Mode::Local,
            runners,
            app: args.app.clone(),
            labels: BTreeMap::new(),
            deployment: None,
        }
    }
}

/// Registers the run and says where its results go; `None` (after saying why) when
/// there is no center or it refused: the test then runs without it.
pub async fn register(link: &CenterLinkArgs, run: RunToRegister<'_>) -> Option<Registered> {
    link.center.as_deref()?;
    match try_register(link, run).await {
        Ok(registered) => Some(registered),
        Err(e) => {
            eprintln!("kpress: {e}; running without the center");
            None
        }
    }
}

/// Registers the run with the center `link` names, and says where its results go.
pub async fn try_register(
    link: &CenterLinkArgs,
    run: RunToRegister<'_>,
) -> Result<Registered, String> {
    let url = link
        .center
        .as_deref()
        .ok_or("no center given (--center URL or KPRESS_CENTER_URL)")?;
    let token = link
        .center_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or("--center needs the center's token in KPRESS_CENTER_TOKEN")?;
    let center = Center::new(url, token).map_err(|e| e.to_string())?;
    let body = CreateRun {
        id: Some(run.run.to_string()),
        test: run.spec.name.clone(),
        app: run.app,
        mode: run.mode,
        started_by: Some(started_by()),
        scenario: run.spec.source.clone(),
        runners: run.runners,
        labels: run.labels,
        deployment: run.deployment,
    };
    let created = center.create_run(&body).await.map_err(|e| e.to_string())?;
    let registered = Registered {
        center,
        run: created.run.id,
        runner_token: created.runner_token,
        manifest: created.manifest,
    };
    eprintln!(
        "kpress: results go to {}runs/{}",
        registered.center.url(),
        registered.run
    );
    Ok(registered)
}

/// Joins a run someone else registered, as one of its runners.
pub fn join(link: &CenterLinkArgs, runner_token: &str, run: &str, index: u64) -> Option<Reporter> {
    let url = link.center.as_deref()?;
    match Center::new(url, runner_token) {
        Ok(center) => Some(Reporter::start(center, run, index)),
        Err(e) => {
            eprintln!("kpress: {e}; running without the center");
            None
        }
    }
}

/// Says so when the results did not reach the center.
pub fn say_if_undelivered(result: Result<(), kpress_report::client::ReportError>) {
    if let Err(e) = result {
        eprintln!("kpress: the results could not be delivered to the center: {e}");
    }
}

/// `user@host`, or the CI job when there is one.
fn started_by() -> String {
    if let (Ok(server), Ok(repo), Ok(id)) = (
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_REPOSITORY"),
        std::env::var("GITHUB_RUN_ID"),
    ) {
        return format!("{server}/{repo}/actions/runs/{id}");
    }
    if let Ok(url) = std::env::var("CI_JOB_URL") {
        return url;
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{}", host_name())
}

/// This machine's (or pod's) host name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
