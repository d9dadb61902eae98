//! The labels on every object kpress creates (DESIGN.md, a contract): the same
//! application label on every test, so monitoring is configured once and history
//! survives, plus the test and the run, so one run's objects are found and removed.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub const NAME: &str = "app.kubernetes.io/name";
pub const COMPONENT: &str = "app.kubernetes.io/component";
pub const TEST: &str = "kpress.io/test";
pub const RUN: &str = "kpress.io/run";
/// How a run's runners are deployed; set to `deployment` on runner Deployments.
pub const MODE: &str = "kpress.io/mode";
/// Pod annotation carrying the start instant the submitter publishes.
pub const START_AT: &str = "kpress.io/start-at";

/// The application label, `KEY=VALUE` (e.g. `tenc-app=press-client-148-online`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLabel {
    pub key: String,
    pub value: String,
}

impl Default for AppLabel {
    fn default() -> Self {
        AppLabel {
            key: "app.kubernetes.io/part-of".into(),
            value: "kpress".into(),
        }
    }
}

impl FromStr for AppLabel {
    type Err = String;
    fn from_str(s: &str) -> Result<AppLabel, String> {
        let (key, value) = s.split_once('=').ok_or_else(|| {
            format!("`{s}`: write KEY=VALUE, e.g. tenc-app=press-client-148-online")
        })?;
        valid_key(key).map_err(|e| format!("`{s}`: {e}"))?;
        valid_value(value).map_err(|e| format!("`{s}`: {e}"))?;
        if [NAME, COMPONENT, TEST, RUN, MODE].contains(&key) {
            return Err(format!(
                "`{key}` is set by kpress itself; pick another key for the application label"
            ));
        }
        Ok(AppLabel {
            key: key.into(),
            value: value.into(),
        })
    }
}

impl fmt::Display for AppLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// Every label of a runner object of `test`'s run `run`.
pub fn runner_labels(app: &AppLabel, test: &str, run: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.to_string(), "kpress".to_string()),
        (COMPONENT.to_string(), "runner".to_string()),
        (app.key.clone(), app.value.clone()),
        (TEST.to_string(), test.to_string()),
        (RUN.to_string(), run.to_string()),
    ])
}

/// The selector that finds one run's objects.
pub fn run_selector(run: &str) -> String {
    format!("{NAME}=kpress,{RUN}={run}")
}

fn valid_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !ok {
            return Err(format!(
                "`{p}` is not a valid label key prefix (a DNS subdomain)"
            ));
        }
    }
    valid_value(name)?;
    if name.is_empty() {
        return Err("the label key is empty".into());
    }
    Ok(())
}

fn valid_value(v: &str) -> Result<(), String> {
    let ok = v.len() <= 63
        && (v.is_empty()
            || (v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                && v.starts_with(|c: char| c.is_ascii_alphanumeric())
                && v.ends_with(|c: char| c.is_ascii_alphanumeric())));
    if ok {
        Ok(())
    } else {
        Err(format!("`{v}` is not a valid label value (63 characters at most: letters, digits, `-`, `_`, `.`, alphanumeric at both ends)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_application_labels() {
        let l: AppLabel = "tenc-app=press-client-148-online"
            .parse()
            .unwrap_or_default();
        assert_eq!(
            (l.key.as_str(), l.value.as_str()),
            ("tenc-app", "press-client-148-online")
        );
        assert!("example.com/app=x".parse::<AppLabel>().is_ok());
        for bad in [
            "noequals",
            "=x",
            "a b=c",
            "app=-bad",
            "Bad_Prefix/x=y",
            "kpress.io/run=x",
            "kpress.io/mode=x",
            &format!("a={}", "x".repeat(64)),
        ] {
            assert!(bad.parse::<AppLabel>().is_err(), "{bad}");
        }
    }
}
