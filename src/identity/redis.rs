//! `resolver = "redis"`: the session lives in Redis (express-session + connect-redis, Rails
//! and Django Redis stores…). The value is a JSON string, or a hash whose fields are the
//! document.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use super::{
    Check, Diagnosis, ExpressCookieError, Finding, IdentityError, Resolution, ResolveError,
    ResolveFuture, Session, SessionResolver, express_session_id,
};
use crate::config::{CookieFormat, FieldMap, RedisResolverConfig, Secret};

/// Session ids longer than this are not looked up.
const MAX_SID_LEN: usize = 512;

/// A Redis connection made on first use: a Redis that is down at start must not stop the
/// proxy, and the manager reconnects by itself afterwards.
pub(super) struct RedisStore {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    timeout: Duration,
}

/// Resolves sessions stored in Redis.
pub struct RedisResolver {
    store: RedisStore,
    key_template: String,
    cookie_format: CookieFormat,
    cookie_secret: Option<Secret>,
    /// `previous_cookie_secrets_*`, tried after `cookie_secret`.
    previous_secrets: Vec<Vec<u8>>,
    fields: FieldMap,
    diagnosis: Arc<Diagnosis>,
}

fn store_error(e: redis::RedisError) -> ResolveError {
    // RedisError's Display never includes the URL or password.
    ResolveError::Store(format!("redis: {e}"))
}

impl RedisStore {
    /// A store at `url` (`key` names the setting in errors); nothing connects yet.
    pub(super) fn new(
        url: &str,
        timeout: Duration,
        key: &'static str,
    ) -> Result<Self, IdentityError> {
        // rediss:// uses rustls with the process-wide provider.
        crate::net::install_crypto_provider();
        let client = redis::Client::open(url).map_err(|e| IdentityError::Config {
            key,
            message: format!("unusable Redis URL ({:?})", e.kind()),
        })?;
        Ok(RedisStore {
            client,
            connection: OnceCell::new(),
            timeout,
        })
    }

    pub(super) async fn connection(&self) -> Result<ConnectionManager, ResolveError> {
        let manager = self
            .connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await
            .map_err(store_error)?;
        Ok(manager.clone())
    }

    /// The string under `key`, as bytes; `None` when there is none.
    pub(super) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ResolveError> {
        let mut connection = self.connection().await?;
        connection.get(key).await.map_err(store_error)
    }

    pub(super) async fn probe(&self) -> Result<(), ResolveError> {
        let mut connection = self.connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(drop)
            .map_err(store_error)
    }

    pub(super) fn describe(&self) -> String {
        format!("redis at {}", self.client.get_connection_info().addr())
    }
}

impl RedisResolver {
    /// A resolver for `[session.redis]`; nothing connects yet.
    pub fn new(
        config: &RedisResolverConfig,
        fields: FieldMap,
        timeout: Duration,
        diagnosis: Arc<Diagnosis>,
    ) -> Result<Self, IdentityError> {
        Ok(RedisResolver {
            store: RedisStore::new(&config.url, timeout, "session.redis.url")?,
            key_template: config.key.clone(),
            cookie_format: config.cookie_format,
            cookie_secret: config.cookie_secret.clone(),
            previous_secrets: match &config.previous_cookie_secrets {
                Some(list) => super::comma_list(list),
                None => Vec::new(),
            },
            fields,
            diagnosis,
        })
    }

    /// The session id the cookie carries, or `None` when the cookie is not a valid one.
    fn session_id(&self, cookie: &str) -> Option<String> {
        let sid = match self.cookie_format {
            CookieFormat::Raw => cookie.to_string(),
            CookieFormat::Express => self.express_session_id(cookie)?,
        };
        (!sid.is_empty() && sid.len() <= MAX_SID_LEN).then_some(sid)
    }

