//! The product's one decision, as a pure function: from what the request showed (path,
//! route, method, what it asks for, the proxy's marker cookies, who the session names) and
//! the head of the app's answer, what happens to the page.
//!
//! [`step`] runs before the app is asked (answer a token request, or forward, identifying
//! the session only when the page could get the snippet); [`decide`] runs on the response
//! head. The layer, the logout cookies and the token endpoint act on their answers; nothing
//! else decides. The tests at the bottom are the contract's logout and user-switch
//! behaviour, one row each.

use http::Method;

use crate::intercom::User;
use crate::logout::{MarkerChanges, VISITOR_MARKER};

/// What the request showed, before anyone was identified.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The path is the proxy's token endpoint.
    pub token_path: bool,
    /// The path is one of `[logout] paths`.
    pub logout_path: bool,
    /// The path's route lets pages get the snippet.
    pub route_injects: bool,
    /// A navigation asking for HTML (`Sec-Fetch-Dest`, else `Accept`).
    pub page_request: bool,
    /// The request carried the app's session cookie.
    pub session_cookie: bool,
    /// The one-shot "shut down on the next page" marker was sent.
    pub pending_shutdown: bool,
    /// Whom the Messenger in this browser was booted for (the record), if known.
    pub booted_for: Option<&'a str>,
    /// Visitors get the Messenger too (`anonymous = "boot"`).
    pub boot_visitors: bool,
}

impl RequestFacts<'_> {
    /// A GET or POST navigation on a route that injects.
    pub fn page_load(&self) -> bool {
        matches!(*self.method, Method::GET | Method::POST)
            && self.route_injects
            && self.page_request
    }
}

/// Whom a page would boot the Messenger for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Who<'a> {
    /// A verified user, and the marker that records them in the browser.
    User {
        /// The user.
        user: &'a User,
        /// The opaque record of this user (an HMAC of the id).
        marker: &'a str,
    },
    /// A visitor (`anonymous = "boot"`).
    Visitor,
}

impl<'a> Who<'a> {
    /// The record of this Messenger boot, as the `__isp_booted` cookie keeps it.
    pub fn marker(self) -> &'a str {
        match self {
            Who::User { marker, .. } => marker,
            Who::Visitor => VISITOR_MARKER,
        }
    }
}

/// What to do before the app is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Answer with a fresh Messenger JWT; the app never sees the request.
    Token,
    /// Forward the request; identify the session first when `identify` (the page could get
    /// the snippet).
    Forward {
        /// Resolve the session before forwarding.
        identify: bool,
    },
}

/// Before the app is asked: the token endpoint, or forward (identifying page loads).
pub fn step(request: &RequestFacts<'_>) -> Step {
    if request.token_path {
        Step::Token
    } else {
        Step::Forward {
            identify: request.page_load() && !request.logout_path,
        }
    }
}

/// Everything known about a request once its session was resolved.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// What the request showed.
    pub request: RequestFacts<'a>,
    /// The verified user, if the session named one (`None` for visitors and requests not
    /// identified).
    pub user: Option<Who<'a>>,
    /// The session could not be resolved (its store failed or was slow): whom it names is
    /// unknown, so the page neither boots anyone nor shuts down the Messenger the browser
    /// booted for its user (an outage must not end every user's Messenger). A pending
    /// logout's shutdown still runs: it needs no one's identity.
    pub identity_unknown: bool,
}

impl<'a> Facts<'a> {
    /// Whom this page would boot for: the user, a visitor when visitors get the Messenger,
    /// or no one.
    pub fn target(&self) -> Option<Who<'a>> {
        match self.user {
            Some(who) => Some(who),
            None if self.request.boot_visitors && !self.identity_unknown => Some(Who::Visitor),
            None => None,
        }
    }

    /// The Messenger must shut down before anything else: a logout is pending, or it was
    /// booted for someone other than this page's target (a visitor included).
    pub fn shutdown_first(&self) -> bool {
        let target = self.target().map(Who::marker);
        self.request.pending_shutdown
            || (!self.identity_unknown
                && self
                    .request
                    .booted_for
                    .is_some_and(|booted| Some(booted) != target))
    }

    /// The page may get a snippet (a boot or a shutdown to run).
    pub fn injects(&self) -> bool {
        self.request.page_load()
            && !self.request.logout_path
            && (self.target().is_some() || self.shutdown_first())
    }

    /// Ask the app for a full page (no conditional request, codings we can decode): the
    /// answer may get a snippet, or is a logout that may.
    pub fn prepares_page(&self) -> bool {
        self.injects() || self.request.logout_path
    }
}

