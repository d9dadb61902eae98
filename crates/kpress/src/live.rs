//! The live view while a test runs: a single updating line on a terminal (indicatif),
//! a plain line every few seconds otherwise (CI logs, pod logs), or one JSON timeline
//! point per second for a parent process to merge.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use kpress_engine::metrics::{histogram, Metrics};
use kpress_engine::summary::TimelinePoint;

use crate::cli::ProgressMode;

const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct Live {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    planned: Duration,
    last_plain: Option<Instant>,
}

impl Live {
    pub fn new(mode: ProgressMode, planned: Duration) -> Live {
        let tty = std::io::stderr().is_terminal();
        let bar = (mode == ProgressMode::Auto && tty).then(|| {
            let bar = ProgressBar::new(planned.as_secs().max(1));
            let style = ProgressStyle::with_template("{spinner} [{bar:24}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let mode = if mode == ProgressMode::Auto && !tty {
            ProgressMode::Plain
        } else {
            mode
        };
        Live {
            mode,
            bar,
            planned,
            last_plain: None,
        }
    }

    /// Shows one completed second.
    pub fn second(&mut self, second: u64, interval: &Metrics, total: &Metrics, elapsed: Duration) {
        match self.mode {
            ProgressMode::Jsonl => {
                if let Ok(line) = serde_json::to_string(&TimelinePoint::new(second, interval)) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }
            ProgressMode::None => {}
            _ => {
                let line = self.line(interval, total, elapsed);
                if let Some(bar) = &self.bar {
                    bar.set_position(elapsed.as_secs());
                    bar.set_message(line);
                } else if self.last_plain.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
                    self.last_plain = Some(Instant::now());
                    eprintln!("{line}");
                }
            }
        }
    }

    fn line(&self, interval: &Metrics, total: &Metrics, elapsed: Duration) -> String {
        let errors_pct = if total.requests == 0 {
            0.0
        } else {
            total.failed as f64 * 100.0 / total.requests as f64
        };
        format!(
            "{} / {}  {} req/s  p99 {:.2}ms  VUs {}/{}  reqs {}  errors {} ({errors_pct:.2}%)  dropped {}",
            clock(elapsed),
            clock(self.planned),
            interval.requests,
            histogram::percentile_ms(&interval.duration, 99.0),
            interval.vus.value,
            interval.vus_max.value,
            total.requests,
            total.failed,
            total.dropped_iterations,
        )
    }

    /// A line about the run itself (runner states, the start instant), above the live line.
    pub fn note(&self, text: &str) {
        match (&self.bar, self.mode) {
            (_, ProgressMode::Jsonl | ProgressMode::None) => {}
            (Some(bar), _) => bar.println(text),
            (None, _) => eprintln!("{text}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}", s / 60, s % 60)
}
