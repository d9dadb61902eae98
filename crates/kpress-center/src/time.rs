//! Instants as the store keeps them (milliseconds since the Unix epoch: portable,
//! sortable) and as the API shows them (RFC 3339, milliseconds, UTC).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

pub fn rfc3339(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

/// Milliseconds since the epoch of an RFC 3339 instant.
pub fn parse_ms(text: &str) -> Result<i64, String> {
    let at = humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("`{text}` is not an RFC 3339 instant: {e}"))?;
    let since = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("`{text}` is before 1970"))?;
    i64::try_from(since.as_millis()).map_err(|_| format!("`{text}` is too far in the future"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_at_millisecond_precision() {
        for text in ["2026-01-02T03:04:05.678Z", "1970-01-01T00:00:00.000Z"] {
            let ms = parse_ms(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(rfc3339(ms), text);
        }
        assert_eq!(parse_ms("2026-01-02T03:04:05Z"), Ok(1_767_323_045_000));
        assert!(parse_ms("yesterday").is_err());
        assert!(parse_ms("1969-12-31T23:59:59Z").is_err());
    }
}
