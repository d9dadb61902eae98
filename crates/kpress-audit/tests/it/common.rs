//! Shared by the integration tests: the fixture dump, a fixed audit time, and a compact view of
//! findings to compare.

use std::path::PathBuf;

use kpress_audit::report::Report;
use kpress_audit::Timestamp;
use kpress_audit::{AuditOptions, Source};

/// The realistic cluster dump: every category and every false-positive trap.
pub fn cluster_dump() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/cluster")
}

pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}

/// The time the dump is audited at: ages are then stable.
pub fn audit_time() -> Timestamp {
    "2025-06-01T00:00:00Z".parse().expect("valid timestamp")
}

pub fn options() -> AuditOptions {
    AuditOptions {
        now: audit_time(),
        ..AuditOptions::default()
    }
}

/// (category, kind, namespace or "-", name) of every finding, in report order.
pub fn summary(report: &Report) -> Vec<(String, String, String, String)> {
    report
        .findings
        .iter()
        .map(|f| {
            (
                f.category.as_str().to_owned(),
                f.kind.clone(),
                f.namespace.clone().unwrap_or_else(|| "-".to_owned()),
                f.name.clone(),
            )
        })
        .collect()
}

pub fn rows(expected: &[(&str, &str, &str, &str)]) -> Vec<(String, String, String, String)> {
    expected
        .iter()
        .map(|(c, k, n, m)| ((*c).into(), (*k).into(), (*n).into(), (*m).into()))
        .collect()
}

pub async fn audit_dump(options: &AuditOptions) -> Report {
    kpress_audit::audit(Source::Files(vec![cluster_dump()]), options)
        .await
        .expect("the dump audits")
        .report
}
