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
}

impl HeaderTrust {
    /// From `[session.header]`.
    pub fn new(config: &HeaderResolverConfig) -> Self {
        HeaderTrust {
            trusted: config.trusted_proxies.clone(),
            headers: config.headers.clone(),
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
    }

    /// Whether the request carries any identity header.
    pub fn present(&self, headers: &HeaderMap) -> bool {
        self.headers.iter().any(|name| headers.contains_key(name))
    }
}

/// Reads the user from the identity headers.
pub struct HeaderResolver {
    headers: Vec<HeaderName>,
    fields: FieldMap,
    diagnosis: Arc<Diagnosis>,
}

impl HeaderResolver {
    /// A resolver for `[session.header]`.
    pub fn new(config: &HeaderResolverConfig, fields: FieldMap, diagnosis: Arc<Diagnosis>) -> Self {
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
