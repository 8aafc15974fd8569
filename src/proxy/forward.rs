//! Forwarding one request to the app and its response back: the proxy's inner service.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::body::{ProxyBody, RequestBody};
use super::client::UpstreamClient;
use super::error::ProxyError;
use super::headers;
use crate::config::UpstreamConfig;

/// The client side of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Downstream {
    /// The client's address.
    pub peer: SocketAddr,
    /// `"http"` or `"https"`: how the client reached the proxy.
    pub scheme: &'static str,
}

/// Sends requests to the upstream app and streams the answers back.
pub struct Forwarder {
    client: UpstreamClient,
    scheme: Scheme,
    authority: Authority,
    base_path: String,
    timeout: Duration,
    /// Tells spliced (WebSocket) connections to close at shutdown.
    upgrades_stop: watch::Sender<bool>,
    /// Request and response hooks (the snippet injection).
    filter: Option<Arc<dyn Filter>>,
}

/// A future boxed so that [`Filter`] stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Hooks around forwarding, named after Pingora's phases: `request_filter` runs before the
/// request goes upstream and may change it; what it returns sees the response head and may
/// swap the body.
pub trait Filter: Send + Sync + 'static {
    /// Inspects (and may change) the request; says whether to forward it (with the hook for
    /// its response, if any) or answer it directly.
    fn request_filter<'a>(
        &'a self,
        request: &'a mut Request<Incoming>,
        downstream: Downstream,
    ) -> BoxFuture<'a, FilterOutcome>;
}

/// What a [`Filter`] decided about a request.
pub enum FilterOutcome {
    /// Forward it; the hook, if any, sees the response.
    Forward(Option<Box<dyn ResponseHook>>),
    /// Do not forward: send this response (an endpoint of the proxy's own).
    Respond(Response<ProxyBody>),
}

/// The response half of a [`Filter`], carrying what the request half learned.
pub trait ResponseHook: Send {
    /// Returns the response to send (the same one, or a rewritten one).
    fn response_filter(self: Box<Self>, response: Response<ProxyBody>) -> Response<ProxyBody>;
}

impl Forwarder {
    /// A forwarder for `[upstream]`, using the pooled `client`.
    pub fn new(client: UpstreamClient, upstream: &UpstreamConfig) -> Self {
        let base_path = upstream.url.path().trim_end_matches('/').to_string();
        Forwarder {
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
            upgrades_stop: watch::Sender::new(false),
            filter: None,
        }
    }

    /// Runs `filter` around every request.
    pub fn with_filter(mut self, filter: Arc<dyn Filter>) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Closes every spliced WebSocket connection (called once HTTP requests have drained).
    pub fn close_upgrades(&self) {
        self.upgrades_stop.send_replace(true);
    }

    /// Proxies one request; errors become short 502/504 responses, and one access log
    /// line is written per request.
    pub async fn forward(
        &self,
        req: Request<Incoming>,
        downstream: Downstream,
    ) -> Response<ProxyBody> {
        let started = Instant::now();
        let method = req.method().clone();
        // The path only: query strings may carry tokens.
        let path = req.uri().path().to_owned();
        let mut req = req;
        let outcome = match &self.filter {
            Some(filter) => filter.request_filter(&mut req, downstream).await,
            None => FilterOutcome::Forward(None),
        };
        let response = match outcome {
            FilterOutcome::Respond(response) => response,
            FilterOutcome::Forward(hook) => {
                let response = match self.try_forward(req, downstream).await {
                    Ok(response) => response,
                    Err(err) => {
                        warn!(
                            %method, path, fault = %err.fault(), status = err.status().as_u16(),
                            error = %err.causes(), "request failed"
                        );
                        err.response()
                    }
                };
                match hook {
                    Some(hook) => hook.response_filter(response),
                    None => response,
                }
            }
        };
        info!(
            target: "access",
            %method,
            path,
            status = response.status().as_u16(),
            // Whole microseconds: prints as 0.14, not 0.14040799999999998.
            latency_ms = started.elapsed().as_micros() as f64 / 1000.0,
            client = %downstream.peer.ip(),
        );
        response
    }

    async fn try_forward(
        &self,
        mut req: Request<Incoming>,
        downstream: Downstream,
    ) -> Result<Response<ProxyBody>, ProxyError> {
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
        headers::set_forwarded(
            &mut parts.headers,
            downstream.peer.ip(),
            downstream.scheme,
            client_host.as_ref(),
        );
        let host = client_host
            .or_else(|| HeaderValue::from_str(self.authority.as_str()).ok())
            .ok_or(ProxyError::BadTarget)?;
        parts.headers.insert(header::HOST, host);
        parts.uri = self.upstream_uri(parts.uri.path_and_query())?;
        parts.version = Version::HTTP_11;

        let (body, body_sent) = RequestBody::new(body);
        let request = Request::from_parts(parts, body);
        // upstream.timeout counts from the end of the upload: a large POST is not the app
        // being slow.
        let head_deadline = async {
            let _ = body_sent.await;
            tokio::time::sleep(self.timeout).await;
        };
        let mut response = tokio::select! {
            result = self.client.request(request) => result.map_err(ProxyError::from_client)?,
            () = head_deadline => return Err(ProxyError::Timeout),
        };

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let client_upgrade = client_upgrade.ok_or(ProxyError::UnexpectedUpgrade)?;
            let protocol = response.headers().get(header::UPGRADE).cloned();
            headers::remove_hop_by_hop(response.headers_mut());
            if let Some(protocol) = protocol {
                headers::restore_upgrade(response.headers_mut(), protocol);
            }
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let mut stop = self.upgrades_stop.subscribe();
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
        Ok(response.map(ProxyBody::from))
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
