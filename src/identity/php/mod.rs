//! `resolver = "php"`: native PHP sessions (`session_start()`), the `PHPSESSID` cookie naming
//! a file `sess_<id>` or a phpredis key, the data in PHP's own serialize format. Also the
//! PHP data readers Laravel's sessions use.

mod serialize;
// pub(super): identity::fuzzing reaches the reader (fuzz/fuzz_targets/php_ruby_data.rs).
pub(super) mod session_data;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::stored::RawStore;
use super::{
    Check, Diagnosis, Finding, IdentityError, Resolution, ResolveError, ResolveFuture, Session,
    SessionResolver,
};
use crate::config::{FieldMap, PhpResolverConfig, PhpSerializeHandler};
pub(super) use serialize::unserialize;
use session_data::{SerializeHandler, decode_session};

/// Longest id PHP accepts (`PS_MAX_SID_LENGTH`).
const MAX_SID_LEN: usize = 256;

/// The id, when the cookie is one PHP could have made: `[A-Za-z0-9,-]`, as PHP's own
/// `php_session_valid_key` checks. Anything else (`../../etc/passwd`) names no file or key.
pub(super) fn php_session_id(cookie: &str) -> Option<&str> {
    let ok = !cookie.is_empty()
        && cookie.len() <= MAX_SID_LEN
        && cookie
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b',' || b == b'-');
    ok.then_some(cookie)
}

/// Resolves native PHP sessions.
pub struct PhpResolver {
    store: RawStore,
    handler: SerializeHandler,
    fields: FieldMap,
    diagnosis: Arc<Diagnosis>,
}

impl PhpResolver {
    /// A resolver for `[session.php]`; nothing is opened yet.
    pub fn new(
        config: &PhpResolverConfig,
        fields: FieldMap,
        timeout: Duration,
        diagnosis: Arc<Diagnosis>,
    ) -> Result<Self, IdentityError> {
        Ok(PhpResolver {
            store: RawStore::new(&config.store, timeout, "session.php.url")?,
            handler: match config.serialize_handler {
                PhpSerializeHandler::Php => SerializeHandler::Php,
                PhpSerializeHandler::PhpSerialize => SerializeHandler::PhpSerialize,
            },
            fields,
            diagnosis,
        })
    }

    async fn lookup(&self, cookie: &str) -> Result<Resolution, ResolveError> {
        let Some(sid) = php_session_id(cookie) else {
            self.diagnosis.failed(Check::Format, || Finding {
                key: "session.cookie".into(),
                message: "session cookies are not PHP session ids ([A-Za-z0-9,-]); is \
                          session.cookie the app's PHP session cookie?"
                    .into(),
            });
            return Ok(Resolution::Anonymous);
        };
        self.diagnosis.passed(Check::Format);
        let Some(stored) = self.store.fetch(sid).await? else {
            self.diagnosis.failed(Check::Session, || Finding {
                key: "session.php.path".into(),
                message: format!(
                    "{} has no session for any session cookie seen; check session.php.path \
                     (PHP's session.save_path) or session.php.key",
                    self.store.describe()
                ),
            });
            return Ok(Resolution::Anonymous);
        };
        self.diagnosis.passed(Check::Session);
        let document = decode_session(&stored.data, self.handler).map_err(|e| {
            ResolveError::Store(format!(
                "PHP session data not readable ({e}); is session.php.serialize_handler right?"
            ))
        })?;
        Ok(self.diagnosis.user_from(&self.fields, &document))
    }
}

impl SessionResolver for PhpResolver {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ids_php_could_make_are_looked_up() {
        assert_eq!(php_session_id("9s0kq1v2m3"), Some("9s0kq1v2m3"));
        assert_eq!(php_session_id("a,b-C"), Some("a,b-C"));
        for bad in [
            "",
            "../../etc/passwd",
            "a/b",
            "a.b",
            "sess id",
            "a%2Fb",
            "\0",
        ] {
            assert_eq!(php_session_id(bad), None, "{bad:?}");
        }
        assert_eq!(php_session_id(&"a".repeat(257)), None);
    }
}
