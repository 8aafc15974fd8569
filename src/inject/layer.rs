//! [`InjectLayer`] and [`Inject`]: the request half. Reads what the request shows, asks
//! [`decide::step`] what to do, identifies the session when the page could get the snippet,
//! prepares the request for a full page, and calls the inner service; the response half is
//! in `respond.rs`, the waiting in [`ResponseFuture`].

use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response};
use serde_json::{Map, Value};
use tower::{Layer, Service};

use super::config::InjectConfig;
use super::decide::{self, Facts, RequestFacts, Step, Who};
use super::future::ResponseFuture;
use super::shared::CurrentIdentity;
pub(super) use super::shared::Shared;
use super::token::TokenEndpoint;
use super::{InjectBody, is_page_request};
use crate::identity::{LookupResult, Resolution, User, with_session_cookie};

/// Puts the Intercom Messenger, in secure mode, on the HTML pages of the service it wraps.
/// Built from an [`InjectConfig`], and given a new one by [`reload`](Self::reload); cheap
/// to clone (clones and the services they make share the config). See the
/// [module docs](super).
#[derive(Clone)]
pub struct InjectLayer {
    shared: Arc<ArcSwap<Shared>>,
}

/// The service [`InjectLayer`] makes: injects into `S`'s pages, and answers the token
/// endpoint itself.
#[derive(Clone)]
pub struct Inject<S> {
    inner: S,
    /// Loaded once per request: a request is served under one config from start to end.
    shared: Arc<ArcSwap<Shared>>,
}

impl InjectLayer {
    /// Prepares everything the layer needs once: the signing key, the snippet's loader, the
    /// CSP hosts of the region, the marker key.
    pub fn new(config: InjectConfig) -> Self {
        InjectLayer {
            shared: Arc::new(ArcSwap::from_pointee(Shared::new(config))),
        }
    }

    /// Puts `config` in the place of the current one, for every service this layer (or a
    /// clone) made: requests that started carry on with the config they started with, and
    /// the next ones get `config`. Markers the previous config's Messenger secret signed
    /// stay accepted
    /// ([`Logout::succeeding`](crate::logout::Logout::succeeding)). One reload at a time.
    pub fn reload(&self, config: InjectConfig) {
        let previous = self.shared.load_full();
        let mut next = Shared::new(config);
        next.logout = next.logout.succeeding(&previous.logout);
        // Where a head's snippet goes depends on its bytes only.
        next.memo = previous.memo.clone();
        self.shared.store(Arc::new(next));
    }

    /// The session resolver in use, for start-up checks (is the store reachable?) and log
    /// lines.
    pub fn identity(&self) -> CurrentIdentity {
        CurrentIdentity(self.shared.load_full())
    }

    /// The token endpoint on its own. The layer answers `token_path` itself, and pages
    /// refresh from that path; this is for an app that serves `token_path` on a route the
    /// layer does not wrap.
    pub fn token_endpoint(&self) -> TokenEndpoint {
        TokenEndpoint::new(self.shared.clone())
    }
}

impl<S> Layer<S> for InjectLayer {
    type Service = Inject<S>;

