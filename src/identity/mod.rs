//! Who is behind a request: the app's session cookie, resolved to a [`User`].
//!
//! One [`SessionResolver`] is chosen by `session.resolver`; [`Identity`] wraps it with the
//! cookie lookup, the `session.timeout` bound and the rule "any doubt means no identity".

mod cache;
mod cookie;
mod diagnose;
#[cfg(feature = "redis")]
mod express;
mod fields;
#[cfg(feature = "http-resolver")]
mod http;
mod jwt;
mod limit;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sql")]
mod sql;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ::http::HeaderMap;
use sha2::Digest;
use tracing::{debug, warn};

pub use crate::intercom::User;
pub use cache::CachedResolver;
pub use cookie::session_cookie;
pub use diagnose::{Check, Diagnosis, Finding};
#[cfg(feature = "redis")]
pub use express::{ExpressCookieError, express_session_id};
pub use fields::user_from_document;
#[cfg(feature = "http-resolver")]
pub use http::HttpResolver;
pub use jwt::JwtResolver;
#[cfg(feature = "redis")]
pub use redis::RedisResolver;
#[cfg(feature = "sql")]
pub use sql::SqlResolver;

use crate::config::{ResolverConfig, SessionConfig};
use limit::WarnLimiter;

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
}

/// A boxed, `Send` resolution future (the trait stays object safe).
pub type ResolveFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Resolution, ResolveError>> + Send + 'a>>;

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
    /// Resolves the session. [`Identity`] bounds the future by `session.timeout` and
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

    /// Drops what is known about a session (it was logged out or replaced).
    fn forget(&self, _session: Session<'_>) {}
}

/// Session cookies longer than this are not looked at: no app issues them, and hashing or
/// verifying megabytes per request would be an easy way to burn CPU.
pub const MAX_COOKIE_LEN: usize = 8 * 1024;

/// The least time between two "session lookup failed" warnings.
const STORE_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// How much later than `session.timeout` the outer bound fires.
const OUTER_TIMEOUT_MARGIN: Duration = Duration::from_millis(50);

/// The configured resolver behind the session cookie, with its timeout.
pub struct Identity {
    cookie_name: String,
    resolver: Box<dyn SessionResolver>,
    timeout: Duration,
    warnings: WarnLimiter,
    diagnosis: Arc<Diagnosis>,
}

/// The error for a resolver this build leaves out (a feature turned off).
#[allow(dead_code)] // every resolver built in
fn not_built(resolver: &ResolverConfig) -> IdentityError {
    let (name, feature) = match resolver {
        ResolverConfig::Jwt(_) => ("jwt", "default"),
        ResolverConfig::Http(_) => ("http", "http-resolver"),
        ResolverConfig::Redis(_) => ("redis", "redis"),
        ResolverConfig::Sql(_) => ("sql", "sql"),
    };
    IdentityError::Config {
        key: "session.resolver",
        message: format!(
            "this build has no \"{name}\" resolver (built without the cargo feature \"{feature}\")"
        ),
    }
}

