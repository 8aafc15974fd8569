//! `[session.lookup]`: after the resolver finds a user id, that user's record, from one SQL
//! query (the id a bound parameter) or one HTTP GET (the id percent-encoded into the URL).
//! The record is the document under `/lookup` for `[session.fields]`; no record is a
//! visitor. It runs inside the lookup cache, so a cached session costs no record fetch.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::fields::fill;
use super::{
    Check, Diagnosis, Finding, IdentityError, Resolution, ResolveError, ResolveFuture, Session,
    SessionResolver,
};
use crate::config::{FieldMap, LookupConfig};

/// Where records come from.
enum Source {
    #[cfg(feature = "sql")]
    Sql {
        store: Box<super::sql::SqlStore>,
        query: String,
        /// How the id is bound (learnt from the database once).
        param: tokio::sync::OnceCell<super::sql::IdParam>,
    },
    #[cfg(feature = "http-resolver")]
    Http {
        client: Box<super::http::JsonClient>,
        template: String,
    },
}

/// A resolver followed by the user's record.
pub struct LookupResolver {
    inner: Box<dyn SessionResolver>,
    source: Source,
    fields: FieldMap,
    diagnosis: Arc<Diagnosis>,
}

fn under_lookup(pointer: &str) -> bool {
    pointer == "/lookup" || pointer.starts_with("/lookup/")
}

impl LookupResolver {
    /// `inner` followed by `[session.lookup]`; nothing connects yet.
    pub fn wrap(
        inner: Box<dyn SessionResolver>,
        config: &LookupConfig,
        fields: FieldMap,
        timeout: Duration,
        diagnosis: Arc<Diagnosis>,
    ) -> Result<Box<dyn SessionResolver>, IdentityError> {
        let _ = timeout;
        let source = match config {
            #[cfg(feature = "sql")]
            LookupConfig::Sql { url, query } => Source::Sql {
                store: Box::new(super::sql::SqlStore::new(
                    url,
                    timeout,
                    "session.lookup.url",
                )?),
                query: query.clone(),
                param: tokio::sync::OnceCell::new(),
            },
            #[cfg(feature = "http-resolver")]
            LookupConfig::Http { url } => Source::Http {
                client: Box::new(super::http::JsonClient::new(timeout, "session.lookup.url")?),
                template: url.clone(),
            },
            #[allow(unreachable_patterns)] // both built in
            _ => {
                return Err(IdentityError::Config {
                    key: "session.lookup.url",
                    message: "this build has no SQL or HTTP client (cargo features \"sql\", \"http-resolver\")".into(),
                });
            }
        };
        Ok(Box::new(LookupResolver {
            inner,
            source,
            fields,
            diagnosis,
        }))
    }

    /// The user's record, `None` when there is none.
    async fn record(&self, user_id: &str) -> Result<Option<Value>, ResolveError> {
        match &self.source {
            #[cfg(feature = "sql")]
            Source::Sql {
                store,
                query,
                param,
            } => {
                use super::sql::IdParam;
                let param = *param.get_or_try_init(|| store.id_parameter(query)).await?;
                // An id that is no integer of the key's width names no row of that key.
                match param {
                    IdParam::Text => store.row(query, user_id).await,
                    IdParam::Int2 => match user_id.parse::<i16>() {
                        Ok(id) => store.row_bound(query, id).await,
                        Err(_) => Ok(None),
                    },
                    IdParam::Int4 => match user_id.parse::<i32>() {
                        Ok(id) => store.row_bound(query, id).await,
                        Err(_) => Ok(None),
                    },
                    IdParam::Int8 => match user_id.parse::<i64>() {
                        Ok(id) => store.row_bound(query, id).await,
                        Err(_) => Ok(None),
                    },
                }
            }
            #[cfg(feature = "http-resolver")]
            Source::Http { client, template } => {
                let id = percent_encode(user_id);
                let url = template.replace("{user_id}", &id);
                let request = http::Request::get(url)
                    .header(http::header::ACCEPT, "application/json")
                    .body(http_body_util::Empty::new())
                    .map_err(|e| ResolveError::Store(format!("lookup URL: {e}")))?;
                let answer = client.get(request).await?;
                match (answer.status, answer.document) {
                    (http::StatusCode::NOT_FOUND, _) => Ok(None),
                    (_, Some(document)) => Ok(Some(document)),
                    (status, None) => Err(ResolveError::Store(format!("lookup answered {status}"))),
                }
            }
        }
    }

    async fn lookup(&self, session: Session<'_>) -> Result<Resolution, ResolveError> {
        let resolution = match self.inner.resolve_in_process(session) {
            Some(resolution) => resolution?,
            None => self.inner.resolve(session).await?,
        };
        let Resolution::User(mut user) = resolution else {
            return Ok(Resolution::Anonymous);
        };
        let Some(record) = self.record(&user.id).await? else {
            self.diagnosis.failed(Check::Session, || Finding {
                key: "session.lookup".into(),
                message: "the lookup found no record for any user id the sessions named; \
                          check session.lookup's query (or URL) and the table it reads"
                    .into(),
            });
            return Ok(Resolution::Anonymous);
        };
        fill(
            &mut user,
            &self.fields,
            &json!({ "lookup": record }),
            under_lookup,
        );
        Ok(Resolution::User(user))
    }
}

/// Everything but unreserved characters escaped: the id is one path or query segment.
#[cfg(feature = "http-resolver")]
fn percent_encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl SessionResolver for LookupResolver {
    fn resolve<'a>(&'a self, session: Session<'a>) -> ResolveFuture<'a> {
        Box::pin(self.lookup(session))
    }

    fn probe(&self) -> Pin<Box<dyn Future<Output = Result<(), ResolveError>> + Send + '_>> {
        Box::pin(async move {
            if self.inner.is_remote() {
                self.inner.probe().await?;
            }
            match &self.source {
                // Said apart from the resolver's store, which the description names first.
                #[cfg(feature = "sql")]
                Source::Sql { store, .. } => store.probe().await.map_err(|e| match e {
                    ResolveError::Store(reason) => {
                        ResolveError::Store(format!("user lookup: {reason}"))
                    }
                    other => other,
                }),
                #[cfg(feature = "http-resolver")]
                Source::Http { .. } => Ok(()),
            }
        })
    }

    fn describe(&self) -> String {
        let record = match &self.source {
            #[cfg(feature = "sql")]
            Source::Sql { store, .. } => store.describe(),
            #[cfg(feature = "http-resolver")]
            Source::Http { template, .. } => {
                // Scheme, host and path only: a query string may carry a key.
                let shown = template.split('?').next().unwrap_or_default();
                let shown = shown.rsplit('@').next().unwrap_or(shown);
                format!("lookup URL {shown}")
            }
        };
        format!("{}, users from {record}", self.inner.describe())
    }

    fn cache_key(&self, session: Session<'_>) -> [u8; 32] {
        self.inner.cache_key(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "http-resolver")]
    fn ids_are_one_url_segment() {
        assert_eq!(percent_encode("42"), "42");
        assert_eq!(percent_encode("a/../b?x=1&y"), "a%2F..%2Fb%3Fx%3D1%26y");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
