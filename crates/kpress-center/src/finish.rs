//! The verdict of a finished run: its runners' summaries merged exactly by the engine
//! (counts and histograms added, thresholds judged again on the merged data, missing
//! runners marking the merge partial), and the run status that follows from it.

use kpress_engine::summary::{self, Status, Summary};
use kpress_report::wire::RunStatus;

/// What finishing a run concluded.
#[derive(Debug, Clone)]
pub struct Conclusion {
    pub status: RunStatus,
    /// The merged summary; none when no runner delivered one.
    pub summary: Option<Summary>,
    /// Why the merge failed, for the log (the run is then `failed`).
    pub problem: Option<String>,
}

/// Merges `parts`, the summaries of the runners that completed, out of `runners`.
pub fn conclude(runners: u64, parts: &[Summary]) -> Conclusion {
    if parts.is_empty() {
        return Conclusion {
            status: RunStatus::Failed,
            summary: None,
            problem: None,
        };
    }
    match summary::merge(parts, Some(runners)) {
        Ok(merged) => Conclusion {
            status: status_of(merged.status),
            summary: Some(merged),
            problem: None,
        },
        Err(e) => Conclusion {
            status: RunStatus::Failed,
            summary: None,
            problem: Some(format!("the runners' summaries do not merge: {e}")),
        },
    }
}

/// The run status of a merged summary's status.
pub fn status_of(status: Status) -> RunStatus {
    match status {
        // A merge judges thresholds, so `completed` (a runner's unjudged share) only
        // reaches here from a summary that had none to judge.
        Status::Passed | Status::Completed => RunStatus::Passed,
        Status::ThresholdsFailed => RunStatus::ThresholdsFailed,
        Status::Interrupted => RunStatus::Interrupted,
        Status::Aborted => RunStatus::Aborted,
        Status::Partial => RunStatus::Partial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_summary_status_maps_to_a_run_status() {
        for (given, want) in [
            (Status::Passed, RunStatus::Passed),
            (Status::Completed, RunStatus::Passed),
            (Status::ThresholdsFailed, RunStatus::ThresholdsFailed),
            (Status::Interrupted, RunStatus::Interrupted),
            (Status::Aborted, RunStatus::Aborted),
            (Status::Partial, RunStatus::Partial),
        ] {
            assert_eq!(status_of(given), want, "{given:?}");
        }
    }

    #[test]
    fn no_summary_at_all_is_a_failed_run() {
        let c = conclude(3, &[]);
        assert_eq!(c.status, RunStatus::Failed);
        assert!(c.summary.is_none());
    }
}
