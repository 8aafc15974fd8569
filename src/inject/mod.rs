//! Snippet injection: which responses get the Messenger, and the rewrite that puts it in.
//!
//! The request half ([`Injector`] as a [`Filter`]) decides whether a request could get the
//! snippet (GET/POST, a route with `inject`, a page navigation), resolves the user, notes the
//! browser's shutdown markers, and drops conditional headers so the app answers with a full
//! page; it also answers the proxy's token endpoint itself. The response half ([`plan`])
//! handles logouts and checks the head (2xx, HTML, a coding and charset we can handle),
//! signs the JWT, fixes the headers and wraps the body. Everything else passes through.

mod body;
mod codec;
pub mod csp;
mod memo;
mod page;
mod plan;
mod rewrite;
mod scan;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

pub use body::InjectBody;
pub use codec::{Coding, Decoder, Encoder};
pub use memo::HeadMemo;
pub use rewrite::{PagePlan, PageRewriter};
pub use scan::MessengerMarkers;

use crate::config::{AnonymousPolicy, Config, IdentityMode, Routes};
use crate::identity::{Identity, IdentityError, Resolution, session_cookie};
use crate::intercom::IntercomHosts;
use crate::intercom::{Loader, Messenger};
use crate::logout::{BOOTED_FOR_COOKIE, Logout, PENDING_SHUTDOWN_COOKIE};
use crate::proxy::{BoxFuture, Downstream, Filter, FilterOutcome, ProxyBody};
use plan::Plan;

/// Injects the Messenger snippet into eligible HTML pages.
pub struct Injector {
    shared: Arc<Shared>,
}

struct Shared {
    identity: Identity,
    session_cookie: String,
    messenger: Messenger,
    routes: Routes,
    anonymous: AnonymousPolicy,
    hosts: Arc<IntercomHosts>,
    /// What shows a page already loads the Messenger.
    markers: Arc<MessengerMarkers>,
    /// Heads parsed before, shared by all pages.
    memo: Arc<HeadMemo>,
    /// The loader for `widget_url`, rendered once.
    loader: Loader,
    logout: Logout,
    /// The token endpoint, in JWT mode when configured.
    token_path: Option<String>,
    token_refresh: bool,
    spa_updates: bool,
    token_ttl_secs: u64,
}

impl Injector {
    /// Builds the injector from the whole config (identity, Intercom app, routes, logout).
    pub fn from_config(config: &Config) -> Result<Injector, IdentityError> {
        let identity = Identity::from_config(&config.session)?;
        let intercom = &config.intercom;
        let widget_origin = origin_of(&intercom.widget_url);
        let token_path = match intercom.mode {
            IdentityMode::Jwt => intercom.token_path.clone(),
            // user_hash never expires: nothing to refresh.
            IdentityMode::UserHash => None,
        };
        Ok(Injector {
            shared: Arc::new(Shared {
                identity,
                session_cookie: config.session.cookie.clone(),
                messenger: Messenger::new(
                    &intercom.app_id,
                    &intercom.secret,
                    intercom.region,
                    intercom.mode,
                    intercom.token_ttl,
                ),
                routes: config.routes.clone(),
                anonymous: intercom.anonymous,
                hosts: Arc::new(IntercomHosts::new(
                    intercom.region,
                    widget_origin.as_deref(),
                )),
                markers: Arc::new(MessengerMarkers::new(&intercom.widget_url)),
                memo: Arc::new(HeadMemo::default()),
                loader: Loader::new(&intercom.widget_url),
                logout: Logout::new(
                    &config.logout,
                    &config.session.cookie,
                    &intercom.app_id,
                    intercom.cookie_domain.as_deref(),
                    &intercom.secret,
                ),
                token_path,
                token_refresh: intercom.token_refresh,
                spa_updates: intercom.spa_updates,
                token_ttl_secs: intercom.token_ttl.as_secs(),
            }),
        })
    }

    /// Logs whether the session store answers (a warning, never fatal).
    pub async fn log_reachability(&self) {
        self.shared.identity.log_reachability().await;
    }

