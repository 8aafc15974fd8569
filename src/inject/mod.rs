//! Snippet injection: which responses get the Messenger, and the rewrite that puts it in.
//!
//! The request half ([`Injector`] as a [`Filter`]) decides whether a request could get the
//! snippet (GET/POST, a route with `inject`, a page navigation), resolves the user, and
//! drops conditional headers so the app answers with a full page. The response half
//! ([`Plan`]) checks the head (2xx, HTML, a coding and charset we can handle), signs the JWT,
//! fixes the headers and wraps the body. Everything else passes through untouched.

mod body;
mod codec;
pub mod csp;
mod rewrite;

use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use lol_html::AsciiCompatibleEncoding;
use serde_json::{Map, Value};
use tracing::{debug, warn};

pub use body::InjectBody;
pub use codec::{Coding, Decoder, Encoder};
pub use rewrite::{PagePlan, PageRewriter};

use crate::config::{AnonymousPolicy, Config, Routes};
use crate::identity::{Identity, IdentityError, Resolution, User};
use crate::intercom::{Messenger, Snippet};
use crate::proxy::{BoxFuture, Filter, ProxyBody, ResponseHook};
use csp::{CspContext, IntercomHosts};

static CSP: HeaderName = HeaderName::from_static("content-security-policy");
static CSP_REPORT_ONLY: HeaderName = HeaderName::from_static("content-security-policy-report-only");

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
    widget_url: Arc<str>,
}

impl Injector {
    /// Builds the injector from the whole config (identity, Intercom app, routes).
    pub fn from_config(config: &Config) -> Result<Injector, IdentityError> {
        let identity = Identity::from_config(&config.session)?;
        let widget_origin = origin_of(&config.intercom.widget_url);
        Ok(Injector {
            shared: Arc::new(Shared {
                identity,
                session_cookie: config.session.cookie.clone(),
                messenger: Messenger::new(&config.intercom),
                routes: config.routes.clone(),
                anonymous: config.intercom.anonymous,
                hosts: Arc::new(IntercomHosts::new(
                    config.intercom.region,
                    widget_origin.as_deref(),
                )),
                widget_url: Arc::from(config.intercom.widget_url.as_str()),
            }),
        })
    }
}

impl Injector {
    /// Logs whether the session store answers (a warning, never fatal).
    pub async fn log_reachability(&self) {
        self.shared.identity.log_reachability().await;
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
            let accept = accept.to_ascii_lowercase();
            accept.trim() == "*/*"
                || accept.contains("text/html")
                || accept.contains("application/xhtml+xml")
        }
    }
}

impl Filter for Injector {
    fn request_filter<'a>(
        &'a self,
        request: &'a mut Request<Incoming>,
    ) -> BoxFuture<'a, Option<Box<dyn ResponseHook>>> {
        Box::pin(async move {
            let shared = &self.shared;
            if !matches!(*request.method(), Method::GET | Method::POST)
                || !is_page_request(request.headers())
            {
                return None;
            }
            let route = shared.routes.matching(request.uri().path());
            if !route.inject {
                return None;
            }
            let user = match shared.identity.identify(request.headers()).await {
                Resolution::User(user) => Some(user),
                Resolution::Anonymous if shared.anonymous == AnonymousPolicy::Boot => None,
                Resolution::Anonymous => return None,
            };
            let headers = request.headers_mut();
            // A 304 cannot carry the snippet: ask the app for the full page.
            headers.remove(header::IF_NONE_MATCH);
            headers.remove(header::IF_MODIFIED_SINCE);
            narrow_accept_encoding(headers);
            let hook: Box<dyn ResponseHook> = Box::new(Plan {
                shared: shared.clone(),
                user,
                attributes: route.attributes.clone(),
            });
            Some(hook)
        })
    }
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

/// The response half: what the request taught us about this page view.
struct Plan {
    shared: Arc<Shared>,
    user: Option<User>,
    attributes: Map<String, Value>,
}

/// The encoding named by `Content-Type`'s charset (UTF-8 when absent); `None` when
/// lol_html cannot parse it (UTF-16 and other non-ASCII-compatible encodings).
fn page_encoding(content_type: &str) -> Option<AsciiCompatibleEncoding> {
    let charset = content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"'))
    });
    match charset {
        None => Some(AsciiCompatibleEncoding::utf_8()),
        Some(label) => encoding_rs::Encoding::for_label(label.as_bytes())
            .and_then(AsciiCompatibleEncoding::new),
    }
}

fn is_html(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("text/html")
        || essence.eq_ignore_ascii_case("application/xhtml+xml")
}

