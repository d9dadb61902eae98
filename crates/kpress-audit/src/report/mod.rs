//! The audit's result as data: findings with reason, age and cost, totals, and the assumptions
//! behind every figure. Its JSON form is a documented interface, with a JSON Schema generated
//! from these types and committed at `schema/audit-report.schema.json`.

mod table;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use table::render_table;

use crate::cost::{Cost, Prices};
use crate::rules::Category;

/// Identifies the report format; bumped on incompatible changes.
pub const SCHEMA_ID: &str = "kpress.io/audit-report/v1";

/// Where the audited objects came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Files given with `--from`.
    Offline,
    /// A live cluster.
    Live,
}

/// The audited source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SourceInfo {
    /// Offline or live.
    pub mode: Mode,
    /// Input files or directories (offline), or the kubeconfig context (live), if named.
    pub inputs: Vec<String>,
    /// The namespace the audit was limited to.
    pub namespace: Option<String>,
}

/// One leftover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// Object kind, e.g. `Service`.
    pub kind: String,
    /// Object apiVersion, e.g. `v1`.
    pub api_version: String,
    /// Namespace; `null` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
    /// Why it is a leftover, by category.
    pub category: Category,
    /// Why it is a leftover, in words.
    pub reason: String,
    /// Object uid, used as a delete precondition.
    pub uid: Option<String>,
    /// Object resourceVersion at audit time, used as a delete precondition.
    pub resource_version: Option<String>,
    /// Creation time (RFC 3339), if known.
    pub created_at: Option<String>,
    /// Age in seconds at audit time, if known.
    pub age_seconds: Option<u64>,
    /// Age for humans (`41d`, `5h`), if known.
    pub age: Option<String>,
    /// Whether `--prune` deletes it.
    pub prunable: bool,
    /// Why `--prune` leaves it alone, when it does.
    pub keep_reason: Option<String>,
    /// What it costs.
    pub cost: Cost,
}

/// Sums over all findings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Totals {
    /// Number of findings.
    pub findings: u64,
    /// Number of prunable findings.
    pub prunable: u64,
    /// Findings per category.
    pub by_category: BTreeMap<Category, u64>,
    /// Monthly USD, the exact sum of the findings' rounded monthly costs.
    pub monthly_usd: f64,
    /// Cloud load balancers.
    pub load_balancers: u64,
    /// GiB of storage.
    pub storage_gib: f64,
    /// kube-proxy rules across all nodes.
    pub kube_proxy_rules: u64,
    /// DNS records.
    pub dns_records: u64,
}

/// The assumptions behind the cost figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Assumptions {
    /// Nodes kube-proxy rules are multiplied by.
    pub nodes: u64,
    /// Whether `nodes` was counted from Node objects (`false`: assumed, see `--nodes`).
    pub nodes_counted: bool,
    /// Hours in a billing month.
    pub hours_per_month: f64,
    /// Prices applied.
    pub prices: Prices,
    /// The assumptions in words, as shown under the table.
    pub notes: Vec<String>,
}

/// A rule that could not judge the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SkippedRule {
    /// The rule's category.
    pub category: Category,
    /// Why it was skipped.
    pub reason: String,
}

/// The full audit report (`--output json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// Format identifier, `kpress.io/audit-report/v1`.
    pub schema: String,
    /// When the audit ran (RFC 3339); ages are relative to it.
    pub generated_at: String,
    /// What was audited.
    pub source: SourceInfo,
    /// The leftovers, sorted by namespace, category, kind and name.
    pub findings: Vec<Finding>,
    /// Sums.
    pub totals: Totals,
    /// Assumptions behind the figures.
    pub assumptions: Assumptions,
    /// Rules that could not judge this input.
    pub skipped_rules: Vec<SkippedRule>,
    /// How the input was read (ignored kinds, CRDs not installed, lists not allowed).
    pub notes: Vec<String>,
}

impl Report {
    /// The report as pretty-printed JSON (`--output json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The JSON Schema of [`Report`].
pub fn report_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Report)).unwrap_or_default()
}

/// Formats an age in seconds the way kubectl does: the largest whole unit.
pub fn human_age(seconds: u64) -> String {
    match seconds {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
