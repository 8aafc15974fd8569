//! The access log as the outermost layer: one line per request, written when the response
//! head is ready (method, path without the query, status, latency, client).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{Method, Request, Response, Uri};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::info;

use crate::net::Downstream;

/// Logs each request at `INFO` under the target `access`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLogLayer;

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog { inner }
    }
}

/// The service [`AccessLogLayer`] makes.
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for AccessLog<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = AccessFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        AccessFuture {
            // Both cheap clones (shared bytes); the log keeps the path only, since query
            // strings may carry tokens.
            method: request.method().clone(),
            uri: request.uri().clone(),
            client: request
                .extensions()
                .get::<Downstream>()
                .map(|d| d.peer.ip()),
            started: Instant::now(),
            inner: self.inner.call(request),
        }
    }
}

/// The client's address, or `-` for a request that came without one.
struct Client(Option<IpAddr>);

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("-"),
        }
    }
}

pin_project! {
    /// The response future of [`AccessLog`].
    pub struct AccessFuture<F> {
        #[pin]
        inner: F,
        method: Method,
        uri: Uri,
        client: Option<IpAddr>,
        started: Instant,
    }
}

impl<F, B, E> Future for AccessFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            info!(
                target: "access",
                method = %this.method,
                path = this.uri.path(),
                status = response.status().as_u16(),
                // Whole microseconds: prints as 0.14, not 0.14040799999999998.
                latency_ms = this.started.elapsed().as_micros() as f64 / 1000.0,
                client = %Client(*this.client),
            );
        }
        Poll::Ready(result)
    }
}
