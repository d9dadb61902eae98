//! Monitoring objects for targets that are gone: Prometheus keeps evaluating their selectors
//! and rules, alerting on absent series or silently watching nothing.
//!
//! - A ServiceMonitor is a leftover when its `selector` matches no Service in the namespaces
//!   its `namespaceSelector` names (`any: true`, `matchNames`, or its own namespace).
//! - A PodMonitor is a leftover when its selector matches no pod and no pod template of any
//!   workload in those namespaces: pods of a CronJob come and go, their template stays.
//! - A PrometheusRule is a leftover when either signal holds, and only then:
//!   1. it carries application labels (`app.kubernetes.io/instance`, `app.kubernetes.io/name`,
//!      `app`) and for every one of them no workload, pod template, pod or Service in any
//!      namespace carries the same label and value;
//!   2. every one of its rule expressions has an equality matcher `namespace="X"` and none of
//!      those namespaces exists.
//!
//!   Rules without such labels or matchers (cluster-wide alerting, `job=` based rules whose job
//!   names come from relabelling the audit cannot see) are never reported.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::DynamicObject;
use serde_json::Value;

use super::{labels, owned, require, templates_in, Candidate, Category, RuleResult};
use crate::model::{Inventory, Kind};
use crate::refs::ns_of;
use crate::selector::selector_matches;

/// Labels that tie a PrometheusRule to an application.
const APP_LABELS: [&str; 3] = [
    "app.kubernetes.io/instance",
    "app.kubernetes.io/name",
    "app",
];

/// The namespaces a monitor selects in, or `None` for all.
fn monitor_namespaces(monitor: &DynamicObject) -> Option<Vec<String>> {
    let selector = &monitor.data["spec"]["namespaceSelector"];
    if selector["any"] == Value::Bool(true) {
        return None;
    }
    let names: Vec<String> = selector["matchNames"]
        .as_array()
        .map(|n| {
            n.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Some(if names.is_empty() {
        vec![ns_of(monitor)]
    } else {
        names
    })
}

/// The monitor's `spec.selector`; `None` if it does not parse (then it is not judged).
fn monitor_selector(monitor: &DynamicObject) -> Option<LabelSelector> {
    serde_json::from_value(monitor.data["spec"]["selector"].clone()).ok()
}

fn describe(selector: &LabelSelector, namespaces: &Option<Vec<String>>) -> String {
    let rendered = serde_json::to_string(selector).unwrap_or_default();
    match namespaces {
        None => format!("selector {rendered} matches nothing in any namespace"),
        Some(ns) => format!(
            "selector {rendered} matches nothing in namespace(s) {}",
            ns.join(",")
        ),
    }
}

fn in_scope(namespaces: &Option<Vec<String>>, ns: &str) -> bool {
    namespaces
        .as_ref()
        .is_none_or(|list| list.iter().any(|n| n == ns))
}

/// ServiceMonitors whose selector matches no Service.
pub fn service_monitors_without_targets(inv: &Inventory) -> RuleResult<'_> {
    if inv.service_monitors.is_empty() {
        return Ok(Vec::new());
    }
    require(inv, "see what ServiceMonitors select", &[Kind::Service])?;
    let mut found = Vec::new();
    for monitor in inv.service_monitors.iter().filter(|m| !owned(&m.metadata)) {
        let (Some(selector), namespaces) = (monitor_selector(monitor), monitor_namespaces(monitor))
        else {
            continue;
        };
        let matched = inv.services.iter().any(|svc| {
            in_scope(&namespaces, &ns_of(svc))
                && selector_matches(&selector, &labels(&svc.metadata))
        });
        if !matched {
            found.push(Candidate::new(
                Kind::ServiceMonitor,
                &monitor.metadata,
                Category::ServiceMonitorWithoutTargets,
                format!(
                    "{}: Prometheus scrapes no Service for it",
                    describe(&selector, &namespaces)
                ),
            ));
        }
    }
    Ok(found)
}

/// PodMonitors whose selector matches no pod and no workload's pod template.
pub fn pod_monitors_without_targets(inv: &Inventory) -> RuleResult<'_> {
    if inv.pod_monitors.is_empty() {
        return Ok(Vec::new());
    }
    require(inv, "see what PodMonitors select", &[Kind::Pod])?;
    let namespaces_in_use: Vec<String> = {
        let mut all: Vec<String> = inv.pods.iter().map(ns_of).collect();
        all.extend(inv.deployments.iter().map(ns_of));
        all.extend(inv.stateful_sets.iter().map(ns_of));
        all.extend(inv.daemon_sets.iter().map(ns_of));
        all.extend(inv.replica_sets.iter().map(ns_of));
        all.extend(inv.jobs.iter().map(ns_of));
        all.extend(inv.cron_jobs.iter().map(ns_of));
        all.sort();
        all.dedup();
        all
    };
    let mut found = Vec::new();
    for monitor in inv.pod_monitors.iter().filter(|m| !owned(&m.metadata)) {
        let (Some(selector), namespaces) = (monitor_selector(monitor), monitor_namespaces(monitor))
        else {
            continue;
        };
        let pods = inv.pods.iter().any(|pod| {
            in_scope(&namespaces, &ns_of(pod))
                && selector_matches(&selector, &labels(&pod.metadata))
        });
        let templates = namespaces_in_use
            .iter()
            .filter(|ns| in_scope(&namespaces, ns))
            .any(|ns| templates_in(inv, ns).any(|(l, _)| selector_matches(&selector, &l)));
        if !pods && !templates {
            found.push(Candidate::new(
                Kind::PodMonitor,
                &monitor.metadata,
                Category::PodMonitorWithoutTargets,
                format!(
                    "{}: no pod and no workload template",
                    describe(&selector, &namespaces)
                ),
            ));
        }
    }
    Ok(found)
}

