//! Finding the app's session cookie among the request's `Cookie` headers.

use http::HeaderMap;
use http::header::COOKIE;

/// The raw value of cookie `name`, when the request carries it exactly once.
///
/// Two cookies of that name (another path or a sibling subdomain can plant one) are
/// ambiguous: frameworks disagree on which one wins, so the proxy could name a different
/// user than the app sees. That, and a `Cookie` header that is not text, is no identity.
/// The value is returned as sent (resolvers decode it as their format requires).
pub fn session_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        let text = header.to_str().ok()?;
        for (n, v) in pairs(text) {
            if n == name {
                if found.is_some() {
                    return None;
                }
                found = Some(v.trim().trim_matches('"'));
            }
        }
    }
    found.filter(|v| !v.is_empty())
}

/// The `name=value` pairs of one `Cookie` header, names trimmed; pairs without `=` are
/// skipped.
fn pairs(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(name, value)| (name.trim(), value))
}

/// The request's cookies as the browser will send them once it holds `value` for `name`: one
/// `Cookie` header with the other cookies kept and `name` replaced (or added). What a
/// resolver needs to look up the session a response sets.
pub fn with_session_cookie(headers: &HeaderMap, name: &str, value: &str) -> HeaderMap {
    let mut line = String::with_capacity(name.len() + value.len() + 1);
    line.push_str(name);
    line.push('=');
    line.push_str(value);
    for text in headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
    {
        for pair in text.split(';') {
            let pair = pair.trim();
            let other = pair.split_once('=').is_none_or(|(n, _)| n.trim() != name);
            if other && !pair.is_empty() {
                line.push_str("; ");
                line.push_str(pair);
            }
        }
    }
    let mut replaced = HeaderMap::with_capacity(1);
    if let Ok(value) = http::HeaderValue::from_str(&line) {
        replaced.insert(COOKIE, value);
    }
    replaced
}

/// The names of the cookies a request carries, comma-separated, for a debug line (never
/// their values).
pub(super) fn cookie_names(headers: &HeaderMap) -> String {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(pairs)
        .map(|(name, _)| name)
        .filter(|name| !name.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_session_a_response_sets_replaces_the_requests() {
        let h = headers(&["a=1; session=old", "b=2"]);
        let replaced = with_session_cookie(&h, "session", "new");
        assert_eq!(replaced.get(COOKIE).unwrap(), "session=new; a=1; b=2");
        assert_eq!(session_cookie(&replaced, "session"), Some("new"));
        let fresh = with_session_cookie(&HeaderMap::new(), "session", "v");
        assert_eq!(fresh.get(COOKIE).unwrap(), "session=v");
    }

    #[test]
    fn a_cookie_sent_twice_is_ambiguous() {
        assert_eq!(
            session_cookie(&headers(&["session=a; session=b"]), "session"),
            None
        );
        assert_eq!(
            session_cookie(&headers(&["session=a", "session=b"]), "session"),
            None
        );
        let mut h = headers(&["session=a"]);
        h.append(COOKIE, HeaderValue::from_bytes(b"x=\xff").unwrap());
        assert_eq!(
            session_cookie(&h, "session"),
            None,
            "a non-text Cookie header is refused"
        );
    }

    #[test]
    fn finds_the_cookie_across_headers_and_ignores_lookalikes() {
        let h = headers(&["my_session=no; a=1", "session=abc.def; b=2"]);
        assert_eq!(session_cookie(&h, "session"), Some("abc.def"));
        assert_eq!(session_cookie(&h, "a"), Some("1"));
        assert_eq!(session_cookie(&h, "missing"), None);
    }

    #[test]
    fn names_are_listed_without_values() {
        let h = headers(&["a=1; session=secret-value", "b=2"]);
        assert_eq!(cookie_names(&h), "a, session, b");
    }

    #[test]
    fn empty_and_malformed_pairs_are_skipped() {
        let h = headers(&["session=; junk; =x; session2=\"q\""]);
        assert_eq!(session_cookie(&h, "session"), None);
        assert_eq!(session_cookie(&h, "session2"), Some("q"));
    }
}
