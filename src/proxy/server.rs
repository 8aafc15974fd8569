//! Listeners, TLS accept, HTTP/1.1 + h2 connections and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tower::{BoxError, Service, ServiceExt};
use tracing::{debug, info, warn};

use super::forward::Upgrades;
use super::preface::{Prefixed, read_preface};
use super::workers;
use crate::config::ServerConfig;
use crate::net::Downstream;

/// Bound listeners and what each worker needs to serve them; [`Server::serve`] runs the
/// workers until the shutdown signal, then drains connections.
pub struct Server<S> {
    listeners: Vec<std::net::TcpListener>,
    settings: Arc<Settings>,
    /// One per worker: each worker's stack keeps its own pool of upstream connections.
    services: Vec<S>,
    upgrades: Upgrades,
    worker_task: Option<WorkerTask>,
}

/// Work each worker runs beside its connections, on its own thread, until it drains (the
/// binary gives its allocator's per-thread housekeeping).
pub type WorkerTask = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What the server can serve: a cloneable service answering each request with a streamed
/// body (the proxy's stack is one).
pub trait Serve:
    Service<
        Request<Incoming>,
        Response = Response<Self::Body>,
        Error = Infallible,
        Future = Self::Answer,
    > + Clone
    + Send
    + 'static
{
    /// The response body.
    type Body: Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;
    /// The response future.
    type Answer: std::future::Future<Output = Result<Response<Self::Body>, Infallible>>
        + Send
        + 'static;
}

impl<S, B> Serve for S
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Body = B;
    type Answer = S::Future;
}

/// What every worker serves connections with.
struct Settings {
    tls: Option<TlsAcceptor>,
    builder: auto::Builder<TokioExecutor>,
    handshake_timeout: Duration,
    shutdown_timeout: Duration,
}

impl<S: Serve> Server<S> {
    /// Wraps already bound (non-blocking) listeners; one worker per service, each serving
    /// its connections with its own; `upgrades` closes spliced connections at shutdown.
    pub fn new(
        listeners: Vec<std::net::TcpListener>,
        tls: Option<TlsAcceptor>,
        config: &ServerConfig,
        services: Vec<S>,
        upgrades: Upgrades,
    ) -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size(config.max_header_bytes)
            .keep_alive(config.keep_alive);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX));
        Server {
            listeners,
            settings: Arc::new(Settings {
                tls,
                builder,
                handshake_timeout: config.header_read_timeout,
                shutdown_timeout: config.shutdown_timeout,
            }),
            services,
            upgrades,
            worker_task: None,
        }
    }

    /// Runs `task()` on each worker's runtime while the worker serves.
    pub fn with_worker_task(mut self, task: WorkerTask) -> Self {
        self.worker_task = Some(task);
        self
    }

    /// The addresses actually bound (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` completes; then stops accepting, every worker lets its
    /// in-flight requests finish for up to `shutdown_timeout`, and this returns once all
    /// are done.
    ///
    /// Each worker is a thread with its own single-threaded runtime (nginx's model): a
    /// request, its upstream connection and its body never hop between threads. Accepted
    /// connections are dealt to the workers in turn, so load spreads evenly however the
    /// threads happen to be scheduled.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let Server {
            listeners,
            settings,
            services,
            upgrades,
            worker_task,
        } = self;
        let upgrades = Arc::new(upgrades);
        let mut queues = Vec::with_capacity(services.len());
        let mut services = services.into_iter();
        let workers = workers::start(services.len(), |_, drained| {
            let (queue, accepted) = mpsc::unbounded_channel();
            queues.push(queue);
            let settings = settings.clone();
            let service = services.next();
            let upgrades = upgrades.clone();
            let task = worker_task.as_ref().map(|task| task());
            async move {
                let task = task.map(tokio::spawn);
                if let Some(service) = service {
                    serve_worker(accepted, settings, service).await;
                }
                if let Some(task) = task {
                    task.abort();
                }
                // Every worker's runtime keeps running until all have drained: a store
                // connection one worker opened may be serving another's last requests.
                drained.arrive_and_wait().await;
                upgrades.close();
            }
        });
        let dealer = Arc::new(Dealer {
            queues,
            next: AtomicUsize::new(0),
        });
        let acceptors: Vec<_> = listeners
            .into_iter()
            .filter_map(|l| match TcpListener::from_std(l) {
                Ok(l) => Some(tokio::spawn(accept_loop(l, dealer.clone()))),
                Err(e) => {
                    warn!(error = %e, "cannot listen");
                    None
                }
            })
            .collect();
        shutdown.await;
        // Stop accepting: close every listener, then let the workers drain.
        for acceptor in acceptors {
            acceptor.abort();
            let _ = acceptor.await;
        }
        drop(dealer);
        info!("shutting down: finishing in-flight requests");
        workers.join().await;
        info!("stopped");
    }
}

