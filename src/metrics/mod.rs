//! What the proxy counts, for `GET /metrics` on the admin listener.
//!
//! Every counter is a plain atomic in one `static`, indexed by a small enum: a layer counts
//! with one relaxed atomic add (no allocation, no lock, no label lookup), whether or not
//! anything ever reads the counters, so the injection layer embedded in an app without the
//! proxy's server counts just the same. Labels come only from fixed enums (status classes,
//! [`PassReason`]s, error kinds): never a user id, a path, a cookie or any other value a
//! client chooses. The Prometheus text is written on demand by `encode.rs` (server builds).
//!
//! The counters are per process: two proxies in one process (tests) share them.

#[cfg(feature = "server")]
mod encode;
mod histogram;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::StatusCode;

#[cfg(feature = "server")]
pub use encode::{CONTENT_TYPE, encode};
use histogram::Histogram;

pub use crate::identity::LookupResult;
pub use crate::inject::PassReason;

/// A failure to get a response head from the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    /// No connection could be made (refused, unreachable, DNS, TLS).
    Connect,
    /// Connecting, or the answer, took longer than `upstream.connect_timeout` /
    /// `upstream.timeout`.
    Timeout,
    /// The connection broke, or what came back was not HTTP.
    Reset,
    /// Every connection `upstream.max_connections` allows stayed busy.
    Busy,
}

impl UpstreamError {
    /// Every kind, in label order.
    pub const ALL: [UpstreamError; 4] = [
        UpstreamError::Connect,
        UpstreamError::Timeout,
        UpstreamError::Reset,
        UpstreamError::Busy,
    ];

    /// The `kind` label.
    pub fn label(self) -> &'static str {
        match self {
            UpstreamError::Connect => "connect",
            UpstreamError::Timeout => "timeout",
            UpstreamError::Reset => "reset",
            UpstreamError::Busy => "busy",
        }
    }
}

/// How an app answered a logout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutShape {
    /// A page: the snippet shuts the Messenger down on it.
    Html,
    /// A redirect: the next page shuts it down.
    Redirect,
    /// Anything else (JSON, an empty 2xx): the next page shuts it down.
    Other,
}

impl LogoutShape {
    /// Every shape, in label order.
    pub const ALL: [LogoutShape; 3] =
        [LogoutShape::Html, LogoutShape::Redirect, LogoutShape::Other];

    /// The `shape` label.
    pub fn label(self) -> &'static str {
        match self {
            LogoutShape::Html => "html",
            LogoutShape::Redirect => "redirect",
            LogoutShape::Other => "other",
        }
    }
}

/// The token endpoint's answers, by status: the few it gives, and "other".
const TOKEN_STATUSES: [u16; 7] = [200, 401, 403, 405, 409, 500, 0];

#[cfg(any(feature = "server", test))]
fn token_status_label(index: usize) -> &'static str {
    match TOKEN_STATUSES[index] {
        200 => "200",
        401 => "401",
        403 => "403",
        405 => "405",
        409 => "409",
        500 => "500",
        _ => "other",
    }
}

/// Status classes of the proxy's answers: 1xx to 5xx.
#[cfg(feature = "server")]
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Upper bounds of the upstream latency buckets, in microseconds (1 ms to 10 s).
const UPSTREAM_BUCKETS: [u64; 13] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];
/// Upper bounds of the session lookup buckets, in microseconds (0.25 ms to 1 s; lookups are
/// bounded by `session.timeout`).
const LOOKUP_BUCKETS: [u64; 11] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

const fn counters<const N: usize>() -> [AtomicU64; N] {
    [const { AtomicU64::new(0) }; N]
}

