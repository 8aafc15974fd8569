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
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tower::{BoxError, Service};
use tracing::{debug, info, warn};

use super::connection::{Connection, Settings};
use super::forward::Upgrades;
use super::workers;
use crate::config::ServerConfig;
use crate::net::Downstream;

/// Bound listeners and what each worker needs to serve them; [`Server::serve`] runs the
/// workers until the shutdown signal, then drains connections.
pub struct Server<S> {
    listeners: Vec<std::net::TcpListener>,
    settings: Arc<Settings>,
    shutdown_timeout: Duration,
    /// `server.max_connections`: one permit per client connection.
    slots: Arc<Semaphore>,
    /// One per worker: each worker's stack keeps its own pool of upstream connections.
    services: Vec<S>,
    upgrades: Upgrades,
    worker_task: Option<WorkerTask>,
    /// `[admin]`: served beside the workers, until they have drained.
    admin: Option<crate::admin::Admin>,
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

impl<S: Serve> Server<S> {
    /// Wraps already bound (non-blocking) listeners; one worker per service, each serving
    /// its connections with its own; `upgrades` closes spliced connections at shutdown.
    /// `upstream_connections` (the bound on app connections) sizes the default client
    /// connection limit.
    pub fn new(
        listeners: Vec<std::net::TcpListener>,
        tls: Option<TlsAcceptor>,
        config: &ServerConfig,
        services: Vec<S>,
        upgrades: Upgrades,
        upstream_connections: usize,
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
            .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
            // Each stream may hold an app connection: one client must not take them all.
            .max_concurrent_streams(config.limits.h2_max_streams);
        let max_connections = config
            .limits
            .max_connections
            .unwrap_or_else(|| default_max_connections(upstream_connections));
        info!(max_connections, "client connection limit");
        Server {
            listeners,
            settings: Arc::new(Settings {
                tls,
                builder,
                handshake_timeout: config.header_read_timeout,
                idle_timeout: config.limits.idle_timeout,
            }),
            shutdown_timeout: config.shutdown_timeout,
            slots: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
            services,
            upgrades,
            worker_task: None,
            admin: None,
        }
    }

    /// Serves the admin endpoints (`[admin]`) while the proxy serves.
    pub fn with_admin(mut self, admin: crate::admin::Admin) -> Self {
        self.admin = Some(admin);
        self
    }

    /// Where the admin endpoints listen, if they do.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
            .as_ref()
            .and_then(crate::admin::Admin::local_addr)
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
            shutdown_timeout,
            slots,
            services,
            upgrades,
            worker_task,
            admin,
        } = self;
        let admin = admin.map(crate::admin::Admin::start);
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
                    serve_worker(accepted, settings, service, shutdown_timeout).await;
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
                Ok(l) => Some(tokio::spawn(accept_loop(l, dealer.clone(), slots.clone()))),
                Err(e) => {
                    warn!(error = %e, "cannot listen");
                    None
                }
            })
            .collect();
        shutdown.await;
        if let Some(admin) = &admin {
            admin.stopping();
        }
        // Stop accepting: close every listener, then let the workers drain.
        for acceptor in acceptors {
            acceptor.abort();
            let _ = acceptor.await;
        }
        drop(dealer);
        info!("shutting down: finishing in-flight requests");
        workers.join().await;
        drop(admin);
        info!("stopped");
    }
}

/// An accepted connection on its way to a worker, with its place under the limit.
type Accepted = (std::net::TcpStream, SocketAddr, OwnedSemaphorePermit);

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
    shutdown_timeout: Duration,
) {
    // Every connection holds a receiver: `closed()` completes once all have ended.
    let (draining, _) = watch::channel(false);
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    while let Some((stream, peer, slot)) = accepted.recv().await {
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
            // The guard layer decides trust per request.
            downstream: Downstream {
                peer,
                scheme,
                trusted: false,
            },
            draining: draining.subscribe(),
            _slot: slot,
        };
        tokio::spawn(connection.run(stream));
    }
    debug!(
        connections = draining.receiver_count(),
        "worker shutting down: finishing in-flight requests"
    );
    draining.send_replace(true);
    match tokio::time::timeout(shutdown_timeout, draining.closed()).await {
        Ok(()) => debug!("worker: all connections closed"),
        Err(_) => warn!(
            timeout_s = shutdown_timeout.as_secs_f64(),
            "shutdown timeout reached; closing the remaining connections"
        ),
    }
}

async fn accept_loop(listener: TcpListener, dealer: Arc<Dealer>, slots: Arc<Semaphore>) {
    let mut at_limit = false;
    loop {
        // At `max_connections`, new clients wait in the listen backlog until one closes.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                at_limit = false;
                slot
            }
            Err(_) => {
                if !at_limit {
                    warn!("server.max_connections reached: new connections wait until one closes");
                    at_limit = true;
                }
                match slots.clone().acquire_owned().await {
                    Ok(slot) => slot,
                    Err(_) => return,
                }
            }
        };
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
                if !dealer.deal((stream, peer, slot)) {
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

/// File descriptors kept for what is not a client connection: the listeners, idle app
/// connections, session stores, logs.
const RESERVED_FDS: u64 = 256;

/// Raises the open-file soft limit to the hard one (systemd's default soft limit of 1,024
/// is a few hundred clients), then leaves room in it for an app connection per client and
/// the reserve: a flood of clients meets the connection limit, never `EMFILE`.
fn default_max_connections(upstream_connections: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            warn!(error = %e, "cannot read the open-file limit; assuming 1024");
            1024
        }
    };
    let upstream = u64::try_from(upstream_connections).unwrap_or(u64::MAX);
    let clients = limit.saturating_sub(RESERVED_FDS.saturating_add(upstream));
    usize::try_from(clients.max(64)).unwrap_or(usize::MAX)
}
