//! Plain HTTP/1.1 connections for the open model that do not wake the thread for every
//! response. Under a fixed arrival rate the generator is mostly idle, and an idle
//! thread woken once per response pays a sleep and a wake-up in the kernel for each
//! one: that, not parsing or recording, is most of an open-model request's cost.
//!
//! So these sockets are not in tokio's reactor. Their readiness is collected by a
//! private epoll instance that one driver task per thread polls without blocking on
//! each tick of tokio's 1 ms timer wheel while any connection waits, the tick on
//! which the arrival dispatcher wakes anyway: one wake-up per millisecond carries
//! every send and every response of that millisecond. Latency does not suffer from
//! the batching, because the end of a response is taken from the kernel's receive
//! timestamp of its last bytes (`SO_TIMESTAMPING`), not from when the driver got
//! round to reading it.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use mio::{Events, Interest, Token};
use slab::Slab;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Tokio's timer resolution: every deadline is rounded up to it.
const TICK: Duration = Duration::from_millis(1);
/// Events taken per tick; more stay queued in epoll for the next tick.
const EVENTS_PER_TICK: usize = 1024;

/// A TCP connection whose reads and writes wait for the next tick.
pub struct TickedTcp {
    stream: mio::net::TcpStream,
    token: Token,
    /// Which ticker the socket is registered with (a thread may outlive a runtime).
    ticker: u64,
    /// Whether a read may find data: set by the ticker's readiness events, cleared
    /// when a read drains the socket.
    readable: bool,
    received_at: Option<Instant>,
}

impl TickedTcp {
    /// Takes over a connected socket; gives it back when the kernel will not
    /// timestamp its receives or this thread cannot poll it (then it stays in
    /// tokio's reactor).
    pub fn take_over(
        stream: tokio::net::TcpStream,
    ) -> Result<io::Result<TickedTcp>, tokio::net::TcpStream> {
        if enable_rx_timestamps(stream.as_raw_fd()).is_err() || with_ticker(|_| ()).is_none() {
            return Err(stream);
        }
        Ok(stream.into_std().and_then(|std| {
            let mut stream = mio::net::TcpStream::from_std(std);
            let (token, ticker) =
                with_ticker(|t| Ok::<_, io::Error>((t.register(&mut stream)?, t.id)))
                    .ok_or_else(|| io::Error::other("no runtime to poll the connection"))??;
            Ok(TickedTcp {
                stream,
                token,
                ticker,
                readable: true,
                received_at: None,
            })
        }))
    }

    /// When the kernel received the bytes of the last read, as an `Instant`; cleared
    /// by taking it.
    pub fn take_received_at(&mut self) -> Option<Instant> {
        self.received_at.take()
    }

    /// Parks the task until the next tick that finds the socket ready; returns
    /// `true` instead, without parking, when a readiness event came since the last
    /// wait.
    fn wait(&mut self, cx: &Context<'_>) -> bool {
        let token = self.token;
        with_ticker(|t| t.wait(token, cx.waker())) == Some(true)
    }
}

impl Drop for TickedTcp {
    fn drop(&mut self) {
        let _ = TICKER.try_with(|slot| {
            if let Ok(mut slot) = slot.try_borrow_mut() {
                if let Some(t) = slot.as_mut().filter(|t| t.id == self.ticker) {
                    t.deregister(&mut self.stream, self.token);
                }
            }
        });
    }
}

