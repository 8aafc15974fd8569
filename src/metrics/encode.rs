//! The counters in the Prometheus (OpenMetrics) text format, written by prometheus-client
//! from one reading of the atomics at scrape time. Every label value of a family is listed,
//! zeros included, so that a series exists before its first event.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::histogram::Histogram;
use super::{
    LogoutShape, LookupResult, METRICS, PassReason, STATUS_CLASSES, TOKEN_STATUSES, UpstreamError,
    get, token_status_label,
};
use std::sync::atomic::AtomicU64;

/// The `Content-Type` of [`encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The process's metrics, as `GET /metrics` serves them.
pub fn encode() -> String {
    let mut registry = Registry::with_prefix("isp");
    registry.register_collector(Box::new(Exposition));
    let mut out = String::with_capacity(8 * 1024);
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

#[derive(Debug)]
struct Exposition;

/// One counter family: `name{label="…"}` for each of `values`.
fn family<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, &'a AtomicU64)>,
) -> std::fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, counter) in values {
        metric
            .encode_family(&[(label, value)])?
            .encode_counter::<NoLabelSet, _, u64>(&get(counter), None)?;
    }
    Ok(())
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    c: &AtomicU64,
) -> std::fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&get(c), None)
}

fn histogram<const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    h: &Histogram<N>,
) -> std::fmt::Result {
    let reading = h.read();
    encoder
        .encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?
        .encode_histogram::<NoLabelSet>(reading.sum, reading.count, &reading.buckets, None)
}

impl Collector for Exposition {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let m = &METRICS;
        family(
            &mut e,
            "requests",
            "Requests answered, by status class",
            "class",
            STATUS_CLASSES.iter().copied().zip(&m.requests),
        )?;
        histogram(
            &mut e,
            "upstream_response",
            "Time from forwarding a request to the app's response head",
            &m.upstream_latency,
        )?;
        family(
            &mut e,
            "upstream_errors",
            "Requests the app gave no response head, by kind",
            "kind",
            UpstreamError::ALL
                .iter()
                .map(|k| k.label())
                .zip(&m.upstream_errors),
        )?;
        counter(
            &mut e,
            "pages_injected",
            "Pages that got the Messenger snippet",
            &m.pages_injected,
        )?;
        family(
            &mut e,
            "pages_passed",
            "Page loads passed through without the Messenger, by reason",
            "reason",
            PassReason::ALL
                .iter()
                .map(|r| r.label())
                .zip(&m.pages_passed),
        )?;
        family(
            &mut e,
            "logouts",
            "Logouts handled, by the shape of the app's answer",
            "shape",
            LogoutShape::ALL.iter().map(|s| s.label()).zip(&m.logouts),
        )?;
        counter(
            &mut e,
            "user_switches",
            "Pages that shut down the Messenger booted for someone else before booting it",
            &m.user_switches,
        )?;
        family(
            &mut e,
            "token_answers",
            "Token endpoint answers, by status",
            "status",
            (0..TOKEN_STATUSES.len())
                .map(token_status_label)
                .zip(&m.token_answers),
        )?;
        family(
            &mut e,
            "session_lookups",
            "Sessions looked up in their store (through the cache, if any), by result",
            "result",
            LookupResult::ALL.iter().map(|r| r.label()).zip(&m.lookups),
        )?;
        histogram(
            &mut e,
            "session_lookup",
            "Time a session lookup took (cache included)",
            &m.lookup_latency,
        )?;
        family(
            &mut e,
            "session_cache",
            "Session cache answers (hit) and lookups that went to the store (miss)",
            "result",
            ["hit", "miss"].into_iter().zip(&m.cache),
        )?;
        counter(
            &mut e,
            "jwts_signed",
            "Messenger JWTs signed",
            &m.jwts_signed,
        )?;
        family(
            &mut e,
            "config_reloads",
            "Config reloads, by result",
            "result",
            ["success", "failure"].into_iter().zip(&m.reloads),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exposed_with_all_its_labels() {
        super::super::page_passed(PassReason::Visitor);
        let text = encode();
        for line in [
            "# TYPE isp_requests counter",
            "isp_requests_total{class=\"5xx\"} ",
            "isp_upstream_response_seconds_bucket{le=\"+Inf\"} ",
            "isp_upstream_errors_total{kind=\"reset\"} ",
            "isp_pages_injected_total ",
            "isp_pages_passed_total{reason=\"no_session\"} ",
            "isp_logouts_total{shape=\"redirect\"} ",
            "isp_user_switches_total ",
            "isp_token_answers_total{status=\"409\"} ",
            "isp_session_lookups_total{result=\"timeout\"} ",
            "isp_session_lookup_seconds_count ",
            "isp_session_cache_total{result=\"miss\"} ",
            "isp_jwts_signed_total ",
            "isp_config_reloads_total{result=\"failure\"} ",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        assert!(!text.contains("isp_pages_passed_total{reason=\"visitor\"} 0\n"));
    }
}
