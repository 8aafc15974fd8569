//! The response half: reads the head of the inner service's answer, asks
//! [`decide`](super::decide::decide) what happens, and does it: the snippet into the page,
//! the marker cookies, the session cache told about logouts and new sessions.

use bytes::Bytes;
use http::Response;
use http_body::Body;
use tower::BoxError;
use tracing::{debug, warn};

use super::InjectBody;
use super::decide::{Facts, Outcome, ResponseFacts, Who, decide};
use super::layer::{Plan, Shared};
use super::outcome::{self, PassReason};
use super::page::{insert, rewritable_page};
use crate::identity::LookupResult;
use crate::intercom::{Boot, Refresh, Snippet};
use crate::metrics::{self, LogoutShape};

/// Seconds until a page refreshes its token: at 80% of its life, and not more often than
/// every 5 seconds.
pub(super) fn refresh_after(ttl_secs: u64) -> u64 {
    (ttl_secs * 4 / 5).max(5)
}

/// What the response half makes of the inner service's answer.
pub(super) enum Next<B> {
    /// The response as it leaves the layer.
    Respond(Response<InjectBody<B>>),
    /// The page sets a new session: identify these cookies (the request's, with the session
    /// the page sets), settle the plan on that user, and respond again.
    Reidentify {
        /// The app's answer, held until the user is known.
        response: Response<B>,
        /// The cookies the browser will send from now on.
        cookies: http::HeaderMap,
    },
}

impl<B> Next<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    /// The response, once the plan is settled (a re-identified plan never asks again; were
    /// it to, the app's answer would pass untouched).
    pub(super) fn into_response(self) -> Response<InjectBody<B>> {
        match self {
            Next::Respond(response) => response,
            Next::Reidentify { response, .. } => response.map(InjectBody::identity),
        }
    }
}

/// The response as it leaves the layer, or the new session to identify first.
pub(super) fn respond<B>(shared: &Shared, plan: &Plan, response: Response<B>) -> Next<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let headers = response.headers();
    let facts = plan.facts();
    let request = &facts.request;
    let set = match shared.identity.reads_cookie() {
        true => shared.logout.session_set(headers),
        false => None,
    };
    // Only an answer that may get a snippet, or may be a logout, or sets a session, is looked
    // at further: the rest (assets, routes that do not inject) pass without a charset parse.
    let looked = facts.injects() || request.logout_path || request.session_cookie || set.is_some();
    let (format, not_page) = match looked {
        true => match rewritable_page(response.status(), headers) {
            Ok(format) => (Some(format), None),
            Err(reason) => (None, Some(reason)),
        },
        false => (None, None),
    };
    let post = *request.method == http::Method::POST;
    let new_session = match set {
        // A visitor's GET given a fresh session (Laravel gives every visitor one) is their
        // first page: that id names no one yet, and is not worth a lookup per visitor.
        Some(_) if !request.session_cookie && !post => None,
        Some(value) if !plan.reidentified => {
            let cookies = plan.cookies_with_session(shared.session_cookie(), &value);
            // Logins and logouts are POSTs, and an app may change the user behind the same
            // session id there: a POST's session is always identified afresh.
            let same = !post
                && plan
                    .session_cookies()
                    .is_some_and(|before| shared.identity.same_session(&before, &cookies));
            (!same).then_some(cookies)
        }
        _ => None,
    };
    let response_facts = ResponseFacts {
        succeeded: response.status().is_success() || response.status().is_redirection(),
        page: format.is_some(),
        new_session: new_session.is_some(),
        clears_session_cookie: shared.logout.clears_session(headers),
    };
    let outcome = decide(&facts, &response_facts);
    count_events(&facts, &outcome, response.status());
    if outcome.is_logout() {
        debug!("logout response: shutting the Messenger down");
        if let Some(cookies) = plan.session_cookies() {
            // Apps that destroy the session but keep the cookie must not find it cached.
            shared.identity.forget(&cookies);
        }
    } else if let Some(cookies) = &new_session {
        // The replaced session may be destroyed, and the new one may reuse an id the cache
        // knew as a visitor or another user (PHP logins can): neither is trusted from cache.
        if let Some(before) = plan.session_cookies() {
            shared.identity.forget(&before);
        }
        // Re-identifying forgets it first, and waits for that.
        if outcome != Outcome::Reidentify {
            shared.identity.forget(cookies);
        }
    }
    let mut response = match (outcome, format) {
        (Outcome::Reidentify, _) => {
            debug!("response sets a new session; identifying it");
            let cookies = new_session.unwrap_or_default();
            return Next::Reidentify { response, cookies };
        }
        (Outcome::Pass, _) => {
            let reason = pass_reason(plan, &facts, not_page);
            return Next::Respond(response.map(|body| passed(&facts, body, reason)));
        }
        (Outcome::LogoutElsewhere, _) => response.map(|body| passed(&facts, body, not_page)),
        // `decide` gives the other outcomes to pages only.
        (_, None) => return Next::Respond(response.map(InjectBody::identity)),
        (outcome, Some(format)) => {
            let (head, script) = outcome.marker_changes(&facts).split(outcome.shuts_down());
            let after_shutdown = shared.logout.script(&script, plan.secure);
            let Some(snippet) = snippet(shared, plan, &outcome, &after_shutdown) else {
                let reason = Some(PassReason::SignError);
                return Next::Respond(response.map(|body| passed(&facts, body, reason)));
            };
            // A shutdown goes in even where the page loads Intercom itself: it must run.
            let shutdown = outcome.shuts_down();
            let (hosts, markers, memo) = (&shared.hosts, &shared.markers, &shared.memo);
            let mut response = insert(response, format, snippet, hosts, markers, memo, shutdown);
            shared
                .logout
                .apply(&head, response.headers_mut(), plan.secure);
            return Next::Respond(response);
        }
    };
    shared.logout.apply(
        &outcome.marker_changes(&facts),
        response.headers_mut(),
        plan.secure,
    );
    Next::Respond(response)
}

