//! A virtual user: its connections (one per origin, reused across iterations) and the
//! loop over the scenario's requests that makes one iteration. Every request ends in
//! exactly one call to the recorder, success or failure.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use crate::http::error::ErrorClass;
use crate::http::{ClientConfig, Connection, Prepared};
use crate::metrics::recorder::{Recorder, Timing};

/// What the VUs of one scenario on one thread share.
pub struct ScenarioCtx {
    pub requests: Vec<(Prepared, usize)>,
    pub origins: Vec<crate::http::request::Origin>,
    pub client: ClientConfig,
    pub recorder: Rc<RefCell<Recorder>>,
}

/// A VU's state between iterations.
pub struct Vu {
    conns: Vec<Option<Connection>>,
}

impl Vu {
    pub fn new(origins: usize) -> Vu {
        Vu {
            conns: (0..origins).map(|_| None).collect(),
        }
    }

    /// Runs the scenario's requests in order. The first request is due at `intended`;
    /// each later one is due when the previous finished.
    pub async fn iteration(&mut self, ctx: &ScenarioCtx, intended: Instant) {
        let mut due = intended;
        for (req, origin) in &ctx.requests {
            due = self.request(ctx, req, *origin, due).await;
        }
        ctx.recorder.borrow_mut().iteration();
    }

    async fn request(
        &mut self,
        ctx: &ScenarioCtx,
        req: &Prepared,
        origin: usize,
        intended: Instant,
    ) -> Instant {
        let sent = Cell::new(None);
        let slot = &mut self.conns[origin];
        let attempt = async {
            if slot.is_none() {
                // Boxed: opening (TCP, TLS, h2 handshake) is a large future that would
                // otherwise inflate, and be copied with, every iteration's future.
                *slot = Some(Box::pin(Connection::open(&ctx.origins[origin], &ctx.client)).await?);
            }
            let conn = slot.as_mut().ok_or(ErrorClass::Closed)?;
            sent.set(Some(Instant::now()));
            conn.send(req).await
        };
        let result = match tokio::time::timeout(req.spec.timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(ErrorClass::Timeout),
        };
        let done = Instant::now();
        let sent_at = sent.get().unwrap_or(done);
        let timing = Timing {
            intended,
            sent: sent_at,
            done,
        };
        let mut recorder = ctx.recorder.borrow_mut();
        match result {
            Ok((exchange, sent_bytes)) => {
                if !exchange.reusable || ctx.client.options.no_connection_reuse {
                    self.conns[origin] = None;
                }
                let error = (!req.spec.status_ok(exchange.status))
                    .then_some(ErrorClass::Status(exchange.status));
                recorder.request(timing, sent_bytes, exchange.received, error);
            }
            Err(class) => {
                // The connection's state is unknown after a failure: never reuse it.
                self.conns[origin] = None;
                recorder.request(timing, 0, 0, Some(class));
            }
        }
        done
    }
}

/// Keeps the `vus`/`vus_max` gauges right however a VU ends, aborts included.
pub struct VuGauge {
    recorder: Rc<RefCell<Recorder>>,
    busy: i64,
    allocated: i64,
}

impl VuGauge {
    pub fn new(recorder: &Rc<RefCell<Recorder>>, busy: i64, allocated: i64) -> VuGauge {
        recorder.borrow_mut().vus_changed(busy, allocated);
        VuGauge {
            recorder: recorder.clone(),
            busy,
            allocated,
        }
    }
}

impl Drop for VuGauge {
    fn drop(&mut self) {
        self.recorder
            .borrow_mut()
            .vus_changed(-self.busy, -self.allocated);
    }
}
