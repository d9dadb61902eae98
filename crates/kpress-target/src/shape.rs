//! What a request asks of its response: the `delay`, `status`, `size` and `close` query
//! parameters and their `x-kpress-*` headers, and the `for` of a stall.
//!
//! Parsing is kept apart from serving so that every accepted and refused spelling can be
//! checked in a table without a network, and so that serving can tell in one cheap pass that
//! a request asks for nothing and take the fast path.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use http::{HeaderMap, StatusCode};

/// The longest delay or stall, so that a slip such as `delay=100h` cannot pin a connection
/// for days.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(3600);

const HEADER_PREFIX: &str = "x-kpress-";

/// A parameter value that cannot be honoured; its text is the 400's one-line body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParamError(String);

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The shaping a request asked for; only what it named is set.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Shape {
    pub(crate) delay: Option<Delay>,
    pub(crate) status: Option<Status>,
    pub(crate) size: Option<u64>,
    pub(crate) close: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delay {
    Fixed(Duration),
    /// Drawn uniformly between the two bounds, both included.
    Uniform(Duration, Duration),
}

impl Delay {
    pub(crate) fn pick(self) -> Duration {
        match self {
            Delay::Fixed(delay) => delay,
            Delay::Uniform(low, high) => {
                // Both bounds are at most MAX_DURATION, so their nanoseconds fit in a u64.
                let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(fastrand::u64(nanos(low)..=nanos(high)))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Status {
    Fixed(StatusCode),
    /// Codes with their chance in percent; whatever the weights leave goes to 200.
    Weighted(Vec<(StatusCode, f64)>),
}

impl Status {
    pub(crate) fn pick(&self) -> StatusCode {
        match self {
            Status::Fixed(code) => *code,
            Status::Weighted(weights) => {
                let mut roll = fastrand::f64() * 100.0;
                for &(code, weight) in weights {
                    if roll < weight {
                        return code;
                    }
                    roll -= weight;
                }
                StatusCode::OK
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    Delay,
    Status,
    Size,
    Close,
}

impl Param {
    fn from_name(name: &str) -> Option<Param> {
        match name {
            "delay" => Some(Param::Delay),
            "status" => Some(Param::Status),
            "size" => Some(Param::Size),
            "close" => Some(Param::Close),
            _ => None,
        }
    }
}

/// Reads the shaping a request asks for, headers first so that the query overrides them.
/// `Ok(None)` means it asks for nothing: the fast path.
pub(crate) fn parse(query: Option<&str>, headers: &HeaderMap) -> Result<Option<Shape>, ParamError> {
    let mut shape: Option<Shape> = None;
    for (name, value) in headers {
        let Some(param) = name
            .as_str()
            .strip_prefix(HEADER_PREFIX)
            .and_then(Param::from_name)
        else {
            continue;
        };
        let value = value
            .to_str()
            .map_err(|_| ParamError(format!("bad {name} header: not printable ASCII")))?;
        shape.get_or_insert_with(Shape::default).set(param, value)?;
    }
    for (name, value) in query.into_iter().flat_map(pairs) {
        let Some(param) = Param::from_name(name) else {
            continue;
        };
        let value = decode(value)
            .ok_or_else(|| ParamError(format!("bad {name} {value:?}: invalid %-encoding")))?;
        shape
            .get_or_insert_with(Shape::default)
            .set(param, &value)?;
    }
    Ok(shape)
}

/// Reads the `for` of `POST /__kpress/stall?for=1s`.
pub(crate) fn parse_stall(query: Option<&str>) -> Result<Duration, ParamError> {
    let missing = || ParamError("missing for: try /__kpress/stall?for=1s".to_owned());
    let (_, value) = query
        .into_iter()
        .flat_map(pairs)
        .filter(|&(name, _)| name == "for")
        .last()
        .ok_or_else(missing)?;
    let value = decode(value)
        .ok_or_else(|| ParamError(format!("bad for {value:?}: invalid %-encoding")))?;
    duration(&value).map_err(|why| ParamError(format!("bad for {value:?}: {why}")))
}

impl Shape {
    fn set(&mut self, param: Param, value: &str) -> Result<(), ParamError> {
        match param {
            Param::Delay => self.delay = Some(parse_delay(value)?),
            Param::Status => self.status = Some(parse_status(value)?),
            Param::Size => self.size = Some(parse_size(value)?),
            Param::Close => self.close = parse_close(value)?,
        }
        Ok(())
    }
}

fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

fn parse_delay(value: &str) -> Result<Delay, ParamError> {
    let bad = |why: &str| ParamError(format!("bad delay {value:?}: {why}"));
    match value.split_once('-') {
        None => duration(value).map(Delay::Fixed).map_err(bad),
        Some((low, high)) => {
            let low = duration(low).map_err(bad)?;
            let high = duration(high).map_err(bad)?;
            if low > high {
                return Err(bad("the range starts above its end"));
            }
            Ok(Delay::Uniform(low, high))
        }
    }
}

fn duration(value: &str) -> Result<Duration, &'static str> {
    let value = value.trim();
    let duration = if value == "0" {
        Duration::ZERO
    } else {
        humantime::parse_duration(value).map_err(|_| {
            "expected a duration such as 250us, 10ms, 1.5s or 1m30s, or a range such as 10ms-50ms"
        })?
    };
    if duration > MAX_DURATION {
        return Err("longer than the 1h maximum");
    }
    Ok(duration)
}

fn parse_status(value: &str) -> Result<Status, ParamError> {
    let bad = |why: &str| ParamError(format!("bad status {value:?}: {why}"));
    let expected =
        "expected a code from 200 to 599, or codes with percentages such as 200:90,503:10";
    if !value.contains([':', ',']) {
        return status_code(value)
            .map(Status::Fixed)
            .ok_or_else(|| bad(expected));
    }
    let mut weights = Vec::new();
    let mut total = 0.0;
    for entry in value.split(',') {
        let (code, weight) = entry.split_once(':').ok_or_else(|| bad(expected))?;
        let code = status_code(code).ok_or_else(|| bad(expected))?;
        let weight = weight
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|weight| (0.0..=100.0).contains(weight))
            .ok_or_else(|| bad(expected))?;
        total += weight;
        weights.push((code, weight));
    }
    // Rounding in decimal weights such as 33.3 must not turn a sum of 100 into a refusal.
    if total > 100.0 + 1e-9 {
        return Err(bad("the percentages add up to more than 100"));
    }
    Ok(Status::Weighted(weights))
}

/// A status code a response can carry with or without a body; 1xx codes are not final
/// answers, so they are refused.
fn status_code(value: &str) -> Option<StatusCode> {
    let code = value.trim().parse::<u16>().ok()?;
    if !(200..=599).contains(&code) {
        return None;
    }
    StatusCode::from_u16(code).ok()
}

fn parse_size(value: &str) -> Result<u64, ParamError> {
    value.trim().parse().map_err(|_| {
        ParamError(format!(
            "bad size {value:?}: expected a number of bytes such as 1024"
        ))
    })
}

fn parse_close(value: &str) -> Result<bool, ParamError> {
    match value.trim() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(ParamError(format!("bad close {value:?}: expected 1 or 0"))),
    }
}

/// Undoes form %-encoding (`+` is a space), borrowing when there is nothing to undo.
/// `None` for a broken escape or bytes that are not UTF-8.
fn decode(value: &str) -> Option<Cow<'_, str>> {
    if !value.contains(['%', '+']) {
        return Some(Cow::Borrowed(value));
    }
    let hex = |byte: u8| char::from(byte).to_digit(16);
    let mut bytes = value.bytes();
    let mut decoded = Vec::with_capacity(value.len());
    while let Some(byte) = bytes.next() {
        decoded.push(match byte {
            b'+' => b' ',
            b'%' => {
                let high = hex(bytes.next()?)?;
                let low = hex(bytes.next()?)?;
                u8::try_from(high * 16 + low).ok()?
            }
            byte => byte,
        });
    }
    String::from_utf8(decoded).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn code(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap()
    }

    #[test]
    fn delays() {
        let cases: &[(&str, Option<Delay>)] = &[
            ("100ms", Some(Delay::Fixed(ms(100)))),
            ("250us", Some(Delay::Fixed(Duration::from_micros(250)))),
            ("250µs", Some(Delay::Fixed(Duration::from_micros(250)))),
            ("1.5s", Some(Delay::Fixed(ms(1500)))),
            ("1m30s", Some(Delay::Fixed(ms(90_000)))),
            ("0", Some(Delay::Fixed(Duration::ZERO))),
            ("0s", Some(Delay::Fixed(Duration::ZERO))),
            ("1h", Some(Delay::Fixed(MAX_DURATION))),
            (" 5ms ", Some(Delay::Fixed(ms(5)))),
            ("10ms-50ms", Some(Delay::Uniform(ms(10), ms(50)))),
            ("10ms - 50ms", Some(Delay::Uniform(ms(10), ms(50)))),
            ("5ms-5ms", Some(Delay::Uniform(ms(5), ms(5)))),
            ("", None),
            ("abc", None),
            ("100", None),
            ("-5ms", None),
            ("50ms-10ms", None),
            ("10ms-", None),
            ("10ms-20ms-30ms", None),
            ("1h1s", None),
            ("99999999999999999999s", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_delay(value).ok(), *expected, "delay={value}");
        }
    }

    #[test]
    fn delay_picks_stay_in_range() {
        let delay = Delay::Uniform(ms(10), ms(12));
        for _ in 0..1000 {
            let picked = delay.pick();
            assert!((ms(10)..=ms(12)).contains(&picked), "{picked:?}");
        }
        assert_eq!(Delay::Fixed(ms(7)).pick(), ms(7));
    }

    #[test]
    fn statuses() {
        let cases: &[(&str, Option<Status>)] = &[
            ("503", Some(Status::Fixed(code(503)))),
            ("200", Some(Status::Fixed(code(200)))),
            ("599", Some(Status::Fixed(code(599)))),
            (
                "200:90,503:10",
                Some(Status::Weighted(vec![(code(200), 90.0), (code(503), 10.0)])),
            ),
            ("503:10", Some(Status::Weighted(vec![(code(503), 10.0)]))),
            (
                "500:33.3,502:33.3,503:33.4",
                Some(Status::Weighted(vec![
                    (code(500), 33.3),
                    (code(502), 33.3),
                    (code(503), 33.4),
                ])),
            ),
            ("", None),
            ("abc", None),
            ("99", None),
            ("101", None),
            ("600", None),
            ("70000", None),
            ("200,503", None),
            ("200:90,503", None),
            ("200:60,503:60", None),
            ("503:-1", None),
            ("503:101", None),
            ("503:NaN", None),
            ("503:inf", None),
            ("503:", None),
            (":10", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_status(value).ok(), *expected, "status={value}");
        }
    }

    #[test]
    fn weighted_status_picks_follow_weights() {
        let always = Status::Weighted(vec![(code(503), 100.0)]);
        let never = Status::Weighted(vec![(code(503), 0.0)]);
        let mut half = 0;
        let halves = Status::Weighted(vec![(code(503), 50.0)]);
        for _ in 0..2000 {
            assert_eq!(always.pick(), code(503));
            assert_eq!(never.pick(), code(200));
            if halves.pick() == code(503) {
                half += 1;
            }
        }
        // 2000 fair draws land this far from 1000 with a chance below one in a billion.
        assert!((800..=1200).contains(&half), "{half}");
    }

    #[test]
    fn sizes() {
        let cases: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("1024", Some(1024)),
            ("18446744073709551615", Some(u64::MAX)),
            ("", None),
            ("-1", None),
            ("1k", None),
            ("1.5", None),
            ("18446744073709551616", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_size(value).ok(), *expected, "size={value}");
        }
    }

    #[test]
    fn closes() {
        let cases: &[(&str, Option<bool>)] = &[
            ("1", Some(true)),
            ("true", Some(true)),
            ("0", Some(false)),
            ("false", Some(false)),
            ("", None),
            ("yes", None),
            ("2", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_close(value).ok(), *expected, "close={value}");
        }
    }

    #[test]
    fn decoding() {
        let cases: &[(&str, Option<&str>)] = &[
            ("200:90,503:10", Some("200:90,503:10")),
            ("200%3A90%2C503%3a10", Some("200:90,503:10")),
            ("10ms+-+50ms", Some("10ms - 50ms")),
            ("%C2%B5s", Some("µs")),
            ("%", None),
            ("%4", None),
            ("%zz", None),
            ("%+1", None),
            ("%FF", None),
        ];
        for (value, expected) in cases {
            assert_eq!(decode(value).as_deref(), *expected, "{value}");
        }
    }

    #[test]
    fn requests() {
        let none = HeaderMap::new();
        let mut headers = HeaderMap::new();
        headers.insert("x-kpress-status", HeaderValue::from_static("503"));
        headers.insert("x-kpress-delay", HeaderValue::from_static("5ms"));
        headers.insert("x-kpress-unknown", HeaderValue::from_static("whatever"));
        headers.insert("x-other", HeaderValue::from_static("1"));

        assert_eq!(parse(None, &none), Ok(None));
        assert_eq!(parse(Some("a=1&b&delay_x=5"), &none), Ok(None));
        assert_eq!(
            parse(Some("size=10&close=1&x=y"), &none),
            Ok(Some(Shape {
                size: Some(10),
                close: true,
                ..Shape::default()
            }))
        );
        assert_eq!(
            parse(None, &headers),
            Ok(Some(Shape {
                delay: Some(Delay::Fixed(ms(5))),
                status: Some(Status::Fixed(code(503))),
                ..Shape::default()
            }))
        );
        assert_eq!(
            parse(Some("status=404&status=418"), &headers),
            Ok(Some(Shape {
                delay: Some(Delay::Fixed(ms(5))),
                status: Some(Status::Fixed(code(418))),
                ..Shape::default()
            }))
        );
    }

    #[test]
    fn refusals_are_one_line_and_name_the_parameter() {
        let mut bad_header = HeaderMap::new();
        bad_header.insert("x-kpress-size", HeaderValue::from_bytes(b"\xff").unwrap());
        let cases: &[(Option<&str>, &HeaderMap, &str)] = &[
            (Some("delay=abc"), &HeaderMap::new(), "delay"),
            (Some("delay=%0Aabc"), &HeaderMap::new(), "delay"),
            (
                Some("status=200:60,503:60"),
                &HeaderMap::new(),
                "more than 100",
            ),
            (Some("size=%zz"), &HeaderMap::new(), "size"),
            (Some("close=maybe"), &HeaderMap::new(), "close"),
            (None, &bad_header, "x-kpress-size"),
        ];
        for (query, headers, mention) in cases {
            let error = parse(*query, headers).unwrap_err().to_string();
            assert!(error.contains(mention), "{query:?}: {error}");
            assert!(!error.contains('\n'), "{query:?}: {error}");
        }
    }

    #[test]
    fn stalls() {
        let cases: &[(Option<&str>, Option<Duration>)] = &[
            (Some("for=1s"), Some(ms(1000))),
            (Some("x=1&for=500ms"), Some(ms(500))),
            (Some("for=1s&for=2s"), Some(ms(2000))),
            (None, None),
            (Some(""), None),
            (Some("for="), None),
            (Some("for=soon"), None),
            (Some("for=2h"), None),
        ];
        for (query, expected) in cases {
            assert_eq!(parse_stall(*query).ok(), *expected, "{query:?}");
        }
    }
}
