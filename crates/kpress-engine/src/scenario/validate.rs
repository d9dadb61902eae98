//! From the file as written to a `TestSpec`: serde's errors get their line, column,
//! field path and a "did you mean"; the rules serde cannot express (positive rates,
//! runnable stages, parameters that belong to another executor) are checked here.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::Method;
use serde_norway::Value;

use super::error::{with_hint, Problem, ScenarioError};
use super::file::{FileExecutor, FileRequestFull, FileScenario, FileStage};
use super::locate::locate;
use super::{HttpOptions, ScenarioSpec, TestSpec};
use crate::executor::{Executor, Stage};
use crate::http::request::{HttpVersion, RequestSpec};
use crate::threshold;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(30);
const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(600);

const EXECUTORS: [&str; 6] = [
    "constant-arrival-rate",
    "ramping-arrival-rate",
    "constant-vus",
    "ramping-vus",
    "per-vu-iterations",
    "shared-iterations",
];

pub fn parse(file: &str, text: &str, sets: &[(String, String)]) -> Result<TestSpec, ScenarioError> {
    let raw = deserialize(file, text)?;
    let (raw, source) = if sets.is_empty() {
        (raw, text.to_string())
    } else {
        apply_sets(file, text, sets)?
    };
    let mut v = Validator {
        text,
        problems: Vec::new(),
    };
    let spec = v.test(raw, source);
    match spec {
        Some(spec) if v.problems.is_empty() => Ok(spec),
        _ => Err(ScenarioError {
            file: file.to_string(),
            problems: v.problems,
        }),
    }
}

fn deserialize(file: &str, text: &str) -> Result<FileScenario, ScenarioError> {
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = clean_path(&e.path().to_string());
        let inner = e.into_inner();
        let (line, column) = match inner.location() {
            Some(l) => (Some(l.line()), Some(l.column())),
            None => (None, None),
        };
        let full = inner.to_string();
        let message = strip_location(&full);
        ScenarioError::single(
            file,
            Problem {
                line,
                column,
                path,
                message: with_hint(&message),
            },
        )
    })
}

/// serde_norway's messages repeat what the problem already says elsewhere: a leading
/// field path ("scenarios.a: ...") and a trailing " at line L column C".
fn strip_location(full: &str) -> String {
    let without_at = match full.find(" at line ") {
        Some(at) => &full[..at],
        None => full,
    };
    match without_at.split_once(": ") {
        Some((head, rest)) if !head.contains(char::is_whitespace) && !head.contains('`') => {
            rest.to_string()
        }
        _ => without_at.to_string(),
    }
}

fn clean_path(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.replace("[", ".").replace("]", "")
    }
}

/// Applies `--set a.b.c=value` to the document; values are read as YAML scalars, so
/// `--set scenarios.s.rate=500` is a number and `--set defaults.baseUrl=http://x` a string.
fn apply_sets(
    file: &str,
    text: &str,
    sets: &[(String, String)],
) -> Result<(FileScenario, String), ScenarioError> {
    let fail = |path: &str, message: String| {
        ScenarioError::single(
            file,
            Problem {
                line: None,
                column: None,
                path: path.to_string(),
                message,
            },
        )
    };
    let mut doc: Value = serde_norway::from_str(text).map_err(|e| fail("", e.to_string()))?;
    for (key, value) in sets {
        let parsed: Value =
            serde_norway::from_str(value).unwrap_or_else(|_| Value::String(value.clone()));
        let mut node = &mut doc;
        for part in key.split('.') {
            let Value::Mapping(map) = node else {
                return Err(fail(
                    key,
                    format!("--set {key}: `{part}` is inside a value that is not a mapping"),
                ));
            };
            node = map
                .entry(Value::String(part.to_string()))
                .or_insert(Value::Null);
        }
        *node = parsed;
    }
    let source = serde_norway::to_string(&doc).map_err(|e| fail("", e.to_string()))?;
    let raw = serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = clean_path(&e.path().to_string());
        fail(
            &path,
            format!(
                "{} (after --set)",
                with_hint(&strip_location(&e.into_inner().to_string()))
            ),
        )
    })?;
    Ok((raw, source))
}

