//! The admin listener (`[admin] listen`): plain HTTP/1.1 on its own address, served on the
//! runtime that runs [`Server::serve`](crate::proxy::Server::serve) (never by the workers,
//! so a saturated proxy still answers its health checks), bound at start and closed once
//! the workers have drained.
//!
//! - `GET /healthz`: 200 while serving, 503 from the moment shutdown begins (so a load
//!   balancer stops sending before the listeners close);
//! - `GET /readyz`: 200 when the upstream and the session store answer, else 503 naming
//!   what is down (`ready.rs`);
//! - `GET /metrics`: the counters (`crate::metrics`) in the Prometheus text format.

mod ready;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tracing::debug;

use crate::config::{AdminConfig, UpstreamConfig};
use crate::inject::InjectLayer;
use crate::proxy::StartError;
use ready::Readiness;

/// The bound admin listener, not yet serving.
pub struct Admin {
    listener: std::net::TcpListener,
    state: Arc<State>,
}

struct State {
    /// Shutdown has begun: `/healthz` answers 503.
    stopping: AtomicBool,
    readiness: Readiness,
}

/// The admin listener while it serves; dropping it closes the listener and its
/// connections.
pub(crate) struct Running {
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Admin {
    /// Binds `[admin] listen`; the readiness checks use `[upstream]` and `inject`'s
    /// session resolver.
    pub fn bind(
        config: &AdminConfig,
        upstream: &UpstreamConfig,
        inject: InjectLayer,
    ) -> Result<Admin, StartError> {
        let addr = config.listen;
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| StartError::AdminBind { addr, source })?;
        Ok(Admin {
            listener,
            state: Arc::new(State {
                stopping: AtomicBool::new(false),
                readiness: Readiness::new(upstream, inject),
            }),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Starts serving on the current runtime.
    pub(crate) fn start(self) -> Running {
        let state = self.state.clone();
        let task = tokio::spawn(accept_loop(self.listener, self.state));
        Running { state, task }
    }
}

impl Running {
    /// Shutdown has begun: health checks fail from now on.
    pub(crate) fn stopping(&self) {
        self.state.stopping.store(true, Ordering::Relaxed);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: std::net::TcpListener, state: Arc<State>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(error = %e, "admin listener unusable");
            return;
        }
    };
    // Dropped (each connection aborted) when this task is.
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    debug!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            // Reap finished connections as they end.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let state = state.clone();
        let service = service_fn(move |request| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(answer(&state, request).await) }
        });
        connections.spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                debug!(%peer, error = %e, "admin connection ended with an error");
            }
        });
    }
}

async fn answer(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if !matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return text(
            StatusCode::NOT_FOUND,
            "not found: /healthz, /readyz, /metrics\n",
        );
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let stopping = state.stopping.load(Ordering::Relaxed);
    match path {
        "/healthz" if stopping => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            let mut down = state.readiness.down().await;
            if stopping {
                down.insert("proxy".into(), "shutting down".into());
            }
            let status = match down.is_empty() {
                true => StatusCode::OK,
                false => StatusCode::SERVICE_UNAVAILABLE,
            };
            let mut body = serde_json::json!({ "ready": down.is_empty() });
            if !down.is_empty() {
                body["down"] = serde_json::Value::Object(down);
            }
            respond(status, "application/json", format!("{body}\n"))
        }
        _ => respond(
            StatusCode::OK,
            crate::metrics::CONTENT_TYPE,
            crate::metrics::encode(),
        ),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body)
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
