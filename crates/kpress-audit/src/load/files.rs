//! Offline input: files and directories of JSON or YAML as `kubectl get ... -o json|yaml`
//! writes them (a `List`, a typed `*List`, a single object, or multi-document YAML).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;
use crate::model::Inventory;

/// Reads every input into one inventory. Directories are read recursively, files in name
/// order; only `.json`, `.yaml` and `.yml` files in directories are read.
pub fn load_files(paths: &[PathBuf]) -> Result<Inventory, Error> {
    let mut inventory = Inventory::default();
    for path in paths {
        let files = if path.is_dir() {
            let files = files_in(path)?;
            if files.is_empty() {
                return Err(Error::NoInput(path.clone()));
            }
            files
        } else {
            vec![path.clone()]
        };
        for file in files {
            load_file(&file, &mut inventory)?;
        }
    }
    Ok(inventory)
}

fn files_in(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let read_err = |source| Error::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.is_dir() {
            files.extend(files_in(&path)?);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "json" | "yaml" | "yml"))
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn load_file(path: &Path, inventory: &mut Inventory) -> Result<(), Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parse_err = |line: Option<usize>, message: String| Error::Parse {
        path: path.to_path_buf(),
        line,
        message,
    };
    let documents: Vec<Value> = if text.trim_start().starts_with(['{', '[']) {
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| parse_err(Some(e.line()), format!("invalid JSON: {e}")))?;
        vec![value]
    } else {
        let mut documents = Vec::new();
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(document).map_err(|e| {
                parse_err(e.location().map(|l| l.line()), format!("invalid YAML: {e}"))
            })?;
            documents.push(value);
        }
        documents
    };
    for document in documents {
        for object in objects_of(document) {
            inventory
                .insert(object)
                .map_err(|e| parse_err(None, e.to_string()))?;
        }
    }
    Ok(())
}

/// Flattens a document into objects: a `v1 List`, a typed list such as `ServiceList` (whose
/// items may omit `apiVersion` and `kind`), a JSON array, a single object, or nothing.
fn objects_of(document: Value) -> Vec<Value> {
    match document {
        Value::Null => Vec::new(),
        Value::Array(items) => items.into_iter().flat_map(objects_of).collect(),
        Value::Object(mut map) => {
            let kind = map
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let Some(item_kind) = kind.strip_suffix("List") else {
                return vec![Value::Object(map)];
            };
            let Some(Value::Array(items)) = map.remove("items") else {
                return vec![Value::Object(map)];
            };
            let api_version = map.get("apiVersion").cloned().unwrap_or(Value::Null);
            items
                .into_iter()
                .map(|mut item| {
                    if !item_kind.is_empty() && item["kind"].is_null() {
                        item["kind"] = Value::String(item_kind.to_owned());
                        item["apiVersion"] = api_version.clone();
                    }
                    item
                })
                .flat_map(objects_of)
                .collect()
        }
        _ => Vec::new(),
    }
}