impl ResponseHook for Plan {
    fn response_filter(self: Box<Self>, response: Response<ProxyBody>) -> Response<ProxyBody> {
        let status = response.status();
        let headers = response.headers();
        if !status.is_success()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::PARTIAL_CONTENT
            || headers.contains_key(header::CONTENT_RANGE)
        {
            return response;
        }
        let Some(content_type) = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        else {
            return response;
        };
        if !is_html(content_type) {
            return response;
        }
        if is_attachment(headers) {
            // A download: the saved file must be the app's, and must not carry a token.
            return response;
        }
        if sets_cookie(headers, &self.shared.session_cookie) {
            // The session changes with this response (login, switch, logout): the user
            // read from the request may no longer be the one behind the browser.
            debug!("response sets the session cookie; page served without the Messenger");
            return response;
        }
        let Some(encoding) = page_encoding(content_type) else {
            debug!(
                content_type,
                "page charset cannot be parsed; passed through"
            );
            return response;
        };
        let mut codings = headers.get_all(header::CONTENT_ENCODING).iter();
        let coding_header = codings.next().map(|v| v.to_str().unwrap_or("?"));
        let coding = match codings.next() {
            // Two Content-Encoding lines are a stacked coding: not ours to decode.
            Some(_) => None,
            None => Coding::from_header(coding_header),
        };
        let Some(coding) = coding else {
            debug!(coding = ?coding_header, "content coding cannot be decoded; passed through");
            return response;
        };
        let shared = &self.shared;
        let settings = match &self.user {
            Some(user) => match shared.messenger.user_settings(user, &self.attributes) {
                Ok(settings) => settings,
                Err(e) => {
                    warn!(error = %e, "page served without the Messenger");
                    return response;
                }
            },
            None => shared.messenger.anonymous_settings(),
        };
        let snippet = Snippet::render(&settings, &shared.widget_url);

        let (mut parts, body) = response.into_parts();
        let ProxyBody::Upstream { body } = body else {
            return Response::from_parts(parts, body);
        };
        let nonce = rewrite_csp_headers(&mut parts.headers, &snippet, &shared.hosts);
        fix_headers(&mut parts.headers);
        let rewriter = PageRewriter::new(PagePlan {
            snippet,
            nonce,
            hosts: shared.hosts.clone(),
            widget_url: shared.widget_url.clone(),
            encoding,
        });
        let body = InjectBody::new(body, rewriter, coding.decoder(), coding.encoder());
        Response::from_parts(parts, ProxyBody::transformed(body))
    }
}

/// `Content-Disposition: attachment`: the page is a download, not a page view.
fn is_attachment(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("attachment"))
        })
}

/// Whether any `Set-Cookie` of the response names the session cookie.
fn sets_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split_once('='))
        .any(|(n, _)| n.trim() == name)
}

/// Rewrites every CSP header so the snippet runs; returns the nonce our script carries.
fn rewrite_csp_headers(
    headers: &mut HeaderMap,
    snippet: &Snippet,
    hosts: &IntercomHosts,
) -> Option<String> {
    // Enforced policies first: their nonce is the one that must match.
    let nonce = [&CSP, &CSP_REPORT_ONLY].iter().find_map(|name| {
        headers
            .get_all(*name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(csp::find_nonce)
    });
    let ctx = CspContext {
        snippet_hash: &snippet.csp_hash,
        nonce: nonce.as_deref(),
        hosts,
    };
    for name in [&CSP, &CSP_REPORT_ONLY] {
        let rewritten: Vec<HeaderValue> = headers
            .get_all(name)
            .iter()
            .map(|v| match v.to_str() {
                Ok(policy) => {
                    HeaderValue::from_str(&csp::rewrite(policy, &ctx)).unwrap_or_else(|_| v.clone())
                }
                Err(_) => v.clone(),
            })
            .collect();
        if rewritten.is_empty() {
            continue;
        }
        headers.remove(name);
        for value in rewritten {
            headers.append(name, value);
        }
    }
    nonce
}

/// Header changes for a page carrying a per-user JWT: its length changes, its bytes no
/// longer match the app's validators, and no shared cache may keep it.
fn fix_headers(headers: &mut HeaderMap) {
    for name in [
        header::CONTENT_LENGTH,
        header::ETAG,
        header::LAST_MODIFIED,
        header::ACCEPT_RANGES,
        header::EXPIRES,
    ] {
        headers.remove(name);
    }
    // CDNs obey these over Cache-Control (and some ignore `Vary: Cookie`).
    for name in [
        "cdn-cache-control",
        "cloudflare-cdn-cache-control",
        "surrogate-control",
    ] {
        headers.remove(name);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    let vary: Vec<String> = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if vary
        .iter()
        .any(|v| v == "*" || v.eq_ignore_ascii_case("cookie"))
    {
        return;
    }
    let mut merged = vary;
    merged.push("Cookie".to_string());
    if let Ok(v) = HeaderValue::from_str(&merged.join(", ")) {
        headers.insert(header::VARY, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

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

    #[test]
    fn charsets() {
        assert!(page_encoding("text/html").is_some());
        assert!(page_encoding("text/html; charset=\"windows-1252\"").is_some());
        assert!(page_encoding("text/html;charset=UTF-16").is_none());
        assert!(page_encoding("text/html; charset=bogus").is_none());
        assert!(is_html("Text/HTML; charset=utf-8") && is_html("application/xhtml+xml"));
        assert!(!is_html("text/plain") && !is_html("application/json"));
    }

    #[test]
    fn vary_gets_cookie_once() {
        let mut h = headers(&[
            ("vary", "Accept-Encoding"),
            ("etag", "\"x\""),
            ("content-length", "10"),
            ("cdn-cache-control", "max-age=600"),
            ("surrogate-control", "max-age=600"),
            ("expires", "Thu, 01 Dec 2030 16:00:00 GMT"),
        ]);
        fix_headers(&mut h);
        for gone in ["cdn-cache-control", "surrogate-control", "expires"] {
            assert!(h.get(gone).is_none(), "{gone}");
        }
        assert_eq!(h["vary"], "Accept-Encoding, Cookie");
        assert_eq!(h["cache-control"], "private, no-store");
        assert!(h.get("etag").is_none() && h.get("content-length").is_none());
        fix_headers(&mut h);
        assert_eq!(h["vary"], "Accept-Encoding, Cookie");
    }
}
