//! Clean-up hooks: after the center deletes a finished run's Deployment, the operator's
//! hooks remove the run's entries from discovery systems the center does not know
//! (in-cluster DNS, outside domains, a service registry). A hook is a webhook or a
//! command (`--hook NAME=URL`, `--hook NAME=cmd:PROGRAM ARG...`). Those systems are
//! often briefly away, so every hook is retried with backoff; a hook that still fails
//! is recorded on the run rather than failing it, since the test itself is over.

use std::collections::BTreeMap;
use std::process::{ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kpress_report::client::error_chain;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStderr;
use tokio::task::JoinSet;

/// How much of a failed command's stderr is kept: enough to say why, short enough to
/// store on the run.
const STDERR_TAIL: usize = 200;
/// How much of a refused webhook's answer is kept, for the same reason.
const BODY_START: usize = 200;

/// One configured hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub name: String,
    pub action: Action,
}

/// What a hook does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `POST` the [`HookInput`] as JSON to this http:// or https:// URL.
    Webhook(String),
    /// Run this program (first) with these arguments, without a shell.
    Command(Vec<String>),
}

/// Why a `--hook` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookSpecError {
    #[error("a hook is NAME=URL or NAME=cmd:PROGRAM [ARG...], but `{0}` has no `=`")]
    NoEquals(String),
    #[error("the hook name `{0}` must be 1 to 63 characters among a-z, 0-9 and -")]
    BadName(String),
    #[error("the hook `{0}` says nothing to do: give a URL or cmd:PROGRAM [ARG...] after `=`")]
    NoAction(String),
    #[error(
        "the hook `{name}` must be an http:// or https:// URL or cmd:PROGRAM [ARG...], \
         not `{action}`"
    )]
    UnknownAction { name: String, action: String },
    #[error("the hook `{name}` has a bad URL `{url}`: {cause}")]
    BadUrl {
        name: String,
        url: String,
        cause: String,
    },
    #[error("the hook `{0}` has `cmd:` but no program after it")]
    NoProgram(String),
}

impl FromStr for Hook {
    type Err = HookSpecError;

    /// Parses `NAME=URL` or `NAME=cmd:PROGRAM ARG...` (arguments split on whitespace;
    /// a program needing quoted arguments belongs in a script).
    fn from_str(spec: &str) -> Result<Hook, HookSpecError> {
        let (name, action) = spec
            .split_once('=')
            .ok_or_else(|| HookSpecError::NoEquals(spec.to_string()))?;
        let valid_name = (1..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_name {
            return Err(HookSpecError::BadName(name.to_string()));
        }
        let action = action.trim();
        if action.is_empty() {
            return Err(HookSpecError::NoAction(name.to_string()));
        }
        let action = if let Some(command) = action.strip_prefix("cmd:") {
            let argv: Vec<String> = command.split_whitespace().map(String::from).collect();
            if argv.is_empty() {
                return Err(HookSpecError::NoProgram(name.to_string()));
            }
            Action::Command(argv)
        } else {
            let lower = action.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(HookSpecError::UnknownAction {
                    name: name.to_string(),
                    action: action.to_string(),
                });
            }
            // Parsing an http(s) URL also requires its host.
            reqwest::Url::parse(action).map_err(|e| HookSpecError::BadUrl {
                name: name.to_string(),
                url: action.to_string(),
                cause: e.to_string(),
            })?;
            Action::Webhook(action.to_string())
        };
        Ok(Hook {
            name: name.to_string(),
            action,
        })
    }
}

/// What a hook is given: the run and its labels, which is what discovery entries are
/// usually keyed by.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HookInput {
    pub run: String,
    pub test: String,
    pub app: Option<String>,
    pub namespace: String,
    pub deployment: String,
    pub status: String,
    pub labels: BTreeMap<String, String>,
}

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries in all, the first included (0 counts as 1).
    pub attempts: u32,
    /// The pause after the first failure, doubled after each next one.
    pub first_pause: Duration,
    pub max_pause: Duration,
    /// Per attempt: a webhook that has not answered is abandoned, a command is killed.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// 5 tries of at most 30 s with pauses of 1, 2, 4 and 8 s between them: rides out
    /// a restart of the system being cleaned, and gives up within about 3 minutes.
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            first_pause: Duration::from_secs(1),
            max_pause: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
        }
    }
}

