//! A virtual user: its connections (one per origin, reused across iterations) and the
//! loop over the scenario's requests that makes one iteration. Every request ends in
//! exactly one call to the thread's recorder, success or failure.

use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::time::Sleep;

use crate::http::error::ErrorClass;
use crate::http::{ClientConfig, Connection, Exchange, Prepared};
use crate::metrics::recorder::{self, Timing};

/// What the VUs of one scenario on one thread share.
pub struct ScenarioCtx {
    pub requests: Vec<(Prepared, usize)>,
    pub origins: Vec<crate::http::request::Origin>,
    pub client: ClientConfig,
}

/// A VU's state between iterations.
pub struct Vu {
    conns: Vec<Option<Connection>>,
    /// The request timeout's timer, kept across requests (see `Deadline`).
    timer: Pin<Box<Sleep>>,
}

impl Vu {
    pub fn new(origins: usize) -> Vu {
        Vu {
            conns: (0..origins).map(|_| None).collect(),
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    /// Runs the scenario's requests in order. The first request is due at `intended`;
    /// each later one is due when the previous finished.
    pub async fn iteration(&mut self, ctx: &ScenarioCtx, intended: Instant) {
        let mut due = intended;
        for (req, origin) in &ctx.requests {
            due = self.request(ctx, req, *origin, due).await;
        }
        recorder::with(|r| r.iteration());
    }

    async fn request(
        &mut self,
        ctx: &ScenarioCtx,
        req: &Prepared,
        origin: usize,
        intended: Instant,
    ) -> Instant {
        let (sent, result) = self.exchange(ctx, req, origin).await;
        let kernel_done = match (&result, self.conns[origin].as_mut()) {
            (Ok(_), Some(conn)) => conn.received_at(),
            _ => None,
        };
        let done = kernel_done.unwrap_or_else(Instant::now);
        let timing = Timing {
            intended,
            sent: sent.unwrap_or(done),
            done,
        };
        match result {
            Ok((exchange, sent_bytes)) => {
                if !exchange.reusable || ctx.client.options.no_connection_reuse {
                    self.conns[origin] = None;
                }
                let error = (!req.spec.status_ok(exchange.status))
                    .then_some(ErrorClass::Status(exchange.status));
                recorder::with(|r| r.request(timing, sent_bytes, exchange.received, error));
            }
            Err(class) => {
                // The connection's state is unknown after a failure: never reuse it.
                self.conns[origin] = None;
                recorder::with(|r| r.request(timing, 0, 0, Some(class)));
            }
        }
        done
    }

    /// Opens the connection if needed, then sends; both within the request's timeout.
    /// Returns when the request was sent (if it was) and the outcome.
    async fn exchange(
        &mut self,
        ctx: &ScenarioCtx,
        req: &Prepared,
        origin: usize,
    ) -> (Option<Instant>, Result<(Exchange, u64), ErrorClass>) {
        // One clock read gives the deadline and, on an open connection, the send time.
        let mut sent = Instant::now();
        let deadline = tokio::time::Instant::from_std(sent) + req.spec.timeout;
        let slot = &mut self.conns[origin];
        if slot.is_none() {
            // Boxed: opening (TCP, TLS, h2 handshake) is a large future that would
            // otherwise inflate, and be copied with, every iteration's future.
            let open = Box::pin(Connection::open(&ctx.origins[origin], &ctx.client));
            let opened = tokio::select! {
                biased;
                opened = open => opened,
                () = expiry(&mut self.timer, deadline) => Err(ErrorClass::Timeout),
            };
            match opened {
                Ok(conn) => *slot = Some(conn),
                Err(class) => return (None, Err(class)),
            }
            sent = Instant::now();
        }
        let Some(conn) = slot.as_mut() else {
            return (None, Err(ErrorClass::Closed));
        };
        tokio::select! {
            biased;
            result = conn.send(req) => (Some(sent), result),
            () = expiry(&mut self.timer, deadline) => (Some(sent), Err(ErrorClass::Timeout)),
        }
    }
}

/// Resolves at `deadline`, on a timer kept across requests. A timer per request
/// (`tokio::time::timeout`) is registered in and removed from tokio's timer wheel every
/// time; this one is only moved when it fires before the current deadline, about once
/// per timeout period, or when a request has a shorter timeout than the one before.
/// The timer never runs past the deadline it guards: it is set no later than it.
async fn expiry(timer: &mut Pin<Box<Sleep>>, deadline: tokio::time::Instant) {
    if timer.deadline() > deadline {
        timer.as_mut().reset(deadline);
    }
    loop {
        timer.as_mut().await;
        if timer.deadline() >= deadline {
            return;
        }
        timer.as_mut().reset(deadline);
    }
}

/// Keeps the `vus`/`vus_max` gauges right however a VU ends, aborts included.
pub struct VuGauge {
    busy: i64,
    allocated: i64,
}

impl VuGauge {
    pub fn new(busy: i64, allocated: i64) -> VuGauge {
        recorder::with(|r| r.vus_changed(busy, allocated));
        VuGauge { busy, allocated }
    }
}

impl Drop for VuGauge {
    fn drop(&mut self) {
        recorder::with(|r| r.vus_changed(-self.busy, -self.allocated));
    }
}
