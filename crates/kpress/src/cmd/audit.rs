//! `kpress audit`: the command-line face of the `kpress-audit` crate. It turns flags into audit
//! options, prints the report, runs a prune when asked, and maps every outcome to the exit
//! code CI policies rely on: 0 ok, 1 runtime failure, 2 usage error, 3 findings with
//! `--fail-on-findings`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use kpress_audit::cost::{DEFAULT_LB_HOURLY_USD, DEFAULT_STORAGE_GIB_MONTH_USD};
use kpress_audit::prune::{self, PruneOutcome, Target};
use kpress_audit::scope::{parse_duration, Filters, LabelFilter};
use kpress_audit::{AuditOptions, Source, Timestamp};

const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_FINDINGS: u8 = 3;

/// Report formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Findings grouped by namespace and category, with totals and assumptions.
    Table,
    /// The documented JSON report (schema: kpress.io/audit-report/v1).
    Json,
}

/// Find, price and safely prune what one-off workloads left behind.
#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// Audit `kubectl get -o json|yaml` output instead of the live cluster (repeatable).
    #[arg(long = "from", value_name = "FILE|DIR")]
    pub from: Vec<PathBuf>,
    /// Only this namespace (default: all namespaces).
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// Kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "CONTEXT", conflicts_with = "from")]
    pub context: Option<String>,
    /// Report format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Exit with code 3 when anything is found.
    #[arg(long)]
    pub fail_on_findings: bool,
    /// List what would be deleted; with --yes, back up and delete it (live cluster only).
    #[arg(long, conflicts_with = "from")]
    pub prune: bool,
    /// Really delete (after writing the backup to --backup-dir).
    #[arg(long, requires = "prune", requires = "backup_dir")]
    pub yes: bool,
    /// Where --prune --yes writes the YAML backup that `kubectl apply -f` restores.
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Only report objects older than this (e.g. 24h, 7d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub older_than: Option<Duration>,
    /// Leave this namespace out (repeatable).
    #[arg(long = "exclude-namespace", value_name = "NS")]
    pub exclude_namespaces: Vec<String>,
    /// Leave out objects with this label (repeatable).
    #[arg(long = "exclude-label", value_name = "KEY[=VALUE]")]
    pub exclude_labels: Vec<LabelFilter>,
    /// Also report objects in kube-system, kube-public and kube-node-lease.
    #[arg(long)]
    pub include_system_namespaces: bool,
    /// Price of a cloud load balancer per hour, in USD.
    #[arg(long, value_name = "USD", default_value_t = DEFAULT_LB_HOURLY_USD, value_parser = non_negative)]
    pub lb_hourly_usd: f64,
    /// Price of storage per GiB-month, in USD.
    #[arg(long, value_name = "USD", default_value_t = DEFAULT_STORAGE_GIB_MONTH_USD, value_parser = non_negative)]
    pub storage_gib_month_usd: f64,
    /// Node count to assume when the input has no Node objects.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub nodes: u64,
    /// Measure ages at this time (RFC 3339), e.g. when the dump was taken.
    #[arg(long, value_name = "TIME")]
    pub now: Option<Timestamp>,
}

fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("expected a non-negative number, got {text:?}")),
    }
}

/// Runs `kpress audit` and returns its exit code.
pub fn run(args: AuditArgs) -> ExitCode {
    if args.prune && !args.from.is_empty() {
        eprintln!("error: --prune needs the live cluster and cannot be used with --from");
        return ExitCode::from(EXIT_USAGE);
    }
    if args.yes && (!args.prune || args.backup_dir.is_none()) {
        eprintln!("error: --yes needs --prune and --backup-dir");
        return ExitCode::from(EXIT_USAGE);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(execute(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

async fn execute(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let options = AuditOptions {
        filters: Filters {
            namespace: args.namespace.clone(),
            exclude_namespaces: args.exclude_namespaces.clone(),
            exclude_labels: args.exclude_labels.clone(),
            include_system_namespaces: args.include_system_namespaces,
            older_than: args.older_than,
        },
        prices: kpress_audit::cost::Prices {
            lb_hourly_usd: args.lb_hourly_usd,
            storage_gib_month_usd: args.storage_gib_month_usd,
        },
        assumed_nodes: args.nodes,
        now: args.now.unwrap_or_else(Timestamp::now),
    };
    let (source, client) = if args.from.is_empty() {
        let client = kpress_audit::connect(args.context.as_deref()).await?;
        let source = Source::Cluster {
            client: client.clone(),
            context: args.context.clone(),
        };
        (source, Some(client))
    } else {
        (Source::Files(args.from.clone()), None)
    };
    let audit = kpress_audit::audit(source, &options).await?;
    let json = args.output == Output::Json;
    if json {
        println!("{}", audit.report.to_json());
    } else {
        print!("{}", kpress_audit::report::render_table(&audit.report));
    }
    // With JSON on stdout, everything about pruning goes to stderr so stdout stays parseable.
    let say = |line: String| {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    if let (true, Some(client)) = (args.prune, client) {
        let targets = prune::plan(&audit);
        match (&args.backup_dir, args.yes) {
            (Some(dir), true) => {
                let outcome = prune::prune(&client, &audit, &targets, dir, options.now).await?;
                report_prune(&outcome, say);
                if !outcome.failed.is_empty() {
                    return Ok(ExitCode::from(EXIT_FAILURE));
                }
            }
            _ => report_plan(&targets, say),
        }
    }
    Ok(
        if args.fail_on_findings && !audit.report.findings.is_empty() {
            ExitCode::from(EXIT_FINDINGS)
        } else {
            ExitCode::SUCCESS
        },
    )
}

fn report_plan(targets: &[Target], say: impl Fn(String)) {
    say(format!(
        "\nPrune plan: {} object(s) would be deleted (dry run, nothing deleted):",
        targets.len()
    ));
    for target in targets {
        say(format!("  would delete {}", target.key));
    }
    say("Run again with --yes --backup-dir DIR to back them up and delete them.".to_owned());
}

fn report_prune(outcome: &PruneOutcome, say: impl Fn(String)) {
    say(format!("\nBackup written to {}", outcome.backup.display()));
    for key in &outcome.deleted {
        say(format!("  deleted {key}"));
    }
    for skipped in &outcome.skipped {
        say(format!("  skipped {}: {}", skipped.key, skipped.reason));
    }
    for failed in &outcome.failed {
        say(format!("  FAILED {}: {}", failed.key, failed.reason));
    }
    say(format!(
        "Pruned {} object(s), skipped {}, failed {}. Restore with: kubectl apply -f {}",
        outcome.deleted.len(),
        outcome.skipped.len(),
        outcome.failed.len(),
        outcome.backup.display()
    ));
}