struct Validator<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Validator<'_> {
    fn problem(&mut self, path: &[&str], message: impl Into<String>) {
        let (line, column) = match locate(self.text, path) {
            Some((l, c)) => (Some(l), Some(c)),
            None => (None, None),
        };
        self.problems.push(Problem {
            line,
            column,
            path: path.join("."),
            message: message.into(),
        });
    }

    fn test(&mut self, raw: FileScenario, source: String) -> Option<TestSpec> {
        if !valid_test_name(&raw.name) {
            self.problem(
                &["name"],
                format!("`{}` cannot name Kubernetes objects: use 1-40 lowercase letters, digits and `-`, starting with a letter", raw.name),
            );
        }
        let http = self.http_options(&raw);
        let base = raw.defaults.base_url.clone();
        if let Some(b) = &base {
            if let Err(e) = RequestSpec::resolve_url("/", Some(b)) {
                self.problem(&["defaults", "baseUrl"], e);
            }
        }
        let default_timeout = raw.defaults.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if default_timeout.is_zero() {
            self.problem(&["defaults", "timeout"], "must be greater than 0");
        }
        let mut default_headers = Vec::new();
        for (name, value) in &raw.defaults.headers {
            if let Some(h) = self.header(&["defaults", "headers", name], name, value) {
                default_headers.push(h);
            }
        }
        if raw.scenarios.is_empty() {
            self.problem(&["scenarios"], "at least one scenario is needed");
        }
        let mut scenarios = Vec::new();
        for (name, s) in raw.scenarios {
            let ctx = RequestDefaults {
                base: base.as_deref(),
                timeout: default_timeout,
                headers: &default_headers,
            };
            if let Some(spec) = self.scenario(&name, s, &ctx) {
                scenarios.push(spec);
            }
        }
        let mut thresholds = Vec::new();
        for (metric, list) in raw.thresholds {
            for (i, t) in list.into_iter().enumerate() {
                let idx = i.to_string();
                match threshold::parse(&metric, &t.0.threshold) {
                    Ok(mut parsed) => {
                        parsed.abort_on_fail = t.0.abort_on_fail;
                        parsed.delay_abort_eval = t.0.delay_abort_eval.unwrap_or_default();
                        thresholds.push(parsed);
                    }
                    Err(e) => self.problem(&["thresholds", &metric, &idx], e),
                }
            }
        }
        Some(TestSpec {
            name: raw.name,
            description: raw.description,
            source,
            http,
            scenarios,
            thresholds,
        })
    }

    fn http_options(&mut self, raw: &FileScenario) -> HttpOptions {
        let version = match raw.defaults.http_version.as_deref() {
            None | Some("auto") => HttpVersion::Auto,
            Some("1.1") | Some("http/1.1") => HttpVersion::Http1,
            Some("2") | Some("h2") | Some("h2c") => HttpVersion::Http2,
            Some(other) => {
                self.problem(
                    &["defaults", "httpVersion"],
                    format!("unknown HTTP version `{other}` (use auto, 1.1 or 2)"),
                );
                HttpVersion::Auto
            }
        };
        let mut extra_roots = Vec::new();
        if let Some(pem) = &raw.defaults.tls_ca_certs {
            use rustls::pki_types::pem::PemObject;
            match rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(certs) if !certs.is_empty() => extra_roots = certs,
                Ok(_) => self.problem(
                    &["defaults", "tlsCACerts"],
                    "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                ),
                Err(e) => self.problem(
                    &["defaults", "tlsCACerts"],
                    format!("is not valid PEM: {e:?}"),
                ),
            }
        }
        HttpOptions {
            version,
            insecure_skip_tls_verify: raw.defaults.insecure_skip_tls_verify,
            no_connection_reuse: raw.defaults.no_connection_reuse,
            extra_roots,
        }
    }

    fn header(
        &mut self,
        path: &[&str],
        name: &str,
        value: &str,
    ) -> Option<(HeaderName, HeaderValue)> {
        let n = HeaderName::from_bytes(name.as_bytes());
        let v = HeaderValue::from_str(value);
        match (n, v) {
            (Ok(n), Ok(v)) => {
                if matches!(
                    n.as_str(),
                    "host" | "content-length" | "transfer-encoding" | "connection"
                ) {
                    self.problem(path, format!("header `{name}` is set by kpress itself"));
                    return None;
                }
                Some((n, v))
            }
            (Err(_), _) => {
                self.problem(path, format!("`{name}` is not a valid header name"));
                None
            }
            (_, Err(_)) => {
                self.problem(
                    path,
                    format!("the value of header `{name}` has invalid characters"),
                );
                None
            }
        }
    }

    fn scenario(
        &mut self,
        name: &str,
        s: FileExecutor,
        ctx: &RequestDefaults,
    ) -> Option<ScenarioSpec> {
        let at = |field: &'static str| ["scenarios", name, field];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.problem(
                &["scenarios", name],
                format!("scenario name `{name}` may only use letters, digits, `-` and `_`"),
            );
        }
        let executor = self.executor(name, &s);
        if s.requests.is_empty() {
            self.problem(&at("requests"), "at least one request is needed");
        }
        let mut requests = Vec::new();
        for (i, r) in s.requests.into_iter().enumerate() {
            let idx = i.to_string();
            if let Some(req) = self.request(&["scenarios", name, "requests", &idx], r.0, ctx) {
                requests.push(req);
            }
        }
        let graceful_stop = s.graceful_stop.unwrap_or(DEFAULT_GRACEFUL_STOP);
        Some(ScenarioSpec {
            name: name.to_string(),
            executor: executor?,
            start_time: s.start_time.unwrap_or_default(),
            graceful_stop,
            requests,
        })
    }

    fn request(
        &mut self,
        path: &[&str],
        r: FileRequestFull,
        ctx: &RequestDefaults,
    ) -> Option<RequestSpec> {
        let with = |field: &'static str| {
            let mut p = path.to_vec();
            p.push(field);
            p
        };
        let method = match Method::from_bytes(r.method.to_ascii_uppercase().as_bytes()) {
            Ok(m) => Some(m),
            Err(_) => {
                self.problem(
                    &with("method"),
                    format!("`{}` is not an HTTP method", r.method),
                );
                None
            }
        };
        let resolved = match RequestSpec::resolve_url(&r.url, ctx.base) {
            Ok(x) => Some(x),
            Err(e) => {
                self.problem(&with("url"), e);
                None
            }
        };
        let mut headers = ctx.headers.to_vec();
        for (name, value) in &r.headers {
            let mut p = with("headers");
            p.push(name);
            if let Some((n, v)) = self.header(&p, name, value) {
                headers.retain(|(existing, _)| *existing != n);
                headers.push((n, v));
            }
        }
        let timeout = r.timeout.unwrap_or(ctx.timeout);
        if timeout.is_zero() {
            self.problem(&with("timeout"), "must be greater than 0");
        }
        let (origin, target_path) = resolved?;
        Some(RequestSpec {
            method: method?,
            origin,
            path: target_path,
            headers,
            body: Bytes::from(r.body.unwrap_or_default()),
            timeout,
            expect: r.expect.and_then(|e| e.status).map(|s| s.0),
        })
    }

    fn executor(&mut self, name: &str, s: &FileExecutor) -> Option<Executor> {
        let at = |field: &'static str| ["scenarios", name, field];
        let used: &[&str] = match s.executor.as_str() {
            "constant-vus" => &["vus", "duration"],
            "ramping-vus" => &["startVUs", "stages", "gracefulRampDown"],
            "per-vu-iterations" | "shared-iterations" => &["vus", "iterations", "maxDuration"],
            "constant-arrival-rate" => {
                &["rate", "timeUnit", "duration", "preAllocatedVUs", "maxVUs"]
            }
            "ramping-arrival-rate" => &[
                "startRate",
                "timeUnit",
                "stages",
                "preAllocatedVUs",
                "maxVUs",
            ],
            other => {
                let mut msg = format!("unknown executor `{other}`");
                if let Some(hint) = super::error::did_you_mean(other, EXECUTORS) {
                    msg.push_str(&format!(", did you mean `{hint}`?"));
                }
                msg.push_str(&format!(" (use one of: {})", EXECUTORS.join(", ")));
                self.problem(&at("executor"), msg);
                return None;
            }
        };
        let present: [(&str, bool); 12] = [
            ("vus", s.vus.is_some()),
            ("duration", s.duration.is_some()),
            ("iterations", s.iterations.is_some()),
            ("maxDuration", s.max_duration.is_some()),
            ("startVUs", s.start_vus.is_some()),
            ("stages", s.stages.is_some()),
            ("gracefulRampDown", s.graceful_ramp_down.is_some()),
            ("rate", s.rate.is_some()),
            ("startRate", s.start_rate.is_some()),
            ("timeUnit", s.time_unit.is_some()),
            ("preAllocatedVUs", s.pre_allocated_vus.is_some()),
            ("maxVUs", s.max_vus.is_some()),
        ];
        let before = self.problems.len();
        for (field, is_set) in present {
            if is_set && !used.contains(&field) {
                self.problem(
                    &["scenarios", name, field],
                    format!(
                        "`{field}` is not a parameter of executor `{}` (it takes: {})",
                        s.executor,
                        used.join(", ")
                    ),
                );
            }
        }
        let executor = match s.executor.as_str() {
            "constant-vus" => Executor::ConstantVus {
                vus: self.positive_count(&at("vus"), s.vus.unwrap_or(1))?,
                duration: self.required_duration(&at("duration"), s.duration)?,
            },
            "ramping-vus" => Executor::RampingVus {
                start_vus: s.start_vus.unwrap_or(1),
                stages: self.stages(name, s.stages.as_deref(), "VUs")?,
                graceful_ramp_down: s.graceful_ramp_down.unwrap_or(DEFAULT_GRACEFUL_STOP),
            },
            "per-vu-iterations" => Executor::PerVuIterations {
                vus: self.positive_count(&at("vus"), s.vus.unwrap_or(1))?,
                iterations: self.positive_count(&at("iterations"), s.iterations.unwrap_or(1))?,
                max_duration: self.positive_duration(
                    &at("maxDuration"),
                    s.max_duration.unwrap_or(DEFAULT_MAX_DURATION),
                )?,
            },
            "shared-iterations" => {
                let vus = self.positive_count(&at("vus"), s.vus.unwrap_or(1))?;
                let iterations =
                    self.positive_count(&at("iterations"), s.iterations.unwrap_or(1))?;
                if iterations < vus {
                    self.problem(&at("iterations"), format!("{iterations} shared iterations cannot keep {vus} VUs busy: give at least as many iterations as VUs"));
                }
                Executor::SharedIterations {
                    vus,
                    iterations,
                    max_duration: self.positive_duration(
                        &at("maxDuration"),
                        s.max_duration.unwrap_or(DEFAULT_MAX_DURATION),
                    )?,
                }
            }
            "constant-arrival-rate" => {
                let (pre, max) = self.vu_pool(name, s)?;
                Executor::ConstantArrivalRate {
                    rate: self.positive_rate(&at("rate"), s.rate)?,
                    time_unit: self.positive_duration(
                        &at("timeUnit"),
                        s.time_unit.unwrap_or(Duration::from_secs(1)),
                    )?,
                    duration: self.required_duration(&at("duration"), s.duration)?,
                    pre_allocated_vus: pre,
                    max_vus: max,
                }
            }
            _ => {
                let (pre, max) = self.vu_pool(name, s)?;
                let start_rate = s.start_rate.unwrap_or(0.0);
                if !(start_rate.is_finite() && start_rate >= 0.0) {
                    self.problem(&at("startRate"), "must be 0 or more");
                }
                Executor::RampingArrivalRate {
                    start_rate,
                    time_unit: self.positive_duration(
                        &at("timeUnit"),
                        s.time_unit.unwrap_or(Duration::from_secs(1)),
                    )?,
                    stages: self.stages(name, s.stages.as_deref(), "iterations per time unit")?,
                    pre_allocated_vus: pre,
                    max_vus: max,
                }
            }
        };
        (self.problems.len() == before).then_some(executor)
    }

    fn vu_pool(&mut self, name: &str, s: &FileExecutor) -> Option<(u64, u64)> {
        let Some(pre) = s.pre_allocated_vus else {
            self.problem(
                &["scenarios", name, "preAllocatedVUs"],
                "is required for arrival-rate executors",
            );
            return None;
        };
        let pre = self.positive_count(&["scenarios", name, "preAllocatedVUs"], pre)?;
        let max = s.max_vus.unwrap_or(pre);
        if max < pre {
            self.problem(
                &["scenarios", name, "maxVUs"],
                format!("maxVUs ({max}) is less than preAllocatedVUs ({pre})"),
            );
            return None;
        }
        Some((pre, max))
    }

    fn stages(
        &mut self,
        name: &str,
        stages: Option<&[FileStage]>,
        unit: &str,
    ) -> Option<Vec<Stage>> {
        let Some(stages) = stages else {
            self.problem(
                &["scenarios", name, "stages"],
                "is required for this executor",
            );
            return None;
        };
        if stages.is_empty() {
            self.problem(&["scenarios", name, "stages"], "needs at least one stage");
            return None;
        }
        let mut out = Vec::new();
        for (i, st) in stages.iter().enumerate() {
            let idx = i.to_string();
            if !(st.target.is_finite() && st.target >= 0.0) {
                self.problem(
                    &["scenarios", name, "stages", &idx, "target"],
                    format!("the target ({unit}) must be 0 or more"),
                );
                return None;
            }
            out.push(Stage {
                duration: st.duration,
                target: st.target,
            });
        }
        if out.iter().all(|s| s.duration.is_zero()) {
            self.problem(
                &["scenarios", name, "stages"],
                "the stages last 0s in total: nothing would run",
            );
            return None;
        }
        Some(out)
    }

    fn positive_count(&mut self, path: &[&str], v: u64) -> Option<u64> {
        if v == 0 {
            self.problem(path, "must be at least 1");
            return None;
        }
        Some(v)
    }

    fn positive_rate(&mut self, path: &[&str], v: Option<f64>) -> Option<f64> {
        match v {
            None => {
                self.problem(path, "is required");
                None
            }
            Some(r) if r.is_finite() && r > 0.0 => Some(r),
            Some(r) => {
                self.problem(path, format!("must be greater than 0 (got {r})"));
                None
            }
        }
    }

    fn required_duration(&mut self, path: &[&str], v: Option<Duration>) -> Option<Duration> {
        match v {
            None => {
                self.problem(path, "is required");
                None
            }
            Some(d) => self.positive_duration(path, d),
        }
    }

    fn positive_duration(&mut self, path: &[&str], d: Duration) -> Option<Duration> {
        if d.is_zero() {
            self.problem(path, "must be greater than 0s");
            return None;
        }
        Some(d)
    }
}

struct RequestDefaults<'a> {
    base: Option<&'a str>,
    timeout: Duration,
    headers: &'a [(HeaderName, HeaderValue)],
}

fn valid_test_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
