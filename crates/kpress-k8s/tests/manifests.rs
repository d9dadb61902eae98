//! The management center's manifests in `deploy/center/` and the runner Deployment are
//! valid for Kubernetes 1.30 and the newest version `kubernetes-validate` knows, and the
//! center's permissions stay within one namespace and three resources.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::util::{repo, runner_deployment};

fn validate(file: &Path) {
    for version in ["1.30.0", "1.37.0"] {
        let out = Command::new("kubernetes-validate")
            .args(["--strict", "-k", version])
            .arg(file)
            .output()
            .unwrap_or_else(|e| {
                panic!("kubernetes-validate is installed (pip install kubernetes-validate): {e}")
            });
        assert!(
            out.status.success(),
            "{} for {version}:\n{}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn documents(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", file.display())))
        .collect()
}

#[test]
fn center_manifests_and_the_runner_deployment_pass_kubernetes_validate_strict() {
    let center = repo().join("deploy/center");
    validate(&center.join("rbac.yaml"));
    validate(&center.join("center.yaml"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let runners = dir.path().join("runners.yaml");
    let yaml = kpress_k8s::to_yaml(&[runner_deployment()]).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&runners, yaml).unwrap_or_else(|e| panic!("{e}"));
    validate(&runners);
}

#[test]
fn the_center_may_touch_only_deployments_and_configmaps_of_the_test_namespace() {
    let docs = documents(&repo().join("deploy/center/rbac.yaml"));
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert!(!kinds.iter().any(|k| k.starts_with("Cluster")), "{kinds:?}");
    assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding"]);
    let role = &docs[1];
    assert_eq!(role["metadata"]["namespace"], "loadtest");
    let mut granted = BTreeMap::new();
    for rule in role["rules"].as_array().cloned().unwrap_or_default() {
        assert!(
            rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none(),
            "{rule}"
        );
        for group in rule["apiGroups"].as_array().cloned().unwrap_or_default() {
            for resource in rule["resources"].as_array().cloned().unwrap_or_default() {
                granted.insert(
                    format!(
                        "{}/{}",
                        group.as_str().unwrap_or("?"),
                        resource.as_str().unwrap_or("?")
                    ),
                    rule["verbs"].clone(),
                );
            }
        }
    }
    assert_eq!(
        granted,
        BTreeMap::from([
            (
                "apps/deployments".to_string(),
                json!(["get", "list", "watch", "create", "patch", "delete"])
            ),
            (
                "apps/deployments/scale".to_string(),
                json!(["get", "patch", "update"])
            ),
            (
                "/configmaps".to_string(),
                json!(["get", "list", "create", "delete"])
            ),
        ])
    );
    let binding = &docs[2];
    assert_eq!(
        binding["metadata"]["namespace"],
        role["metadata"]["namespace"]
    );
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kpress-center"})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "kpress-center", "namespace": "kpress"}])
    );
    assert_eq!(
        (
            &docs[0]["metadata"]["name"],
            &docs[0]["metadata"]["namespace"]
        ),
        (&json!("kpress-center"), &json!("kpress"))
    );
}

#[test]
fn every_center_object_carries_the_application_labels() {
    for file in ["rbac.yaml", "center.yaml"] {
        for doc in documents(&repo().join("deploy/center").join(file)) {
            let labels = &doc["metadata"]["labels"];
            for (key, value) in [
                ("app.kubernetes.io/part-of", "kpress"),
                ("app.kubernetes.io/name", "kpress"),
                ("app.kubernetes.io/component", "center"),
            ] {
                assert_eq!(labels[key], value, "{file}: {} {key}", doc["kind"]);
            }
        }
    }
}
