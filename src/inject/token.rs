//! The token endpoint (`[intercom] token_path`): a fresh Messenger JWT for the browser's
//! session, so long-lived pages and SPAs keep a valid token. Its own small service: the
//! layer sends it the requests [`decide::step`](super::decide::step) marks as token
//! requests (pages refresh from `token_path`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tower::Service;

use super::layer::Shared;
use super::respond::refresh_after;
use crate::identity::Resolution;

/// The token endpoint's answer, on its way.
pub(super) type TokenAnswer = Pin<Box<dyn Future<Output = Response<String>> + Send>>;

/// Answers `GET <token_path>[?path=<page path>&for=<booted-for marker>]` with
/// `{"intercom_user_jwt", "exp", "refresh_in"}`, 401 without a verified session, or 409 when
/// the session now belongs to someone other than the page was booted for. Never cached.
#[derive(Clone)]
pub struct TokenEndpoint {
    /// The layer's config, as reloads change it.
    shared: Arc<ArcSwap<Shared>>,
}

impl TokenEndpoint {
    pub(super) fn new(shared: Arc<ArcSwap<Shared>>) -> Self {
        TokenEndpoint { shared }
    }
}

/// The answer to `request`, under the config `shared`.
pub(super) fn answer<B>(shared: Arc<Shared>, mut request: Request<B>) -> TokenAnswer {
    if let Some(trust) = shared.identity.header_trust() {
        // The endpoint may be mounted on its own: it screens identity headers itself.
        trust.screen(&mut request);
    }
    let secure = shared.secure(&request);
    // The page says which path it is on (for that route's signed attributes) and whom
    // it was booted for.
    let query = |name: &str| {
        request
            .uri()
            .query()
            .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == name))
            .map(|(_, v)| v.into_owned())
    };
    let page_path = query("path").unwrap_or_else(|| "/".to_string());
    let booted_for = query("for");
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "the token endpoint answers GET only",
        );
    }
    if !shared.routes.matching(&page_path).inject {
        // A page on that route never gets the Messenger, so it never needs a token.
        return refuse(
            StatusCode::FORBIDDEN,
            "the Messenger is off on that path's route",
        );
    }
    let (parts, _) = request.into_parts();
    let headers = parts.headers;
    Box::pin(async move {
        let mut extended = None;
        let (status, body) = match shared.identity.identify(&headers).await {
            Resolution::User(user) => {
                let marker = shared.logout.booted_for(Some(&user.id));
                // (A page booted before a rotation of the Messenger secret holds the
                // user's record under the retired key: still this user.)
                let same = |b: &str| shared.logout.records_user(b, &user.id, &marker);
                if booted_for.as_deref().is_some_and(|b| !same(b)) {
                    // The page was booted for someone else: never hand it this user's
                    // token.
                    (
                        StatusCode::CONFLICT,
                        serde_json::json!({"error": "the session now belongs to another user"}),
                    )
                } else {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    let route = shared.routes.matching(&page_path);
                    match shared.messenger.sign(&user, &route.attributes, now) {
                        Ok(token) => {
                            // A long-lived page keeps Intercom's session alive, so its
                            // record is extended too; only extended, never changed: the
                            // record may name someone only a page's shutdown can forget.
                            if shared.logout.recorded_boot(&headers).is_some_and(same) {
                                extended = Some(marker);
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
            }
            Resolution::Anonymous => (
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": "no session"}),
            ),
        };
        crate::metrics::token_answer(status);
        let mut response = Response::new(body.to_string());
        *response.status_mut() = status;
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::VARY, HeaderValue::from_static("Cookie"));
        if let Some(marker) = extended {
            shared.logout.set_booted_for(h, &marker, secure);
        }
        response
    })
}

/// An answer the endpoint gives without looking at the session.
fn refuse(status: StatusCode, error: &str) -> TokenAnswer {
    crate::metrics::token_answer(status);
    let mut response = Response::new(serde_json::json!({ "error": error }).to_string());
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    Box::pin(std::future::ready(response))
}

impl<B> Service<Request<B>> for TokenEndpoint {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let answer = answer(self.shared.load_full(), request);
        Box::pin(async move { Ok(answer.await) })
    }
}
