//! `resolver = "django"`: a Django app's sessions. With the `db` backend the `sessionid`
//! cookie names a row of `django_session` whose `session_data` is signed (and maybe
//! compressed) JSON; with `signed_cookies` the cookie is that signed JSON itself.

mod signing;

use std::sync::Arc;

use super::rails::now_unix;
use super::{
    Check, Diagnosis, Finding, IdentityError, Resolution, ResolveError, ResolveFuture, Session,
    SessionResolver,
};
use crate::config::{DjangoBackend, DjangoResolverConfig, FieldMap, SecretOrigin};
#[cfg(feature = "sql")]
use signing::{DB_SESSION_CLASS, decode_legacy_session_data, decode_session_data};
use signing::{DjangoSigningError, SIGNED_COOKIES_SALT, loads};

enum Backend {
    #[cfg(feature = "sql")]
    Db {
        store: Box<super::sql::SqlStore>,
        query: String,
    },
    SignedCookies {
        max_age: u64,
    },
}

/// Resolves Django sessions.
pub struct DjangoResolver {
    keys: Vec<Vec<u8>>,
    backend: Backend,
    fields: FieldMap,
    diagnosis: Arc<Diagnosis>,
    key_origin: SecretOrigin,
}

/// Django's session keys: 32 characters of `[a-z0-9]`; anything else is looked up nowhere.
#[cfg(feature = "sql")]
fn is_session_key(key: &str) -> bool {
    (8..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl DjangoResolver {
    /// A resolver for `[session.django]`; nothing connects yet.
    pub fn new(
        config: &DjangoResolverConfig,
        fields: FieldMap,
        timeout: std::time::Duration,
        diagnosis: Arc<Diagnosis>,
    ) -> Result<Self, IdentityError> {
        let _ = timeout;
        let backend = match &config.backend {
            #[cfg(feature = "sql")]
            DjangoBackend::Db { url, table } => {
                let store = super::sql::SqlStore::new(url, timeout, "session.django.url")?;
                // Expired rows are sessions Django no longer honours. The table name was
                // checked to be an identifier; expire_date is UTC when USE_TZ (the default).
                let now = match store.placeholder() {
                    "$1" => "now()",
                    _ => "UTC_TIMESTAMP()",
                };
                let query = format!(
                    "SELECT session_data FROM {table} WHERE session_key = {} AND expire_date > {now}",
                    store.placeholder()
                );
                Backend::Db {
                    store: Box::new(store),
                    query,
                }
            }
            #[cfg(not(feature = "sql"))]
            DjangoBackend::Db { .. } => {
                return Err(IdentityError::Config {
                    key: "session.django.backend",
                    message: "this build has no SQL support (cargo feature \"sql\")".into(),
                });
            }
            DjangoBackend::SignedCookies => Backend::SignedCookies {
                max_age: config.max_age.as_secs(),
            },
        };
        Ok(DjangoResolver {
            keys: super::key_list(&config.secret_key, config.fallback_keys.as_ref()),
            backend,
            fields,
            diagnosis,
            key_origin: config.secret_key.origin().clone(),
        })
    }

    fn keys(&self) -> Vec<&[u8]> {
        self.keys.iter().map(Vec::as_slice).collect()
    }

    /// The session document, or `None` (recorded) when the signed data does not hold.
    fn verified(
        &self,
        result: Result<serde_json::Value, DjangoSigningError>,
    ) -> Option<serde_json::Value> {
        match result {
            Ok(document) => {
                self.diagnosis.passed(Check::Format);
                self.diagnosis.passed(Check::Signature);
                Some(document)
            }
            Err(DjangoSigningError::Malformed) => {
                self.diagnosis.failed(Check::Format, || Finding {
                    key: "session.django.backend".into(),
                    message: "session data is not Django signed data; is \
                              session.django.backend the app's SESSION_ENGINE, and \
                              session.cookie its SESSION_COOKIE_NAME?"
                        .into(),
                });
                None
            }
            Err(DjangoSigningError::BadSignature) => {
                self.diagnosis.passed(Check::Format);
                self.diagnosis.failed(Check::Signature, || {
                    Finding::about_secret(
                        &self.key_origin,
                        format!(
                            "session signatures do not verify with {}; is it the app's \
                             SECRET_KEY (older keys go in fallback_keys)?",
                            self.key_origin
                        ),
                    )
                });
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "django session not used");
                None
            }
        }
    }

    fn signed_cookie(&self, cookie: &str, max_age: u64) -> Resolution {
        let loaded = loads(
            cookie,
            &self.keys(),
            SIGNED_COOKIES_SALT,
            Some(max_age),
            now_unix(),
        );
        match self.verified(loaded) {
            Some(document) => {
                self.diagnosis.passed(Check::Session);
                self.diagnosis.user_from(&self.fields, &document)
            }
            None => Resolution::Anonymous,
        }
    }

    #[cfg(feature = "sql")]
    async fn row(
        &self,
        store: &super::sql::SqlStore,
        query: &str,
        cookie: &str,
    ) -> Result<Resolution, ResolveError> {
        if !is_session_key(cookie) {
            self.diagnosis.failed(Check::Format, || Finding {
                key: "session.cookie".into(),
                message: "session cookies are not Django session keys; is session.cookie the \
                          app's SESSION_COOKIE_NAME (sessionid)?"
                    .into(),
            });
            return Ok(Resolution::Anonymous);
        }
        let Some(row) = store.row(query, cookie).await? else {
            self.diagnosis.failed(Check::Session, || Finding {
                key: "session.django.url".into(),
                message: format!(
                    "{} has no live session for any session cookie seen; check the database \
                     in session.django.url and session.django.table",
                    store.describe()
                ),
            });
            return Ok(Resolution::Anonymous);
        };
        self.diagnosis.passed(Check::Session);
        let data = row["session_data"].as_str().unwrap_or_default();
        let keys = self.keys();
        // Rows written before Django 3.1 are in the legacy encoding; 3.x apps still read them.
        let decoded = decode_session_data(data, &keys, DB_SESSION_CLASS)
            .or_else(|e| decode_legacy_session_data(data, &keys, DB_SESSION_CLASS).map_err(|_| e));
        Ok(match self.verified(decoded) {
            Some(document) => self.diagnosis.user_from(&self.fields, &document),
            None => Resolution::Anonymous,
        })
    }
}

impl SessionResolver for DjangoResolver {
    fn resolve<'a>(&'a self, session: Session<'a>) -> ResolveFuture<'a> {
        match &self.backend {
            #[cfg(feature = "sql")]
            Backend::Db { store, query } => Box::pin(self.row(store, query, session.cookie)),
            Backend::SignedCookies { max_age } => Box::pin(std::future::ready(Ok(
                self.signed_cookie(session.cookie, *max_age)
            ))),
        }
    }

    fn resolve_in_process(&self, session: Session<'_>) -> Option<Result<Resolution, ResolveError>> {
        match &self.backend {
            Backend::SignedCookies { max_age } => {
                Some(Ok(self.signed_cookie(session.cookie, *max_age)))
            }
            #[cfg(feature = "sql")]
            Backend::Db { .. } => None,
        }
    }

    fn probe(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ResolveError>> + Send + '_>>
    {
        match &self.backend {
            #[cfg(feature = "sql")]
            Backend::Db { store, .. } => Box::pin(store.probe()),
            Backend::SignedCookies { .. } => Box::pin(std::future::ready(Ok(()))),
        }
    }

    fn describe(&self) -> String {
        match &self.backend {
            #[cfg(feature = "sql")]
            Backend::Db { store, .. } => store.describe(),
            Backend::SignedCookies { .. } => "django signed cookies".into(),
        }
    }

    fn is_remote(&self) -> bool {
        !matches!(self.backend, Backend::SignedCookies { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "sql")]
    fn only_django_session_keys_are_looked_up() {
        assert!(is_session_key("abcdefghijklmnopqrstuvwxyz012345"));
        for bad in [
            "",
            "short",
            "ABCDEFGHIJKLMNOP",
            "abc'; DROP TABLE x;--",
            "../../etc/passwd",
        ] {
            assert!(!is_session_key(bad), "{bad:?}");
        }
    }
}
