//! `resolver = "header"`: the user an authenticating proxy in front (oauth2-proxy, Pomerium,
//! Authentik, Cloudflare Access) names in request headers. The document is the configured
//! headers, keyed by lower-cased name. Whether the peer may set them is decided before this
//! runs: from an untrusted peer the layer strips them, so here they are believed.

use std::sync::Arc;

use http::{HeaderMap, HeaderName};
use ipnet::IpNet;
use serde_json::{Map, Value};
use sha2::Digest;

use super::{Diagnosis, Resolution, ResolveError, ResolveFuture, Session, SessionResolver};
use crate::config::{FieldMap, HeaderResolverConfig};

/// Identity headers longer than this are not read (no user id or email is that long).
const MAX_HEADER_LEN: usize = 4096;

/// Which peers may name the user, and in which headers.
#[derive(Clone, Debug)]
pub struct HeaderTrust {
    trusted: Vec<IpNet>,
    headers: Vec<HeaderName>,
    /// `x_auth_request_user` for `x-auth-request-user`: CGI and PHP read both as one
    /// header, so a client must not slip a user past the auth proxy in that spelling.
    underscored: Vec<HeaderName>,
}

impl HeaderTrust {
    /// From `[session.header]`.
    pub fn new(config: &HeaderResolverConfig) -> Self {
        let underscored = config
            .headers
            .iter()
            .filter(|h| h.as_str().contains('-'))
            .filter_map(|h| HeaderName::from_bytes(h.as_str().replace('-', "_").as_bytes()).ok())
            .collect();
        HeaderTrust {
            trusted: config.trusted_proxies.clone(),
            headers: config.headers.clone(),
            underscored,
        }
    }

    /// Whether a request from `peer` may carry identity headers.
    pub fn trusts(&self, peer: Option<std::net::IpAddr>) -> bool {
        // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
        let peer = peer.map(|ip| ip.to_canonical());
        peer.is_some_and(|ip| self.trusted.iter().any(|net| net.contains(&ip)))
    }

    /// Removes the identity headers: a client must not name a user, nor show the app one.
    pub fn strip(&self, headers: &mut HeaderMap) {
        for name in &self.headers {
            headers.remove(name);
        }
        self.strip_underscored(headers);
    }

    /// Removes the underscore spellings, from every peer: no auth proxy sets them.
    pub fn strip_underscored(&self, headers: &mut HeaderMap) {
        for name in &self.underscored {
            headers.remove(name);
        }
    }

    /// Strips the identity headers from `request` unless its peer (the [`Downstream`]
    /// extension the server sets; an app embedding the layer sets it too) is trusted.
    ///
    /// [`Downstream`]: crate::net::Downstream
    pub fn screen<B>(&self, request: &mut http::Request<B>) {
        let peer = request
            .extensions()
            .get::<crate::net::Downstream>()
            .map(|d| d.peer.ip());
        if self.trusts(peer) {
            self.strip_underscored(request.headers_mut());
        } else {
            self.strip(request.headers_mut());
        }
    }

    /// Whether the request carries any identity header.
    pub fn present(&self, headers: &HeaderMap) -> bool {
        self.headers.iter().any(|name| headers.contains_key(name))
    }
}

/// Reads the user from the identity headers. Built only with its [`HeaderTrust`] (by
/// `Identity::from_config`): alone it would believe anyone.
pub(crate) struct HeaderResolver {
    headers: Vec<HeaderName>,
    fields: FieldMap,
    diagnosis: Arc<Diagnosis>,
}

impl HeaderResolver {
    /// A resolver for `[session.header]`.
    pub(crate) fn new(
        config: &HeaderResolverConfig,
        fields: FieldMap,
        diagnosis: Arc<Diagnosis>,
    ) -> Self {
        HeaderResolver {
            headers: config.headers.clone(),
            fields,
            diagnosis,
        }
    }

    fn document(&self, headers: &HeaderMap) -> Option<Value> {
        let mut document = Map::new();
        for name in &self.headers {
            // One value: a repeated identity header is ambiguous, so it names no one.
            let mut values = headers.get_all(name).iter();
            let (Some(value), None) = (values.next(), values.next()) else {
                continue;
            };
            if value.len() > MAX_HEADER_LEN {
                continue;
            }
            let Ok(text) = value.to_str() else { continue };
            let text = text.trim();
            if !text.is_empty() {
                document.insert(name.as_str().to_string(), Value::String(text.to_string()));
            }
        }
        (!document.is_empty()).then_some(Value::Object(document))
    }
}

impl SessionResolver for HeaderResolver {
    fn resolve<'a>(&'a self, session: Session<'a>) -> ResolveFuture<'a> {
        let resolution = self
            .resolve_in_process(session)
            .unwrap_or(Ok(Resolution::Anonymous));
        Box::pin(std::future::ready(resolution))
    }

    fn resolve_in_process(&self, session: Session<'_>) -> Option<Result<Resolution, ResolveError>> {
        Some(Ok(match self.document(session.headers) {
            Some(document) => self.diagnosis.user_from(&self.fields, &document),
            None => Resolution::Anonymous,
        }))
    }

    fn describe(&self) -> String {
        let names: Vec<&str> = self.headers.iter().map(HeaderName::as_str).collect();
        format!("headers {}", names.join(", "))
    }

    fn is_remote(&self) -> bool {
        false
    }

    fn cache_key(&self, session: Session<'_>) -> [u8; 32] {
        let mut hash = sha2::Sha256::new();
        for name in &self.headers {
            for value in session.headers.get_all(name) {
                hash.update(name.as_str().as_bytes());
                hash.update(b"\0");
                hash.update(value.as_bytes());
                hash.update(b"\0");
            }
        }
        hash.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust() -> HeaderTrust {
        HeaderTrust::new(&HeaderResolverConfig {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            headers: vec![HeaderName::from_static("x-auth-request-user")],
        })
    }

    #[test]
    fn only_listed_peers_are_trusted_whatever_the_socket_family() {
        let t = trust();
        assert!(t.trusts(Some("10.1.2.3".parse().unwrap())));
        assert!(
            t.trusts(Some("::ffff:10.1.2.3".parse().unwrap())),
            "IPv4 on a dual-stack socket"
        );
        assert!(t.trusts(Some("::1".parse().unwrap())));
        assert!(!t.trusts(Some("11.0.0.1".parse().unwrap())));
        assert!(!t.trusts(Some("::ffff:11.0.0.1".parse().unwrap())));
        assert!(!t.trusts(None), "no peer known: not trusted");
    }

    #[test]
    fn untrusted_requests_lose_every_spelling_and_trusted_ones_the_underscored() {
        let t = trust();
        let request = |peer: Option<&str>| {
            let mut r = http::Request::new(());
            r.headers_mut()
                .insert("x-auth-request-user", "alice".parse().unwrap());
            r.headers_mut()
                .insert("x_auth_request_user", "mallory".parse().unwrap());
            if let Some(peer) = peer {
                r.extensions_mut().insert(crate::net::Downstream {
                    peer: peer.parse().unwrap(),
                    scheme: "http",
                    trusted: false,
                });
            }
            r
        };
        let mut trusted = request(Some("10.0.0.1:5000"));
        t.screen(&mut trusted);
        assert_eq!(trusted.headers()["x-auth-request-user"], "alice");
        assert!(!trusted.headers().contains_key("x_auth_request_user"));
        for peer in [Some("192.0.2.1:5000"), None] {
            let mut untrusted = request(peer);
            t.screen(&mut untrusted);
            assert!(untrusted.headers().is_empty(), "{peer:?}");
        }
    }
}
