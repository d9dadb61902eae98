//! The scenario file: what a test is. `load` reads and validates it (every problem
//! with file, line, column and field path); the rest of the engine only ever sees the
//! validated `TestSpec`.

pub mod duration;
pub mod error;
mod file;
mod locate;
mod validate;

use std::path::Path;
use std::time::Duration;

use crate::executor::Executor;
use crate::http::request::{HttpVersion, RequestSpec};
use crate::threshold::Threshold;
pub use error::{Problem, ScenarioError};
pub use file::json_schema;

/// A validated test: the scenario file after every check.
#[derive(Debug, Clone)]
pub struct TestSpec {
    pub name: String,
    pub description: Option<String>,
    /// The file's text with `--set` overrides applied, as it travels to runners.
    pub source: String,
    pub http: HttpOptions,
    pub scenarios: Vec<ScenarioSpec>,
    pub thresholds: Vec<Threshold>,
}

/// Connection options shared by every request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpOptions {
    pub version: HttpVersion,
    pub insecure_skip_tls_verify: bool,
    pub no_connection_reuse: bool,
    /// Extra trust anchors from `defaults.tlsCACerts`.
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

/// One entry of `scenarios:`.
#[derive(Debug, Clone)]
pub struct ScenarioSpec {
    pub name: String,
    pub executor: Executor,
    pub start_time: Duration,
    pub graceful_stop: Duration,
    pub requests: Vec<RequestSpec>,
}

impl ScenarioSpec {
    /// When this scenario is over at the latest, graceful stop included.
    pub fn end_bound(&self) -> Duration {
        let ramp_down = match &self.executor {
            Executor::RampingVus {
                graceful_ramp_down, ..
            } => *graceful_ramp_down,
            _ => Duration::ZERO,
        };
        self.start_time + self.executor.nominal_duration() + self.graceful_stop.max(ramp_down)
    }
}

impl TestSpec {
    /// The nominal length of the test: the last scenario's start plus its duration.
    pub fn nominal_duration(&self) -> Duration {
        self.scenarios
            .iter()
            .map(|s| s.start_time + s.executor.nominal_duration())
            .max()
            .unwrap_or_default()
    }

    /// The longest the test can take, graceful stops included.
    pub fn max_duration(&self) -> Duration {
        self.scenarios
            .iter()
            .map(ScenarioSpec::end_bound)
            .max()
            .unwrap_or_default()
    }
}

/// Reads and validates a scenario file, applying `--set KEY=VALUE` overrides.
pub fn load(path: &Path, sets: &[(String, String)]) -> Result<TestSpec, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ScenarioError::single(
            &file,
            Problem {
                line: None,
                column: None,
                path: String::new(),
                message: format!("cannot read the file: {e}"),
            },
        )
    })?;
    parse(&file, &text, sets)
}

/// Validates scenario text; `file` names it in errors.
pub fn parse(file: &str, text: &str, sets: &[(String, String)]) -> Result<TestSpec, ScenarioError> {
    validate::parse(file, text, sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_scenario_schema_is_current_and_accepts_the_examples() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let path = root.join("schema/scenario.schema.json");
        let generated = serde_json::to_string_pretty(&json_schema()).unwrap_or_default() + "\n";
        if std::env::var_os("KPRESS_BLESS").is_some() {
            std::fs::write(&path, &generated)
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap_or_default(),
            generated,
            "stale: rerun with KPRESS_BLESS=1"
        );
        let validator = jsonschema::validator_for(&json_schema())
            .unwrap_or_else(|e| panic!("schema compiles: {e}"));
        let examples = root.join("../../examples");
        let mut checked = 0;
        for entry in std::fs::read_dir(&examples).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let doc: serde_json::Value = serde_norway::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
            let errors: Vec<String> = validator
                .iter_errors(&doc)
                .map(|e| format!("{e} at {}", e.instance_path))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", entry.path().display());
            checked += 1;
        }
        assert!(checked > 0);
        let bad: serde_json::Value = serde_json::json!({ "name": "x", "scenarios": { "s": { "executor": "constant-vus", "duration": "10x" } } });
        assert!(
            !validator.is_valid(&bad),
            "a bad duration is rejected by the schema too"
        );
    }
}
