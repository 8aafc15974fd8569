//! What `explain` asks the proxy for: the page's URL, and the cookies and headers a browser
//! would send with it, checked before anything runs (a bad one is the caller's mistake).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::Authority;

/// Headers a browser sends with a navigation, so that the request is a page load
/// ([`is_page_request`](crate::inject::is_page_request)) and may be answered compressed
/// as browsers are. A `--header` of the same name replaces one.
const BROWSER_HEADERS: &[(&str, &str)] = &[
    (
        "accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ),
    ("accept-encoding", "gzip, deflate, br, zstd"),
    ("sec-fetch-dest", "document"),
    ("sec-fetch-mode", "navigate"),
    ("user-agent", "intercom-secure-proxy-explain"),
];

/// The page `explain` asks for, as a browser would ask for it.
#[derive(Debug, Clone)]
pub struct Target {
    /// How the browser reached the proxy, `"http"` or `"https"` (the proxy's cookies get
    /// `Secure` over HTTPS).
    pub(super) scheme: &'static str,
    /// The `Host` the browser names; `None` for a bare path (the upstream's is used).
    pub(super) host: Option<String>,
    /// The path and query, as sent.
    pub(super) path_and_query: String,
    /// Every request header but `Host`.
    pub(super) headers: HeaderMap,
}

/// Why the command line does not describe a request.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The URL cannot be asked for.
    #[error("unusable URL {url:?}: {why}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A `--cookie` that is not `name=value`.
    #[error("--cookie {0:?}: expected name=value (a cookie name, then its value)")]
    Cookie(String),
    /// A `--header` that is not `Name: value`.
    #[error("--header {given:?}: {why}")]
    Header {
        /// The argument, as given (a header's value is the caller's own).
        given: String,
        /// What is wrong.
        why: &'static str,
    },
}

impl Target {
    /// The request a browser would make for `url` (`http(s)://host/path?query`, or a bare
    /// `/path`) with `cookies` (`name=value`, sent as one `Cookie` header) and `headers`
    /// (`Name: value`).
    pub fn parse(url: &str, cookies: &[String], headers: &[String]) -> Result<Target, TargetError> {
        let bad = |why| TargetError::Url {
            url: url.to_string(),
            why,
        };
        // A fragment never leaves the browser.
        let without_fragment = url.split('#').next().unwrap_or_default().trim();
        let uri: http::Uri = without_fragment.parse().map_err(|_| {
            bad("not a URL (expected http://host/path, https://host/path or /path)")
        })?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => Some("http"),
            Some(s) if s.eq_ignore_ascii_case("https") => Some("https"),
            Some(_) => return Err(bad("only http and https pages can be explained")),
            None => None,
        };
        let host = match (scheme, uri.authority()) {
            (Some(_), Some(authority)) => Some(host_of(authority).ok_or_else(|| {
                bad("credentials in the URL are refused by the proxy (400); leave them out")
            })?),
            (Some(_), None) => return Err(bad("no host")),
            (None, Some(_)) => return Err(bad("no scheme (expected http:// or https://)")),
            (None, None) if without_fragment.starts_with('/') => None,
            (None, None) => {
                return Err(bad(
                    "not a URL (expected http://host/path, https://host/path or /path)",
                ));
            }
        };
        let path_and_query = uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string());
        let mut target = Target {
            scheme: scheme.unwrap_or("http"),
            host,
            path_and_query,
            headers: HeaderMap::new(),
        };
        target.add_headers(headers)?;
        target.add_cookies(cookies)?;
        Ok(target)
    }

    /// The request path, without the query.
    pub(super) fn path(&self) -> &str {
        let pq = self.path_and_query.as_str();
        pq.split('?').next().unwrap_or(pq)
    }

    /// The browser's headers, then `--header`s: a given header replaces the browser's of
    /// that name; one given twice is sent twice (how ambiguous requests are explained).
    fn add_headers(&mut self, given: &[String]) -> Result<(), TargetError> {
        let mut parsed = Vec::with_capacity(given.len());
        for line in given {
            let bad = |why| TargetError::Header {
                given: line.clone(),
                why,
            };
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| bad("expected 'Name: value'"))?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| bad("not a header name"))?;
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| bad("not a header value (visible ASCII)"))?;
            parsed.push((name, value));
        }
        for (name, value) in BROWSER_HEADERS {
            let name = HeaderName::from_static(name);
            if !parsed.iter().any(|(given, _)| *given == name) {
                self.headers.insert(name, HeaderValue::from_static(value));
            }
        }
        for (name, value) in parsed {
            if name == header::HOST {
                // The Host the browser names: the URL's, unless given.
                self.host = value.to_str().ok().map(str::to_string);
                continue;
            }
            self.headers.append(name, value);
        }
        Ok(())
    }

    /// `--cookie`s, joined into one `Cookie` header as a browser sends them.
    fn add_cookies(&mut self, cookies: &[String]) -> Result<(), TargetError> {
        if cookies.is_empty() {
            return Ok(());
        }
        for cookie in cookies {
            let name = cookie.split_once('=').map(|(name, _)| name.trim());
            if name.is_none_or(|name| name.is_empty() || name.contains([';', ' ', ','])) {
                return Err(TargetError::Cookie(cookie.clone()));
            }
        }
        let line = cookies.join("; ");
        let value = HeaderValue::from_str(&line)
            .map_err(|_| TargetError::Cookie(first_unsendable(cookies)))?;
        self.headers.append(header::COOKIE, value);
        Ok(())
    }
}

