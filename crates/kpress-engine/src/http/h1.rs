//! The HTTP/1.1 hot path: write the prebuilt request bytes, parse the response head
//! with `httparse`, skip the body by its framing. Nothing is allocated per request;
//! the read buffer is reused for the life of the connection. A benchmark against wrk
//! (bench/compare.sh) is why this is not hyper's client: hyper's per-request
//! allocations and task hand-offs cost about a third of the throughput per CPU-second.

use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::error::ErrorClass;

const READ_CHUNK: usize = 16 * 1024;
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;

/// What one request/response exchange produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    pub status: u16,
    /// Bytes of the response, head and body, as received.
    pub received: u64,
    /// Whether the connection may carry another request.
    pub reusable: bool,
}

enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// One HTTP/1.1 connection over any byte stream (TCP or TLS).
pub struct H1<S> {
    io: S,
    buf: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin> H1<S> {
    pub fn new(io: S) -> Self {
        H1 {
            io,
            buf: BytesMut::with_capacity(READ_CHUNK),
        }
    }

    /// The byte stream underneath.
    pub fn io_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// Sends `request` (complete bytes) and reads one full response.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        head_request: bool,
    ) -> Result<Exchange, ErrorClass> {
        self.io
            .write_all(request)
            .await
            .map_err(|e| ErrorClass::from_io(&e))?;
        loop {
            let (status, head_len, framing, keep_alive) = self.read_head(head_request).await?;
            self.buf.advance(head_len);
            let mut received = head_len as u64;
            if (100..200).contains(&status) && status != 101 {
                continue; // an interim response (100 Continue): the real one follows
            }
            let reusable = match framing {
                Framing::Empty => keep_alive,
                Framing::Length(n) => {
                    self.skip(n).await?;
                    received += n;
                    keep_alive
                }
                Framing::Chunked => {
                    received += self.skip_chunked().await?;
                    keep_alive
                }
                Framing::UntilClose => {
                    received += self.skip_to_eof().await?;
                    false
                }
            };
            return Ok(Exchange {
                status,
                received,
                reusable,
            });
        }
    }

