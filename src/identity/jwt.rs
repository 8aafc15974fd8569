//! `resolver = "jwt"`: the session cookie is a JWT the app signed; its claims are the
//! session document.

use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;
use tracing::debug;

use super::{Resolution, ResolveFuture, Session, SessionResolver, resolve_document};
use crate::config::{FieldMap, JwtResolverConfig};

/// Verifies the app's session JWT (signature, algorithm, `exp`, `nbf`) and maps its claims.
pub struct JwtResolver {
    key: DecodingKey,
    validation: Validation,
    fields: FieldMap,
}

impl JwtResolver {
    /// A resolver for `[session.jwt]`, mapping claims through `fields`.
    pub fn new(config: &JwtResolverConfig, fields: FieldMap) -> Self {
        // Config guarantees at least one algorithm; the header's `alg` must be one of them,
        // so `none` and algorithm confusion (HS256 signed with an RSA public key) fail.
        let first = config
            .algorithms
            .first()
            .copied()
            .unwrap_or(jsonwebtoken::Algorithm::HS256);
        let mut validation = Validation::new(first);
        validation.algorithms = config.algorithms.clone();
        validation.validate_nbf = true;
        // App session tokens often carry an audience of their own; we only need identity.
        validation.validate_aud = false;
        JwtResolver {
            key: config.key.clone(),
            validation,
            fields,
        }
    }

    /// Verifies `token` and maps it; any verification failure is anonymous.
    pub fn resolve_now(&self, token: &str) -> Resolution {
        match jsonwebtoken::decode::<Value>(token, &self.key, &self.validation) {
            Ok(data) => resolve_document(&self.fields, &data.claims),
            Err(e) => {
                // The kind only: never the token itself.
                debug!(reason = ?e.kind(), "session JWT rejected; anonymous");
                Resolution::Anonymous
            }
        }
    }
}

impl SessionResolver for JwtResolver {
    fn resolve<'a>(&'a self, session: Session<'a>) -> ResolveFuture<'a> {
        let resolution = self.resolve_now(session.cookie);
        Box::pin(std::future::ready(Ok(resolution)))
    }

    fn describe(&self) -> String {
        "JWT session cookie".to_string()
    }

    fn is_remote(&self) -> bool {
        false
    }
}
