//! Durations as scenario files write them (`30s`, `1m30s`, `250ms`, `1.5h`), the syntax
//! k6 inherited from Go's `time.ParseDuration`, so k6 scenarios port unchanged.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// Parses a Go-style duration. A bare `0` is allowed; any other number needs a unit,
/// because a unitless `30` is ambiguous (k6 itself reads it as milliseconds in some
/// places and seconds in others).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(format!("negative duration `{s}`"));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!(
                "invalid duration `{s}`: expected a number at `{rest}`"
            ));
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid duration `{s}`: bad number `{}`", &rest[..num_len]))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "" => {
                return Err(format!(
                    "invalid duration `{s}`: missing unit (ms, s, m, h)"
                ))
            }
            other => {
                return Err(format!(
                    "invalid duration `{s}`: unknown unit `{other}` (use ns, us, ms, s, m, h, d)"
                ))
            }
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > 1e9 {
        return Err(format!("duration `{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Formats a duration the way it is written in scenario files (`1m30s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return if d.is_zero() {
            "0s".into()
        } else {
            format!("{}us", d.as_micros())
        };
    }
    if !ms.is_multiple_of(1000) {
        return if ms < 1000 {
            format!("{ms}ms")
        } else {
            format!("{:.3}s", d.as_secs_f64())
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// `deserialize_with` adapter so a bad duration fails at its own line and column.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct DurationVisitor;
    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration such as `30s`, `1m30s` or `250ms`")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_duration(v).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            if v == 0 {
                Ok(Duration::ZERO)
            } else {
                Err(E::custom(format!(
                    "`{v}` has no unit: write `{v}s` or `{v}ms`"
                )))
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "`{v}` is not a duration: write e.g. `30s`"
            )))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "`{v}` has no unit: write `{v}s` or `{v}ms`"
            )))
        }
    }
    d.deserialize_any(DurationVisitor)
}

/// The `Option` flavour of [`deserialize`], for optional fields.
pub fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let cases: &[(&str, f64)] = &[
            ("0", 0.0),
            ("30s", 30.0),
            ("1m30s", 90.0),
            ("250ms", 0.25),
            ("1.5h", 5400.0),
            ("100us", 0.0001),
            ("2h45m", 9900.0),
            (" 5s ", 5.0),
        ];
        for (text, secs) in cases {
            let d = parse_duration(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!((d.as_secs_f64() - secs).abs() < 1e-9, "{text} -> {d:?}");
        }
    }

    #[test]
    fn rejects_bad_durations() {
        for text in ["", "30", "-1s", "1x", "s", "1.2.3s", "ms5", "99999999999h"] {
            assert!(parse_duration(text).is_err(), "{text} should fail");
        }
    }

    #[test]
    fn formats_round_trip() {
        for text in ["30s", "1m30s", "250ms", "1h", "2h0m5s"] {
            let d = parse_duration(text).unwrap_or_default();
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }
}
