//! `resolver = "laravel"`: a Laravel app's `laravel_session` cookie, encrypted with
//! `APP_KEY` by its EncryptCookies middleware around the session id, and the session that id
//! names in the file, Redis or database driver's store, PHP-serialized (or JSON).

mod encrypter;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use sha2::Digest;

use super::php::unserialize;
use super::stored::RawStore;
use super::{
    Check, Diagnosis, Finding, IdentityError, Resolution, ResolveError, ResolveFuture, Session,
    SessionResolver,
};
use crate::config::{FieldMap, LaravelResolverConfig, SecretOrigin};
use encrypter::{Cipher, DecryptError, Encrypter, parse_app_key};

/// Resolves Laravel sessions.
pub struct LaravelResolver {
    encrypter: Encrypter,
    cookie_name: String,
    store: RawStore,
    lifetime: Duration,
    fields: FieldMap,
    diagnosis: Arc<Diagnosis>,
    key_origin: SecretOrigin,
}

/// Laravel's own check (`Store::isValidId`): 40 letters and digits.
fn is_laravel_id(sid: &str) -> bool {
    sid.len() == 40 && sid.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl LaravelResolver {
    /// A resolver for `[session.laravel]`: the keys are parsed now (a bad `APP_KEY` stops
    /// `check`), nothing is opened yet.
    pub fn new(
        config: &LaravelResolverConfig,
        cookie_name: &str,
        fields: FieldMap,
        timeout: Duration,
        diagnosis: Arc<Diagnosis>,
    ) -> Result<Self, IdentityError> {
        let bad_key = |key: &'static str, message: String| IdentityError::Config { key, message };
        let app_key_setting = if config.app_key.origin().key.ends_with("_file") {
            "session.laravel.app_key_file"
        } else {
            "session.laravel.app_key_env"
        };
        let text = String::from_utf8_lossy(config.app_key.expose()).into_owned();
        let mut keys = vec![parse_app_key(&text).map_err(|e| {
            bad_key(
                app_key_setting,
                format!("{}: {e}", config.app_key.origin().source),
            )
        })?];
        if let Some(previous) = &config.previous_keys {
            let setting = if previous.origin().key.ends_with("_file") {
                "session.laravel.previous_keys_file"
            } else {
                "session.laravel.previous_keys_env"
            };
            let text = String::from_utf8_lossy(previous.expose()).into_owned();
            for (i, key) in text
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .enumerate()
            {
                keys.push(parse_app_key(key).map_err(|e| {
                    bad_key(
                        setting,
                        format!("key {} of {}: {e}", i + 1, previous.origin().source),
                    )
                })?);
            }
        }
        let cipher = Cipher::parse(&config.cipher).ok_or_else(|| {
            bad_key(
                "session.laravel.cipher",
                format!("unknown cipher {:?}", config.cipher),
            )
        })?;
        let encrypter = Encrypter::new(cipher, keys).map_err(|e| {
            bad_key(
                app_key_setting,
                format!("{e} (session.laravel.cipher = \"{}\")", config.cipher),
            )
        })?;
        Ok(LaravelResolver {
            encrypter,
            cookie_name: cookie_name.to_string(),
            store: RawStore::new(&config.store, timeout, "session.laravel.url")?,
            lifetime: config.lifetime,
            fields,
            diagnosis,
            key_origin: config.app_key.origin().clone(),
        })
    }

    /// The session id inside the cookie, with the format and key checks recorded.
    fn session_id(&self, cookie: &str) -> Option<String> {
        match self
            .encrypter
            .session_id_from_cookie(&self.cookie_name, cookie)
        {
            Ok(sid) if is_laravel_id(&sid) => {
                self.diagnosis.passed(Check::Format);
                self.diagnosis.passed(Check::Signature);
                Some(sid)
            }
            Ok(_) => None,
            Err(DecryptError::Malformed) => {
                self.diagnosis.failed(Check::Format, || Finding {
                    key: "session.cookie".into(),
                    message: "session cookies are not Laravel encrypted cookies; is \
                              session.cookie the app's session cookie (SESSION_COOKIE)?"
                        .into(),
                });
                None
            }
            Err(_) => {
                self.diagnosis.passed(Check::Format);
                self.diagnosis.failed(Check::Signature, || {
                    Finding::about_secret(
                        &self.key_origin,
                        format!(
                            "session cookies do not decrypt with {}; is it the app's APP_KEY, \
                             and session.laravel.cipher its cipher?",
                            self.key_origin
                        ),
                    )
                });
                None
            }
        }
    }

    async fn lookup(&self, cookie: &str) -> Result<Resolution, ResolveError> {
        let Some(sid) = self.session_id(cookie) else {
            return Ok(Resolution::Anonymous);
        };
        let stored = match self.store.fetch(&sid).await? {
            Some(stored) if !self.expired(stored.modified) => stored,
            _ => {
                self.diagnosis.failed(Check::Session, || Finding {
                    key: "session.laravel.driver".into(),
                    message: format!(
                        "{} has no live session for any session cookie seen; check \
                         session.laravel.driver and its path, key or table",
                        self.store.describe()
                    ),
                });
                return Ok(Resolution::Anonymous);
            }
        };
        self.diagnosis.passed(Check::Session);
        let document = self
            .decode(stored.data)
            .map_err(|e| ResolveError::Store(format!("Laravel session data not readable: {e}")))?;
        Ok(self.diagnosis.user_from(&self.fields, &document))
    }

    /// Laravel expires sessions by their age, not only by deleting them.
    fn expired(&self, modified: Option<SystemTime>) -> bool {
        modified.is_some_and(|at| {
            SystemTime::now()
                .duration_since(at)
                .is_ok_and(|age| age > self.lifetime)
        })
    }

    /// The session's attributes, through every wrapping a driver adds: the cache store's
    /// second `serialize` (Redis), the encrypted store (`'encrypt' => true`), then PHP
    /// `serialize` or JSON (`'serialization' => 'json'`).
    fn decode(&self, mut data: Vec<u8>) -> Result<Value, String> {
        for _ in 0..4 {
            match data.first() {
                Some(b's') => match unserialize(&data).map_err(|e| e.to_string())? {
                    Value::String(inner) => data = inner.into_bytes(),
                    _ => return Err("a serialized value that is not the session".into()),
                },
                // base64 of '{"iv"': an encrypted session.
                Some(b'e') if data.starts_with(b"eyJ") => {
                    let text = std::str::from_utf8(&data).map_err(|_| "not text".to_string())?;
                    data = self
                        .encrypter
                        .decrypt_stored(text.trim())
                        .map_err(|e| format!("encrypted session: {e}"))?;
                }
                Some(b'{') => return serde_json::from_slice(&data).map_err(|e| e.to_string()),
                _ => return unserialize(&data).map_err(|e| e.to_string()),
            }
        }
        Err("too many layers of wrapping".into())
    }
}

impl SessionResolver for LaravelResolver {
    fn resolve<'a>(&'a self, session: Session<'a>) -> ResolveFuture<'a> {
        Box::pin(self.lookup(session.cookie))
    }

    fn probe(&self) -> Pin<Box<dyn Future<Output = Result<(), ResolveError>> + Send + '_>> {
        Box::pin(self.store.probe())
    }

    fn describe(&self) -> String {
        self.store.describe()
    }

    /// The session id, not the cookie: Laravel re-encrypts the cookie on every response, so
    /// the cookie changes while the session stays.
    fn cache_key(&self, session: Session<'_>) -> [u8; 32] {
        let mut hash = sha2::Sha256::new();
        match self
            .encrypter
            .session_id_from_cookie(&self.cookie_name, session.cookie)
        {
            Ok(sid) => {
                hash.update(b"laravel session id\0");
                hash.update(sid.as_bytes());
            }
            Err(_) => hash.update(session.cookie.as_bytes()),
        }
        hash.finalize().into()
    }
}