    async fn fill(&mut self) -> Result<usize, ErrorClass> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(READ_CHUNK);
        }
        self.io
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| ErrorClass::from_io(&e))
    }

    async fn read_head(
        &mut self,
        head_request: bool,
    ) -> Result<(u16, usize, Framing, bool), ErrorClass> {
        loop {
            if !self.buf.is_empty() {
                // Uninitialised: zeroing 64 headers (2 KiB) per response was a tenth of
                // the user-space instructions of a request (callgrind).
                let mut headers =
                    [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
                let mut resp = httparse::Response::new(&mut []);
                match httparse::ParserConfig::default().parse_response_with_uninit_headers(
                    &mut resp,
                    &self.buf,
                    &mut headers,
                ) {
                    Ok(httparse::Status::Complete(len)) => {
                        let status = resp.code.unwrap_or(0);
                        let mut keep_alive = resp.version == Some(1);
                        let mut framing = if head_request
                            || status == 204
                            || status == 304
                            || (100..200).contains(&status)
                        {
                            Framing::Empty
                        } else {
                            Framing::UntilClose
                        };
                        for h in resp.headers.iter() {
                            if h.name.eq_ignore_ascii_case("content-length") {
                                if matches!(framing, Framing::UntilClose) {
                                    let n = std::str::from_utf8(h.value)
                                        .ok()
                                        .and_then(|v| v.trim().parse().ok())
                                        .ok_or(ErrorClass::Protocol)?;
                                    framing = Framing::Length(n);
                                }
                            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                                if !matches!(framing, Framing::Empty) && ends_with_chunked(h.value)
                                {
                                    framing = Framing::Chunked;
                                }
                            } else if h.name.eq_ignore_ascii_case("connection") {
                                if contains_token(h.value, b"close") {
                                    keep_alive = false;
                                } else if contains_token(h.value, b"keep-alive") {
                                    keep_alive = true;
                                }
                            }
                        }
                        return Ok((status, len, framing, keep_alive));
                    }
                    Ok(httparse::Status::Partial) if self.buf.len() > MAX_HEAD => {
                        return Err(ErrorClass::Protocol)
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(_) => return Err(ErrorClass::Protocol),
                }
            }
            if self.fill().await? == 0 {
                return Err(ErrorClass::Closed);
            }
        }
    }

    async fn skip(&mut self, mut n: u64) -> Result<(), ErrorClass> {
        loop {
            let take = (self.buf.len() as u64).min(n) as usize;
            self.buf.advance(take);
            n -= take as u64;
            if n == 0 {
                return Ok(());
            }
            if self.fill().await? == 0 {
                return Err(ErrorClass::Closed);
            }
        }
    }

    async fn skip_to_eof(&mut self) -> Result<u64, ErrorClass> {
        let mut total = 0u64;
        loop {
            total += self.buf.len() as u64;
            self.buf.clear();
            if self.fill().await? == 0 {
                return Ok(total);
            }
        }
    }

    /// Skips a chunked body (and any trailers); returns its size on the wire.
    async fn skip_chunked(&mut self) -> Result<u64, ErrorClass> {
        let mut total = 0u64;
        loop {
            let (consumed, size) = loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete(x)) => break x,
                    Ok(httparse::Status::Partial) if self.buf.len() > MAX_HEAD => {
                        return Err(ErrorClass::Protocol)
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.fill().await? == 0 {
                            return Err(ErrorClass::Closed);
                        }
                    }
                    Err(_) => return Err(ErrorClass::Protocol),
                }
            };
            self.buf.advance(consumed);
            total += consumed as u64;
            if size == 0 {
                return Ok(total + self.skip_trailers().await?);
            }
            self.skip(size + 2).await?;
            total += size + 2;
        }
    }

    async fn skip_trailers(&mut self) -> Result<u64, ErrorClass> {
        let mut total = 0u64;
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line_len = end + 1;
                let empty = line_len <= 2;
                self.buf.advance(line_len);
                total += line_len as u64;
                if empty {
                    return Ok(total);
                }
                continue;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ErrorClass::Protocol);
            }
            if self.fill().await? == 0 {
                return Err(ErrorClass::Closed);
            }
        }
    }
}

fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn ends_with_chunked(value: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .next_back()
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    async fn exchange_with(response: &'static [u8], head: bool) -> Result<Exchange, ErrorClass> {
        let (client, mut server) = duplex(1 << 16);
        let task = tokio::spawn(async move {
            let mut req = [0u8; 256];
            let _ = server.read(&mut req).await;
            let _ = server.write_all(response).await;
            // Dropping `server` closes the stream, which ends until-close bodies.
        });
        let mut conn = H1::new(client);
        let out = conn
            .exchange(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", head)
            .await;
        let _ = task.await;
        out
    }

    #[tokio::test]
    async fn parses_every_framing() {
        let cases: &[(&[u8], bool, Result<Exchange, ErrorClass>)] = &[
            (b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n", false, Ok(Exchange { status: 200, received: 41, reusable: true })),
            (b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false, Ok(Exchange { status: 201, received: 65, reusable: true })),
            (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nx-t: 1\r\n\r\n", false, Ok(Exchange { status: 200, received: 67, reusable: true })),
            (b"HTTP/1.1 503 Busy\r\nconnection: close\r\n\r\nbye", false, Ok(Exchange { status: 503, received: 43, reusable: false })),
            (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", false, Ok(Exchange { status: 204, received: 27, reusable: true })),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n", true, Ok(Exchange { status: 200, received: 39, reusable: true })),
            (b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n", false, Ok(Exchange { status: 200, received: 38, reusable: false })),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", false, Err(ErrorClass::Closed)),
            (b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n", false, Err(ErrorClass::Protocol)),
            (b"garbage\r\n\r\n", false, Err(ErrorClass::Protocol)),
            (b"", false, Err(ErrorClass::Closed)),
        ];
        for (response, head, expected) in cases {
            let got = exchange_with(response, *head).await;
            assert_eq!(&got, expected, "{}", String::from_utf8_lossy(response));
        }
    }
}
