//! `resolver = "http"`: ask the app (or an auth service) who the browser is. The browser's
//! `Cookie` header is sent, and nothing else of the request; a 2xx JSON answer is the
//! session document, 401/403/404 mean anonymous, anything else is "unknown".

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::Value;

use super::{
    Check, Diagnosis, Finding, IdentityError, Resolution, ResolveError, ResolveFuture, Session,
    SessionResolver,
};
use crate::config::{FieldMap, HttpResolverConfig};

/// The largest introspection answer read; a session document is small.
const MAX_ANSWER: usize = 64 * 1024;

/// A client for small JSON answers (introspection, `[session.lookup]` over HTTP).
pub(super) struct JsonClient {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

/// What a JSON GET answered: its status, and its body read as JSON when it was 2xx.
pub(super) struct JsonAnswer {
    pub status: StatusCode,
    pub document: Option<Value>,
}

impl JsonClient {
    /// `timeout` bounds connecting; `key` names the URL setting in errors.
    pub(super) fn new(timeout: Duration, key: &'static str) -> Result<Self, IdentityError> {
        let tls = crate::net::client_tls(None).map_err(|e| IdentityError::Config {
            key,
            message: e.to_string(),
        })?;
        let connector = crate::net::connector(tls, timeout);
        Ok(JsonClient {
            client: Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .build(connector),
        })
    }

    /// GETs `request`; a 2xx answer must be JSON of at most 64 KiB.
    pub(super) async fn get(
        &self,
        request: Request<Empty<Bytes>>,
    ) -> Result<JsonAnswer, ResolveError> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| ResolveError::Store(format!("request failed: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Ok(JsonAnswer {
                status,
                document: None,
            });
        }
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| ResolveError::Store(format!("answer unreadable: {e}")))?
            .to_bytes();
        let document = serde_json::from_slice(&body)
            .map_err(|e| ResolveError::Store(format!("answer is not JSON: {e}")))?;
        Ok(JsonAnswer {
            status,
            document: Some(document),
        })
    }

    /// Whether anything answers at `url` (any HTTP status).
    pub(super) async fn probe(&self, url: Uri) -> Result<(), ResolveError> {
        let request = Request::get(url)
            .body(Empty::new())
            .map_err(|e| ResolveError::Store(e.to_string()))?;
        self.client
            .request(request)
            .await
            .map(drop)
            .map_err(|e| ResolveError::Store(e.to_string()))
    }
}

/// Resolves sessions through an introspection URL.
pub struct HttpResolver {
    client: JsonClient,
    url: Uri,
    fields: FieldMap,
    diagnosis: Arc<Diagnosis>,
}

impl HttpResolver {
    /// A resolver for `[session.http]`; `timeout` bounds connecting.
    pub fn new(
        config: &HttpResolverConfig,
        fields: FieldMap,
        timeout: Duration,
        diagnosis: Arc<Diagnosis>,
    ) -> Result<Self, IdentityError> {
        Ok(HttpResolver {
            client: JsonClient::new(timeout, "session.http.url")?,
            url: config.url.clone(),
            fields,
            diagnosis,
        })
    }

    async fn lookup(&self, session: Session<'_>) -> Result<Resolution, ResolveError> {
        let cookies: Vec<&[u8]> = session
            .headers
            .get_all(header::COOKIE)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        let cookie = HeaderValue::from_bytes(&cookies.join(&b"; "[..]))
            .map_err(|_| ResolveError::Store("unusable Cookie header".into()))?;
        let request = Request::get(self.url.clone())
            .header(header::COOKIE, cookie)
            .header(header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| ResolveError::Store(e.to_string()))?;
        let answer = self
            .client
            .get(request)
            .await
            .map_err(|e| ResolveError::Store(format!("introspection: {e}")))?;
        let status = answer.status;
        if matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
        ) {
            self.diagnosis.failed(Check::Session, || Finding {
                key: "session.http.url".into(),
                message: format!(
                    "{} answered {status} for every session cookie seen. Visitors with a \
                     session cookie may get that; if logged-in users get no Messenger, check \
                     that it is the app's \"who is this?\" endpoint and accepts the app's \
                     session cookie",
                    self.describe()
                ),
            });
            return Ok(Resolution::Anonymous);
        }
        let Some(document) = answer.document else {
            return Err(ResolveError::Store(format!(
                "introspection answered {status}"
            )));
        };
        self.diagnosis.passed(Check::Session);
        Ok(self.diagnosis.user_from(&self.fields, &document))
    }
}

impl SessionResolver for HttpResolver {
    fn resolve<'a>(&'a self, session: Session<'a>) -> ResolveFuture<'a> {
        Box::pin(self.lookup(session))
    }

    fn probe(&self) -> Pin<Box<dyn Future<Output = Result<(), ResolveError>> + Send + '_>> {
        // Any HTTP answer means the endpoint is up; 401 is what it says to no cookie.
        Box::pin(self.client.probe(self.url.clone()))
    }

    fn describe(&self) -> String {
        // Without credentials or a query string, which may carry a key.
        let host = self.url.host().unwrap_or_default();
        let port = self.url.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "introspection URL {}://{host}{port}{}",
            self.url.scheme_str().unwrap_or("http"),
            self.url.path()
        )
    }

    fn cache_key(&self, session: Session<'_>) -> [u8; 32] {
        // The answer depends on every cookie sent, not only the session's.
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for value in session.headers.get_all(header::COOKIE) {
            hasher.update(value.as_bytes());
            hasher.update(b"; ");
        }
        if session.headers.get(header::COOKIE).is_none() {
            hasher.update(session.cookie.as_bytes());
        }
        hasher.finalize().into()
    }
}
