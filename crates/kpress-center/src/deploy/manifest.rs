//! A `deployment`-mode registration made into its Deployment: the scenario is parsed
//! and checked as `kpress run` would, the request's placement and resources checked
//! as `kpress render` would, and the one builder of `kpress-k8s` makes the object, so
//! the Deployment the center creates and the one `render` prints are the same.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kpress_engine::run::check_split;
use kpress_engine::scenario::{self, TestSpec};
use kpress_k8s::deployment;
use kpress_k8s::job::{self, JobOptions};
use kpress_k8s::labels::AppLabel;
use kpress_report::wire::{CreateRun, DeploymentRequest, Mode};

use crate::error::ApiError;
use crate::store::NewDeployment;
use crate::time;

/// A checked `deployment`-mode registration.
pub struct Planned {
    pub spec: TestSpec,
    pub options: JobOptions,
    pub request: DeploymentRequest,
    pub name: String,
    pub startup_timeout: Duration,
}

/// Checks that a registration's mode and Deployment request agree; plans the
/// Deployment of a `deployment`-mode one.
pub fn plan(
    req: &CreateRun,
    id: &str,
    default_startup: Duration,
) -> Result<Option<Planned>, ApiError> {
    let request = match (req.mode, &req.deployment) {
        (Mode::Deployment, Some(d)) => d.clone(),
        (Mode::Deployment, None) => {
            return Err(ApiError::BadRequest(
                "deployment: a deployment-mode run needs its `deployment` (namespace, ...)".into(),
            ))
        }
        (_, Some(_)) => {
            return Err(ApiError::BadRequest(
                "deployment: only a deployment-mode run has one".into(),
            ))
        }
        (_, None) => return Ok(None),
    };
    let spec = scenario::parse("scenario", &req.scenario, &[])
        .map_err(|e| ApiError::BadRequest(format!("scenario: invalid\n{e}")))?;
    if spec.name != req.test {
        return Err(ApiError::BadRequest(format!(
            "test: `{}` is not the scenario's name `{}`",
            req.test, spec.name
        )));
    }
    let runners = u32::try_from(req.runners)
        .map_err(|_| ApiError::BadRequest(format!("runners: {} is too many", req.runners)))?;
    check_split(&spec, req.runners).map_err(|e| ApiError::BadRequest(format!("runners: {e}")))?;
    let app: AppLabel = match &req.app {
        Some(text) => text
            .parse()
            .map_err(|e| ApiError::BadRequest(format!("app: {e}")))?,
        None => AppLabel::default(),
    };
    let mut options = JobOptions::new(runners, id);
    options.namespace = checked_namespace(&request.namespace)?;
    options.app = app;
    if let Some(image) = &request.image {
        options.image = image.clone();
    }
    if let Some(cpu) = &request.cpu {
        (options.cpu_request, options.cpu_limit) = quantities("cpu", cpu)?;
    }
    if let Some(memory) = &request.memory {
        (options.memory_request, options.memory_limit) = quantities("memory", memory)?;
    }
    options.spread = request.spread;
    options.node_selector = request.node_selector.clone();
    options.tolerations = request
        .tolerations
        .iter()
        .map(|t| {
            job::parse_toleration(t).map_err(|e| ApiError::BadRequest(format!("tolerations: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let startup_timeout = request
        .startup_timeout_s
        .map_or(default_startup, Duration::from_secs);
    let name = deployment::deployment_name(&options.app, &spec.name, id);
    Ok(Some(Planned {
        spec,
        options,
        request,
        name,
        startup_timeout,
    }))
}

impl Planned {
    /// The Deployment, its runners reporting to `center_url` with `runner_token`.
    pub fn manifest(&self, center_url: &str, runner_token: &str) -> Deployment {
        deployment::build(&self.spec, &self.options, center_url, runner_token)
    }

    /// What the store keeps of it.
    pub fn record(&self) -> NewDeployment {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        NewDeployment {
            namespace: self.options.namespace.clone(),
            name: self.name.clone(),
            created_by_center: self.request.create,
            start_by_ms: time::now_ms().saturating_add(ms(self.startup_timeout)),
            max_duration_ms: ms(self.spec.max_duration()),
        }
    }
}

/// A namespace name (a DNS label).
fn checked_namespace(ns: &str) -> Result<String, ApiError> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok {
        Ok(ns.to_string())
    } else {
        Err(ApiError::BadRequest(format!(
            "deployment.namespace: `{ns}` is not a namespace name (lowercase letters, digits, `-`)"
        )))
    }
}

/// `REQUEST:LIMIT` quantities, e.g. `500m:1`.
fn quantities(field: &str, text: &str) -> Result<(String, String), ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "deployment.{field}: `{text}` is not REQUEST:LIMIT quantities, e.g. 500m:1"
        ))
    };
    let (request, limit) = text.split_once(':').ok_or_else(bad)?;
    if job::valid_quantity(request) && job::valid_quantity(limit) {
        Ok((request.to_string(), limit.to_string()))
    } else {
        Err(bad())
    }
}
