//! The human-readable report: findings grouped by namespace and category in aligned columns,
//! then totals, then the assumptions next to the figures they explain.

use std::fmt::Write;

use super::Report;

const HEADERS: [&str; 6] = ["CATEGORY", "OBJECT", "AGE", "USD/MONTH", "PRUNE", "REASON"];

/// Renders the report as text.
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    let rows: Vec<(String, [String; 6])> = report
        .findings
        .iter()
        .map(|f| {
            let cost = if f.cost.monthly_usd > 0.0 {
                format!("{:.2}", f.cost.monthly_usd)
            } else {
                "-".to_owned()
            };
            let prune = if f.prunable { "yes" } else { "no" };
            let mut reason = f.reason.clone();
            if let Some(keep) = &f.keep_reason {
                reason.push_str(&format!(" [not pruned: {keep}]"));
            }
            (
                f.namespace
                    .clone()
                    .unwrap_or_else(|| "(cluster-scoped)".to_owned()),
                [
                    f.category.as_str().to_owned(),
                    format!("{}/{}", f.kind, f.name),
                    f.age.clone().unwrap_or_else(|| "?".to_owned()),
                    cost,
                    prune.to_owned(),
                    reason,
                ],
            )
        })
        .collect();
    if rows.is_empty() {
        out.push_str("No leftovers found.\n");
    } else {
        let mut widths = HEADERS.map(str::len);
        for (_, cells) in &rows {
            for (w, cell) in widths.iter_mut().zip(cells) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: [&str; 6]| -> String {
            let mut text = String::from("  ");
            for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
                if i + 1 == cells.len() {
                    text.push_str(cell);
                } else {
                    let _ = write!(text, "{cell:<width$}  ");
                }
            }
            text.trim_end().to_owned() + "\n"
        };
        let mut namespace: Option<&str> = None;
        let mut category: Option<&str> = None;
        for (ns, cells) in &rows {
            if namespace != Some(ns.as_str()) {
                let _ = writeln!(out, "\nNAMESPACE {ns}");
                out.push_str(&line(HEADERS));
                namespace = Some(ns);
                category = None;
            }
            let shown = if category == Some(cells[0].as_str()) {
                ""
            } else {
                cells[0].as_str()
            };
            category = Some(&cells[0]);
            out.push_str(&line([
                shown, &cells[1], &cells[2], &cells[3], &cells[4], &cells[5],
            ]));
        }
    }
    let t = &report.totals;
    let _ = writeln!(
        out,
        "\nTOTAL {} finding(s), {} prunable: {:.2} USD/month ({} load balancer(s), {:.2} GiB storage), {} kube-proxy rule(s), {} DNS record(s)",
        t.findings, t.prunable, t.monthly_usd, t.load_balancers, t.storage_gib, t.kube_proxy_rules, t.dns_records
    );
    for (category, count) in &t.by_category {
        let _ = writeln!(out, "  {:<34} {count}", category.as_str());
    }
    out.push_str("\nAssumptions:\n");
    for note in &report.assumptions.notes {
        let _ = writeln!(out, "  - {note}");
    }
    if !report.skipped_rules.is_empty() {
        out.push_str("\nRules skipped:\n");
        for skipped in &report.skipped_rules {
            let _ = writeln!(out, "  - {}: {}", skipped.category.as_str(), skipped.reason);
        }
    }
    if !report.notes.is_empty() {
        out.push_str("\nNotes:\n");
        for note in &report.notes {
            let _ = writeln!(out, "  - {note}");
        }
    }
    out
}