    /// What the session store is (no credentials), for the start-up summary.
    pub fn describe_store(&self) -> String {
        self.shared.identity.describe_store()
    }
}

/// `scheme://host[:port]` of a URL, for CSP.
fn origin_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

/// Whether a request is a page load that could get the snippet. `Sec-Fetch-Dest` tells for
/// modern browsers; otherwise `Accept` must ask for HTML (or be absent or `*/*`, as curl's).
/// Stylesheets, images, scripts and `fetch()` calls keep their conditional requests.
pub fn is_page_request(headers: &HeaderMap) -> bool {
    if let Some(dest) = headers.get("sec-fetch-dest").and_then(|v| v.to_str().ok()) {
        return matches!(dest, "document" | "iframe" | "frame");
    }
    match headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(accept) => {
            let contains = |needle: &str| {
                accept
                    .as_bytes()
                    .windows(needle.len())
                    .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
            };
            accept.trim() == "*/*" || contains("text/html") || contains("application/xhtml+xml")
        }
    }
}

impl Filter for Injector {
    fn request_filter<'a>(
        &'a self,
        request: &'a mut Request<Incoming>,
        downstream: Downstream,
    ) -> BoxFuture<'a, FilterOutcome> {
        Box::pin(async move {
            let shared = &self.shared;
            let path = request.uri().path();
            if shared.token_path.as_deref() == Some(path) {
                // The page says which path it is on (for that route's signed attributes) and
                // whom it was booted for.
                let query = |name: &str| {
                    request
                        .uri()
                        .query()
                        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == name))
                        .map(|(_, v)| v.into_owned())
                };
                let page_path = query("path").unwrap_or_else(|| "/".to_string());
                let booted_for = query("for");
                return FilterOutcome::Respond(
                    self.token_response(
                        request.headers(),
                        &page_path,
                        booted_for.as_deref(),
                        downstream.scheme == "https",
                    )
                    .await,
                );
            }
            let logout_path = shared.logout.is_logout_path(path);
            let route = shared.routes.matching(path);
            let page_load = matches!(*request.method(), Method::GET | Method::POST)
                && route.inject
                && is_page_request(request.headers());
            let headers = request.headers();
            let pending_shutdown = session_cookie(headers, PENDING_SHUTDOWN_COOKIE).is_some();
            let booted_for = session_cookie(headers, BOOTED_FOR_COOKIE).map(str::to_string);
            let user = if page_load && !logout_path {
                match shared.identity.identify(headers).await {
                    Resolution::User(user) => Some(user),
                    Resolution::Anonymous => None,
                }
            } else {
                None
            };
            let boots = user.is_some() || shared.anonymous == AnonymousPolicy::Boot;
            let target = boots.then(|| {
                shared
                    .logout
                    .booted_for(user.as_ref().map(|u| u.id.as_str()))
            });
            // Shut down first when a logout is pending, or the Messenger in this browser was
            // booted for someone other than this page's user (a visitor included).
            let shutdown_first = pending_shutdown
                || booted_for
                    .as_ref()
                    .is_some_and(|b| Some(b) != target.as_ref());
            let injects = page_load && !logout_path && (boots || shutdown_first);
            if injects || logout_path {
                let headers = request.headers_mut();
                // A 304 cannot carry the snippet (or a pending shutdown): ask for a full page.
                headers.remove(header::IF_NONE_MATCH);
                headers.remove(header::IF_MODIFIED_SINCE);
                narrow_accept_encoding(headers);
            }
            FilterOutcome::Forward(Some(Box::new(Plan {
                shared: shared.clone(),
                injects,
                logout_path,
                user,
                attributes: route.attributes.clone(),
                booted_for,
                target,
                shutdown_first,
                pending_shutdown,
                secure: downstream.scheme == "https",
                session_headers: session_cookie(request.headers(), &shared.session_cookie)
                    .is_some()
                    .then(|| cookies_only(request.headers())),
            })))
        })
    }
}

