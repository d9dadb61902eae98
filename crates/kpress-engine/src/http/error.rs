//! Why a request failed, in classes a user can act on: the error table of the summary
//! groups by these, so "connect refused" and "status 503" are never lumped together.

use std::fmt;
use std::io;

/// The class of one failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// Name resolution failed.
    Dns,
    ConnectRefused,
    ConnectTimeout,
    /// Any other failure to open a connection (unreachable network, no route...).
    Connect,
    /// The TLS handshake or record layer failed.
    Tls,
    /// The peer reset the connection.
    Reset,
    /// The connection closed before a complete response arrived.
    Closed,
    /// No complete response within the request timeout.
    Timeout,
    /// The response was not valid HTTP.
    Protocol,
    /// The response status was an error (>= 400) or not the expected one.
    Status(u16),
}

impl ErrorClass {
    /// Classifies an I/O error raised while connecting.
    pub fn from_connect(e: &io::Error) -> ErrorClass {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => ErrorClass::ConnectRefused,
            io::ErrorKind::TimedOut => ErrorClass::ConnectTimeout,
            _ => ErrorClass::Connect,
        }
    }

    /// Classifies an I/O error raised on an established connection.
    pub fn from_io(e: &io::Error) -> ErrorClass {
        match e.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => ErrorClass::Reset,
            io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof => ErrorClass::Closed,
            io::ErrorKind::TimedOut => ErrorClass::Timeout,
            io::ErrorKind::InvalidData => ErrorClass::Protocol,
            _ => {
                if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
                    ErrorClass::Tls
                } else {
                    ErrorClass::Reset
                }
            }
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorClass::Dns => f.write_str("dns lookup failed"),
            ErrorClass::ConnectRefused => f.write_str("connect refused"),
            ErrorClass::ConnectTimeout => f.write_str("connect timeout"),
            ErrorClass::Connect => f.write_str("connect failed"),
            ErrorClass::Tls => f.write_str("tls error"),
            ErrorClass::Reset => f.write_str("connection reset"),
            ErrorClass::Closed => f.write_str("connection closed early"),
            ErrorClass::Timeout => f.write_str("timeout"),
            ErrorClass::Protocol => f.write_str("protocol error"),
            ErrorClass::Status(code) => write!(f, "status {code}"),
        }
    }
}