impl AsyncRead for TickedTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // A read right after sending a request would almost always find nothing: wait
        // for epoll to report the socket readable instead of asking the kernel.
        if !self.readable {
            if !self.wait(cx) {
                return Poll::Pending;
            }
            self.readable = true;
        }
        let fd = self.stream.as_raw_fd();
        let room = buf.remaining();
        match recv_timestamped(fd, buf) {
            Ok((n, stamp)) => {
                if let Some(at) = stamp {
                    self.received_at = Some(at);
                }
                // Edge-triggered: a short read drained the socket, and the next bytes
                // to arrive will be reported again.
                if n > 0 && n < room {
                    self.readable = false;
                }
                Poll::Ready(Ok(()))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                if self.wait(cx) {
                    self.readable = true;
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for TickedTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match io::Write::write(&mut self.stream, data) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if self.wait(cx) {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
            other => Poll::Ready(other),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.stream.shutdown(std::net::Shutdown::Write))
    }
}

thread_local! {
    /// This thread's private epoll instance and the tasks waiting on it.
    static TICKER: RefCell<Option<Ticker>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's ticker, creating it (and spawning its driver) first.
/// `None` when the ticker cannot be created or there is no runtime to drive it.
fn with_ticker<R>(f: impl FnOnce(&mut Ticker) -> R) -> Option<R> {
    TICKER.with_borrow_mut(|slot| {
        if slot.is_none() {
            let handle = tokio::runtime::Handle::try_current().ok()?;
            let ticker = Ticker::new().ok()?;
            handle.spawn(drive(ForgetTicker(ticker.id)));
            *slot = Some(ticker);
        }
        slot.as_mut().map(f)
    })
}

#[derive(Default)]
struct Waiter {
    waker: Option<Waker>,
    /// A readiness event arrived since the connection last waited.
    ready: bool,
}

struct Ticker {
    id: u64,
    poll: mio::Poll,
    events: Events,
    /// Per connection, the task waiting for it to become ready.
    waiters: Slab<Waiter>,
    waiting: usize,
    /// The driver, parked while no task waits.
    driver: Option<Waker>,
}

impl Ticker {
    fn new() -> io::Result<Ticker> {
        static IDS: AtomicU64 = AtomicU64::new(0);
        Ok(Ticker {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            poll: mio::Poll::new()?,
            events: Events::with_capacity(EVENTS_PER_TICK),
            waiters: Slab::new(),
            waiting: 0,
            driver: None,
        })
    }

    fn register(&mut self, stream: &mut mio::net::TcpStream) -> io::Result<Token> {
        let token = Token(self.waiters.insert(Waiter::default()));
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(stream, token, interest) {
            self.waiters.remove(token.0);
            return Err(e);
        }
        Ok(token)
    }

    fn deregister(&mut self, stream: &mut mio::net::TcpStream, token: Token) {
        let _ = self.poll.registry().deregister(stream);
        if let Some(Waiter { waker: Some(_), .. }) = self.waiters.try_remove(token.0) {
            self.waiting -= 1;
        }
    }

    /// Registers `waker` for the connection's next readiness; returns `true`
    /// instead when the connection became ready since it last waited.
    fn wait(&mut self, token: Token, waker: &Waker) -> bool {
        let Some(slot) = self.waiters.get_mut(token.0) else {
            return false;
        };
        if std::mem::take(&mut slot.ready) {
            return true;
        }
        if slot.waker.replace(waker.clone()).is_none() {
            self.waiting += 1;
        }
        if let Some(driver) = self.driver.take() {
            driver.wake();
        }
        false
    }

    /// Wakes the tasks whose connections became ready since the last tick.
    fn tick(&mut self) {
        if self
            .poll
            .poll(&mut self.events, Some(Duration::ZERO))
            .is_err()
        {
            return;
        }
        for event in self.events.iter() {
            let Some(slot) = self.waiters.get_mut(event.token().0) else {
                continue;
            };
            slot.ready = true;
            if let Some(waker) = slot.waker.take() {
                self.waiting -= 1;
                waker.wake();
            }
        }
    }
}

/// The thread's driver: while any task waits, poll the epoll instance once per tick.
/// It ends with its runtime and, through `_forget`, takes its ticker along, so that a
/// later runtime on this thread gets a new one: `_forget` is handed in rather than made
/// inside, because a runtime dropped before it ever polled the driver drops only what
/// the future captured.
async fn drive(_forget: ForgetTicker) {
    // Two timers, the next tick's and the one after: when one fires, the other is
    // already the timer wheel's earliest entry, so re-arming this one (or any
    // dispatcher sleep on the coming tick) is not earlier than the wheel's next
    // wake and costs tokio no self-wake through its eventfd.
    let mut tick = Instant::now();
    let mut now_timer = Box::pin(tokio::time::sleep_until(tick.into()));
    let mut next_timer = Box::pin(tokio::time::sleep_until((tick + TICK).into()));
    loop {
        let idle = std::future::poll_fn(|cx| {
            let parked = TICKER.with_borrow_mut(|slot| match slot {
                Some(t) if t.waiting == 0 => {
                    t.driver = Some(cx.waker().clone());
                    true
                }
                _ => false,
            });
            if parked {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        });
        idle.await;
        let now = Instant::now();
        if now > tick + TICK {
            // Back from idle: start the pair again from here.
            tick = now;
            now_timer.as_mut().reset(tick.into());
            next_timer.as_mut().reset((tick + TICK).into());
        }
        now_timer.as_mut().await;
        TICKER.with_borrow_mut(|slot| {
            if let Some(t) = slot {
                t.tick();
            }
        });
        // A thread that fell behind resumes from now rather than racing through
        // the ticks it missed.
        let due = tick + TICK;
        tick = due.max(Instant::now());
        now_timer.as_mut().reset((tick + TICK).into());
        if tick > due {
            next_timer.as_mut().reset(tick.into());
        }
        std::mem::swap(&mut now_timer, &mut next_timer);
    }
}

/// Clears this thread's ticker when dropped, if it is still the one with this id.
struct ForgetTicker(u64);

impl Drop for ForgetTicker {
    fn drop(&mut self) {
        let _ = TICKER.try_with(|slot| {
            if let Ok(mut slot) = slot.try_borrow_mut() {
                if slot.as_ref().is_some_and(|t| t.id == self.0) {
                    *slot = None;
                }
            }
        });
    }
}

fn enable_rx_timestamps(fd: RawFd) -> io::Result<()> {
    let flags: libc::c_uint = libc::SOF_TIMESTAMPING_RX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE;
    // SAFETY: a valid socket descriptor and a pointer to a c_uint of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPING,
            (&flags as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Room for one `SCM_TIMESTAMPING` control message (three timespecs), aligned.
#[repr(C, align(8))]
struct ControlBuf([u8; 128]);

/// Reads into `buf` without blocking; returns the bytes read and the kernel's receive
/// time of the last of them, when it gave one.
fn recv_timestamped(fd: RawFd, buf: &mut ReadBuf<'_>) -> io::Result<(usize, Option<Instant>)> {
    // SAFETY: only the kernel writes here, and only the bytes it reports are marked
    // initialised; nothing is de-initialised.
    let unfilled = unsafe { buf.unfilled_mut() };
    let mut iov = libc::iovec {
        iov_base: unfilled.as_mut_ptr().cast(),
        iov_len: unfilled.len(),
    };
    let mut control = ControlBuf([0; 128]);
    // SAFETY: msghdr is plain data; all-zero is a valid empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;
    // SAFETY: iov points at the unfilled part of `buf`, which the kernel only writes;
    // the control buffer outlives the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialised the first `n` bytes of the unfilled part.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    // SAFETY: walking the control messages the kernel wrote into `msg`'s buffer.
    let stamp = unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        let mut found = None;
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SO_TIMESTAMPING
            {
                found = Some(std::ptr::read_unaligned(
                    libc::CMSG_DATA(cmsg) as *const libc::timespec
                ));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        found
    };
    Ok((n, stamp.and_then(realtime_to_instant)))
}

/// The kernel stamps with the realtime clock; latencies are measured on the monotonic
/// one. Read both now and carry the stamp's age across.
fn realtime_to_instant(ts: libc::timespec) -> Option<Instant> {
    if ts.tv_sec == 0 && ts.tv_nsec == 0 {
        return None;
    }
    let stamp = SystemTime::UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    let now = Instant::now();
    let age = SystemTime::now().duration_since(stamp).unwrap_or_default();
    now.checked_sub(age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every 4-byte message with `pong` at once.
    fn ponger() -> std::net::SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(4) {
                let mut s = stream.unwrap();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4];
                    while s.read_exact(&mut buf).is_ok() {
                        if s.write_all(b"pong").is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn connect(addr: std::net::SocketAddr) -> TickedTcp {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        match TickedTcp::take_over(tcp) {
            Ok(t) => t.unwrap(),
            Err(_) => panic!("this kernel does not timestamp receives"),
        }
    }

    /// Exchanges pings until the kernel stamps an answer. Linux turns receive
    /// stamping on for the whole stack from a work queue when the first socket asks
    /// for it, so on a machine where nothing stamped yet the first packets may carry
    /// none (the engine then times by the read, as for a plain connection).
    async fn until_stamped(conn: &mut TickedTcp) {
        for _ in 0..500 {
            conn.write_all(b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            conn.read_exact(&mut buf).await.unwrap();
            if conn.take_received_at().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the kernel never stamped a receive");
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn the_end_of_a_response_is_the_kernels_receive_time_not_the_read() {
        let addr = ponger();
        runtime().block_on(async {
            let mut conn = connect(addr).await;
            until_stamped(&mut conn).await;
            for _ in 0..3 {
                conn.write_all(b"ping").await.unwrap();
                // The thread is busy elsewhere while the answer arrives.
                std::thread::sleep(Duration::from_millis(30));
                let mut buf = [0u8; 4];
                conn.read_exact(&mut buf).await.unwrap();
                assert_eq!(&buf, b"pong");
                let received = conn.take_received_at().expect("a receive timestamp");
                let late = Instant::now() - received;
                assert!(
                    late >= Duration::from_millis(25),
                    "read {late:?} after it arrived"
                );
                assert!(late < Duration::from_secs(5), "{late:?}");
                assert!(conn.take_received_at().is_none(), "taking clears it");
            }
        });
    }

    #[test]
    fn waiting_reads_are_woken_on_the_next_tick() {
        let addr = ponger();
        runtime().block_on(async {
            let mut a = connect(addr).await;
            let mut b = connect(addr).await;
            until_stamped(&mut a).await;
            until_stamped(&mut b).await;
            for _ in 0..50 {
                let start = Instant::now();
                a.write_all(b"ping").await.unwrap();
                b.write_all(b"ping").await.unwrap();
                let mut x = [0u8; 4];
                let mut y = [0u8; 4];
                let (ra, rb) = tokio::join!(a.read_exact(&mut x), b.read_exact(&mut y));
                ra.unwrap();
                rb.unwrap();
                assert!(start.elapsed() < Duration::from_secs(2));
                let ta = a.take_received_at().unwrap();
                let tb = b.take_received_at().unwrap();
                assert!(ta >= start && tb >= start, "stamped before the send");
            }
        });
    }

    #[test]
    fn a_later_runtime_on_the_same_thread_gets_its_own_ticker() {
        let addr = ponger();
        for _ in 0..2 {
            runtime().block_on(async {
                let mut conn = connect(addr).await;
                conn.write_all(b"ping").await.unwrap();
                let mut buf = [0u8; 4];
                let read = tokio::time::timeout(Duration::from_secs(2), conn.read_exact(&mut buf));
                read.await.expect("woken by this runtime's driver").unwrap();
            });
        }
    }
}
