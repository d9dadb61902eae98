//! Finds where a field path sits in a YAML text, for errors found after parsing (a rate
//! of 0, a stage list that cannot run) which serde cannot place itself. Block-style keys
//! are found exactly; inside flow mappings the nearest enclosing key is returned.

/// 1-based (line, column) of the deepest key of `path` that can be found.
pub fn locate(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    // Stack of (indent, key) for the block mappings enclosing the current line.
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut best: Option<(usize, (usize, usize))> = None;
    for (index, raw) in text.lines().enumerate() {
        let content = strip_comment(raw);
        let trimmed = content.trim_start();
        if trimmed.is_empty() || trimmed.starts_with("---") {
            continue;
        }
        let mut indent = content.len() - trimmed.len();
        let mut rest = trimmed;
        // A sequence item: its key (if any) is indented past the dash; items are
        // addressed by index in `path`, which this locator treats as the parent key.
        while let Some(after) = rest.strip_prefix("- ") {
            indent += 2 + (after.len() - after.trim_start().len());
            rest = after.trim_start();
        }
        let Some(key) = key_of(rest) else { continue };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        let depth = matching_depth(&stack, path);
        if depth > 0 && depth == stack.len() && best.is_none_or(|(d, _)| depth > d) {
            best = Some((depth, (index + 1, indent + 1)));
            if depth == path.len() {
                break;
            }
        }
    }
    best.map(|(_, at)| at)
}

fn strip_comment(line: &str) -> &str {
    let mut in_single = false;
    let mut in_double = false;
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !in_double => in_single = !in_single,
            '"' if !in_single => in_double = !in_double,
            '#' if !in_single && !in_double && (i == 0 || line[..i].ends_with(' ')) => {
                return &line[..i]
            }
            _ => {}
        }
    }
    line
}

fn key_of(rest: &str) -> Option<String> {
    let colon = rest
        .find(": ")
        .or_else(|| rest.strip_suffix(':').map(|k| k.len()))?;
    let key = rest[..colon].trim().trim_matches(|c| c == '"' || c == '\'');
    if key.is_empty() || key.starts_with('{') || key.starts_with('[') {
        return None;
    }
    Some(key.to_string())
}

/// How many leading entries of `path` the stack's keys match, skipping numeric path
/// segments (sequence indices), which have no key of their own.
fn matching_depth(stack: &[(usize, String)], path: &[&str]) -> usize {
    let keys: Vec<&str> = path
        .iter()
        .copied()
        .filter(|p| p.parse::<usize>().is_err())
        .collect();
    let mut depth = 0;
    for ((_, key), want) in stack.iter().zip(keys.iter()) {
        if key != want {
            return 0;
        }
        depth += 1;
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name: t   # the test\nscenarios:\n  steady:\n    executor: constant-vus\n    vus: 0\n  other:\n    stages:\n      - duration: 1s\n        target: 5\nthresholds: { http_reqs: ['count>1'] }\n";

    #[test]
    fn finds_block_keys() {
        assert_eq!(locate(DOC, &["name"]), Some((1, 1)));
        assert_eq!(locate(DOC, &["scenarios", "steady", "vus"]), Some((5, 5)));
        assert_eq!(
            locate(DOC, &["scenarios", "other", "stages", "0", "target"]),
            Some((9, 9))
        );
    }

    #[test]
    fn falls_back_to_the_enclosing_key() {
        assert_eq!(locate(DOC, &["thresholds", "http_reqs"]), Some((10, 1)));
        assert_eq!(locate(DOC, &["scenarios", "steady", "rate"]), Some((3, 3)));
        assert_eq!(locate(DOC, &["nothing"]), None);
    }
}
