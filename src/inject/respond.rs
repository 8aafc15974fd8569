//! The response half: reads the head of the inner service's answer, asks
//! [`decide`](super::decide::decide) what happens, and does it: the snippet into the page,
//! the marker cookies, the session cache told about logouts and new sessions.

use bytes::Bytes;
use http::Response;
use http_body::Body;
use tower::BoxError;
use tracing::{debug, warn};

use super::InjectBody;
use super::decide::{Outcome, ResponseFacts, Who, decide};
use super::layer::{Plan, Shared};
use super::page::{insert, rewritable_page, session_cookies_set, sets_cookie};
use crate::intercom::{Boot, Refresh, Snippet};

/// Seconds until a page refreshes its token: at 80% of its life, and not more often than
/// every 5 seconds.
pub(super) fn refresh_after(ttl_secs: u64) -> u64 {
    (ttl_secs * 4 / 5).max(5)
}

/// The response as it leaves the layer.
pub(super) fn respond<B>(
    shared: &Shared,
    plan: &Plan,
    response: Response<B>,
) -> Response<InjectBody<B>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let headers = response.headers();
    let facts = plan.facts();
    let request = &facts.request;
    // Only an answer that may get a snippet, or may be a logout, is looked at further: the
    // rest (assets, routes that do not inject) pass without a charset parse.
    let format = match facts.injects() || request.logout_path || request.session_cookie {
        true => rewritable_page(response.status(), headers),
        false => None,
    };
    let response_facts = ResponseFacts {
        page: format.is_some(),
        sets_session_cookie: sets_cookie(headers, shared.session_cookie()),
        clears_session_cookie: shared.logout.clears_session(headers),
    };
    let outcome = decide(&facts, &response_facts);
    if outcome.is_logout() {
        debug!("logout response: shutting the Messenger down");
    } else if facts.injects() && response_facts.page && response_facts.sets_session_cookie {
        debug!("response sets the session cookie; page served without the Messenger");
    }
    if outcome.is_logout() {
        if let Some(cookies) = plan.session_cookies() {
            // Apps that destroy the session but keep the cookie must not find it cached.
            shared.identity.forget(&cookies);
        }
    } else {
        for value in session_cookies_set(headers, shared.session_cookie()) {
            // A login that reuses a session id (PHP does) must not find a cached visitor or
            // the previous user under it.
            shared.identity.forget_value(&value);
        }
    }
    let mut response = match (outcome, format) {
        (Outcome::Pass, _) => return response.map(InjectBody::identity),
        (Outcome::LogoutElsewhere, _) => response.map(InjectBody::identity),
        // `decide` gives the other outcomes to pages only.
        (_, None) => return response.map(InjectBody::identity),
        (outcome, Some(format)) => {
            let Some(snippet) = snippet(shared, plan, &outcome) else {
                return response.map(InjectBody::identity);
            };
            // A shutdown goes in even where the page loads Intercom itself: it must run.
            let shutdown = outcome.shuts_down();
            let (hosts, markers, memo) = (&shared.hosts, &shared.markers, &shared.memo);
            insert(response, format, snippet, hosts, markers, memo, shutdown)
        }
    };
    shared.logout.apply(
        &outcome.marker_changes(&facts),
        response.headers_mut(),
        plan.secure,
    );
    response
}

/// The snippet `outcome` asks for; `None` when the user's settings cannot be signed (the
/// page is then served without the Messenger).
fn snippet(shared: &Shared, plan: &Plan, outcome: &Outcome<'_>) -> Option<Snippet> {
    let (who, spa_updates) = match *outcome {
        Outcome::Boot(who) | Outcome::ShutdownThenBoot(who) => (Some(who), shared.spa_updates),
        Outcome::LogoutPage { boot_visitor: true } => (Some(Who::Visitor), false),
        _ => (None, false),
    };
    let settings = match who {
        Some(Who::User { user, .. }) => {
            match shared.messenger.user_settings(user, &plan.attributes) {
                Ok(settings) => Some(settings),
                Err(e) => {
                    warn!(error = %e, "page served without the Messenger");
                    return None;
                }
            }
        }
        Some(Who::Visitor) => Some(shared.messenger.anonymous_settings()),
        None => None,
    };
    let refresh = match (who, &shared.token_path, shared.token_refresh) {
        (Some(Who::User { marker, .. }), Some(path), true) => Some(Refresh {
            path,
            after_secs: refresh_after(shared.token_ttl_secs),
            booted_for: marker,
        }),
        _ => None,
    };
    Some(Snippet::render_boot(
        &Boot {
            settings: settings.as_ref(),
            shutdown_first: outcome.shuts_down(),
            refresh,
            spa_updates,
        },
        &shared.loader,
    ))
}
