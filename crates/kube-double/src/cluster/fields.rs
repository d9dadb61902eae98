//! What a container sees of its pod: environment variables (literal, `$(VAR)`-expanded and
//! `fieldRef`), its argument vector and the downward API files. Kept free of I/O so that the
//! rules, which code under test depends on to the letter, are unit-tested on their own.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde_json::Value;

/// The variable through which a pod learns where its downward API files are.
pub(crate) const POD_INFO_DIR: &str = "KPRESS_POD_INFO_DIR";

/// The value of a `fieldRef.fieldPath`, or `None` for paths the double does not resolve.
/// A missing label or annotation reads as empty, as it does in a real pod.
pub(crate) fn field_value(pod: &Value, path: &str) -> Option<String> {
    let meta = &pod["metadata"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    match path {
        "metadata.name" | "metadata.namespace" | "metadata.uid" => {
            Some(text(&meta[&path["metadata.".len()..]]))
        }
        "metadata.labels" | "metadata.annotations" => {
            Some(format_map(&meta[&path["metadata.".len()..]]))
        }
        "spec.nodeName" | "spec.serviceAccountName" => {
            Some(text(&pod["spec"][&path["spec.".len()..]]))
        }
        _ => {
            let (map, key) = subscript(path)?;
            Some(text(&meta[map][key]))
        }
    }
}

/// Splits `metadata.labels['k']` (or `["k"]`, or `annotations`) into the map and the key.
fn subscript(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("metadata.")?;
    let (map, key) = rest.split_once('[')?;
    if !matches!(map, "labels" | "annotations") {
        return None;
    }
    let key = key.strip_suffix(']')?;
    let key = key
        .strip_prefix('\'')
        .and_then(|k| k.strip_suffix('\''))
        .or_else(|| key.strip_prefix('"').and_then(|k| k.strip_suffix('"')))?;
    Some((map, key))
}

/// The kubelet's file format for a whole label or annotation map: `key="value"` lines in key
/// order.
fn format_map(map: &Value) -> String {
    let Some(map) = map.as_object() else {
        return String::new();
    };
    let sorted: BTreeMap<&String, &Value> = map.iter().collect();
    sorted
        .into_iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                Value::String(v.as_str().unwrap_or_default().into())
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands `$(NAME)` references as the kubelet does: a defined name is replaced, an undefined
/// one is left as written, and `$$` escapes a dollar.
pub(crate) fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after
            .strip_prefix('(')
            .and_then(|inner| inner.split_once(')'))
        {
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// An ordered environment where a later entry overrides an earlier one of the same name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Env(Vec<(String, String)>);

impl Env {
    pub(crate) fn set(&mut self, name: &str, value: String) {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_owned(), value));
    }

    pub(crate) fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    pub(crate) fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// The container's environment: the host's `PATH` (standing in for the image's), `HOSTNAME`,
/// the container's `env` entries, then `extra` and the pod info directory, which win.
/// `valueFrom` sources other than resolvable `fieldRef`s are skipped.
pub(crate) fn container_env(
    pod: &Value,
    container: &Value,
    extra: &[(String, String)],
    info_dir: &Path,
) -> Env {
    let mut env = Env::default();
    if let Ok(path) = std::env::var("PATH") {
        env.set("PATH", path);
    }
    let hostname = pod["spec"]["hostname"]
        .as_str()
        .or(pod["metadata"]["name"].as_str())
        .unwrap_or_default();
    env.set("HOSTNAME", hostname.to_owned());
    for entry in container["env"].as_array().into_iter().flatten() {
        let Some(name) = entry["name"].as_str() else {
            continue;
        };
        let value = if let Some(value) = entry["value"].as_str() {
            Some(expand(value, |n| env.get(n)))
        } else {
            entry["valueFrom"]["fieldRef"]["fieldPath"]
                .as_str()
                .and_then(|path| field_value(pod, path))
        };
        if let Some(value) = value {
            env.set(name, value);
        }
    }
    for (name, value) in extra {
        env.set(name, value.clone());
    }
    env.set(POD_INFO_DIR, info_dir.display().to_string());
    env
}

/// `command` followed by `args`, with `$(VAR)` references expanded from the environment.
pub(crate) fn argv(container: &Value, env: &Env) -> Vec<String> {
    ["command", "args"]
        .iter()
        .flat_map(|field| container[*field].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .map(|arg| expand(arg, |n| env.get(n)))
        .collect()
}

/// The files of every `downwardAPI` volume of the pod, by relative path. Items with a
/// `resourceFieldRef`, an unresolvable field or a path escaping the volume are skipped.
pub(crate) fn downward_files(pod: &Value) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let volumes = pod["spec"]["volumes"].as_array().into_iter().flatten();
    for item in volumes.flat_map(|v| v["downwardAPI"]["items"].as_array().into_iter().flatten()) {
        let Some(path) = item["path"].as_str().filter(|p| is_relative_inside(p)) else {
            continue;
        };
        if let Some(value) = item["fieldRef"]["fieldPath"]
            .as_str()
            .and_then(|field| field_value(pod, field))
        {
            files.insert(path.to_owned(), value.into_bytes());
        }
    }
    files
}

fn is_relative_inside(path: &str) -> bool {
    let path = Path::new(path);
    !path.as_os_str().is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {
                "name": "job-0-abcde", "namespace": "load", "uid": "u-1",
                "labels": {"b": "2", "a": "1"},
                "annotations": {"kpress.io/start": "2030-01-01T00:00:00Z"},
            },
            "spec": {
                "volumes": [{"name": "info", "downwardAPI": {"items": [
                    {"path": "start", "fieldRef": {"fieldPath": "metadata.annotations['kpress.io/start']"}},
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "nested/name", "fieldRef": {"fieldPath": "metadata.name"}},
                    {"path": "../escape", "fieldRef": {"fieldPath": "metadata.name"}},
                    {"path": "cpu", "resourceFieldRef": {"resource": "limits.cpu"}},
                ]}}],
            },
        })
    }

    #[test]
    fn field_paths_resolve_like_the_downward_api() {
        let pod = pod();
        let cases = [
            ("metadata.name", Some("job-0-abcde")),
            ("metadata.namespace", Some("load")),
            (
                "metadata.annotations['kpress.io/start']",
                Some("2030-01-01T00:00:00Z"),
            ),
            ("metadata.labels[\"a\"]", Some("1")),
            ("metadata.annotations['absent']", Some("")),
            ("metadata.labels", Some("a=\"1\"\nb=\"2\"")),
            ("status.podIP", None),
            ("metadata.finalizers['x']", None),
        ];
        for (path, expected) in cases {
            assert_eq!(field_value(&pod, path).as_deref(), expected, "{path}");
        }
    }

    #[test]
    fn references_expand_as_the_kubelet_expands_them() {
        let lookup = |name: &str| (name == "I").then(|| "3".to_owned());
        assert_eq!(expand("--index=$(I)", lookup), "--index=3");
        assert_eq!(
            expand("$(MISSING)-$$(I)-$$-$", lookup),
            "$(MISSING)-$(I)-$-$"
        );
        assert_eq!(expand("$(unclosed", lookup), "$(unclosed");
    }

    #[test]
    fn environment_resolves_in_order_and_the_simulation_wins() {
        let pod = pod();
        let container = json!({"env": [
            {"name": "A", "value": "x"},
            {"name": "B", "value": "$(A)y"},
            {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "X", "value": "from-pod"},
        ]});
        let extra = [("X".to_owned(), "from-test".to_owned())];
        let env = container_env(&pod, &container, &extra, Path::new("/tmp/info"));
        assert_eq!(env.get("B").as_deref(), Some("xy"));
        assert_eq!(env.get("N").as_deref(), Some("job-0-abcde"));
        assert_eq!(env.get("S"), None);
        assert_eq!(env.get("X").as_deref(), Some("from-test"));
        assert_eq!(env.get(POD_INFO_DIR).as_deref(), Some("/tmp/info"));
        let argv = argv(&json!({"command": ["run"], "args": ["$(N)"]}), &env);
        assert_eq!(argv, ["run", "job-0-abcde"]);
    }

    #[test]
    fn downward_volumes_become_files_inside_the_info_dir() {
        let files = downward_files(&pod());
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(names, ["labels", "nested/name", "start"]);
        assert_eq!(files["start"], b"2030-01-01T00:00:00Z");
    }
}
