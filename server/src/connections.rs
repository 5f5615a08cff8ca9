//! Connections: the accept loop in front of the router, and the limits that
//! keep idle or slow clients from holding the server.
//!
//! * At most `max_connections` at once. A connection beyond them is answered
//!   `503 busy` (best effort, without reading its request) and closed at once.
//! * A new connection has `header_timeout` to send a whole request head.
//!   Between requests a kept-alive connection may sit idle for
//!   `idle_timeout`; from the first byte of its next request it again has
//!   `header_timeout` for the head. Past either, it is closed.
//! * A request body must arrive whole within `body_timeout` of its head; a
//!   handler still reading it then gets an error (`408 body_timeout`).
//! * While a request is being answered, only the write timer runs: a write
//!   of the answer that waits `write_timeout` for the client to take bytes
//!   (a client that stopped reading, or reads a byte at a time) closes the
//!   connection. A handler that takes long to answer is not cut off.
//! * Every request carries `ConnectInfo<SocketAddr>` (the TCP peer) and
//!   [`ClientIp`] (the peer, or behind a trusted proxy the client it names).
//! * Graceful shutdown stops accepting, lets each connection finish the
//!   request it is in (keep-alive ends), and waits for all of them; any still
//!   open after [`SHUTDOWN_GRACE`] are dropped.
//!
//! HTTP/1.1 only (hyper's `http1` connection), as `axum::serve` served it.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use crate::client_ip::{ClientIp, TrustedProxies};

/// Longest a graceful shutdown waits for open connections to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub max_connections: u32,
}

/// The error a request body gives once its time is up.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub Duration);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Run,
    Drain,
    Abort,
}

struct Shared {
    router: Router,
    limits: Limits,
    proxies: TrustedProxies,
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    proxies: TrustedProxies,
    shutdown: impl Future<Output = ()>,
) {
    let max = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(usize::try_from(max).unwrap_or(usize::MAX)));
    let (stop, stopping) = watch::channel(Stop::Run);
    let shared = Arc::new(Shared { router, limits, proxies });
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was taken: pause, go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refuse(&stream);
            tracing::debug!(%peer, "connection refused: too many open");
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, peer, shared.clone(), stopping.clone(), slot));
    }
    drop(listener);
    let _ = stop.send(Stop::Drain);
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(max)).await.is_err() {
        tracing::warn!("connections still open {SHUTDOWN_GRACE:?} after shutdown began: dropping them");
        let _ = stop.send(Stop::Abort);
        let _ = slots.acquire_many(max).await;
    }
}

/// The answer to a connection over the cap, written without waiting.
fn refuse(stream: &TcpStream) {
    static REFUSAL: OnceLock<Vec<u8>> = OnceLock::new();
    let bytes = REFUSAL.get_or_init(|| {
        let body = r#"{"error":"busy","message":"the server has too many open connections; try again in 1 s"}"#;
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
             connection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    });
    let _ = stream.try_write(bytes);
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<Stop>,
    _slot: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched { io: stream, activity: activity.clone() });
    let service = {
        let (activity, shared) = (activity.clone(), shared.clone());
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let busy = activity.begin();
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(shared.handle(request, peer, busy).await) }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        // The timeouts are this module's (hyper's would also cut idle keep-alive at the header timeout).
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let deadline = activity.deadline(&shared.limits);
        let changed = activity.changed.notified();
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = changed => {}
            () = sleep_until(deadline) => {
                if activity.deadline(&shared.limits).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(%peer, "closing a connection that sent no complete request, or read no answer, in time");
                    return;
                }
            }
            changed = stop.changed() => {
                match changed.map(|()| *stop.borrow_and_update()).unwrap_or(Stop::Abort) {
                    Stop::Run => {}
                    Stop::Drain if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    Stop::Drain => {}
                    Stop::Abort => return,
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

impl Shared {
    async fn handle(&self, request: hyper::Request<Incoming>, peer: SocketAddr, busy: Busy) -> Response {
        let client = self.proxies.client_ip(peer.ip(), request.headers());
        let limit = self.limits.body_timeout;
        let mut request = request.map(|body| Body::new(DeadlineBody::new(body, limit)));
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(ClientIp(client));
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        // The connection is busy until hyper has sent the whole answer and dropped its body.
        response.map(|body| Body::new(Answer { body, _busy: busy }))
    }
}

/// What a connection is doing, for its timers.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head: since `since`, after `served` earlier
    /// requests were answered, with its first byte at `first_byte`.
    Waiting { since: Instant, served: bool, first_byte: Option<Instant> },
    /// Requests being answered.
    Busy(usize),
}

struct Activity {
    phase: Mutex<Phase>,
    /// Since when a write to the socket has been waiting for the client.
    write_stalled: Mutex<Option<Instant>>,
    changed: Notify,
}

/// A request in progress; dropped once its answer is sent (or abandoned).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end();
    }
}

