//! The response half of injection: logouts, user switches and the page's snippet.

use std::sync::Arc;

use http::Response;
use serde_json::{Map, Value};
use tracing::{debug, warn};

use super::Shared;
use super::page::{insert, rewritable_page, sets_cookie};
use crate::identity::User;
use crate::intercom::{Boot, Refresh, Snippet};
use crate::proxy::{ProxyBody, ResponseHook};

/// What the request taught us about this response.
pub(super) struct Plan {
    pub(super) shared: Arc<Shared>,
    /// The page may get the snippet (a page load on an injected route, with a boot or a
    /// shutdown to run).
    pub(super) injects: bool,
    /// The request was for a `[logout] paths` path.
    pub(super) logout_path: bool,
    /// The verified user, if any.
    pub(super) user: Option<User>,
    /// The route's static attributes.
    pub(super) attributes: Map<String, Value>,
    /// The browser's booted-for marker, as sent.
    pub(super) booted_for: Option<String>,
    /// The marker this page boots for (`None`: it does not boot).
    pub(super) target: Option<String>,
    /// Run `Intercom('shutdown')` before booting.
    pub(super) shutdown_first: bool,
    /// The browser carried the one-shot "shutdown on the next page" marker.
    pub(super) pending_shutdown: bool,
    /// The client reached the proxy over HTTPS (the proxy's cookies get `Secure`).
    pub(super) secure: bool,
    /// The request's headers, kept only when it carried the session cookie: a logout or a
    /// replaced session must drop that session's cached lookup.
    pub(super) session_headers: Option<http::HeaderMap>,
}

impl ResponseHook for Plan {
    fn response_filter(self: Box<Self>, response: Response<ProxyBody>) -> Response<ProxyBody> {
        let shared = &self.shared;
        // A cleared cookie is a logout only when there was a session to end: apps also
        // expire stale cookies on anonymous responses.
        let clears =
            self.session_headers.is_some() && shared.logout.clears_session(response.headers());
        if self.logout_path || clears {
            return self.logout(response);
        }
        for value in super::page::session_cookies_set(response.headers(), &shared.session_cookie) {
            // A login that reuses a session id (PHP does) must not find a cached visitor
            // or the previous user under it.
            shared.identity.forget_value(&value);
        }
        if !self.injects {
            return response;
        }
        let Some(format) = rewritable_page(response.status(), response.headers()) else {
            // Not a page: a pending shutdown waits for the next one.
            return response;
        };
        if sets_cookie(response.headers(), &shared.session_cookie) {
            // The session changes with this response (a login page rendered in place): the
            // user read from the request may not be the one behind the browser any more.
            debug!("response sets the session cookie; page served without the Messenger");
            return response;
        }
        let settings = match &self.user {
            Some(user) => match shared.messenger.user_settings(user, &self.attributes) {
                Ok(settings) => Some(settings),
                Err(e) => {
                    warn!(error = %e, "page served without the Messenger");
                    return response;
                }
            },
            None if self.target.is_some() => Some(shared.messenger.anonymous_settings()),
            None => None,
        };
        let refresh = match (&shared.token_path, &self.user, shared.token_refresh) {
            (Some(path), Some(_), true) => self.target.as_deref().map(|booted_for| Refresh {
                path,
                after_secs: super::refresh_after(shared.token_ttl_secs),
                booted_for,
            }),
            _ => None,
        };
        let snippet = Snippet::render_boot(
            &Boot {
                settings: settings.as_ref(),
                shutdown_first: self.shutdown_first,
                refresh,
                spa_updates: shared.spa_updates,
            },
            &shared.loader,
        );
        // A shutdown goes in even where the page loads Intercom itself: it must run.
        let mut response = insert(
            response,
            format,
            snippet,
            &shared.hosts,
            &shared.markers,
            &shared.memo,
            self.shutdown_first,
        );
        let headers = response.headers_mut();
        if self.pending_shutdown {
            shared.logout.clear_pending_shutdown(headers, self.secure);
        }
        match &self.target {
            // Re-set on every page, even unchanged: the record must roll like Intercom's own
            // session cookie, which every ping extends.
            Some(target) => shared.logout.set_booted_for(headers, target, self.secure),
            None if self.booted_for.is_some() => {
                shared.logout.clear_booted_for(headers, self.secure)
            }
            _ => {}
        }
        response
    }
}

impl Plan {
    /// A logout: Intercom's session cookie is expired either way; an HTML logout page runs
    /// the shutdown itself, anything else (a redirect, JSON for an SPA) leaves the one-shot
    /// marker for the next page. The app's own `Set-Cookie` lines are kept.
    fn logout(self, response: Response<ProxyBody>) -> Response<ProxyBody> {
        let shared = &self.shared;
        debug!("logout response: shutting the Messenger down");
        if let Some(headers) = &self.session_headers {
            // Apps that destroy the session but keep the cookie must not find it cached.
            shared.identity.forget(headers);
        }
        let page = rewritable_page(response.status(), response.headers());
        let is_page = page.is_some();
        let mut response = match page {
            Some(format) => {
                let anonymous = shared.messenger.anonymous_settings();
                let boot_visitor = shared.anonymous == crate::config::AnonymousPolicy::Boot;
                let snippet = Snippet::render_boot(
                    &Boot {
                        settings: boot_visitor.then_some(&anonymous),
                        shutdown_first: true,
                        refresh: None,
                        spa_updates: false,
                    },
                    &shared.loader,
                );
                insert(
                    response,
                    format,
                    snippet,
                    &shared.hosts,
                    &shared.markers,
                    &shared.memo,
                    true,
                )
            }
            None => response,
        };
        let headers = response.headers_mut();
        shared.logout.expire_intercom_session(headers);
        if self.booted_for.is_some() {
            shared.logout.clear_booted_for(headers, self.secure);
        }
        if !is_page {
            shared.logout.set_pending_shutdown(headers, self.secure);
        } else if self.pending_shutdown {
            shared.logout.clear_pending_shutdown(headers, self.secure);
        }
        response
    }
}