/// Why the identity layer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A resolver setting is unusable.
    #[error("{key}: {message}")]
    Config {
        /// The config key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Identity {
    /// Builds the resolver chosen by `[session]`, with the lookup cache for store-backed
    /// resolvers. Nothing connects yet: a store that is down at start is not fatal.
    pub fn from_config(config: &SessionConfig) -> Result<Identity, IdentityError> {
        let fields = config.fields.clone();
        // One record of what sessions fail on, so a misconfiguration is warned about.
        let diagnosis = Arc::new(Diagnosis::default());
        let resolver: Box<dyn SessionResolver> = match &config.resolver {
            ResolverConfig::Jwt(jwt) => Box::new(JwtResolver::new(
                jwt,
                fields,
                config.cache_ttl,
                diagnosis.clone(),
            )),
            #[cfg(feature = "http-resolver")]
            ResolverConfig::Http(http) => CachedResolver::wrap(
                Box::new(HttpResolver::new(
                    http,
                    fields,
                    config.timeout,
                    diagnosis.clone(),
                )?),
                config.cache_ttl,
                config.timeout,
            ),
            #[cfg(feature = "redis")]
            ResolverConfig::Redis(redis) => CachedResolver::wrap(
                Box::new(RedisResolver::new(
                    redis,
                    fields,
                    config.timeout,
                    diagnosis.clone(),
                )?),
                config.cache_ttl,
                config.timeout,
            ),
            #[cfg(feature = "sql")]
            ResolverConfig::Sql(sql) => CachedResolver::wrap(
                Box::new(SqlResolver::new(
                    sql,
                    fields,
                    config.timeout,
                    diagnosis.clone(),
                )?),
                config.cache_ttl,
                config.timeout,
            ),
            #[allow(unreachable_patterns)] // every resolver built in
            other => return Err(not_built(other)),
        };
        Ok(Identity {
            diagnosis,
            ..Identity::new(config.cookie.clone(), resolver, config.timeout)
        })
    }

    /// An identity layer over any resolver.
    pub fn new(cookie_name: String, resolver: Box<dyn SessionResolver>, timeout: Duration) -> Self {
        Identity {
            cookie_name,
            resolver,
            timeout,
            warnings: WarnLimiter::every(STORE_WARNING_INTERVAL),
            diagnosis: Arc::default(),
        }
    }

    /// What the session store is, for log lines (never with credentials).
    pub fn describe_store(&self) -> String {
        self.resolver.describe()
    }

    /// Logs whether the session store answers. A warning, never a refusal: a restart during a
    /// store outage must still serve pages.
    pub async fn log_reachability(&self) {
        if !self.resolver.is_remote() {
            return;
        }
        let store = self.resolver.describe();
        match tokio::time::timeout(
            self.timeout.max(Duration::from_secs(2)),
            self.resolver.probe(),
        )
        .await
        {
            Ok(Ok(())) => tracing::info!(%store, "session store reachable"),
            Ok(Err(e)) => {
                warn!(%store, error = %e, "session store unreachable at start; pages are served without identity until it answers")
            }
            Err(_) => {
                warn!(%store, "session store did not answer at start; pages are served without identity until it answers")
            }
        }
    }

    /// Forgets the cached lookup of the session these request headers carry (after a
    /// logout, or when the response replaces the session).
    pub fn forget(&self, headers: &HeaderMap) {
        if let Some(value) = session_cookie(headers, &self.cookie_name) {
            self.resolver.forget(Session {
                cookie: value,
                headers,
            });
        }
    }

    /// Forgets the cached lookup of a session cookie value the app just set.
    pub fn forget_value(&self, value: &str) {
        let headers = HeaderMap::new();
        self.resolver.forget(Session {
            cookie: value,
            headers: &headers,
        });
    }

    /// Resolves the user behind the request headers. Any failure (no cookie, a bad or
    /// expired session, a store error, a timeout) is `Anonymous`: fail closed for identity.
    pub async fn identify(&self, headers: &HeaderMap) -> Resolution {
        let resolution = match self.identify_now(headers) {
            Some(resolution) => return resolution,
            None => self.resolve_in_store(headers).await,
        };
        self.vouch(&resolution);
        resolution
    }

    /// [`identify`](Self::identify) without a future, when no store needs asking: no
    /// usable session cookie, or a resolver that answers in process (a JWT). `None`: the
    /// store must be asked.
    pub fn identify_now(&self, headers: &HeaderMap) -> Option<Resolution> {
        let resolution = match self.session(headers) {
            None => Resolution::Anonymous,
            Some(session) => match self.resolver.resolve_in_process(session)? {
                Ok(resolution) => resolution,
                Err(e) => {
                    debug!(error = %e, "session not resolved; anonymous");
                    Resolution::Anonymous
                }
            },
        };
        self.vouch(&resolution);
        Some(resolution)
    }

    /// Whichever cache answered, a user means the session passed every check.
    fn vouch(&self, resolution: &Resolution) {
        if matches!(resolution, Resolution::User(_)) {
            self.diagnosis.user_resolved();
        }
    }

    /// The request's session, when it carries one usable session cookie.
    fn session<'h>(&self, headers: &'h HeaderMap) -> Option<Session<'h>> {
        let Some(value) = session_cookie(headers, &self.cookie_name) else {
            self.no_session_cookie(headers);
            return None;
        };
        if value.len() > MAX_COOKIE_LEN {
            debug!(
                len = value.len(),
                "session cookie too long; treated as anonymous"
            );
            return None;
        }
        Some(Session {
            cookie: value,
            headers,
        })
    }

    /// The session cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// Says (at debug level, names only) which cookies a request carried instead of one
    /// usable session cookie: a wrong `session.cookie` shows here.
    fn no_session_cookie(&self, headers: &HeaderMap) {
        if tracing::enabled!(tracing::Level::DEBUG) && headers.contains_key(::http::header::COOKIE)
        {
            debug!(
                session_cookie = %self.cookie_name,
                cookies_present = %cookie::cookie_names(headers),
                "no usable session cookie (none named session.cookie, or more than one); anonymous"
            );
        }
    }

    /// Asks the store, bounded by `session.timeout`; `identify_now` found a session.
    async fn resolve_in_store(&self, headers: &HeaderMap) -> Resolution {
        let Some(session) = self.session(headers) else {
            return Resolution::Anonymous;
        };
        // The cache bounds its own lookups by `timeout` (so a cancelled lookup never leaves
        // coalesced waiters behind); this outer bound, a little later, covers the rest.
        let bound = self.timeout + OUTER_TIMEOUT_MARGIN;
        match tokio::time::timeout(bound, self.resolver.resolve(session)).await {
            Ok(Ok(resolution)) => resolution,
            Ok(Err(e)) => {
                if let Some(suppressed) = self.warnings.allow() {
                    warn!(error = %e, suppressed, "session lookup failed; serving without identity");
                }
                Resolution::Anonymous
            }
            Err(_) => {
                if let Some(suppressed) = self.warnings.allow() {
                    warn!(
                        timeout_ms = self.timeout.as_millis() as u64,
                        suppressed, "session lookup timed out; serving without identity"
                    );
                }
                Resolution::Anonymous
            }
        }
    }
}
