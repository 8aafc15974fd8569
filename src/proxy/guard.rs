//! The first layer inside the access log: decides whether the peer is a trusted proxy (and
//! so which scheme the browser used), and refuses request targets no app should see
//! (userinfo, a `Host` outside `server.allowed_hosts`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use http::header::{self, HeaderMap};
use http::{Request, Response, StatusCode};
use ipnet::IpNet;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::debug;

use super::body::ProxyBody;
use super::error::plain_response;
use crate::config::ClientLimits;
use crate::headers::header_tokens;
use crate::net::Downstream;

/// Who is trusted, and which hosts are served; a reload changes them for every service
/// the layer made.
#[derive(Debug, Clone, Default)]
pub struct GuardLayer {
    rules: Arc<ArcSwap<Rules>>,
}

#[derive(Debug, Default)]
struct Rules {
    trusted_proxies: Vec<IpNet>,
    /// Lower-cased; `*.example.com` matches any subdomain.
    allowed_hosts: Vec<String>,
}

impl GuardLayer {
    /// From `[server] trusted_proxies` and `allowed_hosts`.
    pub fn new(limits: &ClientLimits) -> Self {
        GuardLayer {
            rules: Arc::new(ArcSwap::from_pointee(Rules::new(limits))),
        }
    }

    /// The next requests follow `limits`' `trusted_proxies` and `allowed_hosts`.
    pub fn reload(&self, limits: &ClientLimits) {
        self.rules.store(Arc::new(Rules::new(limits)));
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            rules: self.rules.clone(),
        }
    }
}

/// The service [`GuardLayer`] makes.
#[derive(Debug, Clone)]
pub struct Guard<S> {
    inner: S,
    rules: Arc<ArcSwap<Rules>>,
}

/// Why a request is refused before anything else sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// `http://user:pw@host/`: credentials in the target, which browsers never send and
    /// which would reach the app as `X-Forwarded-Host`.
    Userinfo,
    /// A `Host` that `server.allowed_hosts` does not list.
    UnknownHost,
}

impl Rules {
    fn new(limits: &ClientLimits) -> Self {
        Rules {
            trusted_proxies: limits.trusted_proxies.clone(),
            allowed_hosts: limits.allowed_hosts.clone(),
        }
    }

    fn trusts(&self, downstream: &Downstream) -> bool {
        // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
        let ip = downstream.peer.ip().to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    fn refusal<B>(&self, request: &Request<B>) -> Option<Refusal> {
        let host_header = request
            .headers()
            .get(header::HOST)
            .map(|h| h.as_bytes())
            .unwrap_or_default();
        let target_authority = request.uri().authority().map(|a| a.as_str());
        if target_authority.is_some_and(|a| a.contains('@')) || host_header.contains(&b'@') {
            return Some(Refusal::Userinfo);
        }
        if self.allowed_hosts.is_empty() {
            return None;
        }
        // The target's authority wins over Host (RFC 9112 §3.2.2), as the forwarder sends.
        let host = match target_authority {
            Some(a) => a.as_bytes(),
            None => host_header,
        };
        let allowed = std::str::from_utf8(host)
            .ok()
            .map(host_name)
            .is_some_and(|name| self.allows(&name));
        (!allowed).then_some(Refusal::UnknownHost)
    }

    fn allows(&self, name: &str) -> bool {
        self.allowed_hosts
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(parent) => name
                    .strip_suffix(parent)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                None => pattern == name,
            })
    }
}

