//! What became of a page load: the snippet went in, or the page passed through for one
//! [`PassReason`]. One vocabulary for the metrics, the access log and anything that
//! explains the proxy's choices.
//!
//! Most outcomes are known from the response head. A page being rewritten is decided by its
//! body (the Messenger may already be there, the parser may give up): its outcome is a
//! `PageResult` the rewriter settles once, and that the access log reads when the response
//! is done. Each page load is counted once, as injected or passed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::metrics;

/// Why a page load went to the browser without the Messenger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PassReason {
    /// No session cookie (and visitors get no Messenger).
    NoSession,
    /// A session cookie that names no user: a visitor's session, expired, forged.
    Visitor,
    /// The session store failed.
    ResolverError,
    /// The session store did not answer within `session.timeout`.
    ResolverTimeout,
    /// The path's route has `inject = false`.
    RouteOff,
    /// A `[logout] paths` path that was not a logout (its pages never get a boot).
    LogoutPath,
    /// Not `2xx`.
    Not2xx,
    /// A `204`.
    NoContent,
    /// A part of a page (`206`, `Content-Range`).
    PartialContent,
    /// Not HTML.
    NotHtml,
    /// A download (`Content-Disposition: attachment`).
    Attachment,
    /// A charset or content coding the rewriter cannot read.
    UnknownEncoding,
    /// The user's settings could not be signed.
    SignError,
    /// The page loads the Messenger itself before the insertion point.
    MessengerPresent,
    /// The HTML parser reached its memory cap before the insertion point.
    ParserBailout,
    /// The page ends inside markup, with no `</head>` or `<body>` before.
    NoInsertionPoint,
    /// A `<meta>` CSP the proxy cannot read with certainty.
    CspUnreadable,
    /// Markup before the insertion point that the HTML parser would read differently from a
    /// browser (a raw-text element's start tag ending in `attr=>`).
    AmbiguousMarkup,
    /// The page's body stopped before the insertion point (the client left, the app's
    /// bytes stopped making sense).
    Incomplete,
}

impl PassReason {
    /// Every reason, in label order.
    pub const ALL: [PassReason; 19] = [
        PassReason::NoSession,
        PassReason::Visitor,
        PassReason::ResolverError,
        PassReason::ResolverTimeout,
        PassReason::RouteOff,
        PassReason::LogoutPath,
        PassReason::Not2xx,
        PassReason::NoContent,
        PassReason::PartialContent,
        PassReason::NotHtml,
        PassReason::Attachment,
        PassReason::UnknownEncoding,
        PassReason::SignError,
        PassReason::MessengerPresent,
        PassReason::ParserBailout,
        PassReason::NoInsertionPoint,
        PassReason::CspUnreadable,
        PassReason::AmbiguousMarkup,
        PassReason::Incomplete,
    ];

    /// The reason as metrics and logs name it.
    pub fn label(&self) -> &'static str {
        match self {
            PassReason::NoSession => "no_session",
            PassReason::Visitor => "visitor",
            PassReason::ResolverError => "resolver_error",
            PassReason::ResolverTimeout => "resolver_timeout",
            PassReason::RouteOff => "route_off",
            PassReason::LogoutPath => "logout_path",
            PassReason::Not2xx => "not_2xx",
            PassReason::NoContent => "no_content",
            PassReason::PartialContent => "partial_content",
            PassReason::NotHtml => "not_html",
            PassReason::Attachment => "attachment",
            PassReason::UnknownEncoding => "unknown_encoding",
            PassReason::SignError => "sign_error",
            PassReason::MessengerPresent => "messenger_present",
            PassReason::ParserBailout => "parser_bailout",
            PassReason::NoInsertionPoint => "no_insertion_point",
            PassReason::CspUnreadable => "csp_unreadable",
            PassReason::AmbiguousMarkup => "ambiguous_markup",
            PassReason::Incomplete => "incomplete",
        }
    }
}

/// Counts a page load decided from the response head.
pub(super) fn count(result: Result<(), PassReason>) {
    match result {
        Ok(()) => metrics::page_injected(),
        Err(reason) => metrics::page_passed(reason),
    }
}

/// "Not decided yet" in [`PageResult`]; "injected" is 1, a reason is 2 + its number.
const UNDECIDED: u8 = 0;
const INJECTED: u8 = 1;

/// The outcome of a page being rewritten, settled once by the rewriter (and counted then).
/// A page dropped before that is counted as [`PassReason::Incomplete`].
#[derive(Debug, Default)]
pub(super) struct PageResult(AtomicU8);

impl PageResult {
    /// Settles the outcome unless it already is; counts it the first time.
    pub(super) fn decide(&self, result: Result<(), PassReason>) {
        let code = match result {
            Ok(()) => INJECTED,
            Err(reason) => 2 + reason as u8,
        };
        if self
            .0
            .compare_exchange(UNDECIDED, code, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            count(result);
        }
    }

    pub(super) fn get(&self) -> Option<Result<(), PassReason>> {
        match self.0.load(Ordering::Relaxed) {
            UNDECIDED => None,
            INJECTED => Some(Ok(())),
            code => Some(Err(PassReason::ALL
                .get(usize::from(code - 2))
                .copied()
                .unwrap_or(PassReason::Incomplete))),
        }
    }
}

impl Drop for PageResult {
    fn drop(&mut self) {
        self.decide(Err(PassReason::Incomplete));
    }
}

/// The outcome of a page load, as its response's body tells it
/// ([`InjectBody::injection`](super::InjectBody::injection)) to the access log. Responses
/// that are not page loads (assets, API calls, the token endpoint) have none.
#[derive(Debug, Clone)]
pub struct Injection(Decision);

#[derive(Debug, Clone)]
enum Decision {
    Head(Result<(), PassReason>),
    Body(Arc<PageResult>),
}

impl Injection {
    pub(super) fn decided(result: Result<(), PassReason>) -> Self {
        Injection(Decision::Head(result))
    }

    pub(super) fn by_body(result: Arc<PageResult>) -> Self {
        Injection(Decision::Body(result))
    }

    /// `Ok` when the snippet went in, else why not; read once the response is done (a page
    /// whose body stopped before its insertion point is [`PassReason::Incomplete`]).
    pub fn result(&self) -> Result<(), PassReason> {
        match &self.0 {
            Decision::Head(result) => *result,
            Decision::Body(page) => page.get().unwrap_or(Err(PassReason::Incomplete)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_enum_and_a_page_is_settled_once() {
        for (i, reason) in PassReason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i);
            assert!(!reason.label().is_empty());
        }
        let page = Arc::new(PageResult::default());
        let injection = Injection::by_body(page.clone());
        assert_eq!(injection.result(), Err(PassReason::Incomplete));
        page.decide(Err(PassReason::CspUnreadable));
        page.decide(Ok(()));
        assert_eq!(injection.result(), Err(PassReason::CspUnreadable));
    }
}
