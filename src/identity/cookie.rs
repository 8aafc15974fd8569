//! Finding the app's session cookie among the request's `Cookie` headers.

use http::HeaderMap;
use http::header::COOKIE;

/// The raw value of cookie `name`, from the first `Cookie` header pair that carries it.
///
/// Browsers send the most specific path first, which is the session the app will see too.
/// The value is returned as sent (resolvers decode it as their format requires).
pub fn session_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
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
    fn finds_the_cookie_across_headers_and_ignores_lookalikes() {
        let h = headers(&["my_session=no; a=1", "session=abc.def; b=2"]);
        assert_eq!(session_cookie(&h, "session"), Some("abc.def"));
        assert_eq!(session_cookie(&h, "a"), Some("1"));
        assert_eq!(session_cookie(&h, "missing"), None);
    }

    #[test]
    fn empty_and_malformed_pairs_are_skipped() {
        let h = headers(&["session=; junk; =x; session2=\"q\""]);
        assert_eq!(session_cookie(&h, "session"), None);
        assert_eq!(session_cookie(&h, "session2"), Some("q"));
    }
}