/// The values of `namespace="..."` equality matchers in a PromQL expression.
fn namespace_matchers(expr: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = expr.as_bytes();
    let mut from = 0;
    while let Some(offset) = expr[from..].find("namespace") {
        let start = from + offset;
        let end = start + "namespace".len();
        from = end;
        let before = start.checked_sub(1).map(|i| bytes[i]);
        if !matches!(before, Some(b'{' | b',' | b' ' | b'\t' | b'\n')) {
            continue;
        }
        let rest = expr[end..].trim_start();
        let Some(value) = rest.strip_prefix('=') else {
            continue;
        };
        if value.starts_with(['~', '=']) {
            continue;
        }
        let value = value.trim_start();
        let Some(quote) = value
            .chars()
            .next()
            .filter(|c| matches!(c, '"' | '\'' | '`'))
        else {
            continue;
        };
        if let Some(close) = value[1..].find(quote) {
            found.push(value[1..1 + close].to_owned());
        }
    }
    found
}

fn expressions(rule: &DynamicObject) -> Vec<String> {
    let groups = rule.data["spec"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    groups
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .map(|r| match &r["expr"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// Every label of every object that can stand for a running application.
fn application_labels(inv: &Inventory) -> Vec<BTreeMap<String, String>> {
    let mut all: Vec<BTreeMap<String, String>> = Vec::new();
    let namespaces: Vec<String> = inv
        .deployments
        .iter()
        .map(ns_of)
        .chain(inv.stateful_sets.iter().map(ns_of))
        .chain(inv.daemon_sets.iter().map(ns_of))
        .chain(inv.replica_sets.iter().map(ns_of))
        .chain(inv.jobs.iter().map(ns_of))
        .chain(inv.cron_jobs.iter().map(ns_of))
        .collect();
    for ns in namespaces {
        all.extend(templates_in(inv, &ns).map(|(l, _)| l));
    }
    all.extend(inv.deployments.iter().map(|d| labels(&d.metadata)));
    all.extend(inv.stateful_sets.iter().map(|s| labels(&s.metadata)));
    all.extend(inv.daemon_sets.iter().map(|d| labels(&d.metadata)));
    all.extend(inv.cron_jobs.iter().map(|c| labels(&c.metadata)));
    all.extend(inv.pods.iter().map(|p| labels(&p.metadata)));
    all.extend(inv.services.iter().map(|s| labels(&s.metadata)));
    all
}

/// PrometheusRules for an application or namespaces that no longer exist (see module docs).
pub fn orphaned_prometheus_rules(inv: &Inventory) -> RuleResult<'_> {
    if inv.prometheus_rules.is_empty() {
        return Ok(Vec::new());
    }
    require(inv, "see which applications still exist", &[Kind::Pod])?;
    let apps = application_labels(inv);
    let namespaces_known = inv.covers(Kind::Namespace);
    let mut found = Vec::new();
    for rule in inv.prometheus_rules.iter().filter(|r| !owned(&r.metadata)) {
        let own = labels(&rule.metadata);
        let app_labels: Vec<(&str, &String)> = APP_LABELS
            .iter()
            .filter_map(|k| Some((*k, own.get(*k)?)))
            .collect();
        let app_gone = !app_labels.is_empty()
            && app_labels
                .iter()
                .all(|(k, v)| !apps.iter().any(|l| l.get(*k) == Some(*v)));
        let exprs = expressions(rule);
        let gone_namespaces: Vec<String> = exprs
            .iter()
            .flat_map(|e| namespace_matchers(e))
            .filter(|ns| {
                !inv.namespaces
                    .iter()
                    .any(|n| n.metadata.name.as_deref() == Some(ns))
            })
            .collect();
        let namespaces_gone = namespaces_known
            && !exprs.is_empty()
            && exprs.iter().all(|e| {
                let matchers = namespace_matchers(e);
                !matchers.is_empty() && matchers.iter().all(|m| gone_namespaces.contains(m))
            });
        let reason = if app_gone {
            let rendered: Vec<String> =
                app_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "labelled for application {} but no workload, pod or Service carries that label",
                rendered.join(",")
            )
        } else if namespaces_gone {
            let mut gone = gone_namespaces;
            gone.sort();
            gone.dedup();
            format!(
                "every rule expression selects namespace(s) {} that no longer exist",
                gone.join(",")
            )
        } else {
            continue;
        };
        found.push(Candidate::new(
            Kind::PrometheusRule,
            &rule.metadata,
            Category::OrphanedPrometheusRule,
            reason,
        ));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::namespace_matchers;

    #[test]
    fn only_equality_matchers_on_the_namespace_label_count() {
        let cases = [
            (r#"up{namespace="shop"} == 0"#, vec!["shop"]),
            (r#"rate(x{job="a", namespace = 'perf'}[5m])"#, vec!["perf"]),
            (r#"x{namespace=~"shop.*"}"#, vec![]),
            (r#"x{namespace!="shop"}"#, vec![]),
            (r#"x{exported_namespace="shop"}"#, vec![]),
            (r#"sum by (namespace) (x)"#, vec![]),
            (r#"a{namespace="a"} / b{namespace="b"}"#, vec!["a", "b"]),
        ];
        for (expr, expected) in cases {
            assert_eq!(namespace_matchers(expr), expected, "{expr}");
        }
    }
}
