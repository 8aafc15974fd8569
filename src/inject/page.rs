//! The response side of injection: is this an HTML page we can rewrite, and what changes
//! about its headers and body when we do.

use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use lol_html::AsciiCompatibleEncoding;
use tracing::debug;

use super::InjectBody;
use super::codec::Coding;
use super::csp::{self, CspContext};
use super::memo::HeadMemo;
use super::outcome::PassReason;
use super::rewrite::{PagePlan, PageRewriter};
use super::scan::MessengerMarkers;
use super::stream::RewriteBody;
use crate::headers::header_tokens;
use crate::intercom::IntercomHosts;
use crate::intercom::Snippet;

static CSP: HeaderName = HeaderName::from_static("content-security-policy");
static CSP_REPORT_ONLY: HeaderName = HeaderName::from_static("content-security-policy-report-only");

/// How to read a page that can take the snippet.
pub(super) struct PageFormat {
    encoding: AsciiCompatibleEncoding,
    coding: Coding,
}

/// `Ok` when the response is a page the snippet can go into: 2xx (not 204/206), HTML,
/// not a download, in a charset and a content coding we can handle; else why not.
pub(super) fn rewritable_page(
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<PageFormat, PassReason> {
    if !status.is_success() {
        return Err(PassReason::Not2xx);
    }
    if status == StatusCode::NO_CONTENT {
        return Err(PassReason::NoContent);
    }
    if status == StatusCode::PARTIAL_CONTENT || headers.contains_key(header::CONTENT_RANGE) {
        return Err(PassReason::PartialContent);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or(PassReason::NotHtml)?;
    if !is_html(content_type) {
        return Err(PassReason::NotHtml);
    }
    if is_attachment(headers) {
        // A download must stay the app's file and must not carry a token.
        return Err(PassReason::Attachment);
    }
    let Some(encoding) = page_encoding(content_type) else {
        debug!(
            content_type,
            "page charset cannot be parsed; passed through"
        );
        return Err(PassReason::UnknownEncoding);
    };
    let mut codings = headers.get_all(header::CONTENT_ENCODING).iter();
    let coding_header = codings.next().map(|v| v.to_str().unwrap_or("?"));
    let coding = match codings.next() {
        // Two Content-Encoding lines are a stacked coding: not ours to decode.
        Some(_) => None,
        None => Coding::from_header(coding_header),
    };
    let Some(coding) = coding else {
        debug!(coding = ?coding_header, "content coding cannot be decoded; passed through");
        return Err(PassReason::UnknownEncoding);
    };
    Ok(PageFormat { encoding, coding })
}

/// Puts `snippet` into the page: CSP and cache headers fixed, body wrapped.
pub(super) fn insert<B>(
    response: Response<B>,
    format: PageFormat,
    snippet: Snippet,
    hosts: &Arc<IntercomHosts>,
    markers: &Arc<MessengerMarkers>,
    memo: &Arc<HeadMemo>,
    even_if_present: bool,
) -> Response<InjectBody<B>> {
    let (mut parts, body) = response.into_parts();
    let nonce = rewrite_csp_headers(&mut parts.headers, &snippet, hosts);
    fix_headers(&mut parts.headers);
    let rewriter = PageRewriter::new(PagePlan {
        snippet,
        nonce,
        hosts: hosts.clone(),
        markers: markers.clone(),
        encoding: format.encoding,
        memo: memo.clone(),
        even_if_present,
    });
    let body = RewriteBody::new(
        body,
        rewriter,
        format.coding.decoder(),
        format.coding.encoder(),
    );
    Response::from_parts(parts, InjectBody::rewritten(body))
}

/// The encoding named by `Content-Type`'s charset (UTF-8 when absent); `None` when
/// lol_html cannot parse it (UTF-16 and other non-ASCII-compatible encodings).
pub(super) fn page_encoding(content_type: &str) -> Option<AsciiCompatibleEncoding> {
    let charset = content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"'))
    });
    match charset {
        None => Some(AsciiCompatibleEncoding::utf_8()),
        Some(label) => encoding_rs::Encoding::for_label(label.as_bytes())
            .and_then(AsciiCompatibleEncoding::new),
    }
}

