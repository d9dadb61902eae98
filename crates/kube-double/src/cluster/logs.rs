//! Container logs: one buffer per started pod that both output pipes append to, read whole by
//! `GET pods/NAME/log` or followed (`follow=true`) until the container exits, as `kubectl logs`
//! and `Api::log_stream` expect.

use std::collections::HashMap;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use crate::status::ApiError;

#[derive(Debug, Default)]
struct LogState {
    bytes: Vec<u8>,
    closed: bool,
}

/// The output of one container; `closed` once the container has exited and its pipes are
/// drained, which is what ends a follower's stream.
#[derive(Debug)]
pub(crate) struct LogBuffer {
    state: watch::Sender<LogState>,
}

impl LogBuffer {
    pub(crate) fn new() -> Self {
        Self {
            state: watch::Sender::new(LogState::default()),
        }
    }

    pub(crate) fn append(&self, chunk: &[u8]) {
        self.state.send_modify(|s| s.bytes.extend_from_slice(chunk));
    }

    pub(crate) fn close(&self) {
        self.state.send_modify(|s| s.closed = true);
    }

    /// Serves one log request: the (tailed, limited) buffer, or with `follow` a channel that
    /// yields the same and then everything appended until the buffer closes.
    pub(crate) fn read(&self, query: &LogQuery) -> LogOutput {
        let (start, snapshot) = {
            let state = self.state.borrow();
            let start = query
                .tail_lines
                .map_or(0, |lines| tail_start(&state.bytes, lines));
            (start, state.bytes[start..].to_vec())
        };
        if !query.follow {
            let mut bytes = snapshot;
            if let Some(limit) = query.limit_bytes {
                bytes.truncate(limit);
            }
            return LogOutput::Complete(Bytes::from(bytes));
        }
        let (sender, receiver) = mpsc::channel(16);
        tokio::spawn(follow(
            self.state.subscribe(),
            start,
            query.limit_bytes,
            sender,
        ));
        LogOutput::Follow(receiver)
    }
}

/// Forwards the buffer from `offset` on; ends when the buffer closes or is dropped (pod
/// deleted, double dropped), the byte limit is reached, or the client hangs up.
async fn follow(
    mut state: watch::Receiver<LogState>,
    mut offset: usize,
    mut remaining: Option<usize>,
    sender: mpsc::Sender<Bytes>,
) {
    loop {
        let (mut chunk, closed) = {
            let current = state.borrow_and_update();
            (current.bytes[offset..].to_vec(), current.closed)
        };
        offset += chunk.len();
        if let Some(left) = remaining.as_mut() {
            chunk.truncate(*left);
            *left -= chunk.len();
        }
        if !chunk.is_empty() && sender.send(Bytes::from(chunk)).await.is_err() {
            return;
        }
        if closed || remaining == Some(0) || state.changed().await.is_err() {
            return;
        }
    }
}

/// Where the last `lines` lines of `bytes` begin; a final line without a newline counts.
fn tail_start(bytes: &[u8], lines: usize) -> usize {
    if lines == 0 {
        return bytes.len();
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(lines - 1)
        .map_or(0, |(i, _)| i + 1)
}

/// The log query parameters the double honours; `timestamps`, `sinceSeconds` and `sinceTime`
/// are accepted and ignored.
#[derive(Debug, Default)]
pub(crate) struct LogQuery {
    pub(crate) container: Option<String>,
    pub(crate) follow: bool,
    /// The container that ran before the latest restart.
    pub(crate) previous: bool,
    tail_lines: Option<usize>,
    limit_bytes: Option<usize>,
}

impl LogQuery {
    pub(crate) fn parse(params: &HashMap<String, String>) -> Result<Self, ApiError> {
        Ok(Self {
            container: params.get("container").filter(|c| !c.is_empty()).cloned(),
            follow: params
                .get("follow")
                .is_some_and(|f| f == "true" || f == "1"),
            previous: params
                .get("previous")
                .is_some_and(|p| p == "true" || p == "1"),
            tail_lines: crate::status::number_param(params, "tailLines")?,
            limit_bytes: crate::status::number_param(params, "limitBytes")?,
        })
    }
}

/// A log answer: the whole text at once, or chunks as the container writes them.
#[derive(Debug)]
pub(crate) enum LogOutput {
    Complete(Bytes),
    Follow(mpsc::Receiver<Bytes>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_counts_lines_from_the_end() {
        let text = b"a\nb\nc\n";
        assert_eq!(&text[tail_start(text, 2)..], b"b\nc\n");
        assert_eq!(&text[tail_start(text, 9)..], text);
        assert_eq!(&text[tail_start(text, 0)..], b"");
        assert_eq!(&b"a\nb"[tail_start(b"a\nb", 1)..], b"b");
    }

    async fn next(chunks: &mut mpsc::Receiver<Bytes>) -> Option<Bytes> {
        tokio::time::timeout(std::time::Duration::from_secs(5), chunks.recv())
            .await
            .expect("the follower answers in time")
    }

    #[tokio::test]
    async fn followers_get_new_output_until_the_buffer_closes() {
        let log = LogBuffer::new();
        log.append(b"one\n");
        let query = LogQuery {
            follow: true,
            ..LogQuery::default()
        };
        let LogOutput::Follow(mut chunks) = log.read(&query) else {
            panic!("a follow query streams");
        };
        assert_eq!(next(&mut chunks).await, Some(Bytes::from("one\n")));
        log.append(b"two\n");
        assert_eq!(next(&mut chunks).await, Some(Bytes::from("two\n")));
        log.close();
        assert_eq!(next(&mut chunks).await, None);
    }
}
