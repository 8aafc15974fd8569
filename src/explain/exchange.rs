//! Sends the page request through the proxy's real layers (guard, injection, forwarder)
//! against the configured app, and reads both sides of the injection layer: what the app
//! answered (a tap between the layer and the forwarder) and what leaves the layer (the
//! body read to its end, so the rewriter settles its outcome).
//!
//! The forwarder takes hyper's own request body type, which only a server makes, so the
//! request goes through an in-memory HTTP/1.1 connection to a hyper server whose service
//! is the stack: nothing listens on a port.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

use crate::config::Config;
use crate::inject::{Inject, InjectBody, InjectLayer, PassReason};
use crate::net::Downstream;
use crate::proxy::{self, Forwarder, Guard, GuardLayer, ProxyBody, Upgrades};

/// Bytes of each body kept for inspection (a page is rewritten whole either way).
const KEEP: usize = 8 << 20;

/// How long a page's body may take to arrive in full.
const BODY_TIME: Duration = Duration::from_secs(30);

/// The app's answer as it reached the injection layer.
pub(super) struct AppAnswer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    /// From the forwarder's call to the app's response head.
    pub(super) elapsed: Duration,
    /// The `Accept-Encoding` the layer let through to the app.
    pub(super) accept_encoding: Option<String>,
    /// The first [`KEEP`] bytes of the body, as the app encoded it.
    pub(super) body: Vec<u8>,
}

/// What the exchange showed.
pub(super) struct Observed {
    /// `None` when no request reached the app (the token endpoint, a refused host).
    pub(super) app: Option<AppAnswer>,
    /// The response as it leaves the injection layer.
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    /// The first [`KEEP`] bytes of its body, as sent to the browser.
    pub(super) body: Vec<u8>,
    /// Why the body stopped early, if it did.
    pub(super) body_error: Option<String>,
    /// The page load's outcome, as the access log reads it (`None`: no page load).
    pub(super) injection: Option<Result<(), PassReason>>,
}

/// The stack `explain` sends through: the production layers, with a tap before the app.
pub(super) struct Probe {
    stack: Guard<Inject<Tap>>,
    seen: Seen,
    /// Kept so that the forwarder's upgrade watch stays open.
    _upgrades: Upgrades,
}

impl Probe {
    /// The layers `stack.rs` assembles for a worker (minus the access log, whose line is
    /// read here from the body instead), around the configured app.
    pub(super) fn new(config: &Config, inject: &InjectLayer) -> Result<Probe, crate::StartError> {
        let upgrades = Upgrades::default();
        let forwarder = proxy::forwarder(config, &upgrades, &proxy::upstream_slots(config))?;
        let seen = Seen::default();
        let stack = ServiceBuilder::new()
            .layer(GuardLayer::new(&config.server.limits))
            .layer(inject.clone())
            .service(Tap {
                inner: forwarder,
                seen: seen.clone(),
            });
        Ok(Probe {
            stack,
            seen,
            _upgrades: upgrades,
        })
    }

    /// Sends `request` as a client at `downstream` would, within `limit`.
    pub(super) async fn send(
        &self,
        request: Request<Empty<Bytes>>,
        downstream: Downstream,
        limit: Duration,
    ) -> Result<Observed, String> {
        let observed = Arc::new(Mutex::new(None));
        let (stack, slot) = (self.stack.clone(), observed.clone());
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(downstream);
            let (stack, slot) = (stack.clone(), slot.clone());
            async move {
                let Ok(response) = stack.oneshot(request).await;
                *lock(&slot) = Some(read(response).await);
                // The explanation is read here; the in-memory client needs only a head.
                Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
            }
        });
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(server_io), service);
        let client = async move {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(client_io))
                    .await
                    .map_err(|e| e.to_string())?;
            let ask = async move {
                let answer = sender.send_request(request).await;
                // Dropping the sender closes the connection once the answer is in.
                drop(sender);
                answer.map(drop)
            };
            let (asked, _) = tokio::join!(ask, connection);
            asked.map_err(|e| e.to_string())
        };
        let both = async { tokio::join!(server, client) };
        match tokio::time::timeout(limit, both).await {
            Err(_) => {
                return Err(format!(
                    "no answer within {}",
                    humantime::format_duration(limit)
                ));
            }
            Ok((_, Err(e))) => return Err(e),
            Ok((_, Ok(()))) => {}
        }
        let taken = lock(&observed).take();
        let mut observed = taken.ok_or("the proxy gave no answer")?;
        observed.app = self.seen.take();
        Ok(observed)
    }
}

