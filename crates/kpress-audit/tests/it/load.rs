//! Offline loading: every shape `kubectl get -o json|yaml` writes, and errors that name the
//! file (and the line, for syntax errors).

use std::path::PathBuf;

use kpress_audit::load::load_files;
use kpress_audit::model::{Kind, ObjectKey};
use kpress_audit::Error;

use crate::common::{cluster_dump, fixture};

fn key(kind: Kind, ns: &str, name: &str) -> ObjectKey {
    ObjectKey {
        kind,
        namespace: Some(ns.to_owned()),
        name: name.to_owned(),
    }
}

#[test]
fn typed_lists_lend_their_kind_to_items() {
    let inventory = load_files(&[fixture("formats/typed-list.json")]).expect("loads");
    let names: Vec<_> = inventory
        .services
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    assert_eq!(names, ["web", "db"]);
    assert!(inventory.raw(&key(Kind::Service, "shop", "db")).is_some());
}

#[test]
fn multi_document_yaml_loads_every_document_and_counts_unknown_kinds() {
    let inventory = load_files(&[fixture("formats/objects.yaml")]).expect("loads");
    assert_eq!(inventory.config_maps.len(), 1);
    assert_eq!(inventory.secrets.len(), 1);
    assert_eq!(
        inventory.ignored().get("coordination.k8s.io/v1 Lease"),
        Some(&1)
    );
    assert!(inventory.covers(Kind::ConfigMap));
    assert!(!inventory.covers(Kind::Pod));
}

#[test]
fn the_same_dump_twice_is_deduplicated() {
    let once = load_files(&[cluster_dump()]).expect("loads");
    let twice = load_files(&[cluster_dump(), cluster_dump()]).expect("loads");
    assert_eq!(once.objects().count(), twice.objects().count());
    assert_eq!(once.services.len(), twice.services.len());
}

#[test]
fn yaml_syntax_errors_name_file_and_line() {
    let path = fixture("broken/bad-indent.yaml");
    match load_files(std::slice::from_ref(&path)) {
        Err(Error::Parse {
            path: p,
            line,
            message,
        }) => {
            assert_eq!(p, path);
            assert_eq!(line, Some(8), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn json_syntax_errors_name_file_and_line() {
    let path = fixture("broken/bad.json");
    let err = load_files(std::slice::from_ref(&path)).expect_err("bad JSON");
    assert!(matches!(err, Error::Parse { line: Some(6), .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}:6: invalid JSON", path.display())),
        "{err}"
    );
}

#[test]
fn objects_that_do_not_fit_their_kind_name_file_and_object() {
    let err = load_files(&[fixture("broken/wrong-type.yaml")]).expect_err("bad replicas");
    let text = err.to_string();
    assert!(text.contains("wrong-type.yaml"), "{text}");
    assert!(text.contains("Deployment shop/web"), "{text}");
}

#[test]
fn missing_inputs_and_empty_directories_are_errors() {
    let missing = PathBuf::from("/nonexistent/dump.json");
    let err = load_files(std::slice::from_ref(&missing)).expect_err("missing");
    assert!(
        matches!(&err, Error::Read { path, .. } if *path == missing),
        "{err:?}"
    );
    let empty = tempfile::tempdir().expect("temp dir");
    let err = load_files(&[empty.path().to_path_buf()]).expect_err("empty");
    assert!(matches!(err, Error::NoInput(_)), "{err:?}");
}