/// Every counter of the process.
struct Metrics {
    requests: [AtomicU64; 5],
    upstream_latency: Histogram<13>,
    upstream_errors: [AtomicU64; 4],
    pages_injected: AtomicU64,
    pages_passed: [AtomicU64; PassReason::ALL.len()],
    logouts: [AtomicU64; 3],
    user_switches: AtomicU64,
    token_answers: [AtomicU64; TOKEN_STATUSES.len()],
    lookups: [AtomicU64; 4],
    lookup_latency: Histogram<11>,
    cache: [AtomicU64; 2],
    jwts_signed: AtomicU64,
    reloads: [AtomicU64; 2],
}

static METRICS: Metrics = Metrics {
    requests: counters(),
    upstream_latency: Histogram::new(UPSTREAM_BUCKETS),
    upstream_errors: counters(),
    pages_injected: AtomicU64::new(0),
    pages_passed: counters(),
    logouts: counters(),
    user_switches: AtomicU64::new(0),
    token_answers: counters(),
    lookups: counters(),
    lookup_latency: Histogram::new(LOOKUP_BUCKETS),
    cache: counters(),
    jwts_signed: AtomicU64::new(0),
    reloads: counters(),
};

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The proxy answered a request with `status` (counted by class).
pub fn request(status: StatusCode) {
    let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
    add(&METRICS.requests[class]);
}

/// The app's response head came after `latency`.
pub fn upstream_answered(latency: Duration) {
    METRICS.upstream_latency.observe(latency);
}

/// No response head came from the app.
pub fn upstream_failed(error: UpstreamError) {
    add(&METRICS.upstream_errors[error as usize]);
}

/// A page got the snippet.
pub fn page_injected() {
    add(&METRICS.pages_injected);
}

/// A page load went to the browser without the Messenger.
pub fn page_passed(reason: PassReason) {
    add(&METRICS.pages_passed[reason as usize]);
}

/// A logout was handled.
pub fn logout(shape: LogoutShape) {
    add(&METRICS.logouts[shape as usize]);
}

/// A page shut down the Messenger booted for someone else and booted it for its user.
pub fn user_switch() {
    add(&METRICS.user_switches);
}

/// The token endpoint answered with `status`.
pub fn token_answer(status: StatusCode) {
    let index = TOKEN_STATUSES
        .iter()
        .position(|&s| s == status.as_u16())
        .unwrap_or(TOKEN_STATUSES.len() - 1);
    add(&METRICS.token_answers[index]);
}

/// A session was looked up in its store (through the cache, if any) in `latency`.
pub fn session_lookup(result: LookupResult, latency: Duration) {
    add(&METRICS.lookups[result as usize]);
    METRICS.lookup_latency.observe(latency);
}

/// The session cache answered (`hit`), or a lookup went to the store.
pub fn cache(hit: bool) {
    add(&METRICS.cache[usize::from(!hit)]);
}

/// A Messenger JWT was signed.
pub fn jwt_signed() {
    add(&METRICS.jwts_signed);
}

/// A config reload was attempted: applied (`ok`) or refused.
pub fn reload(ok: bool) {
    add(&METRICS.reloads[usize::from(!ok)]);
}

/// Reads a counter (tests, and the exposition).
#[cfg(any(feature = "server", test))]
fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_fixed_and_counters_land_where_their_label_says() {
        let before = get(&METRICS.requests[4]);
        request(StatusCode::BAD_GATEWAY);
        assert!(get(&METRICS.requests[4]) > before);
        let before = get(&METRICS.token_answers[TOKEN_STATUSES.len() - 1]);
        token_answer(StatusCode::IM_A_TEAPOT);
        assert!(get(&METRICS.token_answers[TOKEN_STATUSES.len() - 1]) > before);
        assert_eq!(token_status_label(TOKEN_STATUSES.len() - 1), "other");
        for (i, kind) in UpstreamError::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i);
        }
        for (i, shape) in LogoutShape::ALL.iter().enumerate() {
            assert_eq!(*shape as usize, i);
        }
        for (i, result) in LookupResult::ALL.iter().enumerate() {
            assert_eq!(*result as usize, i);
        }
    }
}
