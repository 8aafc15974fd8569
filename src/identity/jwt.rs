//! `resolver = "jwt"`: the session cookie is a JWT the app signed; its claims are the
//! session document.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use moka::sync::Cache;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::debug;

use super::{
    Check, Diagnosis, Finding, Resolution, ResolveError, ResolveFuture, Session, SessionResolver,
    User,
};
use crate::config::{FieldMap, JwtResolverConfig, SecretOrigin};

/// Most verified tokens remembered at once.
const MAX_VERIFIED: u64 = 10_000;

/// Verifies the app's session JWT (signature, algorithm, `exp`, `nbf`) and maps its claims.
///
/// A token that verified is remembered (by its SHA-256, never the token) for `cache_ttl`,
/// and never past the `exp` it was checked against: a browser sends the same token on every
/// page, and verifying it again would redo the same work with the same answer.
pub struct JwtResolver {
    key: DecodingKey,
    /// `previous_keys_*`: tried only when `key` finds the signature wrong.
    previous_keys: Vec<DecodingKey>,
    validation: Validation,
    fields: FieldMap,
    verified: Option<Cache<[u8; 32], Arc<Verified>>>,
    key_origin: SecretOrigin,
    diagnosis: Arc<Diagnosis>,
}

/// A token that verified, and until when it may still be accepted.
struct Verified {
    user: User,
    /// `exp` plus the validation leeway, in Unix seconds.
    accepted_until: u64,
}

