//! `kpress audit`: finds what one-off workloads leave behind in a Kubernetes cluster, says why
//! each object is a leftover and what it costs, and removes it safely on request.
//!
//! The pipeline is `load` (files or a live cluster) → [`model::Inventory`] → `rules` (pure
//! functions, one per category) → `scope` filters → `cost` → [`report::Report`]; `prune`
//! backs up and deletes prunable findings with uid/resourceVersion preconditions. Keeping the
//! rules pure over an inventory is what lets a cluster dump be audited anywhere, and the same
//! inventory type from both loaders is what makes offline and live audits agree.

pub mod cost;
pub mod error;
pub mod load;
pub mod model;
pub mod prune;
pub mod refs;
pub mod report;
pub mod rules;
pub mod scope;
pub mod selector;

use std::path::PathBuf;

pub use error::Error;
/// The timestamp type of audit times and ages (k8s-openapi's `jiff`).
pub use k8s_openapi::jiff::Timestamp;

use cost::{price, Prices, HOURS_PER_MONTH};
use model::{Inventory, Kind};
use report::{human_age, Assumptions, Finding, Mode, Report, SkippedRule, SourceInfo, Totals};
use scope::{age_seconds, Filters};

/// Everything that shapes an audit besides its input.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Scope and exclusions.
    pub filters: Filters,
    /// Prices applied to what leftovers hold.
    pub prices: Prices,
    /// Node count to assume when the input has no Node objects.
    pub assumed_nodes: u64,
    /// The time ages are measured at (the time of a dump, to audit it as of then).
    pub now: Timestamp,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            filters: Filters::default(),
            prices: Prices::default(),
            assumed_nodes: 1,
            now: Timestamp::now(),
        }
    }
}

/// Where to read objects from.
#[derive(Clone)]
pub enum Source {
    /// `kubectl get -o json|yaml` output: files and directories.
    Files(Vec<PathBuf>),
    /// A live cluster, through a configured client; `context` only labels the report.
    Cluster {
        /// The client.
        client: kube::Client,
        /// The kubeconfig context the client was built from, if one was named.
        context: Option<String>,
    },
}

/// An audit's inventory (needed to prune: it holds the objects to back up) and its report.
#[derive(Debug)]
pub struct Audit {
    /// What was read.
    pub inventory: Inventory,
    /// What was found.
    pub report: Report,
}

/// A client from the usual configuration (see [`kpress_k8s::connect`]).
pub async fn connect(context: Option<&str>) -> Result<kube::Client, Error> {
    kpress_k8s::connect(context).await.map_err(Error::Config)
}

/// Reads the source and audits it.
pub async fn audit(source: Source, options: &AuditOptions) -> Result<Audit, Error> {
    let namespace = options.filters.namespace.clone();
    let (inventory, source_info) = match source {
        Source::Files(paths) => (
            load::load_files(&paths)?,
            SourceInfo {
                mode: Mode::Offline,
                inputs: paths.iter().map(|p| p.display().to_string()).collect(),
                namespace,
            },
        ),
        Source::Cluster { client, context } => (
            load::load_cluster(&client, namespace.as_deref()).await?,
            SourceInfo {
                mode: Mode::Live,
                inputs: context.into_iter().collect(),
                namespace,
            },
        ),
    };
    let report = evaluate(&inventory, source_info, options);
    Ok(Audit { inventory, report })
}

