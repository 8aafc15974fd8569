//! [`InjectLayer`] and [`Inject`]: the request half. Reads what the request shows, asks
//! [`decide::step`] what to do, identifies the session when the page could get the snippet,
//! prepares the request for a full page, and calls the inner service; the response half is
//! in `respond.rs`, the waiting in [`ResponseFuture`].

use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response};
use serde_json::{Map, Value};
use tower::{Layer, Service};

use super::config::InjectConfig;
use super::decide::{self, Facts, RequestFacts, Step, Who};
use super::future::ResponseFuture;
use super::memo::HeadMemo;
use super::scan::MessengerMarkers;
use super::token::TokenEndpoint;
use super::{InjectBody, is_page_request};
use crate::config::Routes;
use crate::identity::{Identity, Resolution, User, with_session_cookie};
use crate::intercom::{AnonymousPolicy, IdentityMode, IntercomHosts, Loader, Messenger};
use crate::logout::Logout;
use crate::net::Downstream;

/// Puts the Intercom Messenger, in secure mode, on the HTML pages of the service it wraps.
/// Built once from an [`InjectConfig`]; cheap to clone. See the [module docs](super).
#[derive(Clone)]
pub struct InjectLayer {
    shared: Arc<Shared>,
}

/// The service [`InjectLayer`] makes: injects into `S`'s pages, and answers the token
/// endpoint itself.
#[derive(Clone)]
pub struct Inject<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// What every request of one layer shares, built once.
pub(super) struct Shared {
    pub(super) identity: Identity,
    pub(super) messenger: Messenger,
    pub(super) routes: Routes,
    pub(super) boot_visitors: bool,
    pub(super) hosts: Arc<IntercomHosts>,
    /// What shows a page already loads the Messenger.
    pub(super) markers: Arc<MessengerMarkers>,
    /// Heads parsed before, shared by all pages.
    pub(super) memo: Arc<HeadMemo>,
    /// The loader for `widget_url`, rendered once.
    pub(super) loader: Loader,
    pub(super) logout: Logout,
    /// The token endpoint's path (JWT mode only: `user_hash` never expires).
    pub(super) token_path: Option<String>,
    pub(super) token_refresh: bool,
    pub(super) spa_updates: bool,
    pub(super) token_ttl_secs: u64,
    secure_cookies: Option<bool>,
}

impl Shared {
    /// Whether the layer's cookies for this request get `Secure`: as configured, else as
    /// the server says the client came ([`Downstream`]), else as the request URI says (h2's
    /// `:scheme`, an absolute-form target).
    pub(super) fn secure<B>(&self, request: &Request<B>) -> bool {
        self.secure_cookies
            .unwrap_or_else(|| match request.extensions().get::<Downstream>() {
                Some(downstream) => downstream.scheme == "https",
                None => request.uri().scheme() == Some(&http::uri::Scheme::HTTPS),
            })
    }

    /// The app's session cookie.
    pub(super) fn session_cookie(&self) -> &str {
        self.identity.cookie_name()
    }
}

impl InjectLayer {
    /// Prepares everything the layer needs once: the signing key, the snippet's loader, the
    /// CSP hosts of the region, the marker key.
    pub fn new(config: InjectConfig) -> Self {
        let config = config.sanitized();
        let widget_url = config
            .widget_url
            .unwrap_or_else(|| format!("https://widget.intercom.io/widget/{}", config.app_id));
        let token_path = match config.mode {
            IdentityMode::Jwt => config.token_path,
            IdentityMode::UserHash => None,
        };
        let logout = Logout::new(
            &config.logout,
            config.identity.cookie_name(),
            &config.app_id,
            config.cookie_domain.as_deref(),
            &config.secret,
        );
        let messenger = Messenger::new(
            &config.app_id,
            &config.secret,
            config.region,
            config.mode,
            config.token_ttl,
        );
        InjectLayer {
            shared: Arc::new(Shared {
                identity: config.identity,
                messenger,
                routes: config.routes,
                boot_visitors: config.anonymous == AnonymousPolicy::Boot,
                hosts: Arc::new(IntercomHosts::new(
                    config.region,
                    origin_of(&widget_url).as_deref(),
                )),
                markers: Arc::new(MessengerMarkers::new(&widget_url)),
                memo: Arc::new(HeadMemo::default()),
                loader: Loader::new(&widget_url),
                logout,
                token_path,
                token_refresh: config.token_refresh,
                spa_updates: config.spa_updates,
                token_ttl_secs: config.token_ttl.as_secs(),
                secure_cookies: config.secure_cookies,
            }),
        }
    }

    /// The session resolver, for start-up checks (is the store reachable?) and log lines.
    pub fn identity(&self) -> &Identity {
        &self.shared.identity
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

/// `scheme://host[:port]` of a URL, for CSP.
fn origin_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
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
        let shared = &self.shared;
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
                let answer = TokenEndpoint::new(shared.clone()).answer(request);
                return ResponseFuture::token(answer, shared.clone());
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
            attributes: if identify {
                route.attributes.clone()
            } else {
                Map::new()
            },
            secure: shared.secure(&request),
            reidentified: false,
        };
        let resolution = match identify {
            false => Resolution::Anonymous,
            true => match shared.identity.identify_now(headers) {
                Some(resolution) => resolution,
                // A store must be asked: wait for it before calling the inner service.
                None => {
                    let identifying = shared.clone();
                    return ResponseFuture::identifying(
                        Box::pin(async move {
                            let resolution = identifying.identity.identify(request.headers()).await;
                            (request, resolution, inner, plan)
                        }),
                        shared.clone(),
                    );
                }
            },
        };
        let calling = forward(shared, inner, request, plan, resolution);
        ResponseFuture::calling(calling, shared.clone())
    }
}

/// Records who the session named, prepares the request when its answer may get a snippet,
/// and calls the inner service.
pub(super) fn forward<S, ReqB, ResB>(
    shared: &Shared,
    mut inner: S,
    mut request: Request<ReqB>,
    mut plan: Plan,
    resolution: Resolution,
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
    fn identified(&mut self, shared: &Shared, resolution: Resolution) {
        self.user = match resolution {
            Resolution::User(user) => {
                let marker = shared.logout.booted_for(Some(&user.id));
                Some((user, marker))
            }
            Resolution::Anonymous => None,
        };
    }

    /// Records who the session set by the response names: the page is for them.
    pub(super) fn reidentified(&mut self, shared: &Shared, resolution: Resolution) {
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
