//! Listeners, TLS accept, HTTP/1.1 + h2 connections and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::forward::{Downstream, Forwarder};
use super::preface::{Prefixed, read_preface};
use crate::config::ServerConfig;

/// Accepted connections waiting for the serve loop; small, since accept is fast.
const ACCEPT_QUEUE: usize = 64;

/// Serves bound listeners until the shutdown signal, then drains connections.
pub struct Server {
    listeners: Vec<TcpListener>,
    tls: Option<TlsAcceptor>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    forwarder: Arc<Forwarder>,
    handshake_timeout: Duration,
    shutdown_timeout: Duration,
}

impl Server {
    /// Wraps already bound listeners.
    pub fn new(
        listeners: Vec<TcpListener>,
        tls: Option<TlsAcceptor>,
        config: &ServerConfig,
        forwarder: Arc<Forwarder>,
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
            tls,
            builder: Arc::new(builder),
            forwarder,
            handshake_timeout: config.header_read_timeout,
            shutdown_timeout: config.shutdown_timeout,
        }
    }

    /// The addresses actually bound (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Accepts and serves connections until `shutdown` completes; then stops accepting,
    /// lets in-flight requests finish for up to `shutdown_timeout`, and returns.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let (tx, mut rx) = mpsc::channel::<(TcpStream, SocketAddr)>(ACCEPT_QUEUE);
        let acceptors: Vec<_> = self
            .listeners
            .into_iter()
            .map(|listener| tokio::spawn(accept_loop(listener, tx.clone())))
            .collect();
        drop(tx);

        let graceful = GracefulShutdown::new();
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = rx.recv() => match accepted {
                    Some((stream, peer)) => {
                        let connection = Connection {
                            builder: self.builder.clone(),
                            forwarder: self.forwarder.clone(),
                            tls: self.tls.clone(),
                            handshake_timeout: self.handshake_timeout,
                            downstream: Downstream { peer, scheme },
                        };
                        tokio::spawn(connection.run(stream, graceful.watcher()));
                    }
                    None => break,
                },
                () = &mut shutdown => break,
            }
        }

        // Stop accepting: close every listener before draining.
        for acceptor in acceptors {
            acceptor.abort();
            let _ = acceptor.await;
        }
        drop(rx);
        info!(
            connections = graceful.count(),
            "shutting down: finishing in-flight requests"
        );
        match tokio::time::timeout(self.shutdown_timeout, graceful.shutdown()).await {
            Ok(()) => info!("all connections closed"),
            Err(_) => warn!(
                timeout_s = self.shutdown_timeout.as_secs_f64(),
                "shutdown timeout reached; closing the remaining connections"
            ),
        }
        self.forwarder.close_upgrades();
    }
}

/// Serves one connection once its first bytes arrived within `first_bytes_timeout`.
async fn serve_io<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    mut io: I,
    first_bytes_timeout: Duration,
    downstream: Downstream,
    service: S,
    watcher: Watcher,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<super::ProxyBody>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
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

async fn accept_loop(listener: TcpListener, tx: mpsc::Sender<(TcpStream, SocketAddr)>) {
    loop {
        match listener.accept().await {
            Ok(accepted) => {
                if tx.send(accepted).await.is_err() {
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
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    forwarder: Arc<Forwarder>,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    downstream: Downstream,
}

impl Connection {
    async fn run(self, stream: TcpStream, watcher: Watcher) {
        let _ = stream.set_nodelay(true);
        let Connection {
            builder,
            forwarder,
            tls,
            handshake_timeout,
            downstream,
        } = self;
        let service = service_fn(move |req| {
            let forwarder = forwarder.clone();
            async move { Ok::<_, Infallible>(forwarder.forward(req, downstream).await) }
        });
        let result = match tls {
            None => {
                serve_io(
                    &builder,
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
                    &builder,
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
