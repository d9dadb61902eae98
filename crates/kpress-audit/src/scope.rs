//! What the user asked to see: namespace scope, exclusions by namespace and label, the age
//! threshold, and the exclusions that always apply (system namespaces, `kpress.io/keep=true`).
//! Applied after the rules, so that excluded objects still count as referrers.

use std::str::FromStr;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::rules::Candidate;

/// Namespaces run by Kubernetes itself, excluded unless asked for.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// Label that protects an object from being reported: `kpress.io/keep=true`.
pub const KEEP_LABEL: &str = "kpress.io/keep";

/// `KEY` or `KEY=VALUE`, as given to `--exclude-label`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    /// Label key.
    pub key: String,
    /// Required value; any value when `None`.
    pub value: Option<String>,
}

impl FromStr for LabelFilter {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (key, value) = match text.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => (text, None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!(
                "invalid label filter {text:?}: expected KEY or KEY=VALUE"
            ));
        }
        Ok(Self {
            key: key.to_owned(),
            value,
        })
    }
}

/// The user's scope and exclusions.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Only this namespace (cluster-scoped objects by their claim's namespace).
    pub namespace: Option<String>,
    /// Namespaces to leave out.
    pub exclude_namespaces: Vec<String>,
    /// Labels whose objects to leave out.
    pub exclude_labels: Vec<LabelFilter>,
    /// Report objects in `kube-system`, `kube-public` and `kube-node-lease` too.
    pub include_system_namespaces: bool,
    /// Only objects at least this old (objects of unknown age are then left out).
    pub older_than: Option<Duration>,
}

impl Filters {
    /// Whether a candidate is in scope at `now`.
    pub fn admits(&self, candidate: &Candidate<'_>, now: Timestamp) -> bool {
        let meta = candidate.meta;
        let ns = candidate.scope_namespace.as_deref();
        if let Some(wanted) = &self.namespace {
            if ns != Some(wanted.as_str()) {
                return false;
            }
        }
        if let Some(ns) = ns {
            if self.exclude_namespaces.iter().any(|n| n == ns)
                || (!self.include_system_namespaces && SYSTEM_NAMESPACES.contains(&ns))
            {
                return false;
            }
        }
        let labels = meta.labels.clone().unwrap_or_default();
        if labels.get(KEEP_LABEL).is_some_and(|v| v == "true") {
            return false;
        }
        let excluded = self
            .exclude_labels
            .iter()
            .any(|f| match (&f.value, labels.get(&f.key)) {
                (None, Some(_)) => true,
                (Some(wanted), Some(v)) => wanted == v,
                _ => false,
            });
        if excluded {
            return false;
        }
        match self.older_than {
            None => true,
            Some(min) => age_seconds(meta, now).is_some_and(|age| age >= min.as_secs()),
        }
    }
}

/// Parses a duration such as `24h`, `7d` or `1h 30m` (for `--older-than`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// Seconds since the object was created, if its creation time is known and in the past.
pub fn age_seconds(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    now: Timestamp,
) -> Option<u64> {
    let created = meta.creation_timestamp.as_ref()?.0;
    let seconds = now.as_second().checked_sub(created.as_second())?;
    u64::try_from(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_filters_parse_key_and_optional_value() {
        assert_eq!(
            "team=perf".parse(),
            Ok(LabelFilter {
                key: "team".into(),
                value: Some("perf".into())
            })
        );
        assert_eq!(
            "team".parse(),
            Ok(LabelFilter {
                key: "team".into(),
                value: None
            })
        );
        assert!("=x".parse::<LabelFilter>().is_err());
    }
}
