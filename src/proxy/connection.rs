//! One client connection: TLS accept, the first bytes, HTTP/1.1 or h2, and when it ends:
//! at shutdown (gracefully) or after `server.idle_timeout` with no request in flight, h2
//! included (pings are no activity: a silent connection must not hold a file descriptor).

use std::convert::Infallible;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use pin_project_lite::pin_project;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio_rustls::TlsAcceptor;
use tower::{BoxError, ServiceExt};
use tracing::debug;

use super::preface::{Prefixed, read_preface};
use super::server::Serve;
use crate::net::Downstream;

/// After a graceful close began, how long a connection with nothing in flight may take to
/// finish it (an h2 client acknowledging GOAWAY) before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The idle limit is checked this many times per period: a connection closes between the
/// limit and a quarter more, and requests cost no timer work or wake-up at all.
const IDLE_CHECKS: u32 = 4;

/// What every connection of a server is served with.
pub(super) struct Settings {
    pub(super) tls: Option<TlsAcceptor>,
    pub(super) builder: auto::Builder<TokioExecutor>,
    pub(super) handshake_timeout: Duration,
    pub(super) idle_timeout: Duration,
}

/// One accepted client connection.
pub(super) struct Connection<S> {
    pub(super) settings: Arc<Settings>,
    pub(super) service: S,
    pub(super) downstream: Downstream,
    /// Turns true when the worker drains (shutdown); the connection finishes its requests
    /// and closes. Dropped when the connection ends, which is how the worker counts them.
    pub(super) draining: watch::Receiver<bool>,
    /// This connection's place under `server.max_connections`.
    pub(super) _slot: OwnedSemaphorePermit,
}

impl<S: Serve> Connection<S> {
    pub(super) async fn run(self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let Connection {
            settings,
            service,
            downstream,
            draining,
            _slot,
        } = self;
        let activity = Arc::new(Activity::default());
        let tracked = activity.clone();
        // Each request says who the client is, for X-Forwarded-For and the access log, and
        // counts as activity until its response body is done.
        let service = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(downstream);
            let in_flight = tracked.begin();
            let answer = service.clone().oneshot(request);
            async move {
                let response = answer.await?;
                Ok::<_, Infallible>(response.map(|body| Tracked {
                    inner: body,
                    _in_flight: in_flight,
                }))
            }
        });
        let handshake_timeout = settings.handshake_timeout;
        let result = match &settings.tls {
            None => serve_io(&settings, stream, service, &activity, draining).await,
            Some(acceptor) => {
                let tls_stream =
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            debug!(peer = %downstream.peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            debug!(peer = %downstream.peer, "TLS handshake timed out");
                            return;
                        }
                    };
                serve_io(&settings, tls_stream, service, &activity, draining).await
            }
        };
        if let Err(e) = result {
            debug!(peer = %downstream.peer, error = %e, "connection ended with an error");
        }
    }
}

/// Serves one connection once its first bytes arrived within the handshake timeout; closes
/// it gracefully (h2: GOAWAY, in-flight streams finish) when the worker drains or when it has
/// been idle for `idle_timeout`.
async fn serve_io<I, S, B>(
    settings: &Settings,
    mut io: I,
    service: S,
    activity: &Activity,
    mut draining: watch::Receiver<bool>,
) -> Result<(), BoxError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let Some(prefix) = read_preface(&mut io, settings.handshake_timeout).await? else {
        debug!("connection closed or silent before a request");
        return Ok(());
    };
    let io = TokioIo::new(Prefixed::new(prefix, io));
    let mut conn = pin!(settings.builder.serve_connection_with_upgrades(io, service));
    let mut closing = false;
    let mut idle = IdleWatch::new(activity, settings.idle_timeout);
    let mut check = pin!(tokio::time::sleep(idle.period));
    loop {
        tokio::select! {
            result = conn.as_mut() => return result,
            // An error means the worker is gone: drain too.
            _ = draining.wait_for(|draining| *draining), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
                idle = IdleWatch::new(activity, CLOSE_GRACE);
                check.as_mut().reset(tokio::time::Instant::now() + idle.period);
            }
            () = check.as_mut() => {
                check.as_mut().reset(tokio::time::Instant::now() + idle.period);
                if !idle.quiet_for_limit(activity) {
                    continue;
                }
                if closing {
                    // h2's graceful close waits for the client to answer a ping, which a
                    // silent client never does; with nothing in flight, nothing is lost.
                    debug!("closing connection with no request in flight");
                    return Ok(());
                }
                debug!("idle connection: closing");
                conn.as_mut().graceful_shutdown();
                closing = true;
                idle = IdleWatch::new(activity, CLOSE_GRACE);
                check.as_mut().reset(tokio::time::Instant::now() + idle.period);
            }
        }
    }
}

/// Requests in flight on one connection, and a count of every start and end.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    changes: AtomicUsize,
}

impl Activity {
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.changes.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// Checks, every `period`, whether the connection stayed without a request in flight: idle
/// once it did for [`IDLE_CHECKS`] periods in a row (nothing started or ended in each, and
/// nothing was in flight at its end, so nothing was in flight throughout).
struct IdleWatch {
    period: Duration,
    changes_seen: usize,
    quiet_periods: u32,
}

impl IdleWatch {
    fn new(activity: &Activity, limit: Duration) -> Self {
        IdleWatch {
            period: (limit / IDLE_CHECKS).max(Duration::from_millis(1)),
            changes_seen: activity.changes.load(Ordering::Relaxed),
            quiet_periods: 0,
        }
    }

    /// Called at the end of each period: whether the limit is reached.
    fn quiet_for_limit(&mut self, activity: &Activity) -> bool {
        let changes = activity.changes.load(Ordering::Relaxed);
        if changes == self.changes_seen && activity.in_flight.load(Ordering::Relaxed) == 0 {
            self.quiet_periods += 1;
        } else {
            self.changes_seen = changes;
            self.quiet_periods = 0;
        }
        self.quiet_periods >= IDLE_CHECKS
    }
}

/// One request in flight, until its response body is done or dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.changes.fetch_add(1, Ordering::Relaxed);
    }
}

pin_project! {
    /// A response body that keeps its request counted as activity while it streams.
    struct Tracked<B> {
        #[pin]
        inner: B,
        _in_flight: InFlight,
    }
}

impl<B: Body> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
