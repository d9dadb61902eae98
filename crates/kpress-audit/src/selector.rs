//! Label selector evaluation, for Service selectors (plain maps) and for the `LabelSelector`s of
//! monitoring objects. An expression the audit cannot evaluate counts as matching, so that an
//! unknown operator can never turn an object into a false "matches nothing" finding.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether every `key: value` of a Service-style selector is among `labels`.
pub fn map_matches(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether a `LabelSelector` selects `labels`; an empty selector selects everything.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .as_ref()
        .is_none_or(|m| map_matches(m, labels));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => true,
        }
    });
    by_labels && by_expressions
}

/// Renders a selector map as `k=v,k2=v2` for reasons.
pub fn render(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: operator.into(),
                values: Some(values.iter().map(|v| (*v).into()).collect()),
            }]),
            match_labels: None,
        }
    }

    #[test]
    fn expressions_follow_kubernetes_semantics() {
        let l = labels(&[("app", "web")]);
        assert!(selector_matches(&LabelSelector::default(), &l));
        assert!(selector_matches(
            &expression("app", "In", &["web", "db"]),
            &l
        ));
        assert!(!selector_matches(&expression("app", "NotIn", &["web"]), &l));
        assert!(selector_matches(&expression("tier", "NotIn", &["web"]), &l));
        assert!(selector_matches(&expression("app", "Exists", &[]), &l));
        assert!(!selector_matches(
            &expression("app", "DoesNotExist", &[]),
            &l
        ));
        assert!(selector_matches(&expression("app", "Unknown", &[]), &l));
        assert!(map_matches(
            &labels(&[("app", "web")]),
            &labels(&[("app", "web"), ("x", "y")])
        ));
        assert!(!map_matches(&labels(&[("app", "db")]), &l));
    }
}