/// What the head of the app's answer showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFacts {
    /// A 2xx or 3xx answer: what an app gives a logout it carried out (a 405 or a 403 on a
    /// logout path logged no one out).
    pub succeeded: bool,
    /// A 2xx HTML page in a charset and coding the rewriter handles.
    pub page: bool,
    /// It sets the session cookie to a session other than the request's (a login, a
    /// regenerated id): the page is for whoever that session names.
    pub new_session: bool,
    /// It expires the session cookie (and `detect_cookie_clear` is on).
    pub clears_session_cookie: bool,
}

/// What happens to a response.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome<'a> {
    /// The app's response, untouched.
    Pass,
    /// The snippet boots the Messenger.
    Boot(Who<'a>),
    /// The snippet shuts down the Messenger booted for someone else, then boots it.
    ShutdownThenBoot(Who<'a>),
    /// The snippet only shuts the Messenger down (a pending logout, an expired session).
    ShutdownOnly,
    /// A logout answered with a page: the snippet shuts the Messenger down (and boots a
    /// visitor when visitors get the Messenger); Intercom's cookie is expired.
    LogoutPage {
        /// Boot the Messenger for a visitor after the shutdown.
        boot_visitor: bool,
    },
    /// A logout answered with something else (a redirect, JSON): Intercom's cookie is
    /// expired and the next page the browser loads runs the shutdown.
    LogoutElsewhere,
    /// A page that sets a new session: identify the session it sets, then decide again
    /// with that user (and `new_session` false). Never an outcome of the second decision.
    Reidentify,
}

impl<'a> Outcome<'a> {
    /// The snippet starts with `Intercom('shutdown')`.
    pub fn shuts_down(&self) -> bool {
        matches!(
            self,
            Outcome::ShutdownThenBoot(_) | Outcome::ShutdownOnly | Outcome::LogoutPage { .. }
        )
    }

    /// Whether this is a logout (the session's cached lookup is dropped).
    pub fn is_logout(&self) -> bool {
        matches!(self, Outcome::LogoutPage { .. } | Outcome::LogoutElsewhere)
    }

    /// How the proxy's marker cookies change with this response.
    pub fn marker_changes(&self, facts: &Facts<'a>) -> MarkerChanges<'a> {
        let request = &facts.request;
        let consume_pending = request.pending_shutdown.then_some(false);
        let forget_booted = request.booted_for.is_some().then_some(None);
        match self {
            Outcome::Pass | Outcome::Reidentify => MarkerChanges::default(),
            Outcome::Boot(who) | Outcome::ShutdownThenBoot(who) => MarkerChanges {
                pending_shutdown: consume_pending,
                // Re-set on every page so that it rolls like Intercom's own cookie.
                booted_for: Some(Some(who.marker())),
                expire_intercom_session: false,
            },
            Outcome::ShutdownOnly => MarkerChanges {
                pending_shutdown: consume_pending,
                booted_for: forget_booted,
                expire_intercom_session: false,
            },
            Outcome::LogoutPage { .. } => MarkerChanges {
                pending_shutdown: consume_pending,
                booted_for: forget_booted,
                expire_intercom_session: true,
            },
            Outcome::LogoutElsewhere => MarkerChanges {
                pending_shutdown: Some(true),
                booted_for: forget_booted,
                expire_intercom_session: true,
            },
        }
    }
}

/// What happens to the app's answer, given everything known about the request.
pub fn decide<'a>(facts: &Facts<'a>, response: &ResponseFacts) -> Outcome<'a> {
    let request = &facts.request;
    // A cleared session cookie is a logout only when there was a session to end: apps also
    // expire stale cookies on anonymous responses. A logout path counts when the app carried
    // it out for a session (a cross-site GET with no session, a 405, end no one's session).
    let logged_out_on_path = request.logout_path
        && response.succeeded
        && (request.session_cookie || response.clears_session_cookie);
    if logged_out_on_path || (request.session_cookie && response.clears_session_cookie) {
        return if response.page {
            Outcome::LogoutPage {
                boot_visitor: request.boot_visitors,
            }
        } else {
            Outcome::LogoutElsewhere
        };
    }
    // A page that sets another session is for the user that session names, who may be
    // someone else (a login) or no one: it is decided once they are known.
    if response.new_session && response.page && request.page_load() && !request.logout_path {
        return Outcome::Reidentify;
    }
    // Not a page: a pending shutdown waits for the next one.
    if !facts.injects() || !response.page {
        return Outcome::Pass;
    }
    match (facts.target(), facts.shutdown_first()) {
        (Some(who), false) => Outcome::Boot(who),
        (Some(who), true) => Outcome::ShutdownThenBoot(who),
        (None, true) => Outcome::ShutdownOnly,
        // `injects` holds only with a target or a shutdown to run.
        (None, false) => Outcome::Pass,
    }
}

#[cfg(test)]
mod tests;