    fn layer(&self, inner: S) -> Inject<S> {
        Inject {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// What the request taught the layer, kept (owned) for the response.
#[derive(Default)]
pub(super) struct Plan {
    method: Method,
    logout_path: bool,
    route_injects: bool,
    page_request: bool,
    pending_shutdown: bool,
    booted_for: Option<String>,
    boot_visitors: bool,
    /// The request's `Cookie` header values, kept only when it carried the session cookie:
    /// a logout must drop that session's cached lookup.
    session_cookies: Option<Vec<HeaderValue>>,
    /// The verified user and their marker.
    user: Option<(User, String)>,
    /// How the session lookup ended (why a page has no user).
    pub(super) lookup: LookupResult,
    /// The route's static attributes (only for requests that are identified).
    pub(super) attributes: Map<String, Value>,
    /// The proxy's cookies get `Secure`.
    pub(super) secure: bool,
    /// The user is the one the session set by the response names (it was re-identified).
    pub(super) reidentified: bool,
}

impl Plan {
    /// Everything known about the request, for [`decide`](decide::decide).
    pub(super) fn facts(&self) -> Facts<'_> {
        Facts {
            request: RequestFacts {
                method: &self.method,
                token_path: false,
                logout_path: self.logout_path,
                route_injects: self.route_injects,
                page_request: self.page_request,
                session_cookie: self.session_cookies.is_some(),
                pending_shutdown: self.pending_shutdown,
                booted_for: self.booted_for.as_deref(),
                boot_visitors: self.boot_visitors,
            },
            user: self
                .user
                .as_ref()
                .map(|(user, marker)| Who::User { user, marker }),
            identity_unknown: matches!(self.lookup, LookupResult::Error | LookupResult::Timeout),
        }
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Inject<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    ReqB: Send + 'static,
    ResB: http_body::Body<Data = bytes::Bytes>,
    ResB::Error: Into<tower::BoxError>,
{
    type Response = Response<InjectBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqB>) -> Self::Future {
        // The clone takes the place of the service that was polled ready (tower's rule).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        // The one read of the current config (an atomic load).
        let current = self.shared.load_full();
        let shared = &current;
        if let Some(trust) = shared.identity.header_trust() {
            // Before anything reads them, and so that the app never sees them either.
            trust.screen(&mut request);
        }
        let headers = request.headers();
        let path = request.uri().path();
        let route = shared.routes.matching(path);
        // Signed markers only: a forged or unknown value is no marker at all.
        let booted_for = shared.logout.recorded_boot(headers);
        let facts = RequestFacts {
            method: request.method(),
            token_path: shared.token_path.as_deref() == Some(path),
            logout_path: shared.logout.is_logout_path(path),
            route_injects: route.inject,
            page_request: is_page_request(headers),
            session_cookie: shared.identity.presents_session(headers),
            pending_shutdown: shared.logout.pending_shutdown(headers),
            booted_for,
            boot_visitors: shared.boot_visitors,
        };
        let identify = match decide::step(&facts) {
            Step::Token => {
                let answer = super::token::answer(shared.clone(), request);
                return ResponseFuture::token(answer, current);
            }
            Step::Forward { identify } => identify,
        };
        let plan = Plan {
            method: facts.method.clone(),
            logout_path: facts.logout_path,
            route_injects: facts.route_injects,
            page_request: facts.page_request,
            pending_shutdown: facts.pending_shutdown,
            booted_for: booted_for.map(str::to_string),
            boot_visitors: facts.boot_visitors,
            session_cookies: facts
                .session_cookie
                .then(|| headers.get_all(header::COOKIE).iter().cloned().collect()),
            user: None,
            lookup: LookupResult::Anonymous,
            attributes: if identify {
                route.attributes.clone()
            } else {
                Map::new()
            },
            secure: shared.secure(&request),
            reidentified: false,
        };
        let resolution = match identify {
            false => (Resolution::Anonymous, LookupResult::Anonymous),
            true => match shared.identity.identify_now_traced(headers) {
                Some(resolution) => resolution,
                // A store must be asked: wait for it before calling the inner service.
                None => {
                    let identifying = shared.clone();
                    return ResponseFuture::identifying(
                        Box::pin(async move {
                            let resolution = identifying
                                .identity
                                .identify_traced(request.headers())
                                .await;
                            (request, resolution, inner, plan)
                        }),
                        current,
                    );
                }
            },
        };
        let calling = forward(shared, inner, request, plan, resolution);
        ResponseFuture::calling(calling, current)
    }
}

/// Records who the session named, prepares the request when its answer may get a snippet,
/// and calls the inner service.
pub(super) fn forward<S, ReqB, ResB>(
    shared: &Shared,
    mut inner: S,
    mut request: Request<ReqB>,
    mut plan: Plan,
    resolution: (Resolution, LookupResult),
) -> (S::Future, Plan)
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    plan.identified(shared, resolution);
    if plan.facts().prepares_page() {
        let headers = request.headers_mut();
        // A 304 cannot carry the snippet (or a pending shutdown): ask for a full page.
        headers.remove(header::IF_NONE_MATCH);
        headers.remove(header::IF_MODIFIED_SINCE);
        narrow_accept_encoding(headers);
    }
    (inner.call(request), plan)
}

impl Plan {
    /// Records who the session named.
    fn identified(&mut self, shared: &Shared, (resolution, lookup): (Resolution, LookupResult)) {
        self.lookup = lookup;
        self.user = match resolution {
            Resolution::User(user) => {
                let marker = shared.logout.booted_for(Some(&user.id));
                // A record made for this user under a key a reload retired is this user's:
                // no shutdown because the Messenger secret was rotated.
                if let Some(booted) = self.booted_for.as_mut()
                    && *booted != marker
                    && shared.logout.records_user(booted, &user.id, &marker)
                {
                    booted.clone_from(&marker);
                }
                Some((user, marker))
            }
            Resolution::Anonymous => None,
        };
    }

    /// Records who the session set by the response names: the page is for them.
    pub(super) fn reidentified(&mut self, shared: &Shared, resolution: (Resolution, LookupResult)) {
        self.identified(shared, resolution);
        self.reidentified = true;
    }

    /// The request's cookies with the session cookie set to `value`, as the browser will
    /// send them after this response.
    pub(super) fn cookies_with_session(&self, name: &str, value: &str) -> HeaderMap {
        let before = self.session_cookies().unwrap_or_default();
        with_session_cookie(&before, name, value)
    }

    /// The request's `Cookie` headers, when it carried the session cookie: all a cache
    /// invalidation needs.
    pub(super) fn session_cookies(&self) -> Option<HeaderMap> {
        let values = self.session_cookies.as_ref()?;
        let mut cookies = HeaderMap::with_capacity(values.len());
        for value in values {
            cookies.append(header::COOKIE, value.clone());
        }
        Some(cookies)
    }
}

/// Keeps only the codings the rewriter can decode, so the app never picks one we would have
/// to pass through (zstd, say) for a page that should get the snippet.
pub(super) fn narrow_accept_encoding(headers: &mut HeaderMap) {
    let Some(value) = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    let kept: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|item| {
            let coding = item
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            matches!(
                coding.as_str(),
                "gzip" | "x-gzip" | "deflate" | "br" | "identity"
            )
        })
        .collect();
    let narrowed = if kept.is_empty() {
        "identity".to_string()
    } else {
        kept.join(", ")
    };
    if let Ok(v) = HeaderValue::from_str(&narrowed) {
        headers.insert(header::ACCEPT_ENCODING, v);
    }
}