/// Runs every rule over an inventory and builds the report; pure.
pub fn evaluate(inventory: &Inventory, source: SourceInfo, options: &AuditOptions) -> Report {
    let (nodes, nodes_counted) = match inventory.nodes.len() as u64 {
        0 => (options.assumed_nodes, false),
        n => (n, true),
    };
    let mut findings = Vec::new();
    let mut skipped_rules = Vec::new();
    for (category, rule) in rules::RULES {
        let candidates = match rule(inventory) {
            Ok(candidates) => candidates,
            Err(rules::Skipped(reason)) => {
                skipped_rules.push(SkippedRule { category, reason });
                continue;
            }
        };
        for candidate in candidates {
            if !options.filters.admits(&candidate, options.now) {
                continue;
            }
            let age = age_seconds(candidate.meta, options.now);
            findings.push(Finding {
                kind: candidate.key.kind.name().to_owned(),
                api_version: candidate.key.kind.api_version(),
                namespace: candidate.key.namespace.clone(),
                name: candidate.key.name.clone(),
                category: candidate.category,
                reason: candidate.reason.clone(),
                uid: candidate.meta.uid.clone(),
                resource_version: candidate.meta.resource_version.clone(),
                created_at: candidate
                    .meta
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string()),
                age_seconds: age,
                age: age.map(human_age),
                prunable: candidate.keep.is_none(),
                keep_reason: candidate.keep.clone(),
                cost: price(&candidate.holds, &options.prices, nodes),
            });
        }
    }
    findings.sort_by(|a, b| {
        let key = |f: &Finding| {
            (
                f.namespace.is_none(),
                f.namespace.clone(),
                f.category,
                f.kind.clone(),
                f.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    let totals = totals(&findings);
    let mut notes: Vec<String> = inventory.notes().to_vec();
    notes.extend(
        inventory
            .ignored()
            .iter()
            .map(|(kind, count)| format!("ignored {count} object(s) of {kind}: not audited")),
    );
    Report {
        schema: report::SCHEMA_ID.to_owned(),
        generated_at: options.now.to_string(),
        source,
        findings,
        totals,
        assumptions: assumptions(inventory, options, nodes, nodes_counted),
        skipped_rules,
        notes,
    }
}

fn totals(findings: &[Finding]) -> Totals {
    let mut totals = Totals::default();
    let mut cents = 0i64;
    let mut storage_gib = 0.0;
    for f in findings {
        totals.findings += 1;
        totals.prunable += u64::from(f.prunable);
        *totals.by_category.entry(f.category).or_default() += 1;
        cents += f.cost.cents();
        totals.load_balancers += f.cost.load_balancers;
        storage_gib += f.cost.storage_gib;
        totals.kube_proxy_rules += f.cost.kube_proxy_rules;
        totals.dns_records += f.cost.dns_records;
    }
    totals.monthly_usd = cents as f64 / 100.0;
    totals.storage_gib = (storage_gib * 100.0).round() / 100.0;
    totals
}

fn assumptions(
    inventory: &Inventory,
    options: &AuditOptions,
    nodes: u64,
    counted: bool,
) -> Assumptions {
    let p = &options.prices;
    let node_note = if counted {
        format!("{nodes} node(s), counted from Node objects")
    } else if inventory.covers(Kind::Node) {
        format!("no Node objects could be listed: assumed {nodes} node(s) (--nodes)")
    } else {
        format!("the input has no Node objects: assumed {nodes} node(s) (--nodes); kube-proxy rule counts scale with the real node count")
    };
    Assumptions {
        nodes,
        nodes_counted: counted,
        hours_per_month: HOURS_PER_MONTH,
        prices: *p,
        notes: vec![
            format!("monthly USD = hourly price × {HOURS_PER_MONTH} hours"),
            format!(
                "a provisioned load balancer costs {} USD/hour (--lb-hourly-usd) = {:.2} USD/month; traffic charges are not included",
                p.lb_hourly_usd,
                p.lb_hourly_usd * HOURS_PER_MONTH
            ),
            format!(
                "storage costs {} USD per GiB-month (--storage-gib-month-usd), on the bound capacity of claims and volumes",
                p.storage_gib_month_usd
            ),
            node_note,
            "kube-proxy in iptables mode keeps, for a Service without endpoints, one REJECT rule per port for its cluster IP, its node port and each external or load-balancer address, on every node".to_owned(),
            "cluster DNS keeps one A/AAAA record per IP family and one SRV record per named port of a non-headless Service".to_owned(),
            "Ingress black holes are not priced: gateway charges depend on the traffic they still receive".to_owned(),
        ],
    }
}
