//! `resolver = "flask"`: a Flask app's `session` cookie, an itsdangerous token signed with
//! `SECRET_KEY`; verified and read in process, so no store is asked.

mod signing;

use std::sync::Arc;

use super::rails::now_unix;
use super::{
    Check, Diagnosis, Finding, Resolution, ResolveError, ResolveFuture, Session, SessionResolver,
};
use crate::config::{FieldMap, FlaskResolverConfig, SecretOrigin};
use signing::{FlaskSigningError, loads};

/// Resolves Flask sessions.
pub struct FlaskResolver {
    keys: Vec<Vec<u8>>,
    max_age: u64,
    fields: FieldMap,
    diagnosis: Arc<Diagnosis>,
    key_origin: SecretOrigin,
}

impl FlaskResolver {
    /// A resolver for `[session.flask]`.
    pub fn new(config: &FlaskResolverConfig, fields: FieldMap, diagnosis: Arc<Diagnosis>) -> Self {
        FlaskResolver {
            keys: super::key_list(&config.secret_key, config.fallback_keys.as_ref()),
            max_age: config.max_age.as_secs(),
            fields,
            diagnosis,
            key_origin: config.secret_key.origin().clone(),
        }
    }

    fn resolve_now(&self, cookie: &str) -> Resolution {
        let keys: Vec<&[u8]> = self.keys.iter().map(Vec::as_slice).collect();
        let document = match loads(cookie, &keys, self.max_age, now_unix()) {
            Ok(document) => document,
            Err(FlaskSigningError::Malformed) => {
                self.diagnosis.failed(Check::Format, || Finding {
                    key: "session.cookie".into(),
                    message: "session cookies are not Flask session cookies; is \
                              session.cookie the app's SESSION_COOKIE_NAME?"
                        .into(),
                });
                return Resolution::Anonymous;
            }
            Err(FlaskSigningError::BadSignature) => {
                self.diagnosis.passed(Check::Format);
                self.diagnosis.failed(Check::Signature, || {
                    Finding::about_secret(
                        &self.key_origin,
                        format!(
                            "session cookies do not verify with {}; is it the app's SECRET_KEY?",
                            self.key_origin
                        ),
                    )
                });
                return Resolution::Anonymous;
            }
            Err(e) => {
                tracing::debug!(error = %e, "flask session cookie not used");
                return Resolution::Anonymous;
            }
        };
        self.diagnosis.passed(Check::Format);
        self.diagnosis.passed(Check::Signature);
        self.diagnosis.passed(Check::Session);
        self.diagnosis.user_from(&self.fields, &document)
    }
}

impl SessionResolver for FlaskResolver {
    fn resolve<'a>(&'a self, session: Session<'a>) -> ResolveFuture<'a> {
        Box::pin(std::future::ready(Ok(self.resolve_now(session.cookie))))
    }

    fn resolve_in_process(&self, session: Session<'_>) -> Option<Result<Resolution, ResolveError>> {
        Some(Ok(self.resolve_now(session.cookie)))
    }

    fn describe(&self) -> String {
        "flask signed cookie".into()
    }

    fn is_remote(&self) -> bool {
        false
    }
}