/// The cookie argument that cannot go into a header (named in the error, as given).
fn first_unsendable(cookies: &[String]) -> String {
    cookies
        .iter()
        .find(|c| HeaderValue::from_str(c).is_err())
        .cloned()
        .unwrap_or_default()
}

/// `host[:port]` of an authority; `None` when it carries credentials.
fn host_of(authority: &Authority) -> Option<String> {
    (!authority.as_str().contains('@')).then(|| authority.as_str().to_string())
}

/// A secret-bearing value as it may be shown: its first 4 characters and its length, or
/// only its length when it is short enough that 4 characters would give most of it away.
pub(super) fn redacted(value: &str) -> String {
    let chars = value.chars().count();
    if chars < 16 {
        return format!("({chars} chars)");
    }
    let prefix: String = value.chars().take(4).collect();
    format!("{prefix}… ({chars} chars)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_paths_and_arguments() {
        let t = Target::parse(
            "https://app.example.com:8443/a/b?x=1#top",
            &["session=abc".into(), "__isp_booted=x".into()],
            &["X-Test: 1".into(), "Accept: */*".into()],
        )
        .unwrap();
        assert_eq!(t.scheme, "https");
        assert_eq!(t.host.as_deref(), Some("app.example.com:8443"));
        assert_eq!(t.path_and_query, "/a/b?x=1");
        assert_eq!(t.path(), "/a/b");
        assert_eq!(t.headers["cookie"], "session=abc; __isp_booted=x");
        assert_eq!(t.headers["accept"], "*/*");
        assert_eq!(t.headers["sec-fetch-dest"], "document");
        let bare = Target::parse("/dashboard", &[], &[]).unwrap();
        assert_eq!((bare.host.as_deref(), bare.path()), (None, "/dashboard"));
        for bad in [
            "ftp://x/",
            "app.example.com/x",
            "http://u:p@x/",
            "",
            "http:///",
        ] {
            assert!(Target::parse(bad, &[], &[]).is_err(), "{bad}");
        }
        assert!(Target::parse("/", &["novalue".into()], &[]).is_err());
        assert!(Target::parse("/", &["=v".into()], &[]).is_err());
        assert!(Target::parse("/", &[], &["NoColon".into()]).is_err());
    }

    #[test]
    fn values_are_shown_by_prefix_and_length_only() {
        assert_eq!(redacted("eyJhbGciOiJIUzI1NiJ9.e30.sig"), "eyJh… (28 chars)");
        assert_eq!(redacted("short"), "(5 chars)");
    }
}
