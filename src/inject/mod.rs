//! Secure-mode Intercom as a tower middleware: [`InjectLayer`] puts the Messenger snippet,
//! with a JWT signed for the user the app's session names, into the HTML pages of any
//! service whose bodies are [`http_body::Body`]s, and shuts the Messenger down on logout and
//! user switch.
//!
//! The pieces, in the tower-http shape:
//! - [`InjectConfig`]: the typed builder (no TOML needed; the proxy fills it from
//!   `proxy.toml`);
//! - [`InjectLayer`] / [`Inject<S>`](Inject): identifies the session before calling the inner
//!   service (only for page loads that could get the snippet), and answers the token
//!   endpoint ([`TokenEndpoint`]) itself;
//! - [`ResponseFuture`]: waits for the inner response head;
//! - [`InjectBody`]: the inner body untouched (the identity variant), or rewritten.
//!
//! What happens to each request and response is one pure function, [`decide()`]; the rest
//! carries it out. The streaming work (`stream.rs`, `rewrite.rs`, `codec.rs`, `csp.rs`,
//! `memo.rs`, `scan.rs`) knows nothing of sessions.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use intercom_secure_proxy::config::{FieldMap, JwtResolverConfig};
//! use intercom_secure_proxy::crypto::Secret;
//! use intercom_secure_proxy::identity::{Identity, JwtResolver};
//! use intercom_secure_proxy::inject::{InjectConfig, InjectLayer};
//!
//! # fn secrets() -> (Secret, JwtResolverConfig) { unimplemented!() }
//! let (messenger_secret, session_jwt) = secrets();
//! let fields = FieldMap { user_id: "/sub".into(), email: Some("/email".into()), name: None, custom: vec![] };
//! let resolver = JwtResolver::new(&session_jwt, fields, Duration::from_secs(5), Default::default());
//! let identity = Identity::new("session".into(), Box::new(resolver), Duration::from_millis(300));
//! let layer = InjectLayer::new(InjectConfig::new("abc123de", messenger_secret, identity));
//! // app.layer(layer)
//! ```

mod body;
mod codec;
mod config;
pub mod csp;
pub mod decide;
mod decoder;
mod future;
mod layer;
mod markup;
mod memo;
mod outcome;
mod page;
mod parser;
mod respond;
mod rewrite;
mod scan;
mod shared;
mod stream;
mod token;

use http::header::{self, HeaderMap};

pub use body::InjectBody;
pub use codec::{Coding, Decoder, Encoder};
pub use config::InjectConfig;
pub use decide::{Outcome, decide};
pub use future::ResponseFuture;
pub use layer::{Inject, InjectLayer};
pub use memo::HeadMemo;
pub use outcome::{Injection, PassReason};
pub use rewrite::{PagePlan, PageRewriter, RewriteError};
pub use scan::MessengerMarkers;
pub use shared::CurrentIdentity;
pub use stream::RewriteBody;
pub use token::TokenEndpoint;

/// Whether a request is a page load that could get the snippet. `Sec-Fetch-Dest` tells for
/// modern browsers; otherwise `Accept` must ask for HTML (or be absent or `*/*`, as curl's).
/// Stylesheets, images, scripts and `fetch()` calls keep their conditional requests.
pub fn is_page_request(headers: &HeaderMap) -> bool {
    if let Some(dest) = headers.get("sec-fetch-dest").and_then(|v| v.to_str().ok()) {
        return matches!(dest, "document" | "iframe" | "frame");
    }
    match headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(accept) => {
            let contains = |needle: &str| {
                accept
                    .as_bytes()
                    .windows(needle.len())
                    .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
            };
            accept.trim() == "*/*" || contains("text/html") || contains("application/xhtml+xml")
        }
    }
}

/// Whether a response head is a page the snippet can go into (`Ok`), else why not: the check
/// the layer makes on the app's answer, for tools that explain its choices (`explain`).
pub fn page_check(status: http::StatusCode, headers: &HeaderMap) -> Result<(), PassReason> {
    page::rewritable_page(status, headers).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::layer::narrow_accept_encoding;
    use super::page::tests::headers;

    #[test]
    fn page_requests_are_told_from_subresources() {
        assert!(is_page_request(&headers(&[
            ("sec-fetch-dest", "document"),
            ("accept", "*/*")
        ])));
        assert!(!is_page_request(&headers(&[
            ("sec-fetch-dest", "style"),
            ("accept", "text/html")
        ])));
        assert!(!is_page_request(&headers(&[("sec-fetch-dest", "empty")])));
        assert!(is_page_request(&headers(&[(
            "accept",
            "text/html,application/xhtml+xml;q=0.9"
        )])));
        assert!(is_page_request(&headers(&[("accept", "*/*")])));
        assert!(is_page_request(&headers(&[])));
        assert!(!is_page_request(&headers(&[(
            "accept",
            "text/css,*/*;q=0.1"
        )])));
        assert!(!is_page_request(&headers(&[(
            "accept",
            "application/json"
        )])));
    }

    #[test]
    fn accept_encoding_keeps_what_we_can_decode() {
        let mut h = headers(&[("accept-encoding", "gzip, deflate, br, zstd")]);
        narrow_accept_encoding(&mut h);
        assert_eq!(h["accept-encoding"], "gzip, deflate, br");
        let mut h = headers(&[("accept-encoding", "zstd;q=1.0")]);
        narrow_accept_encoding(&mut h);
        assert_eq!(h["accept-encoding"], "identity");
    }
}
