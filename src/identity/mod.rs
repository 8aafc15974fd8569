//! Who is behind a request: the app's session cookie, resolved to a [`User`].
//!
//! One [`SessionResolver`] is chosen by `session.resolver`; [`Identity`] wraps it with the
//! cookie lookup, the `session.timeout` bound and the rule "any doubt means no identity".

mod cache;
mod cookie;
mod diagnose;
mod django;
#[cfg(feature = "redis")]
mod express;
mod fields;
mod flask;
#[doc(hidden)]
pub mod fuzzing;
mod header;
#[cfg(feature = "http-resolver")]
mod http;
mod inflate;
mod jwt;
mod laravel;
mod limit;
#[cfg(any(feature = "sql", feature = "http-resolver"))]
mod lookup;
mod php;
mod rails;
#[cfg(feature = "redis")]
mod redis;
mod resolver;
#[cfg(feature = "sql")]
mod sql;
mod status;
mod stored;

use std::sync::Arc;
use std::time::Duration;

use ::http::HeaderMap;
use tracing::{debug, warn};

pub use crate::intercom::User;
pub use cache::CachedResolver;
pub use cookie::{cookie_values, session_cookie, with_session_cookie};
pub use diagnose::{Check, Diagnosis, Finding};
pub use django::DjangoResolver;
#[cfg(feature = "redis")]
pub use express::{ExpressCookieError, express_session_id};
pub use fields::user_from_document;
pub use flask::FlaskResolver;
use header::HeaderResolver;
pub use header::HeaderTrust;
#[cfg(feature = "http-resolver")]
pub use http::HttpResolver;
pub use jwt::JwtResolver;
pub use laravel::LaravelResolver;
#[cfg(any(feature = "sql", feature = "http-resolver"))]
pub use lookup::LookupResolver;
pub use php::PhpResolver;
pub use rails::RailsResolver;
#[cfg(feature = "redis")]
pub use redis::RedisResolver;
#[cfg(feature = "sql")]
pub use sql::SqlResolver;
pub use status::{LookupResult, StoreDown};

use crate::config::{ResolverConfig, SessionConfig};
use limit::WarnLimiter;

pub use resolver::{
    ForgetFuture, Resolution, ResolveError, ResolveFuture, Session, SessionResolver,
};

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
    /// For `resolver = "header"`: the session is the identity headers, not a cookie.
    header_trust: Option<HeaderTrust>,
}

/// A secret and its comma-listed fallbacks (`SECRET_KEY_FALLBACKS`), current first.
fn key_list(
    current: &crate::config::Secret,
    fallbacks: Option<&crate::config::Secret>,
) -> Vec<Vec<u8>> {
    let mut keys = vec![current.expose().to_vec()];
    if let Some(fallbacks) = fallbacks {
        keys.extend(comma_list(fallbacks));
    }
    keys
}

/// The keys of a comma-listed secret (previous or fallback keys), trimmed, empty ones left
/// out.
fn comma_list(list: &crate::config::Secret) -> Vec<Vec<u8>> {
    String::from_utf8_lossy(list.expose())
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| k.as_bytes().to_vec())
        .collect()
}

