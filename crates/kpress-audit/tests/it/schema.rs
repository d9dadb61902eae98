//! The JSON report's schema: the committed file is what the types generate, and real reports
//! validate against it.

use std::path::PathBuf;

use kpress_audit::report::report_schema;
use serde_json::Value;

use crate::common::{audit_dump, options};

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/audit-report.schema.json")
}

fn committed() -> Value {
    let text = std::fs::read_to_string(schema_path()).expect("committed schema");
    serde_json::from_str(&text).expect("schema is JSON")
}

/// Regenerate with `UPDATE_SCHEMA=1 cargo test -p kpress-audit --test it schema`.
#[test]
fn the_committed_schema_is_up_to_date() {
    let generated = report_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        let text = serde_json::to_string_pretty(&generated).expect("serializes") + "\n";
        std::fs::write(schema_path(), text).expect("schema written");
    }
    assert_eq!(
        committed(),
        generated,
        "schema/audit-report.schema.json is stale: run UPDATE_SCHEMA=1 cargo test -p kpress-audit --test it schema"
    );
}

#[tokio::test]
async fn reports_validate_against_the_committed_schema() {
    let validator = jsonschema::validator_for(&committed()).expect("valid schema");
    let report: Value =
        serde_json::from_str(&audit_dump(&options()).await.to_json()).expect("JSON");
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(report["findings"].as_array().map(Vec::len), Some(20));

    let mut broken = report.clone();
    broken["findings"][0]["category"] = Value::String("not-a-category".into());
    assert!(!validator.is_valid(&broken));
    let mut missing = report;
    if let Some(root) = missing.as_object_mut() {
        root.remove("totals");
    }
    assert!(!validator.is_valid(&missing));
}
