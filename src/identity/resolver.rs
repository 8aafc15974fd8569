//! The resolver interface: what a session is, what resolving it concludes, and the trait
//! each resolver kind (and an app's own, see `examples/axum.rs`) implements.

use std::future::Future;
use std::pin::Pin;

use ::http::HeaderMap;
use sha2::Digest;

use crate::intercom::User;

/// What a resolver concluded about a session.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// A verified user.
    User(User),
    /// No valid session: a visitor.
    Anonymous,
}

/// Why a lookup could not conclude (store down, bad answer): treated as "no identity".
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    /// The session store or introspection endpoint failed.
    #[error("session store error: {0}")]
    Store(String),
    /// The session store did not answer within `session.timeout`.
    #[error("session lookup timed out")]
    Timeout,
}

/// A boxed, `Send` resolution future (the trait stays object safe).
pub type ResolveFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Resolution, ResolveError>> + Send + 'a>>;

/// [`SessionResolver::forget`]'s future: owns what it needs, so it can be spawned.
pub type ForgetFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The session a request presents: the session cookie's value, and the request headers
/// (the introspection resolver forwards the browser's `Cookie` header).
#[derive(Clone, Copy)]
pub struct Session<'a> {
    /// The raw value of the session cookie.
    pub cookie: &'a str,
    /// The request's headers.
    pub headers: &'a HeaderMap,
}

/// Turns a session into a [`Resolution`]. One implementation per resolver kind, or an
/// app's own (see `examples/axum.rs`).
pub trait SessionResolver: Send + Sync + 'static {
    /// Resolves the session. [`Identity`](super::Identity) bounds the future by `session.timeout` and
    /// treats an error or a timeout as "no identity".
    fn resolve<'a>(&'a self, session: Session<'a>) -> ResolveFuture<'a>;

    /// The resolution, computed now, for a resolver that answers in process (a JWT, an
    /// app's in-memory sessions): then no future is made and no timer armed, and
    /// [`resolve`](Self::resolve) is not called. `None` (the default): ask the store.
    fn resolve_in_process(
        &self,
        _session: Session<'_>,
    ) -> Option<Result<Resolution, ResolveError>> {
        None
    }

    /// Checks that the store answers (logged at start; never fatal).
    fn probe(&self) -> Pin<Box<dyn Future<Output = Result<(), ResolveError>> + Send + '_>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// What the store is, for log lines (never with credentials).
    fn describe(&self) -> String;

    /// Whether lookups leave the process (worth a reachability check at start).
    fn is_remote(&self) -> bool {
        true
    }

    /// What identifies the session for the lookup cache: a hash of the session cookie, or
    /// of everything the lookup depends on.
    fn cache_key(&self, session: Session<'_>) -> [u8; 32] {
        sha2::Sha256::digest(session.cookie.as_bytes()).into()
    }

    /// Drops what is known about a session (it was logged out or replaced); done when the
    /// future completes. It holds nothing of `session`, so it can be spawned.
    fn forget(&self, _session: Session<'_>) -> ForgetFuture {
        Box::pin(std::future::ready(()))
    }
}