/// What became of one hook, recorded on the run.
pub use kpress_report::wire::HookOutcome;

/// Runs every hook concurrently, since they clean independent systems and one that is
/// away must not delay the others; each is retried with backoff per `policy`. Returns
/// one outcome per hook, in configuration order. Never panics. Dropping the future
/// stops the hooks and kills their commands.
pub async fn run_all(hooks: &[Hook], input: &HookInput, policy: RetryPolicy) -> Vec<HookOutcome> {
    let input = Arc::new(input.clone());
    let mut tasks = JoinSet::new();
    for (index, hook) in hooks.iter().enumerate() {
        let hook = hook.clone();
        let input = Arc::clone(&input);
        tasks.spawn(async move { (index, run_one(&hook, &input, policy).await) });
    }
    let mut outcomes: Vec<Option<HookOutcome>> = vec![None; hooks.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, outcome)) = joined {
            if let Some(slot) = outcomes.get_mut(index) {
                *slot = Some(outcome);
            }
        }
    }
    // A hook without an outcome is one whose task panicked: still reported, as failed.
    hooks
        .iter()
        .zip(outcomes)
        .map(|(hook, outcome)| {
            outcome.unwrap_or_else(|| HookOutcome {
                name: hook.name.clone(),
                ok: false,
                attempts: 0,
                error: Some("the hook stopped unexpectedly".into()),
                finished: now(),
            })
        })
        .collect()
}

/// Why one try failed, and whether another may do better.
enum Failure {
    Transient(String),
    /// Transient, and the hook said when to come back (`Retry-After`).
    Throttled(String, Duration),
    Permanent(String),
}

async fn run_one(hook: &Hook, input: &HookInput, policy: RetryPolicy) -> HookOutcome {
    let most = policy.attempts.max(1);
    let mut pause = policy.first_pause;
    let mut attempts = 0;
    let error = loop {
        attempts += 1;
        let tried = match tokio::time::timeout(policy.timeout, attempt(&hook.action, input)).await {
            Ok(tried) => tried,
            Err(_) => Err(Failure::Transient(timed_out(&hook.action, policy.timeout))),
        };
        let (message, again, asked) = match tried {
            Ok(()) => break None,
            Err(Failure::Permanent(message)) => (message, false, None),
            Err(Failure::Transient(message)) => (message, attempts < most, None),
            Err(Failure::Throttled(message, after)) => (message, attempts < most, Some(after)),
        };
        tracing::warn!(
            hook = %hook.name,
            attempt = attempts,
            retrying = again,
            error = %message,
            "a clean-up hook failed"
        );
        if !again {
            break Some(message);
        }
        // A hook's own `Retry-After` is honoured, up to the longest pause allowed.
        let wait = asked.map_or(pause, |after| after.max(pause).min(policy.max_pause));
        tokio::time::sleep(wait).await;
        pause = (pause * 2).min(policy.max_pause);
    };
    HookOutcome {
        name: hook.name.clone(),
        ok: error.is_none(),
        attempts,
        error,
        finished: now(),
    }
}

