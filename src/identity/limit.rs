//! At most one warning per interval, counting the ones held back: a store outage or a
//! misconfiguration under load must not flood the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// "No warning yet".
const NEVER: u64 = u64::MAX;

/// Lets one warning through per interval.
#[derive(Debug)]
pub(crate) struct WarnLimiter {
    interval_ms: u64,
    started: Instant,
    /// Milliseconds since `started` of the last warning let through, or [`NEVER`].
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl WarnLimiter {
    /// A limiter letting one warning through per `interval`; the first goes through at once.
    pub(crate) fn every(interval: Duration) -> Self {
        WarnLimiter {
            interval_ms: interval.as_millis() as u64,
            started: Instant::now(),
            last_ms: AtomicU64::new(NEVER),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(count of warnings held back since the last one)` when a warning may be logged
    /// now.
    pub(crate) fn allow(&self) -> Option<u64> {
        self.allow_at(self.started.elapsed().as_millis() as u64)
    }

    /// As [`allow`](Self::allow), at `now_ms` on a clock of the caller's (one clock per
    /// limiter).
    pub(crate) fn allow_at(&self, now_ms: u64) -> Option<u64> {
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == NEVER || now_ms.saturating_sub(last) >= self.interval_ms;
        if due
            && self
                .last_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_interval_counting_the_rest() {
        let limiter = WarnLimiter::every(Duration::from_secs(10));
        assert_eq!(limiter.allow_at(5), Some(0));
        assert_eq!(limiter.allow_at(6), None);
        assert_eq!(limiter.allow_at(10_004), None);
        assert_eq!(limiter.allow_at(10_005), Some(2));
    }
}