/// An accepted connection on its way to a worker.
type Accepted = (std::net::TcpStream, SocketAddr);

/// Hands accepted connections to the workers in turn.
struct Dealer {
    queues: Vec<mpsc::UnboundedSender<Accepted>>,
    next: AtomicUsize,
}

impl Dealer {
    /// Gives the connection to the next worker still running; `false` when none is.
    fn deal(&self, mut accepted: Accepted) -> bool {
        for _ in 0..self.queues.len() {
            let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.queues.len();
            match self.queues[turn].send(accepted) {
                Ok(()) => return true,
                Err(mpsc::error::SendError(back)) => accepted = back,
            }
        }
        false
    }
}

/// One worker: serves the connections dealt to it until the dealer is gone (shutdown),
/// then drains them.
async fn serve_worker<S: Serve>(
    mut accepted: mpsc::UnboundedReceiver<Accepted>,
    settings: Arc<Settings>,
    service: S,
) {
    let graceful = GracefulShutdown::new();
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    while let Some((stream, peer)) = accepted.recv().await {
        // Registers the socket with this worker's own event loop.
        let stream = match TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(e) => {
                debug!(%peer, error = %e, "cannot take over an accepted connection");
                continue;
            }
        };
        let connection = Connection {
            settings: settings.clone(),
            service: service.clone(),
            downstream: Downstream { peer, scheme },
        };
        tokio::spawn(connection.run(stream, graceful.watcher()));
    }
    debug!(
        connections = graceful.count(),
        "worker shutting down: finishing in-flight requests"
    );
    match tokio::time::timeout(settings.shutdown_timeout, graceful.shutdown()).await {
        Ok(()) => debug!("worker: all connections closed"),
        Err(_) => warn!(
            timeout_s = settings.shutdown_timeout.as_secs_f64(),
            "shutdown timeout reached; closing the remaining connections"
        ),
    }
}

/// Serves one connection once its first bytes arrived within `first_bytes_timeout`.
async fn serve_io<I, S, B>(
    builder: &auto::Builder<TokioExecutor>,
    mut io: I,
    first_bytes_timeout: Duration,
    downstream: Downstream,
    service: S,
    watcher: Watcher,
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
    let prefix = match read_preface(&mut io, first_bytes_timeout).await {
        Ok(Some(prefix)) => prefix,
        Ok(None) => {
            debug!(peer = %downstream.peer, "connection closed or silent before a request");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let io = TokioIo::new(Prefixed::new(prefix, io));
    let conn = builder.serve_connection_with_upgrades(io, service);
    watcher.watch(conn.into_owned()).await
}

async fn accept_loop(listener: TcpListener, dealer: Arc<Dealer>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // Leaves this event loop; the worker registers it with its own.
                let stream = match stream.into_std() {
                    Ok(stream) => stream,
                    Err(e) => {
                        debug!(%peer, error = %e, "cannot hand over an accepted connection");
                        continue;
                    }
                };
                if !dealer.deal((stream, peer)) {
                    return;
                }
            }
            Err(e) => {
                // Usually EMFILE: back off briefly instead of spinning, never give up.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One accepted client connection.
struct Connection<S> {
    settings: Arc<Settings>,
    service: S,
    downstream: Downstream,
}

impl<S: Serve> Connection<S> {
    async fn run(self, stream: TcpStream, watcher: Watcher) {
        let _ = stream.set_nodelay(true);
        let Connection {
            settings,
            service,
            downstream,
        } = self;
        let (builder, handshake_timeout) = (&settings.builder, settings.handshake_timeout);
        // Each request says who the client is, for X-Forwarded-For and the access log.
        let service = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(downstream);
            service.clone().oneshot(request)
        });
        let result = match &settings.tls {
            None => {
                serve_io(
                    builder,
                    stream,
                    handshake_timeout,
                    downstream,
                    service,
                    watcher,
                )
                .await
            }
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
                serve_io(
                    builder,
                    tls_stream,
                    handshake_timeout,
                    downstream,
                    service,
                    watcher,
                )
                .await
            }
        };
        if let Err(e) = result {
            debug!(peer = %downstream.peer, error = %e, "connection ended with an error");
        }
    }
}