fn timed_out(action: &Action, timeout: Duration) -> String {
    let within = humantime::format_duration(timeout);
    match action {
        Action::Webhook(_) => format!("no answer within {within}"),
        Action::Command(_) => format!("did not finish within {within}, so it was killed"),
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

async fn attempt(action: &Action, input: &HookInput) -> Result<(), Failure> {
    match action {
        Action::Webhook(url) => post(url, input).await,
        Action::Command(argv) => execute(argv, input).await,
    }
}

/// One `POST`. Only 5xx, 408 and 429 answers and transport failures are worth another
/// try; other answers mean the hook or its URL is wrong. Redirects are not followed:
/// a redirected POST becomes a GET without the body, which could answer 2xx without
/// cleaning anything.
async fn post(url: &str, input: &HookInput) -> Result<(), Failure> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Failure::Transient(format!("the HTTP client cannot start: {e}")))?;
    let response = client
        .post(url)
        .header("x-kpress-event", "cleanup")
        .json(input)
        .send()
        .await
        .map_err(|e| {
            let builder = e.is_builder();
            // Without the URL: it may carry a secret, and errors are shown on the run.
            let message = error_chain(&e.without_url());
            if builder {
                Failure::Permanent(message)
            } else {
                Failure::Transient(message)
            }
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after);
    let mut message = format!("HTTP {status}");
    let start = body_start(response).await;
    if !start.is_empty() {
        message = format!("{message}: {start}");
    }
    if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        Err(match retry_after {
            Some(after) => Failure::Throttled(message, after),
            None => Failure::Transient(message),
        })
    } else {
        Err(Failure::Permanent(message))
    }
}

/// A `Retry-After` value: seconds, or an HTTP date (a date past means now).
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The first bytes of an answer, without reading a large one whole.
async fn body_start(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < BODY_START {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    kept.truncate(BODY_START);
    String::from_utf8_lossy(&kept).trim().to_string()
}

/// One run of the program. It keeps the center's environment (PATH, cloud
/// credentials) but not the center's token, which a clean-up has no use for. Its
/// stdout is discarded: only its exit status and stderr say how it went.
async fn execute(argv: &[String], input: &HookInput) -> Result<(), Failure> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Failure::Permanent("the command is empty".into()))?;
    let json = serde_json::to_vec(input)
        .map_err(|e| Failure::Permanent(format!("the hook's input is not JSON: {e}")))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env_remove("KPRESS_CENTER_TOKEN")
        .envs(environment(input))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Failure::Permanent(format!("`{program}` cannot be found: {e}"))
            } else {
                Failure::Transient(format!("`{program}` cannot start: {e}"))
            }
        })?;
    let stdin = child.stdin.take();
    let feed = async move {
        if let Some(mut stdin) = stdin {
            // A program may ignore its input and exit early: its exit status says
            // whether it worked, not this write.
            let _ = stdin.write_all(&json).await;
        }
    };
    // All three at once, so a program writing much to stderr before reading its
    // input cannot block on a full pipe.
    let (_, tail, status) = tokio::join!(feed, stderr_tail(child.stderr.take()), child.wait());
    let status = status.map_err(|e| Failure::Transient(format!("`{program}` was lost: {e}")))?;
    if status.success() {
        return Ok(());
    }
    let mut message = format!("`{program}` {}", ended(status));
    let tail = String::from_utf8_lossy(&tail);
    let tail = tail.trim();
    if !tail.is_empty() {
        message = format!("{message}: {tail}");
    }
    Err(Failure::Transient(message))
}

/// What the program is told besides its input on stdin: the same facts, for scripts
/// that would rather not parse JSON.
fn environment(input: &HookInput) -> Vec<(String, String)> {
    let mut env = vec![
        ("KPRESS_RUN".to_string(), input.run.clone()),
        ("KPRESS_TEST".to_string(), input.test.clone()),
        (
            "KPRESS_APP".to_string(),
            input.app.clone().unwrap_or_default(),
        ),
        ("KPRESS_NAMESPACE".to_string(), input.namespace.clone()),
        ("KPRESS_DEPLOYMENT".to_string(), input.deployment.clone()),
        ("KPRESS_STATUS".to_string(), input.status.clone()),
    ];
    for (key, value) in &input.labels {
        let key: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        env.push((format!("KPRESS_LABEL_{key}"), value.clone()));
    }
    env
}

/// The last bytes of stderr, where a failing program says why, without keeping all
/// of a chatty one's output.
async fn stderr_tail(stderr: Option<ChildStderr>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut stderr) = stderr else {
        return kept;
    };
    let mut buf = [0u8; 4096];
    loop {
        match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > STDERR_TAIL {
                    kept.drain(..kept.len() - STDERR_TAIL);
                }
            }
        }
    }
    kept
}

fn ended(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}
