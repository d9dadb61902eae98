//! `kpress merge`: adds runner summaries exactly (histograms, never percentiles) and
//! judges the thresholds on the merged data.

use std::process::ExitCode;

use kpress_engine::summary::{self, Summary};

use crate::cli::{MergeArgs, ProgressMode};
use crate::exit::{fail, USAGE};

pub fn run(args: MergeArgs) -> ExitCode {
    let mut parts = Vec::new();
    for path in &args.summaries {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return fail(USAGE, format!("{}: cannot read: {e}", path.display())),
        };
        match serde_json::from_str::<Summary>(&text) {
            Ok(s) => parts.push(s),
            Err(e) => {
                return fail(
                    USAGE,
                    format!(
                        "{}:{}:{}: not a kpress summary: {e}",
                        path.display(),
                        e.line(),
                        e.column()
                    ),
                )
            }
        }
    }
    match summary::merge(&parts, args.runners) {
        Ok(merged) => super::run::finish(&merged, args.summary_out.as_deref(), ProgressMode::Auto),
        Err(e) => fail(USAGE, e),
    }
}