impl Injector {
    /// The token endpoint: a fresh Messenger JWT for the browser's session, or 401. Never
    /// cached, never forwarded to the app.
    async fn token_response(
        &self,
        headers: &HeaderMap,
        page_path: &str,
        booted_for: Option<&str>,
        secure: bool,
    ) -> Response<ProxyBody> {
        let shared = &self.shared;
        let mut refreshed_for = None;
        let (status, body) = match shared.identity.identify(headers).await {
            Resolution::User(user)
                if booted_for.is_some_and(|b| b != shared.logout.booted_for(Some(&user.id))) =>
            {
                // The page was booted for someone else: never hand it this user's token.
                (
                    StatusCode::CONFLICT,
                    serde_json::json!({"error": "the session now belongs to another user"}),
                )
            }
            Resolution::User(user) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let route = shared.routes.matching(page_path);
                match shared.messenger.sign(&user, &route.attributes, now) {
                    Ok(token) => {
                        // A long-lived page keeps Intercom's session alive, so its record is
                        // extended too; only extended, never changed: the record may name
                        // someone else only a page's shutdown can forget.
                        let marker = shared.logout.booted_for(Some(&user.id));
                        if session_cookie(headers, BOOTED_FOR_COOKIE) == Some(marker.as_str()) {
                            refreshed_for = Some(marker);
                        }
                        (
                            StatusCode::OK,
                            serde_json::json!({
                                "intercom_user_jwt": token,
                                "exp": now + shared.token_ttl_secs,
                                "refresh_in": refresh_after(shared.token_ttl_secs),
                            }),
                        )
                    }
                    Err(e) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        serde_json::json!({"error": e.to_string()}),
                    ),
                }
            }
            Resolution::Anonymous => (
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": "no session"}),
            ),
        };
        let mut response = Response::new(ProxyBody::full(body.to_string()));
        *response.status_mut() = status;
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::VARY, HeaderValue::from_static("Cookie"));
        if let Some(marker) = refreshed_for {
            shared.logout.set_booted_for(h, &marker, secure);
        }
        response
    }
}

/// The request's `Cookie` headers alone: all a later cache invalidation needs.
fn cookies_only(headers: &HeaderMap) -> HeaderMap {
    let mut cookies = HeaderMap::new();
    for value in headers.get_all(header::COOKIE) {
        cookies.append(header::COOKIE, value.clone());
    }
    cookies
}

/// Seconds until a page refreshes its token: at 80% of its life, and not more often than
/// every 5 seconds.
fn refresh_after(ttl_secs: u64) -> u64 {
    (ttl_secs * 4 / 5).max(5)
}

/// Keeps only the codings the rewriter can decode, so the app never picks one we would have
/// to pass through (zstd, say) for a page that should get the snippet.
fn narrow_accept_encoding(headers: &mut HeaderMap) {
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

#[cfg(test)]
mod tests {
    use super::*;

    use super::page::tests::headers;

    #[test]
    fn page_requests_are_told_from_subresources() {
        assert!(is_page_request(&headers(&[
            ("sec-fetch-dest", "document"),
            ("accept", "*/*")
        ])));
        assert!(!is_page_request(&headers(&[
            ("sec-fetch-dest", "style"),
            ("accept", "text/html")
        ])));
        assert!(!is_page_request(&headers(&[("sec-fetch-dest", "empty")])));
        assert!(is_page_request(&headers(&[(
            "accept",
            "text/html,application/xhtml+xml;q=0.9"
        )])));
        assert!(is_page_request(&headers(&[("accept", "*/*")])));
        assert!(is_page_request(&headers(&[])));
        assert!(!is_page_request(&headers(&[(
            "accept",
            "text/css,*/*;q=0.1"
        )])));
        assert!(!is_page_request(&headers(&[(
            "accept",
            "application/json"
        )])));
    }

    #[test]
    fn accept_encoding_keeps_what_we_can_decode() {
        let mut h = headers(&[("accept-encoding", "gzip, deflate, br, zstd")]);
        narrow_accept_encoding(&mut h);
        assert_eq!(h["accept-encoding"], "gzip, deflate, br");
        let mut h = headers(&[("accept-encoding", "zstd;q=1.0")]);
        narrow_accept_encoding(&mut h);
        assert_eq!(h["accept-encoding"], "identity");
    }
}