impl JwtResolver {
    /// A resolver for `[session.jwt]`, mapping claims through `fields`.
    pub fn new(
        config: &JwtResolverConfig,
        fields: FieldMap,
        cache_ttl: Duration,
        diagnosis: Arc<Diagnosis>,
    ) -> Self {
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
        // jsonwebtoken defaults to 60 s; the app itself usually allows none.
        validation.leeway = config.leeway_secs;
        // App session tokens often carry an audience of their own; we only need identity.
        validation.validate_aud = false;
        let verified = (!cache_ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(MAX_VERIFIED)
                .time_to_live(cache_ttl)
                .build()
        });
        JwtResolver {
            key: config.key.clone(),
            previous_keys: config.previous_keys.clone(),
            validation,
            fields,
            verified,
            key_origin: config.key_origin.clone(),
            diagnosis,
        }
    }

    /// Verifies `token` and maps it; any verification failure is anonymous.
    pub fn resolve_now(&self, token: &str) -> Resolution {
        let Some(cache) = &self.verified else {
            return self.verify(token).0;
        };
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(known) = cache.get(&key) {
            if now_secs() <= known.accepted_until {
                return Resolution::User(known.user.clone());
            }
            cache.invalidate(&key);
        }
        let (resolution, accepted_until) = self.verify(token);
        if let (Resolution::User(user), Some(accepted_until)) = (&resolution, accepted_until) {
            cache.insert(
                key,
                Arc::new(Verified {
                    user: user.clone(),
                    accepted_until,
                }),
            );
        }
        resolution
    }

    /// Full verification; for a token that verified, also until when it stays acceptable
    /// (`None`: not known, so not to be remembered).
    fn verify(&self, token: &str) -> (Resolution, Option<u64>) {
        let mut decoded = jsonwebtoken::decode::<Value>(token, &self.key, &self.validation);
        // Signed with a key the app used before its rotation: still its session (and an
        // expired one is expired, not forged).
        for key in &self.previous_keys {
            if !matches!(&decoded, Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature)) {
                break;
            }
            decoded = jsonwebtoken::decode::<Value>(token, key, &self.validation);
        }
        match decoded {
            Ok(data) => {
                // `exp` is always validated (and required): jsonwebtoken accepts a token until
                // `exp + leeway`, and so does the cache.
                let accepted_until = data
                    .claims
                    .get("exp")
                    .and_then(Value::as_u64)
                    .map(|exp| exp.saturating_add(self.validation.leeway));
                self.diagnosis.passed(Check::Format);
                self.diagnosis.passed(Check::Signature);
                let resolution = self.diagnosis.user_from(&self.fields, &data.claims);
                (resolution, accepted_until)
            }
            Err(e) => {
                // The kind only: never the token itself.
                debug!(reason = ?e.kind(), "session JWT rejected; anonymous");
                self.diagnose(e.kind(), token);
                (Resolution::Anonymous, None)
            }
        }
    }

    /// Records why a token was refused, for the misconfiguration warnings. Expired and
    /// not-yet-valid tokens are the visitor's business, not the config's.
    fn diagnose(&self, kind: &ErrorKind, token: &str) {
        let diagnosis = &self.diagnosis;
        match kind {
            ErrorKind::InvalidSignature => {
                diagnosis.passed(Check::Format);
                diagnosis.failed(Check::Signature, || {
                    Finding::about_secret(
                        &self.key_origin,
                        format!(
                            "session JWT signatures do not verify; {} is probably not the key \
                             the app signs its session tokens with",
                            self.key_origin
                        ),
                    )
                });
            }
            ErrorKind::InvalidAlgorithm => {
                diagnosis.passed(Check::Format);
                diagnosis.failed(Check::Signature, || {
                    // The header's alg is public and names no one.
                    let alg = jsonwebtoken::decode_header(token)
                        .map_or_else(|_| "?".to_string(), |h| format!("{:?}", h.alg));
                    Finding {
                        key: "session.jwt.algorithms".into(),
                        message: format!(
                            "session JWTs are signed with {alg}, which session.jwt.algorithms \
                             ({:?}) does not accept",
                            self.validation.algorithms
                        ),
                    }
                });
            }
            ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => {
                diagnosis.passed(Check::Format);
                diagnosis.passed(Check::Signature);
            }
            ErrorKind::MissingRequiredClaim(claim) => {
                diagnosis.passed(Check::Signature);
                diagnosis.failed(Check::Format, || Finding {
                    key: "session.resolver".into(),
                    message: format!(
                        "session JWTs carry no \"{claim}\" claim, which the proxy requires \
                         of a session token (a token without exp never expires)"
                    ),
                });
            }
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_) => {
                diagnosis.failed(Check::Format, || Finding {
                    key: "session.cookie".into(),
                    message: "session cookies are not JWTs; is session.cookie the app's JWT \
                              session cookie, and resolver = \"jwt\" right for this app?"
                        .into(),
                });
            }
            _ => {}
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl SessionResolver for JwtResolver {
    fn resolve<'a>(&'a self, session: Session<'a>) -> ResolveFuture<'a> {
        let resolution = self.resolve_now(session.cookie);
        Box::pin(std::future::ready(Ok(resolution)))
    }

    fn resolve_in_process(&self, session: Session<'_>) -> Option<Result<Resolution, ResolveError>> {
        Some(Ok(self.resolve_now(session.cookie)))
    }

    fn describe(&self) -> String {
        "JWT session cookie".to_string()
    }

    fn is_remote(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &[u8] = b"app-session-secret";
    const PREVIOUS: &[u8] = b"the-key-before";

    fn resolver(cache_ttl: Duration) -> JwtResolver {
        let config = JwtResolverConfig {
            algorithms: vec![Algorithm::HS256],
            key: DecodingKey::from_secret(SECRET),
            key_origin: SecretOrigin {
                key: "session.jwt.key_env".into(),
                source: "environment variable K".into(),
            },
            previous_keys: vec![DecodingKey::from_secret(PREVIOUS)],
            leeway_secs: 0,
        };
        let fields = FieldMap {
            user_id: "/sub".into(),
            email: None,
            name: None,
            custom: Vec::new(),
        };
        JwtResolver::new(&config, fields, cache_ttl, Arc::default())
    }

    fn token(sub: &str, exp: u64) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": sub, "exp": exp}),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    fn user_id(resolution: Resolution) -> Option<String> {
        match resolution {
            Resolution::User(user) => Some(user.id),
            Resolution::Anonymous => None,
        }
    }

    #[test]
    fn a_verified_token_is_remembered_but_never_past_its_expiry() {
        let resolver = resolver(Duration::from_secs(60));
        let cache = resolver.verified.as_ref().unwrap();
        let live = token("u-1", now_secs() + 3600);
        assert_eq!(user_id(resolver.resolve_now(&live)).as_deref(), Some("u-1"));
        let key: [u8; 32] = Sha256::digest(live.as_bytes()).into();
        let remembered = cache.get(&key).expect("a verified token is remembered");
        assert_eq!(remembered.accepted_until, now_secs() + 3600);

        // A token past exp + leeway: whatever the cache says about it, it is refused once
        // the time it was accepted until has passed.
        let expired = token("u-2", now_secs() - 600);
        let key: [u8; 32] = Sha256::digest(expired.as_bytes()).into();
        let stale = |until| {
            Arc::new(Verified {
                user: User {
                    id: "u-2".into(),
                    email: None,
                    name: None,
                    attributes: Default::default(),
                },
                accepted_until: until,
            })
        };
        cache.insert(key, stale(now_secs() - 1));
        assert_eq!(user_id(resolver.resolve_now(&expired)), None);
        assert!(cache.get(&key).is_none(), "the stale entry is dropped");
        // (And the cache really answers while an entry is within its time.)
        cache.insert(key, stale(now_secs() + 5));
        assert_eq!(
            user_id(resolver.resolve_now(&expired)).as_deref(),
            Some("u-2")
        );
    }

    #[test]
    fn no_leeway_by_default_and_the_configured_leeway_when_asked() {
        // The app treats a session expired seconds ago as logged out; so must we.
        let just_expired = token("u-1", now_secs() - 5);
        assert_eq!(
            user_id(resolver(Duration::ZERO).resolve_now(&just_expired)),
            None
        );
        let mut lenient = resolver(Duration::ZERO);
        lenient.validation.leeway = 60;
        assert_eq!(
            user_id(lenient.resolve_now(&just_expired)).as_deref(),
            Some("u-1")
        );
    }

    #[test]
    fn rejected_tokens_are_not_remembered_and_a_zero_ttl_turns_the_cache_off() {
        let cached = resolver(Duration::from_secs(60));
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": "u-1", "exp": now_secs() + 3600}),
            &EncodingKey::from_secret(b"someone else"),
        )
        .unwrap();
        assert_eq!(user_id(cached.resolve_now(&forged)), None);
        let cache = cached.verified.as_ref().unwrap();
        cache.run_pending_tasks();
        assert_eq!(cache.entry_count(), 0);

        let uncached = resolver(Duration::ZERO);
        assert!(uncached.verified.is_none());
        let live = token("u-3", now_secs() + 60);
        assert_eq!(user_id(uncached.resolve_now(&live)).as_deref(), Some("u-3"));
    }

    #[test]
    fn a_token_signed_with_a_previous_key_still_names_its_user() {
        let resolver = resolver(Duration::ZERO);
        let sign = |key: &[u8], exp: u64| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &json!({"sub": "u-9", "exp": exp}),
                &EncodingKey::from_secret(key),
            )
            .unwrap()
        };
        let old = sign(PREVIOUS, now_secs() + 60);
        assert_eq!(user_id(resolver.resolve_now(&old)).as_deref(), Some("u-9"));
        // Expired under the previous key is expired: not a signature failure.
        let (resolution, _) = resolver.verify(&sign(PREVIOUS, now_secs() - 60));
        assert_eq!(user_id(resolution), None);
        assert_eq!(
            user_id(resolver.resolve_now(&sign(b"nobody's", now_secs() + 60))),
            None
        );
    }
}