/// A `Host` value without its port or trailing dot, lower-cased.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if host.starts_with('[') {
        // [::1]:8080 → [::1]
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The scheme a trusted proxy says the browser used: the first `X-Forwarded-Proto` value.
fn forwarded_scheme(headers: &HeaderMap) -> Option<&'static str> {
    let first =
        header_tokens(headers, &http::HeaderName::from_static("x-forwarded-proto")).next()?;
    if first.eq_ignore_ascii_case("https") {
        Some("https")
    } else if first.eq_ignore_ascii_case("http") {
        Some("http")
    } else {
        None
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Guard<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>, Error = Infallible>,
    ResB: From<ProxyBody>,
{
    type Response = Response<ResB>;
    type Error = Infallible;
    type Future = GuardFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqB>) -> Self::Future {
        // The one read of the current rules (an atomic load, no reference count).
        let rules = self.rules.load();
        if let Some(refusal) = rules.refusal(&request) {
            debug!(?refusal, path = request.uri().path(), "request refused");
            let response = match refusal {
                Refusal::Userinfo => plain_response(
                    StatusCode::BAD_REQUEST,
                    "credentials in the request target are not accepted\n",
                ),
                Refusal::UnknownHost => {
                    plain_response(StatusCode::MISDIRECTED_REQUEST, "unknown host\n")
                }
            };
            return GuardFuture::Refused {
                response: Some(response.map(ResB::from)),
            };
        }
        let forwarded = forwarded_scheme(request.headers());
        if let Some(downstream) = request.extensions_mut().get_mut::<Downstream>() {
            downstream.trusted = rules.trusts(downstream);
            if downstream.trusted
                && let Some(scheme) = forwarded
            {
                downstream.scheme = scheme;
            }
        }
        GuardFuture::Inner {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The response future of [`Guard`].
    #[project = GuardProj]
    #[allow(missing_docs)] // pin_project_lite cannot carry docs on variant fields
    pub enum GuardFuture<F, B> {
        /// Passed on.
        Inner { #[pin] inner: F },
        /// Refused here.
        Refused { response: Option<Response<B>> },
    }
}

impl<F, B> Future for GuardFuture<F, B>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: From<ProxyBody>,
{
    type Output = Result<Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GuardProj::Inner { inner } => inner.poll(cx),
            GuardProj::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled again after completion: a caller's bug; answer something valid.
                None => Poll::Ready(Ok(
                    plain_response(StatusCode::INTERNAL_SERVER_ERROR, "\n").map(B::from)
                )),
            },
        }
    }
}

/// The proxy's refusals inside the injection layer's body type.
impl From<ProxyBody> for crate::inject::InjectBody<ProxyBody> {
    fn from(body: ProxyBody) -> Self {
        crate::inject::InjectBody::identity(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(trusted: &[&str], hosts: &[&str]) -> Rules {
        Rules {
            trusted_proxies: trusted.iter().map(|n| n.parse().unwrap()).collect(),
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn request(target: &str, host: Option<&str>) -> Request<()> {
        let mut r = Request::builder().uri(target);
        if let Some(host) = host {
            r = r.header("host", host);
        }
        r.body(()).unwrap()
    }

    #[test]
    fn userinfo_is_refused_in_the_target_and_in_host() {
        let r = rules(&[], &[]);
        let bad = request("http://user:pw@evil.example:8443/", None);
        assert_eq!(r.refusal(&bad), Some(Refusal::Userinfo));
        let bad = request("/", Some("user@app.example"));
        assert_eq!(r.refusal(&bad), Some(Refusal::Userinfo));
        assert_eq!(r.refusal(&request("/", Some("app.example"))), None);
    }

    #[test]
    fn allowed_hosts_match_names_and_subdomains_without_ports() {
        let r = rules(&[], &["app.example.com", "*.example.org", "[::1]"]);
        for ok in [
            "app.example.com",
            "APP.example.com:8443",
            "app.example.com.",
            "a.b.example.org",
            "[::1]:80",
        ] {
            assert_eq!(r.refusal(&request("/", Some(ok))), None, "{ok}");
        }
        for bad in [
            "evil.example",
            "example.org",
            "xexample.org",
            "app.example.com.evil",
            "",
        ] {
            assert_eq!(
                r.refusal(&request("/", Some(bad))),
                Some(Refusal::UnknownHost),
                "{bad}"
            );
        }
        // The target's authority is what the app is asked for.
        let r2 = request("http://evil.example/", Some("app.example.com"));
        assert_eq!(r.refusal(&r2), Some(Refusal::UnknownHost));
    }

    #[test]
    fn trust_follows_the_peer_including_mapped_ipv4() {
        let r = rules(&["10.0.0.0/8"], &[]);
        let d = |peer: &str| Downstream {
            peer: peer.parse().unwrap(),
            scheme: "http",
            trusted: false,
        };
        assert!(r.trusts(&d("10.1.2.3:5000")));
        assert!(r.trusts(&d("[::ffff:10.1.2.3]:5000")));
        assert!(!r.trusts(&d("192.0.2.1:5000")));
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", "HTTPS, http".parse().unwrap());
        assert_eq!(forwarded_scheme(&h), Some("https"));
        h.insert("x-forwarded-proto", "gopher".parse().unwrap());
        assert_eq!(forwarded_scheme(&h), None);
    }
}
