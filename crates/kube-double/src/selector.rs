//! Label selectors in the query-string syntax (`a=b,c!=d,e,!f,g in (h,i),j notin (k)`), parsed
//! once per request so that a malformed selector is a `400`, as on a real API server.

use std::collections::BTreeMap;

/// A malformed selector, with the offending requirement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector requirement {0:?}")]
pub struct SelectorError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed label selector: all requirements must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter syntax.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let requirements = split_top_level(text)
            .into_iter()
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(parse_requirement)
            .collect::<Result<_, _>>()?;
        Ok(Self { requirements })
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|req| match req {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        })
    }
}

/// A `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`) in the query-string
/// syntax, as a Scale's `status.selector` shows it; `matchLabels` first, in key order.
pub(crate) fn selector_text(selector: &serde_json::Value) -> String {
    let mut parts: Vec<String> = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for expression in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = expression["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = expression["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str)
            .collect();
        parts.push(match expression["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "DoesNotExist" => format!("!{key}"),
            _ => key.to_owned(),
        });
    }
    parts.join(",")
}

/// Splits on commas that are not inside a `( ... )` value set.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirement(part: &str) -> Result<Requirement, SelectorError> {
    let err = || SelectorError(part.to_owned());
    let key = |k: &str| -> Result<String, SelectorError> {
        let k = k.trim();
        if k.is_empty() || k.contains(char::is_whitespace) {
            Err(err())
        } else {
            Ok(k.to_owned())
        }
    };
    if let Some(rest) = part.strip_prefix('!') {
        return Ok(Requirement::NotExists(key(rest)?));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Requirement::NotEquals(key(k)?, v.trim().to_owned()));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::Equals(key(k)?, v.trim().to_owned()));
    }
    for (op, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((k, set)) = part.split_once(op) {
            let values = set
                .trim()
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(err)?
                .split(',')
                .map(|v| v.trim().to_owned())
                .collect();
            let k = key(k)?;
            return Ok(if negated {
                Requirement::NotIn(k, values)
            } else {
                Requirement::In(k, values)
            });
        }
    }
    Ok(Requirement::Exists(key(part)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_form_matches_as_the_api_server_does() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app!=web", false),
            ("tier", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("app in (db, web)", true),
            ("app in (db)", false),
            ("app notin (db)", true),
            ("missing notin (db)", true),
            ("app notin (web,db)", false),
            ("app=web,tier in (front,back),!canary", true),
            ("app=web,tier=back", false),
            ("", true),
        ];
        for (text, expected) in cases {
            let selector = LabelSelector::parse(text).expect("valid selector");
            assert_eq!(selector.matches(&l), expected, "{text}");
        }
    }

    #[test]
    fn malformed_selectors_are_rejected() {
        for text in ["app in web", "=web", "a b", "!"] {
            assert!(LabelSelector::parse(text).is_err(), "{text}");
        }
    }
}