    /// An express-session cookie's id, with its format and signature checks recorded.
    fn express_session_id(&self, cookie: &str) -> Option<String> {
        let secret = self.cookie_secret.as_ref();
        let diagnosis = &self.diagnosis;
        let verified = express_session_id(cookie, secret.map(Secret::expose)).or_else(|e| {
            // Signed with a secret the app used before (express-session's `secret: [new,
            // old]`): still its session.
            match e {
                ExpressCookieError::BadSignature => self
                    .previous_secrets
                    .iter()
                    .find_map(|old| express_session_id(cookie, Some(old)).ok())
                    .ok_or(e),
                _ => Err(e),
            }
        });
        match verified {
            Ok(sid) => {
                diagnosis.passed(Check::Format);
                if secret.is_some() {
                    diagnosis.passed(Check::Signature);
                }
                Some(sid)
            }
            Err(ExpressCookieError::Malformed | ExpressCookieError::Unsigned) => {
                // An unsigned cookie where a signed one is expected is another app's
                // cookie, or another format: the secret is not what is wrong.
                diagnosis.failed(Check::Format, || Finding {
                    key: "session.redis.cookie_format".into(),
                    message: "session cookies are not express-session cookies \
                              (s:<sid>.<signature>, URL-encoded); is cookie_format = \"express\" \
                              right for this app, and session.cookie its session cookie?"
                        .into(),
                });
                None
            }
            Err(ExpressCookieError::BadSignature) => {
                diagnosis.passed(Check::Format);
                if let Some(secret) = secret {
                    diagnosis.failed(Check::Signature, || {
                        Finding::about_secret(
                            secret.origin(),
                            format!(
                                "session cookie signatures do not verify; {} is probably not \
                                 the app's express-session secret",
                                secret.origin()
                            ),
                        )
                    });
                }
                None
            }
        }
    }

    /// What a "no such session" warning says.
    fn no_session(&self) -> Finding {
        Finding {
            key: "session.redis.key".into(),
            message: format!(
                "{} has no session under session.redis.key (\"{}\") for any session cookie \
                 seen; check the key template (connect-redis writes \"sess:{{sid}}\") and the \
                 database number in session.redis.url",
                self.describe(),
                self.key_template
            ),
        }
    }

    async fn lookup(&self, cookie: &str) -> Result<Resolution, ResolveError> {
        let Some(sid) = self.session_id(cookie) else {
            return Ok(Resolution::Anonymous);
        };
        let key = self.key_template.replace("{sid}", &sid);
        let mut connection = self.store.connection().await?;
        let document = match connection.get::<_, Option<String>>(&key).await {
            Ok(None) => {
                self.diagnosis.failed(Check::Session, || self.no_session());
                return Ok(Resolution::Anonymous);
            }
            Ok(Some(text)) => match serde_json::from_str::<Value>(&text) {
                Ok(document) => document,
                // A value that is not JSON (a Rails Marshal blob, say) names nobody.
                Err(_) => {
                    return Err(ResolveError::Store(
                        "redis: session value is not JSON".into(),
                    ));
                }
            },
            Err(e) if e.code() == Some("WRONGTYPE") => {
                let hash: Vec<(String, String)> =
                    connection.hgetall(&key).await.map_err(store_error)?;
                if hash.is_empty() {
                    self.diagnosis.failed(Check::Session, || self.no_session());
                    return Ok(Resolution::Anonymous);
                }
                let fields: Map<String, Value> = hash
                    .into_iter()
                    .map(|(k, v)| {
                        // A field holding JSON (a nested object, a number) is read as JSON.
                        let value = serde_json::from_str(&v).unwrap_or(Value::String(v));
                        (k, value)
                    })
                    .collect();
                Value::Object(fields)
            }
            Err(e) => return Err(store_error(e)),
        };
        self.diagnosis.passed(Check::Session);
        Ok(self.diagnosis.user_from(&self.fields, &document))
    }
}

impl SessionResolver for RedisResolver {
    fn resolve<'a>(&'a self, session: Session<'a>) -> ResolveFuture<'a> {
        Box::pin(self.lookup(session.cookie))
    }

    fn probe(&self) -> Pin<Box<dyn Future<Output = Result<(), ResolveError>> + Send + '_>> {
        Box::pin(self.store.probe())
    }

    fn describe(&self) -> String {
        self.store.describe()
    }
}