fn is_html(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("text/html")
        || essence.eq_ignore_ascii_case("application/xhtml+xml")
}

/// `Content-Disposition: attachment`: the page is a download, not a page view.
fn is_attachment(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("attachment"))
        })
}

/// Rewrites every CSP header so the snippet runs; returns the nonce our script carries.
fn rewrite_csp_headers(
    headers: &mut HeaderMap,
    snippet: &Snippet,
    hosts: &IntercomHosts,
) -> Option<String> {
    if !headers.contains_key(&CSP) && !headers.contains_key(&CSP_REPORT_ONLY) {
        return None;
    }
    // Enforced policies first: their nonce is the one that must match.
    let nonce = [&CSP, &CSP_REPORT_ONLY].iter().find_map(|name| {
        headers
            .get_all(*name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(csp::find_nonce)
    });
    let hash = snippet.csp_hash();
    let ctx = CspContext {
        snippet_hash: &hash,
        nonce: nonce.as_deref(),
        hosts,
    };
    for name in [&CSP, &CSP_REPORT_ONLY] {
        let rewritten: Vec<HeaderValue> = headers
            .get_all(name)
            .iter()
            .map(|v| match v.to_str() {
                Ok(policy) => {
                    HeaderValue::from_str(&csp::rewrite(policy, &ctx)).unwrap_or_else(|_| v.clone())
                }
                Err(_) => v.clone(),
            })
            .collect();
        if rewritten.is_empty() {
            continue;
        }
        headers.remove(name);
        for value in rewritten {
            headers.append(name, value);
        }
    }
    nonce
}

/// Header changes for a page carrying a per-user JWT: its length changes, its bytes no
/// longer match the app's validators, and no shared cache may keep it.
fn fix_headers(headers: &mut HeaderMap) {
    for name in [
        header::CONTENT_LENGTH,
        header::ETAG,
        header::LAST_MODIFIED,
        header::ACCEPT_RANGES,
        header::EXPIRES,
    ] {
        headers.remove(name);
    }
    // CDNs obey these over Cache-Control (and some ignore `Vary: Cookie`).
    for name in [
        "cdn-cache-control",
        "cloudflare-cdn-cache-control",
        "surrogate-control",
    ] {
        headers.remove(name);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    let vary: Vec<String> = header_tokens(headers, &header::VARY)
        .map(str::to_string)
        .collect();
    if vary
        .iter()
        .any(|v| v == "*" || v.eq_ignore_ascii_case("cookie"))
    {
        return;
    }
    let mut merged = vary;
    merged.push("Cookie".to_string());
    if let Ok(v) = HeaderValue::from_str(&merged.join(", ")) {
        headers.insert(header::VARY, v);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A header map from static pairs.
    pub(in crate::inject) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn charsets() {
        assert!(page_encoding("text/html").is_some());
        assert!(page_encoding("text/html; charset=\"windows-1252\"").is_some());
        assert!(page_encoding("text/html;charset=UTF-16").is_none());
        assert!(page_encoding("text/html; charset=bogus").is_none());
        assert!(is_html("Text/HTML; charset=utf-8") && is_html("application/xhtml+xml"));
        assert!(!is_html("text/plain") && !is_html("application/json"));
    }

    #[test]
    fn vary_gets_cookie_once() {
        let mut h = headers(&[
            ("vary", "Accept-Encoding"),
            ("etag", "\"x\""),
            ("content-length", "10"),
            ("cdn-cache-control", "max-age=600"),
            ("surrogate-control", "max-age=600"),
            ("expires", "Thu, 01 Dec 2030 16:00:00 GMT"),
        ]);
        fix_headers(&mut h);
        for gone in ["cdn-cache-control", "surrogate-control", "expires"] {
            assert!(h.get(gone).is_none(), "{gone}");
        }
        assert_eq!(h["vary"], "Accept-Encoding, Cookie");
        assert_eq!(h["cache-control"], "private, no-store");
        assert!(h.get("etag").is_none() && h.get("content-length").is_none());
        fix_headers(&mut h);
        assert_eq!(h["vary"], "Accept-Encoding, Cookie");
    }
}
