//! Forwarding one request to the app and its response back: the innermost service of the
//! proxy's stack.

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::ResponseFuture;
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::time::Sleep;
use tower::Service;
use tracing::{debug, warn};

use super::body::{BodyPace, ProxyBody, RequestBody};
use super::client::UpstreamClient;
use super::error::ProxyError;
use super::headers;
use crate::config::{ClientLimits, UpstreamConfig};
use crate::metrics;
use crate::net::Downstream;

/// Sends requests to the upstream app and streams the answers back; failures become short
/// 502/504 answers. Cheap to clone (one per worker shares nothing but its upstream pool).
#[derive(Clone)]
pub struct Forwarder {
    inner: Arc<Inner>,
}

struct Inner {
    client: UpstreamClient,
    scheme: Scheme,
    authority: Authority,
    base_path: String,
    timeout: Duration,
    /// Turns true when spliced (WebSocket) connections must close (shutdown).
    upgrades_closed: watch::Receiver<bool>,
    /// `upstream.max_connections`, shared by every worker's forwarder.
    slots: Arc<Semaphore>,
    pace: BodyPace,
}

/// Closes every spliced (WebSocket) connection of the forwarders subscribed to it, once
/// HTTP requests have drained at shutdown.
pub struct Upgrades(watch::Sender<bool>);

impl Default for Upgrades {
    fn default() -> Self {
        Upgrades(watch::Sender::new(false))
    }
}

impl Upgrades {
    /// What a forwarder watches.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }

    /// Closes every spliced connection.
    pub fn close(&self) {
        self.0.send_replace(true);
    }
}

impl Forwarder {
    /// A forwarder for `[upstream]`, using the pooled `client`; spliced connections close
    /// when `upgrades_closed` turns true; `slots` bounds the requests in flight to the app
    /// (shared by the workers); request bodies must come as fast as `limits` say.
    pub(crate) fn new(
        client: UpstreamClient,
        upstream: &UpstreamConfig,
        limits: &ClientLimits,
        upgrades_closed: watch::Receiver<bool>,
        slots: Arc<Semaphore>,
    ) -> Self {
        let base_path = upstream.url.path().trim_end_matches('/').to_string();
        Forwarder {
            inner: Arc::new(Inner {
                client,
                scheme: upstream.url.scheme().cloned().unwrap_or(Scheme::HTTP),
                // Config validation guarantees an authority; the fallback is never used.
                authority: upstream
                    .url
                    .authority()
                    .cloned()
                    .unwrap_or_else(|| Authority::from_static("127.0.0.1")),
                base_path,
                timeout: upstream.timeout,
                upgrades_closed,
                slots,
                pace: BodyPace {
                    timeout: limits.body_timeout,
                    min_rate: limits.body_min_rate,
                },
            }),
        }
    }
}

impl Service<Request<Incoming>> for Forwarder {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = ForwardFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> ForwardFuture {
        // The server always says who the client is; a bare call is a local one.
        let downstream = request
            .extensions()
            .get::<Downstream>()
            .copied()
            .unwrap_or(Downstream {
                peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                scheme: "http",
                trusted: false,
            });
        // Both cheap clones (shared bytes), for a failure's log line.
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let state = match self.inner.slots.clone().try_acquire_owned() {
            Ok(permit) => self.inner.start(request, downstream, permit),
            // Every app connection is busy: wait for one, up to `upstream.timeout`.
            Err(_) => State::Queued {
                request: Some((request, downstream)),
                slot: Box::pin(self.inner.slots.clone().acquire_owned()),
                deadline: Box::pin(tokio::time::sleep(self.inner.timeout)),
            },
        };
        ForwardFuture {
            state,
            inner: self.inner.clone(),
            method,
            uri,
            started: Instant::now(),
        }
    }
}

/// A request on its way to the app.
struct Sent {
    response: ResponseFuture,
    /// Completes once the request body has been sent in full.
    body_sent: oneshot::Receiver<()>,
    /// The client's side of a WebSocket upgrade it asked for.
    client_upgrade: Option<OnUpgrade>,
}

pin_project! {
    /// The response future of [`Forwarder`]: the app's response head, or a short 502/504
    /// when there is none. Not boxed: it is polled in place inside the connection's future.
    pub struct ForwardFuture {
        #[pin]
        state: State,
        inner: Arc<Inner>,
        method: Method,
        uri: Uri,
        // For the upstream latency metric (a wait for a free app connection included).
        started: Instant,
    }
}

/// Waiting for a place under `upstream.max_connections`.
type SlotFuture = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

pin_project! {
    #[project = StateProj]
    enum State {
        Failed { error: Option<ProxyError> },
        Queued {
            request: Option<(Request<Incoming>, Downstream)>,
            slot: SlotFuture,
            deadline: Pin<Box<Sleep>>,
        },
        Waiting {
            permit: Option<OwnedSemaphorePermit>,
            response: ResponseFuture,
            body_sent: Option<oneshot::Receiver<()>>,
            // `upstream.timeout`, armed once the upload is done: a large POST is not the app
            // being slow.
            #[pin]
            deadline: Option<Sleep>,
            client_upgrade: Option<OnUpgrade>,
        },
    }
}

