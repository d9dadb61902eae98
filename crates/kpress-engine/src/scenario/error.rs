//! Errors in a scenario file, each pointing at a file, line, column and field path, so
//! a user fixes the file without guessing. Nothing in here ever panics on bad input.

use std::fmt;

/// One problem found in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when the problem can be placed.
    pub line: Option<usize>,
    /// 1-based column, when the problem can be placed.
    pub column: Option<usize>,
    /// Dotted field path, e.g. `scenarios.steady.rate`; empty for the whole document.
    pub path: String,
    pub message: String,
}

/// Everything wrong with one scenario file (at least one problem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl ScenarioError {
    pub fn single(file: &str, problem: Problem) -> Self {
        ScenarioError {
            file: file.to_string(),
            problems: vec![problem],
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file)?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
                if let Some(col) = p.column {
                    write!(f, ":{col}")?;
                }
            }
            if p.path.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": {}: {}", p.path, p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// The closest candidate to a misspelt word, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            let score = if c.to_ascii_lowercase() == lower {
                1.0
            } else {
                strsim::jaro_winkler(&lower, &c.to_ascii_lowercase())
            };
            (score, c)
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Rewrites serde's "unknown field `x`, expected one of `a`, `b`" (and "unknown variant")
/// into a message with a "did you mean" hint. Other messages pass through unchanged.
pub fn with_hint(message: &str) -> String {
    let kind = if message.starts_with("unknown field") {
        "field"
    } else if message.starts_with("unknown variant") {
        "value"
    } else {
        return message.to_string();
    };
    let words: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let Some((unknown, expected)) = words.split_first() else {
        return message.to_string();
    };
    let mut out = format!("unknown {kind} `{unknown}`");
    if let Some(hint) = did_you_mean(unknown, expected.iter().copied()) {
        out.push_str(&format!(", did you mean `{hint}`?"));
    }
    if !expected.is_empty() {
        out.push_str(&format!(" (expected one of: {})", expected.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_the_closest_field() {
        let msg = "unknown field `rat`, expected one of `rate`, `startRate`, `duration`";
        assert_eq!(
            with_hint(msg),
            "unknown field `rat`, did you mean `rate`? (expected one of: rate, startRate, duration)"
        );
        assert_eq!(did_you_mean("MAXVUS", ["maxVUs", "vus"]), Some("maxVUs"));
        assert_eq!(did_you_mean("zzz", ["maxVUs", "vus"]), None);
        assert_eq!(with_hint("invalid type: string"), "invalid type: string");
    }

    #[test]
    fn displays_file_line_column_and_path() {
        let e = ScenarioError::single(
            "t.yaml",
            Problem {
                line: Some(3),
                column: Some(5),
                path: "scenarios.a.rate".into(),
                message: "must be greater than 0".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "t.yaml:3:5: scenarios.a.rate: must be greater than 0"
        );
    }
}
