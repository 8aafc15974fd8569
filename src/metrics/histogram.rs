//! A latency histogram of fixed buckets, each an atomic: observing is a short scan of the
//! bounds and three relaxed atomic adds. (prometheus-client's own histogram takes a mutex
//! per observation, which the request path must not.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Observations by bucket (not cumulative: the exposition sums them), with their count and
/// sum, all in microseconds.
pub(super) struct Histogram<const N: usize> {
    /// Upper bounds, in microseconds, ascending.
    bounds: [u64; N],
    /// Observations at most `bounds[i]` and above `bounds[i - 1]`; the last is above all.
    buckets: [AtomicU64; N],
    over: AtomicU64,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// A histogram as read at one moment, in seconds.
#[cfg(any(feature = "server", test))]
pub(super) struct Reading {
    pub(super) sum: f64,
    pub(super) count: u64,
    /// `(upper bound, cumulative count)`, `+Inf` last.
    pub(super) buckets: Vec<(f64, u64)>,
}

impl<const N: usize> Histogram<N> {
    pub(super) const fn new(bounds: [u64; N]) -> Self {
        Histogram {
            bounds,
            buckets: [const { AtomicU64::new(0) }; N],
            over: AtomicU64::new(0),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub(super) fn observe(&self, value: Duration) {
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        let bucket = match self.bounds.iter().position(|&bound| micros <= bound) {
            Some(i) => &self.buckets[i],
            None => &self.over,
        };
        bucket.fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The buckets made cumulative. Read without a lock, so a scrape racing an observation
    /// may see it in the count and not yet in its bucket (or the reverse): off by one for
    /// one scrape, as with any lock-free exposition.
    #[cfg(any(feature = "server", test))]
    pub(super) fn read(&self) -> Reading {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(N + 1);
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            total += bucket.load(Ordering::Relaxed);
            buckets.push((*bound as f64 / 1e6, total));
        }
        total += self.over.load(Ordering::Relaxed);
        buckets.push((f64::INFINITY, total));
        Reading {
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: self.count.load(Ordering::Relaxed),
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new([1_000, 10_000]);
        h.observe(Duration::from_micros(1_000));
        h.observe(Duration::from_micros(1_001));
        h.observe(Duration::from_secs(1));
        let r = h.read();
        assert_eq!(r.count, 3);
        assert_eq!(r.buckets, vec![(0.001, 1), (0.01, 2), (f64::INFINITY, 3)]);
        assert!((r.sum - 1.002001).abs() < 1e-9);
    }
}