/// Counts the logouts and user switches a decision makes.
fn count_events(facts: &Facts<'_>, outcome: &Outcome<'_>, status: http::StatusCode) {
    match outcome {
        Outcome::LogoutPage { .. } => metrics::logout(LogoutShape::Html),
        Outcome::LogoutElsewhere if status.is_redirection() => {
            metrics::logout(LogoutShape::Redirect)
        }
        Outcome::LogoutElsewhere => metrics::logout(LogoutShape::Other),
        // Booted for someone else (not only a pending logout's shutdown).
        Outcome::ShutdownThenBoot(who)
            if facts
                .request
                .booted_for
                .is_some_and(|booted| booted != who.marker()) =>
        {
            metrics::user_switch()
        }
        _ => {}
    }
}

/// Why a page load passed, decided from the head: the route, the logout path, then whom
/// the session named (a page could get nothing without someone to boot for), then the
/// response (`not_page`, when it was looked at).
fn pass_reason(plan: &Plan, facts: &Facts<'_>, not_page: Option<PassReason>) -> Option<PassReason> {
    let request = &facts.request;
    if !request.route_injects {
        return Some(PassReason::RouteOff);
    }
    if request.logout_path {
        return Some(PassReason::LogoutPath);
    }
    if facts.target().is_none() && !facts.shutdown_first() {
        return Some(match (request.session_cookie, plan.lookup) {
            (false, _) => PassReason::NoSession,
            (true, LookupResult::Error) => PassReason::ResolverError,
            (true, LookupResult::Timeout) => PassReason::ResolverTimeout,
            (true, LookupResult::User | LookupResult::Anonymous) => PassReason::Visitor,
        });
    }
    not_page
}

/// The body of a response passed through; a page load's records why, and is counted
/// (requests that are not page loads are not).
fn passed<B>(facts: &Facts<'_>, body: B, reason: Option<PassReason>) -> InjectBody<B> {
    let request = &facts.request;
    let navigation =
        matches!(*request.method, http::Method::GET | http::Method::POST) && request.page_request;
    match (navigation, reason) {
        (true, Some(reason)) => {
            outcome::count(Err(reason));
            InjectBody::passed(body, reason)
        }
        _ => InjectBody::identity(body),
    }
}

/// The snippet `outcome` asks for; `None` when the user's settings cannot be signed (the
/// page is then served without the Messenger).
fn snippet(
    shared: &Shared,
    plan: &Plan,
    outcome: &Outcome<'_>,
    after_shutdown: &str,
) -> Option<Snippet> {
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
            after_shutdown,
        },
        &shared.loader,
    ))
}