/// Reads the response leaving the layer to its end (the rewriter settles the page's
/// outcome as the body streams).
async fn read(response: Response<InjectBody<TeeBody>>) -> Observed {
    let injection = response.body().injection();
    let (parts, mut body) = response.into_parts();
    let mut kept = Vec::new();
    let mut body_error = None;
    let deadline = tokio::time::sleep(BODY_TIME);
    tokio::pin!(deadline);
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            _ = &mut deadline => {
                body_error = Some(format!("still streaming after {}s; stopped reading", BODY_TIME.as_secs()));
                break;
            }
        };
        match frame {
            None => break,
            Some(Err(e)) => {
                body_error = Some(e.to_string());
                break;
            }
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    keep(&mut kept, data);
                }
            }
        }
    }
    drop(body);
    Observed {
        app: None,
        status: parts.status,
        headers: parts.headers,
        body: kept,
        body_error,
        injection: injection.map(|i| i.result()),
    }
}

fn keep(kept: &mut Vec<u8>, data: &[u8]) {
    let room = KEEP.saturating_sub(kept.len());
    kept.extend_from_slice(&data[..data.len().min(room)]);
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data: still readable after a panic elsewhere.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the tap saw of the app's answer.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Option<AppAnswer>>>);

impl Seen {
    fn take(&self) -> Option<AppAnswer> {
        lock(&self.0).take()
    }
}

/// Records the app's answer (head and body) between the injection layer and the
/// forwarder; changes nothing.
#[derive(Clone)]
pub(super) struct Tap {
    inner: Forwarder,
    seen: Seen,
}

type TapFuture = Pin<Box<dyn Future<Output = Result<Response<TeeBody>, Infallible>> + Send>>;

impl Service<Request<Incoming>> for Tap {
    type Response = Response<TeeBody>;
    type Error = Infallible;
    type Future = TapFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Incoming>) -> TapFuture {
        let accept_encoding = request
            .headers()
            .get(http::header::ACCEPT_ENCODING)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let started = Instant::now();
        let answer = self.inner.call(request);
        let seen = self.seen.clone();
        Box::pin(async move {
            let Ok(response) = answer.await;
            *lock(&seen.0) = Some(AppAnswer {
                status: response.status(),
                headers: response.headers().clone(),
                elapsed: started.elapsed(),
                accept_encoding,
                body: Vec::new(),
            });
            Ok(response.map(|inner| TeeBody {
                inner,
                seen: Some(seen),
            }))
        })
    }
}

pin_project! {
    /// The app's body, copied (up to [`KEEP`] bytes) into the tap's record as it passes.
    pub(crate) struct TeeBody {
        #[pin]
        inner: ProxyBody,
        seen: Option<Seen>,
    }
}

/// The guard's own answers (a refused host) pass no tap.
impl From<ProxyBody> for InjectBody<TeeBody> {
    fn from(inner: ProxyBody) -> Self {
        InjectBody::identity(TeeBody { inner, seen: None })
    }
}

impl Body for TeeBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        if let (Some(Ok(frame)), Some(seen)) = (&frame, this.seen.as_ref())
            && let Some(data) = frame.data_ref()
            && let Some(app) = lock(&seen.0).as_mut()
        {
            keep(&mut app.body, data);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
