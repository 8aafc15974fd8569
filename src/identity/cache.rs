//! `session.cache_ttl`: session → user lookups cached by a hash of the cookie, bounded in
//! size, negative answers kept briefly, concurrent misses for one session coalesced.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use sha2::{Digest, Sha256};

use super::{Resolution, ResolveError, ResolveFuture, Session, SessionResolver};

/// Most sessions kept at once; past it the least used are evicted.
const MAX_ENTRIES: u64 = 100_000;
/// "No such session" is kept at most this long, so a fresh login is seen quickly.
const NEGATIVE_TTL: Duration = Duration::from_secs(2);

/// Wraps a store-backed resolver with the lookup cache.
pub struct CachedResolver {
    inner: Arc<dyn SessionResolver>,
    cache: Cache<[u8; 32], Resolution>,
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
    /// `inner` behind a cache; `ttl` zero disables caching.
    pub fn wrap(inner: Box<dyn SessionResolver>, ttl: Duration) -> Box<dyn SessionResolver> {
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
        })
    }
}

impl SessionResolver for CachedResolver {
    fn resolve<'a>(&'a self, session: Session<'a>) -> ResolveFuture<'a> {
        Box::pin(async move {
            // A hash, not the cookie: the cache never holds session tokens.
            let key: [u8; 32] = Sha256::digest(session.cookie.as_bytes()).into();
            // try_get_with runs one lookup per key at a time; errors are not cached.
            self.cache
                .try_get_with(key, self.inner.resolve(session))
                .await
                .map_err(|e: Arc<ResolveError>| (*e).clone())
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
}