impl Future for ForwardFuture {
    type Output = Result<Response<ProxyBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let StateProj::Queued {
            request,
            slot,
            deadline,
        } = this.state.as_mut().project()
        {
            let next = match slot.as_mut().poll(cx) {
                Poll::Ready(Ok(permit)) => match request.take() {
                    Some((request, downstream)) => this.inner.start(request, downstream, permit),
                    None => State::Failed { error: None },
                },
                Poll::Ready(Err(_)) => State::Failed {
                    error: Some(ProxyError::Busy),
                },
                Poll::Pending => {
                    ready!(deadline.as_mut().poll(cx));
                    State::Failed {
                        error: Some(ProxyError::Busy),
                    }
                }
            };
            this.state.set(next);
        }
        let result = match this.state.project() {
            StateProj::Failed { error } => Err(error.take().unwrap_or(ProxyError::BadTarget)),
            StateProj::Queued { .. } => return Poll::Pending,
            StateProj::Waiting {
                permit,
                response,
                body_sent,
                mut deadline,
                client_upgrade,
            } => match Pin::new(response).poll(cx) {
                Poll::Ready(Ok(response)) => {
                    this.inner
                        .received(response, client_upgrade.take(), permit.take())
                }
                Poll::Ready(Err(e)) => Err(ProxyError::from_client(e)),
                Poll::Pending => {
                    if let Some(sent) = body_sent {
                        ready!(Pin::new(sent).poll(cx)).ok();
                        *body_sent = None;
                        deadline.set(Some(tokio::time::sleep(this.inner.timeout)));
                    }
                    match deadline.as_pin_mut() {
                        Some(deadline) => {
                            ready!(deadline.poll(cx));
                            Err(ProxyError::Timeout)
                        }
                        None => return Poll::Pending,
                    }
                }
            },
        };
        match &result {
            Ok(_) => metrics::upstream_answered(this.started.elapsed()),
            Err(err) => {
                if let Some(kind) = err.upstream_kind() {
                    metrics::upstream_failed(kind);
                }
            }
        }
        Poll::Ready(Ok(result.unwrap_or_else(|err| {
            // The path only: query strings may carry tokens.
            warn!(
                method = %this.method, path = this.uri.path(), fault = %err.fault(),
                status = err.status().as_u16(), error = %err.causes(), "request failed"
            );
            err.response()
        })))
    }
}

impl Inner {
    /// Sends the request, holding `permit` until its response body ends.
    fn start(
        &self,
        request: Request<Incoming>,
        downstream: Downstream,
        permit: OwnedSemaphorePermit,
    ) -> State {
        match self.send(request, downstream) {
            Ok(sent) => State::Waiting {
                permit: Some(permit),
                response: sent.response,
                body_sent: Some(sent.body_sent),
                deadline: None,
                client_upgrade: sent.client_upgrade,
            },
            Err(error) => State::Failed { error: Some(error) },
        }
    }

    /// Rewrites the request for the app (hop-by-hop headers, `X-Forwarded-*`, the upstream
    /// URI) and sends it.
    fn send(&self, mut req: Request<Incoming>, downstream: Downstream) -> Result<Sent, ProxyError> {
        let upgrade = headers::websocket_upgrade(req.headers());
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();

        // The target's authority wins over Host (RFC 9112 §3.2.2); h2 carries it in
        // :authority, origin-form h1 requests only in Host.
        let client_host = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .or_else(|| parts.headers.get(header::HOST).cloned());
        headers::remove_hop_by_hop(&mut parts.headers);
        headers::merge_cookies(&mut parts.headers);
        // hyper answers `Expect: 100-continue` itself when the body is first read.
        parts.headers.remove(header::EXPECT);
        if let Some(protocol) = upgrade {
            headers::restore_upgrade(&mut parts.headers, protocol);
        }
        headers::set_forwarded(&mut parts.headers, &downstream, client_host.as_ref());
        let host = client_host
            .or_else(|| HeaderValue::from_str(self.authority.as_str()).ok())
            .ok_or(ProxyError::BadTarget)?;
        parts.headers.insert(header::HOST, host);
        parts.uri = self.upstream_uri(parts.uri.path_and_query())?;
        parts.version = Version::HTTP_11;

        let (body, body_sent) = RequestBody::new(body, self.pace);
        Ok(Sent {
            response: self.client.request(Request::from_parts(parts, body)),
            body_sent,
            client_upgrade,
        })
    }

    /// The app's response head: hop-by-hop headers removed, a WebSocket upgrade spliced.
    fn received(
        &self,
        mut response: Response<Incoming>,
        client_upgrade: Option<OnUpgrade>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let client_upgrade = client_upgrade.ok_or(ProxyError::UnexpectedUpgrade)?;
            let protocol = response.headers().get(header::UPGRADE).cloned();
            headers::remove_hop_by_hop(response.headers_mut());
            if let Some(protocol) = protocol {
                headers::restore_upgrade(response.headers_mut(), protocol);
            }
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let mut stop = self.upgrades_closed.clone();
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok((client, app)) => {
                        let (mut client, mut app) = (TokioIo::new(client), TokioIo::new(app));
                        tokio::select! {
                            result = tokio::io::copy_bidirectional(&mut client, &mut app) => match result {
                                Ok((up, down)) => debug!(up, down, "upgraded connection closed"),
                                Err(e) => debug!(error = %e, "upgraded connection ended with an error"),
                            },
                            _ = stop.wait_for(|stopped| *stopped) => debug!("upgraded connection closed by shutdown"),
                        }
                    }
                    Err(e) => debug!(error = %e, "upgrade did not complete"),
                }
            });
        } else {
            headers::remove_hop_by_hop(response.headers_mut());
        }
        Ok(response.map(|body| ProxyBody::upstream(body, permit)))
    }

    fn upstream_uri(&self, path_and_query: Option<&PathAndQuery>) -> Result<Uri, ProxyError> {
        let pq = path_and_query.map_or("/", |pq| pq.as_str());
        let pq = if self.base_path.is_empty() {
            PathAndQuery::try_from(pq)
        } else {
            PathAndQuery::try_from(format!("{}{pq}", self.base_path))
        }
        .map_err(|_| ProxyError::BadTarget)?;
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|_| ProxyError::BadTarget)
    }
}
