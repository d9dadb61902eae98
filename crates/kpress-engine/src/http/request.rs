//! A request of the scenario, resolved once before the run: absolute origin, path,
//! headers, body, and the exact HTTP/1.1 bytes every connection of a thread writes,
//! so the hot path allocates nothing per request (wrk's trick).

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Uri};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

/// Where connections go: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The `Host` header value: the port is omitted when it is the scheme's default.
    pub fn authority(&self) -> String {
        let default = match self.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}", self.authority())
    }
}

/// Which HTTP version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    /// HTTP/1.1 over plain TCP; over TLS, whatever ALPN picks (h2 preferred).
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only: h2c with prior knowledge over TCP, h2 via ALPN over TLS.
    Http2,
}

/// One request, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec {
    pub method: Method,
    pub origin: Origin,
    /// Path and query, as sent on the request line.
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    pub timeout: Duration,
    /// Statuses counted as success; `None` means k6's default (200–399).
    pub expect: Option<Vec<u16>>,
}

impl RequestSpec {
    /// Resolves `url` against `base` (`defaults.baseUrl`): absolute URLs stand alone.
    pub fn resolve_url(url: &str, base: Option<&str>) -> Result<(Origin, String), String> {
        let full = if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else {
            let base = base.ok_or_else(|| {
                format!("`{url}` is relative but `defaults.baseUrl` is not set: give an absolute URL or a baseUrl")
            })?;
            let base = base.trim_end_matches('/');
            if url.starts_with('/') {
                format!("{base}{url}")
            } else {
                format!("{base}/{url}")
            }
        };
        parse_absolute(&full)
    }

    /// Whether `status` counts as a success.
    #[inline]
    pub fn status_ok(&self, status: u16) -> bool {
        match &self.expect {
            Some(list) => list.contains(&status),
            None => (200..400).contains(&status),
        }
    }

    /// The complete HTTP/1.1 request, written as-is on every send.
    pub fn http1_bytes(&self, close: bool) -> Bytes {
        let mut out = Vec::with_capacity(128 + self.body.len());
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        out.extend_from_slice(self.origin.authority().as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !self.body.is_empty()
            || matches!(self.method, Method::POST | Method::PUT | Method::PATCH)
        {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        if close {
            out.extend_from_slice(b"connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        Bytes::from(out)
    }
}

fn parse_absolute(full: &str) -> Result<(Origin, String), String> {
    let uri: Uri = full
        .parse()
        .map_err(|e| format!("`{full}` is not a valid URL: {e}"))?;
    let scheme = match uri.scheme_str() {
        Some("http") => Scheme::Http,
        Some("https") => Scheme::Https,
        _ => {
            return Err(format!(
                "`{full}`: only http:// and https:// URLs are supported"
            ))
        }
    };
    let authority = uri
        .authority()
        .ok_or_else(|| format!("`{full}` has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!(
            "`{full}`: credentials in URLs are not supported; set an authorization header"
        ));
    }
    let host = authority
        .host()
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    if host.is_empty() {
        return Err(format!("`{full}` has no host"));
    }
    let port = authority.port_u16().unwrap_or(match scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    });
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let path = if path.is_empty() { "/".into() } else { path };
    Ok((Origin { scheme, host, port }, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_and_absolute_urls() {
        let base = Some("http://127.0.0.1:8080/api/");
        let (o, p) = RequestSpec::resolve_url("/cart?x=1", base).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (o.host.as_str(), o.port, p.as_str()),
            ("127.0.0.1", 8080, "/api/cart?x=1")
        );
        let (o, p) =
            RequestSpec::resolve_url("https://[::1]/", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (o.scheme, o.host.as_str(), o.port, p.as_str()),
            (Scheme::Https, "::1", 443, "/")
        );
        assert_eq!(o.authority(), "[::1]");
        assert!(RequestSpec::resolve_url("/x", None)
            .unwrap_err()
            .contains("baseUrl"));
        assert!(RequestSpec::resolve_url("ftp://a/", None).is_err());
        assert!(RequestSpec::resolve_url("http://u:p@a/", None).is_err());
        assert!(RequestSpec::resolve_url("http:// bad", None).is_err());
    }

    #[test]
    fn builds_http1_bytes() {
        let (origin, path) = RequestSpec::resolve_url("http://localhost:9000/a", None)
            .unwrap_or_else(|e| panic!("{e}"));
        let req = RequestSpec {
            method: Method::POST,
            origin,
            path,
            headers: vec![(
                HeaderName::from_static("x-a"),
                HeaderValue::from_static("1"),
            )],
            body: Bytes::from_static(b"{}"),
            timeout: Duration::from_secs(1),
            expect: Some(vec![201]),
        };
        assert_eq!(
            &req.http1_bytes(false)[..],
            b"POST /a HTTP/1.1\r\nhost: localhost:9000\r\nx-a: 1\r\ncontent-length: 2\r\n\r\n{}"
        );
        assert!(req.status_ok(201) && !req.status_ok(200));
    }
}
