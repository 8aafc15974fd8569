//! `resolver = "rails"`: a Rails app's cookie store. The session cookie is the session,
//! encrypted with keys derived from `secret_key_base`; it is verified, decrypted and read in
//! process (JSON, or Marshal of plain values only), so no store is asked.

mod cookie;
// pub(super): identity::fuzzing reaches the reader (fuzz/fuzz_targets/php_ruby_data.rs).
pub(super) mod marshal;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{
    Check, Diagnosis, Finding, Resolution, ResolveError, ResolveFuture, Session, SessionResolver,
};
use crate::config::{FieldMap, RailsResolverConfig, SecretOrigin};
use cookie::{RailsCookieError, RailsCookies};

/// Resolves Rails cookie-store sessions.
pub struct RailsResolver {
    cookies: RailsCookies,
    /// From `previous_keys_*`: tried only when `cookies` finds the cookie not its own.
    previous: Vec<RailsCookies>,
    cookie_name: String,
    fields: FieldMap,
    diagnosis: Arc<Diagnosis>,
    key_origin: SecretOrigin,
}

/// Seconds since the Unix epoch (signed sessions carry their time).
pub(super) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl RailsResolver {
    /// A resolver for `[session.rails]`; the keys are derived now.
    pub fn new(
        config: &RailsResolverConfig,
        cookie_name: &str,
        fields: FieldMap,
        diagnosis: Arc<Diagnosis>,
    ) -> Self {
        let cipher = match config.cipher {
            crate::config::RailsCipher::Aes256Gcm => cookie::RailsCipher::Aes256Gcm,
            crate::config::RailsCipher::Aes256Cbc => cookie::RailsCipher::Aes256Cbc,
        };
        let digest = match config.digest {
            crate::config::RailsDigest::Sha1 => cookie::RailsDigest::Sha1,
            crate::config::RailsDigest::Sha256 => cookie::RailsDigest::Sha256,
            crate::config::RailsDigest::Auto => cookie::RailsDigest::Auto,
        };
        RailsResolver {
            cookies: RailsCookies::new(config.secret_key_base.expose(), cipher, digest),
            previous: match &config.previous_keys {
                Some(list) => super::comma_list(list)
                    .iter()
                    .map(|key| RailsCookies::new(key, cipher, digest))
                    .collect(),
                None => Vec::new(),
            },
            cookie_name: cookie_name.to_string(),
            fields,
            diagnosis,
            key_origin: config.secret_key_base.origin().clone(),
        }
    }

    fn resolve_now(&self, cookie: &str) -> Resolution {
        let now = now_unix();
        let mut opened = self.cookies.session(&self.cookie_name, cookie, now);
        // Encrypted under a secret_key_base the app rotated from: still its session.
        for previous in &self.previous {
            if !matches!(
                opened,
                Err(RailsCookieError::BadSignature | RailsCookieError::Decrypt)
            ) {
                break;
            }
            opened = previous.session(&self.cookie_name, cookie, now);
        }
        let document = match opened {
            Ok(document) => document,
            Err(RailsCookieError::Malformed) => {
                self.diagnosis.failed(Check::Format, || Finding {
                    key: "session.cookie".into(),
                    message: "session cookies are not Rails encrypted cookies; is \
                              session.cookie the app's session cookie (e.g. _myapp_session), \
                              and session.rails.cipher its cipher?"
                        .into(),
                });
                return Resolution::Anonymous;
            }
            Err(RailsCookieError::BadSignature | RailsCookieError::Decrypt) => {
                self.diagnosis.passed(Check::Format);
                self.diagnosis.failed(Check::Signature, || {
                    Finding::about_secret(
                        &self.key_origin,
                        format!(
                            "session cookies do not verify with {}; is it the app's \
                             secret_key_base, and session.rails.digest and cipher its settings?",
                            self.key_origin
                        ),
                    )
                });
                return Resolution::Anonymous;
            }
            Err(e) => {
                // Expired, meant for another cookie, or data refused: a visitor.
                tracing::debug!(error = %e, "rails session cookie not used");
                return Resolution::Anonymous;
            }
        };
        self.diagnosis.passed(Check::Format);
        self.diagnosis.passed(Check::Signature);
        self.diagnosis.passed(Check::Session);
        self.diagnosis.user_from(&self.fields, &document)
    }
}

impl SessionResolver for RailsResolver {
    fn resolve<'a>(&'a self, session: Session<'a>) -> ResolveFuture<'a> {
        Box::pin(std::future::ready(Ok(self.resolve_now(session.cookie))))
    }

    fn resolve_in_process(&self, session: Session<'_>) -> Option<Result<Resolution, ResolveError>> {
        Some(Ok(self.resolve_now(session.cookie)))
    }

    fn describe(&self) -> String {
        "rails cookie store".into()
    }

    fn is_remote(&self) -> bool {
        false
    }
}