impl Activity {
    fn new() -> Self {
        Activity {
            phase: Mutex::new(Phase::Waiting { since: Instant::now(), served: false, first_byte: None }),
            write_stalled: Mutex::new(None),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn begin(self: &Arc<Self>) -> Busy {
        {
            let mut phase = self.phase();
            *phase = match *phase {
                Phase::Waiting { .. } => Phase::Busy(1),
                Phase::Busy(n) => Phase::Busy(n + 1),
            };
        }
        self.changed.notify_one();
        Busy(self.clone())
    }

    fn end(&self) {
        {
            let mut phase = self.phase();
            *phase = match *phase {
                Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
                _ => Phase::Waiting { since: Instant::now(), served: true, first_byte: None },
            };
        }
        self.changed.notify_one();
    }

    fn bytes_arrived(&self) {
        let mut phase = self.phase();
        if let Phase::Waiting { first_byte: first @ None, .. } = &mut *phase {
            *first = Some(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// A write found the socket full (`true`) or got bytes out (`false`).
    fn write_polled(&self, stalled: bool) {
        let mut since = self.write_stalled.lock().unwrap_or_else(|p| p.into_inner());
        match (stalled, since.is_some()) {
            (true, false) => {
                *since = Some(Instant::now());
                drop(since);
                self.changed.notify_one();
            }
            (false, true) => *since = None,
            _ => {}
        }
    }

    /// When the connection is to be closed if it is still waiting then.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        let stalled = self.write_stalled.lock().unwrap_or_else(|p| p.into_inner()).map(|s| s + limits.write_timeout);
        let phase = match *self.phase() {
            Phase::Waiting { since, served: false, .. } => Some(since + limits.header_timeout),
            Phase::Waiting { first_byte: Some(first), .. } => Some(first + limits.header_timeout),
            Phase::Waiting { since, .. } => Some(since + limits.idle_timeout),
            Phase::Busy(_) => None,
        };
        match (phase, stalled) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The socket, telling its [`Activity`] when bytes arrive.
struct Watched {
    io: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.activity.write_polled(polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.activity.write_polled(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A request body that fails once `limit` has passed since its head arrived.
struct DeadlineBody<B> {
    body: B,
    limit: Duration,
    deadline: tokio::time::Instant,
    /// Armed the first time the body has nothing ready.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> DeadlineBody<B> {
    fn new(body: B, limit: Duration) -> Self {
        DeadlineBody { body, limit, deadline: tokio::time::Instant::now() + limit, timer: None }
    }
}

impl<B> HttpBody for DeadlineBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response body that keeps its connection marked busy until it is dropped.
struct Answer {
    body: Body,
    _busy: Busy,
}

impl HttpBody for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The limit a body read error ran out of, if it is a [`BodyTimedOut`]
/// (under any number of wrappers).
pub fn body_timed_out(error: &(dyn std::error::Error + 'static)) -> Option<Duration> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(BodyTimedOut(limit)) = e.downcast_ref::<BodyTimedOut>() {
            return Some(*limit);
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(20),
            max_connections: 8,
        }
    }

    #[test]
    fn a_stalled_write_has_the_write_timeout_even_while_answering() {
        let a = Arc::new(Activity::new());
        let _busy = a.begin();
        assert_eq!(a.deadline(&limits()), None);
        a.write_polled(true);
        let since = a.write_stalled.lock().unwrap().expect("stalled");
        a.write_polled(true);
        assert_eq!(a.deadline(&limits()), Some(since + limits().write_timeout), "the first stall counts");
        a.write_polled(false);
        assert_eq!(a.deadline(&limits()), None, "bytes went out: no timer while answering");
    }

    #[test]
    fn a_connection_has_the_header_timeout_first_then_the_idle_timeout() {
        let a = Arc::new(Activity::new());
        let Phase::Waiting { since, .. } = *a.phase() else { panic!("starts waiting") };
        assert_eq!(a.deadline(&limits()), Some(since + limits().header_timeout));
        a.bytes_arrived();
        assert_eq!(a.deadline(&limits()), Some(since + limits().header_timeout), "no extension from a first byte");
        let busy = a.begin();
        assert_eq!(a.deadline(&limits()), None, "no timer while answering");
        drop(busy);
        let Phase::Waiting { since, served: true, first_byte: None } = *a.phase() else { panic!("waits again") };
        assert_eq!(a.deadline(&limits()), Some(since + limits().idle_timeout));
        a.bytes_arrived();
        let Phase::Waiting { first_byte: Some(first), .. } = *a.phase() else { panic!("a byte") };
        assert_eq!(a.deadline(&limits()), Some(first + limits().header_timeout));
    }

    #[test]
    fn timed_out_bodies_are_recognised_through_wrappers() {
        let inner: BoxError = Box::new(BodyTimedOut(Duration::from_secs(1)));
        let wrapped = axum::Error::new(inner);
        assert_eq!(body_timed_out(&wrapped), Some(Duration::from_secs(1)));
        assert_eq!(body_timed_out(&io::Error::other("reset")), None);
    }
}