/// The error for a resolver this build leaves out (a feature turned off).
#[allow(dead_code)] // every resolver built in
fn not_built(resolver: &ResolverConfig) -> IdentityError {
    let (name, feature) = match resolver {
        ResolverConfig::Jwt(_) => ("jwt", "default"),
        ResolverConfig::Http(_) => ("http", "http-resolver"),
        ResolverConfig::Redis(_) => ("redis", "redis"),
        ResolverConfig::Sql(_) => ("sql", "sql"),
        ResolverConfig::Laravel(_)
        | ResolverConfig::Php(_)
        | ResolverConfig::Header(_)
        | ResolverConfig::Rails(_)
        | ResolverConfig::Django(_)
        | ResolverConfig::Flask(_) => ("these", "default"),
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
        let (timeout, diag) = (config.timeout, diagnosis.clone());
        let resolver: Box<dyn SessionResolver> = match &config.resolver {
            ResolverConfig::Jwt(jwt) => {
                Box::new(JwtResolver::new(jwt, fields, config.cache_ttl, diag))
            }
            #[cfg(feature = "http-resolver")]
            ResolverConfig::Http(http) => Box::new(HttpResolver::new(http, fields, timeout, diag)?),
            #[cfg(feature = "redis")]
            ResolverConfig::Redis(redis) => {
                Box::new(RedisResolver::new(redis, fields, timeout, diag)?)
            }
            #[cfg(feature = "sql")]
            ResolverConfig::Sql(sql) => Box::new(SqlResolver::new(sql, fields, timeout, diag)?),
            ResolverConfig::Laravel(laravel) => Box::new(LaravelResolver::new(
                laravel,
                &config.cookie,
                fields,
                timeout,
                diag,
            )?),
            ResolverConfig::Php(php) => Box::new(PhpResolver::new(php, fields, timeout, diag)?),
            ResolverConfig::Header(header) => Box::new(HeaderResolver::new(header, fields, diag)),
            ResolverConfig::Rails(rails) => {
                Box::new(RailsResolver::new(rails, &config.cookie, fields, diag))
            }
            ResolverConfig::Django(django) => {
                Box::new(DjangoResolver::new(django, fields, timeout, diag)?)
            }
            ResolverConfig::Flask(flask) => Box::new(FlaskResolver::new(flask, fields, diag)),
            #[allow(unreachable_patterns)] // every resolver built in
            other => return Err(not_built(other)),
        };
        // With `[session.lookup]` the user's record is fetched after any resolver; a remote
        // step (a store, or that record) answers through the lookup cache.
        let resolver = match &config.lookup {
            #[cfg(any(feature = "sql", feature = "http-resolver"))]
            Some(lookup) => LookupResolver::wrap(
                resolver,
                lookup,
                config.fields.clone(),
                timeout,
                diagnosis.clone(),
            )?,
            #[cfg(not(any(feature = "sql", feature = "http-resolver")))]
            Some(_) => {
                return Err(IdentityError::Config {
                    key: "session.lookup",
                    message: "this build has no SQL or HTTP client (cargo features \"sql\", \"http-resolver\")".into(),
                });
            }
            None => resolver,
        };
        let resolver = match resolver.is_remote() {
            true => CachedResolver::wrap(resolver, config.cache_ttl, timeout),
            false => resolver,
        };
        let header_trust = match &config.resolver {
            ResolverConfig::Header(header) => Some(HeaderTrust::new(header)),
            _ => None,
        };
        Ok(Identity {
            diagnosis,
            header_trust,
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
            header_trust: None,
        }
    }

    /// For `resolver = "header"`: who may send the identity headers (the layer strips them
    /// from anyone else before anything reads them).
    pub fn header_trust(&self) -> Option<&HeaderTrust> {
        self.header_trust.as_ref()
    }

    /// Whether the session is a cookie (every resolver but `header`).
    pub fn reads_cookie(&self) -> bool {
        self.header_trust.is_none()
    }

    /// Whether the request presents a session: the session cookie, or identity headers.
    pub fn presents_session(&self, headers: &HeaderMap) -> bool {
        match &self.header_trust {
            Some(trust) => trust.present(headers),
            None => session_cookie(headers, &self.cookie_name).is_some(),
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
        // More time than a lookup gets: a first connection (TLS, a pool) may be slow.
        match self
            .probe_store(self.timeout.max(Duration::from_secs(2)))
            .await
        {
            Ok(()) => tracing::info!(store = %self.resolver.describe(), "session store reachable"),
            Err(down) => {
                warn!(%down, "session store unreachable at start; pages are served without identity until it answers")
            }
        }
    }

    /// Forgets the cached lookup of the session these request headers carry (after a
    /// logout, or when the response replaces the session). Done in the background: the
    /// response does not wait for it.
    pub fn forget(&self, headers: &HeaderMap) {
        if let Some(value) = session_cookie(headers, &self.cookie_name) {
            tokio::spawn(self.resolver.forget(Session {
                cookie: value,
                headers,
            }));
        }
    }

    /// Resolves the session these cookies carry without trusting any cached lookup of it:
    /// a response just set it, and may have reused an id the cache knew as someone else.
    pub async fn identify_afresh(&self, headers: &HeaderMap) -> Resolution {
        self.identify_afresh_traced(headers).await.0
    }

    /// [`identify_afresh`](Self::identify_afresh), saying how the lookup ended.
    pub async fn identify_afresh_traced(&self, headers: &HeaderMap) -> (Resolution, LookupResult) {
        if let Some(session) = self.session(headers) {
            self.resolver.forget(session).await;
        }
        let (resolution, result) = self.identify_traced(headers).await;
        // An app may write the session after its response head left (express-session's
        // auto-save, PHP at script end): "no such session" now is not kept, so the next
        // page asks again.
        if resolution == Resolution::Anonymous
            && let Some(session) = self.session(headers)
        {
            tokio::spawn(self.resolver.forget(session));
        }
        (resolution, result)
    }

    /// Whether two requests' cookies name the same session: the same cookie value, or values
    /// the resolver reads as one session (a Laravel cookie is re-encrypted on every
    /// response, around the same session id). Decided in process, never by a lookup.
    pub fn same_session(&self, a: &HeaderMap, b: &HeaderMap) -> bool {
        match (self.session(a), self.session(b)) {
            (Some(a), Some(b)) => {
                a.cookie == b.cookie || self.resolver.cache_key(a) == self.resolver.cache_key(b)
            }
            _ => false,
        }
    }

    /// Resolves the user behind the request headers. Any failure (no cookie, a bad or
    /// expired session, a store error, a timeout) is `Anonymous`: fail closed for identity.
    pub async fn identify(&self, headers: &HeaderMap) -> Resolution {
        self.identify_traced(headers).await.0
    }

    /// [`identify`](Self::identify), saying how the lookup ended.
    pub async fn identify_traced(&self, headers: &HeaderMap) -> (Resolution, LookupResult) {
        let (resolution, result) = match self.identify_now_traced(headers) {
            Some(identified) => return identified,
            None => self.resolve_in_store(headers).await,
        };
        self.vouch(&resolution);
        (resolution, result)
    }

    /// [`identify`](Self::identify) without a future, when no store needs asking: no
    /// usable session cookie, or a resolver that answers in process (a JWT). `None`: the
    /// store must be asked.
    pub fn identify_now(&self, headers: &HeaderMap) -> Option<Resolution> {
        self.identify_now_traced(headers)
            .map(|(resolution, _)| resolution)
    }

    /// [`identify_now`](Self::identify_now), saying how the lookup ended.
    pub fn identify_now_traced(&self, headers: &HeaderMap) -> Option<(Resolution, LookupResult)> {
        let (resolution, result) = match self.session(headers) {
            None => (Resolution::Anonymous, LookupResult::Anonymous),
            Some(session) => match self.resolver.resolve_in_process(session)? {
                Ok(resolution) => {
                    let result = LookupResult::of(&resolution);
                    (resolution, result)
                }
                Err(e) => {
                    debug!(error = %e, "session not resolved; anonymous");
                    (Resolution::Anonymous, LookupResult::Error)
                }
            },
        };
        self.vouch(&resolution);
        Some((resolution, result))
    }

    /// Whichever cache answered, a user means the session passed every check.
    fn vouch(&self, resolution: &Resolution) {
        if matches!(resolution, Resolution::User(_)) {
            self.diagnosis.user_resolved();
        }
    }

    /// The request's session, when it carries one usable session cookie.
    fn session<'h>(&self, headers: &'h HeaderMap) -> Option<Session<'h>> {
        if let Some(trust) = &self.header_trust {
            return trust.present(headers).then_some(Session {
                cookie: "",
                headers,
            });
        }
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
    async fn resolve_in_store(&self, headers: &HeaderMap) -> (Resolution, LookupResult) {
        let Some(session) = self.session(headers) else {
            return (Resolution::Anonymous, LookupResult::Anonymous);
        };
        // The cache bounds its own lookups by `timeout` (so a cancelled lookup never leaves
        // coalesced waiters behind); this outer bound, a little later, covers the rest.
        let bound = self.timeout + OUTER_TIMEOUT_MARGIN;
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(bound, self.resolver.resolve(session)).await;
        let identified = match answer {
            Ok(Ok(resolution)) => {
                let result = LookupResult::of(&resolution);
                (resolution, result)
            }
            Ok(Err(ResolveError::Timeout)) | Err(_) => {
                if let Some(suppressed) = self.warnings.allow() {
                    warn!(
                        timeout_ms = self.timeout.as_millis() as u64,
                        suppressed, "session lookup timed out; serving without identity"
                    );
                }
                (Resolution::Anonymous, LookupResult::Timeout)
            }
            Ok(Err(e)) => {
                if let Some(suppressed) = self.warnings.allow() {
                    warn!(error = %e, suppressed, "session lookup failed; serving without identity");
                }
                (Resolution::Anonymous, LookupResult::Error)
            }
        };
        crate::metrics::session_lookup(identified.1, started.elapsed());
        identified
    }
}
