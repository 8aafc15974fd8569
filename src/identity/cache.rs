//! `session.cache_ttl`: session → user lookups cached by a hash of the cookie, bounded in
//! size, negative answers kept briefly, concurrent misses for one session coalesced.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;

use super::{ForgetFuture, Resolution, ResolveError, ResolveFuture, Session, SessionResolver};

/// Most sessions kept at once; past it the least used are evicted.
const MAX_ENTRIES: u64 = 100_000;
/// "No such session" is kept at most this long, so a fresh login is seen quickly.
const NEGATIVE_TTL: Duration = Duration::from_secs(2);

/// Wraps a store-backed resolver with the lookup cache.
pub struct CachedResolver {
    inner: Arc<dyn SessionResolver>,
    cache: Cache<[u8; 32], Resolution>,
    timeout: Duration,
}

struct TtlByOutcome {
    positive: Duration,
}

impl Expiry<[u8; 32], Resolution> for TtlByOutcome {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Resolution,
        _now: Instant,
    ) -> Option<Duration> {
        Some(match value {
            Resolution::User(_) => self.positive,
            Resolution::Anonymous => self.positive.min(NEGATIVE_TTL),
        })
    }
}

impl CachedResolver {
    /// `inner` behind a cache; `ttl` zero disables caching. Each lookup is bounded by
    /// `timeout` inside the cache, so it always completes (with an error past the bound)
    /// instead of being cancelled with coalesced waiters queued behind it.
    pub fn wrap(
        inner: Box<dyn SessionResolver>,
        ttl: Duration,
        timeout: Duration,
    ) -> Box<dyn SessionResolver> {
        if ttl.is_zero() {
            return inner;
        }
        let cache = Cache::builder()
            .max_capacity(MAX_ENTRIES)
            .expire_after(TtlByOutcome { positive: ttl })
            .build();
        Box::new(CachedResolver {
            inner: Arc::from(inner),
            cache,
            timeout,
        })
    }
}

impl SessionResolver for CachedResolver {
    fn resolve<'a>(&'a self, session: Session<'a>) -> ResolveFuture<'a> {
        Box::pin(async move {
            // A hash, not the cookie: the cache never holds session tokens.
            let key = self.inner.cache_key(session);
            let lookup = async {
                match tokio::time::timeout(self.timeout, self.inner.resolve(session)).await {
                    Ok(result) => result,
                    Err(_) => Err(ResolveError::Timeout),
                }
            };
            // One lookup per key at a time (waiters share its answer, counted as hits: they
            // cost the store nothing); errors are not cached.
            let entry = self
                .cache
                .entry(key)
                .or_try_insert_with(lookup)
                .await
                .map_err(|e: Arc<ResolveError>| (*e).clone());
            crate::metrics::cache(entry.as_ref().is_ok_and(|e| !e.is_fresh()));
            entry.map(|entry| entry.into_value())
        })
    }

    fn probe(&self) -> Pin<Box<dyn Future<Output = Result<(), ResolveError>> + Send + '_>> {
        self.inner.probe()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }

    fn cache_key(&self, session: Session<'_>) -> [u8; 32] {
        self.inner.cache_key(session)
    }

    fn forget(&self, session: Session<'_>) -> ForgetFuture {
        let key = self.inner.cache_key(session);
        let cache = self.cache.clone();
        Box::pin(async move { cache.invalidate(&key).await })
    }
}
