//! The access log as the outermost layer: one line per request (method, path without the
//! query, status, latency to the response head, client, request id, and for page loads
//! what became of the Messenger), written once the response is done, since a page's body
//! settles whether the snippet went in. It also gives every request its `X-Request-Id` and
//! counts answers by status class.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::{BoxError, Layer, Service};
use tracing::info;

use super::request_id::{RequestId, request_id};
use crate::inject::{InjectBody, Injection};
use crate::metrics;
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

/// The service [`AccessLogLayer`] makes, around the injection layer (whose bodies say what
/// became of each page).
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
}

impl<S, ReqB, B> Service<Request<ReqB>> for AccessLog<S>
where
    S: Service<Request<ReqB>, Response = Response<InjectBody<B>>>,
{
    type Response = Response<AccessBody<InjectBody<B>>>;
    type Error = S::Error;
    type Future = AccessFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqB>) -> Self::Future {
        let id = request_id(request.headers_mut());
        // Boxed once here: the line rides along with the response, which is moved several
        // times on its way out, and a pointer moves cheaper than two hundred bytes.
        let line = Box::new(Line {
            // Both cheap clones (shared bytes); the log keeps the path only, since query
            // strings may carry tokens.
            method: request.method().clone(),
            uri: request.uri().clone(),
            status: 0,
            latency: Duration::ZERO,
            client: request
                .extensions()
                .get::<Downstream>()
                .map(|d| d.peer.ip()),
            id,
            injection: None,
        });
        AccessFuture {
            line: Some(line),
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
        line: Option<Box<Line>>,
        started: Instant,
    }
}

impl<F, B, E> Future for AccessFuture<F>
where
    F: Future<Output = Result<Response<InjectBody<B>>, E>>,
{
    type Output = Result<Response<AccessBody<InjectBody<B>>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        metrics::request(response.status());
        let line = this.line.take().map(|mut line| {
            line.status = response.status().as_u16();
            line.latency = this.started.elapsed();
            line.injection = response.body().injection();
            line
        });
        Poll::Ready(Ok(response.map(|inner| AccessBody { inner, line })))
    }
}

pin_project! {
    /// A response body that writes the request's access line when it is dropped: sent in
    /// full, cut off, or never read (a `HEAD`, a `304`).
    pub struct AccessBody<B> {
        #[pin]
        inner: B,
        line: Option<Box<Line>>,
    }
}

impl<B> Body for AccessBody<B>
where
    B: Body<Data = Bytes, Error = BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What the access line says, gathered by the time the response head is ready.
struct Line {
    method: Method,
    uri: Uri,
    /// 0 until the response head is ready.
    status: u16,
    latency: Duration,
    client: Option<IpAddr>,
    id: RequestId,
    /// For page loads: read when the line is written, once the body has settled it.
    injection: Option<Injection>,
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.status == 0 {
            // No response head was made (the client left first): no line, as before.
            return;
        }
        let (outcome, reason) = match self.injection.as_ref().map(Injection::result) {
            None => (None, None),
            Some(Ok(())) => (Some("injected"), None),
            Some(Err(reason)) => (Some("passed"), Some(reason.label())),
        };
        info!(
            target: "access",
            method = %self.method,
            path = self.uri.path(),
            status = self.status,
            // Whole microseconds: prints as 0.14, not 0.14040799999999998.
            latency_ms = self.latency.as_micros() as f64 / 1000.0,
            client = %Client(self.client),
            request_id = self.id.as_str(),
            outcome,
            reason,
        );
    }
}
