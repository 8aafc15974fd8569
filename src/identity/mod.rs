//! Who is behind a request: the app's session cookie, resolved to a [`User`].
//!
//! One [`SessionResolver`] is chosen by `session.resolver`; [`Identity`] wraps it with the
//! cookie lookup, the `session.timeout` bound and the rule "any doubt means no identity".

mod cookie;
mod fields;
mod jwt;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use http::HeaderMap;
use serde_json::{Map, Value};
use tracing::{debug, warn};

pub use cookie::session_cookie;
pub use fields::user_from_document;
pub use jwt::JwtResolver;

use crate::config::{FieldMap, ResolverConfig, SessionConfig};

/// A user resolved from a session, as Intercom will know them.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Stable user id (Intercom's `user_id`), never empty.
    pub id: String,
    /// Email, when mapped and present.
    pub email: Option<String>,
    /// Display name, when mapped and present.
    pub name: Option<String>,
    /// Custom attributes from `[session.fields]`, signed into the JWT.
    pub attributes: Map<String, Value>,
}

/// What a resolver concluded about a session.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// A verified user.
    User(User),
    /// No valid session: a visitor.
    Anonymous,
}

/// Why a lookup could not conclude (store down, bad answer): treated as "no identity".
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The session store or introspection endpoint failed.
    #[error("session store error: {0}")]
    Store(String),
}

/// A boxed, `Send` resolution future (the trait stays object safe).
pub type ResolveFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Resolution, ResolveError>> + Send + 'a>>;

/// Turns a session cookie value into a [`Resolution`]. One implementation per resolver kind.
pub trait SessionResolver: Send + Sync + 'static {
    /// Resolves the value of the session cookie.
    fn resolve<'a>(&'a self, cookie_value: &'a str) -> ResolveFuture<'a>;
}

/// Session cookies longer than this are not looked at: no app issues them, and hashing or
/// verifying megabytes per request would be an easy way to burn CPU.
pub const MAX_COOKIE_LEN: usize = 8 * 1024;

/// The configured resolver behind the session cookie, with its timeout.
pub struct Identity {
    cookie_name: String,
    resolver: Box<dyn SessionResolver>,
    timeout: Duration,
}

/// Why the identity layer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The configured resolver is not available in this build yet.
    #[error("session.resolver: the {0} resolver is not implemented yet (use \"jwt\")")]
    Unsupported(&'static str),
}

impl Identity {
    /// Builds the resolver chosen by `[session]`.
    pub fn from_config(config: &SessionConfig) -> Result<Identity, IdentityError> {
        let resolver: Box<dyn SessionResolver> = match &config.resolver {
            ResolverConfig::Jwt(jwt) => Box::new(JwtResolver::new(jwt, config.fields.clone())),
            ResolverConfig::Http(_) => return Err(IdentityError::Unsupported("http")),
            ResolverConfig::Redis(_) => return Err(IdentityError::Unsupported("redis")),
            ResolverConfig::Sql(_) => return Err(IdentityError::Unsupported("sql")),
        };
        Ok(Identity::new(
            config.cookie.clone(),
            resolver,
            config.timeout,
        ))
    }

    /// An identity layer over any resolver.
    pub fn new(cookie_name: String, resolver: Box<dyn SessionResolver>, timeout: Duration) -> Self {
        Identity {
            cookie_name,
            resolver,
            timeout,
        }
    }

    /// Resolves the user behind the request headers. Any failure (no cookie, a bad or
    /// expired session, a store error, a timeout) is `Anonymous`: fail closed for identity.
    pub async fn identify(&self, headers: &HeaderMap) -> Resolution {
        let Some(value) = session_cookie(headers, &self.cookie_name) else {
            return Resolution::Anonymous;
        };
        if value.len() > MAX_COOKIE_LEN {
            debug!(
                len = value.len(),
                "session cookie too long; treated as anonymous"
            );
            return Resolution::Anonymous;
        }
        match tokio::time::timeout(self.timeout, self.resolver.resolve(value)).await {
            Ok(Ok(resolution)) => resolution,
            Ok(Err(e)) => {
                warn!(error = %e, "session lookup failed; serving without identity");
                Resolution::Anonymous
            }
            Err(_) => {
                warn!(
                    timeout_ms = self.timeout.as_millis() as u64,
                    "session lookup timed out; serving without identity"
                );
                Resolution::Anonymous
            }
        }
    }
}

/// Maps a session document through `[session.fields]`; documents without a usable user id
/// are anonymous.
pub fn resolve_document(fields: &FieldMap, document: &Value) -> Resolution {
    match user_from_document(fields, document) {
        Some(user) => Resolution::User(user),
        None => Resolution::Anonymous,
    }
}
