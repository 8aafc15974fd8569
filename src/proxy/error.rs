//! Proxy failures, tagged with whose fault they are, and the short responses they become.

use std::error::Error as StdError;
use std::fmt;

use http::{Response, StatusCode, header};

use super::body::ProxyBody;

/// Who caused a failure, for log lines (Pingora's `ErrorSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The app, or the network to it.
    Upstream,
    /// The client.
    Downstream,
    /// The proxy itself.
    Internal,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Upstream => "upstream",
            Fault::Downstream => "downstream",
            Fault::Internal => "internal",
        })
    }
}

/// Why a request could not be proxied.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No connection to the app could be made (refused, unreachable, DNS, TLS).
    #[error("cannot connect to the upstream app")]
    Connect(#[source] BoxError),
    /// Connecting to the app took longer than `upstream.connect_timeout`.
    #[error("connecting to the upstream app timed out")]
    ConnectTimeout(#[source] BoxError),
    /// The app did not send a response head within `upstream.timeout`.
    #[error("the upstream app did not answer within upstream.timeout")]
    Timeout,
    /// The connection to the app broke, or the app sent something that is not HTTP.
    #[error("the upstream exchange failed")]
    Exchange(#[source] BoxError),
    /// The app switched protocols for a request that did not ask to.
    #[error("the upstream app answered 101 to a request without Upgrade")]
    UnexpectedUpgrade,
    /// The request target cannot be forwarded.
    #[error("invalid request target")]
    BadTarget,
    /// The client's request body came too slowly (`server.body_timeout`).
    #[error("the request body came too slowly")]
    SlowBody,
    /// Every app connection `upstream.max_connections` allows stayed busy for
    /// `upstream.timeout`.
    #[error("every app connection (upstream.max_connections) stayed busy")]
    Busy,
}

/// A boxed error, as hyper and tower use.
pub type BoxError = Box<dyn StdError + Send + Sync>;

impl ProxyError {
    /// Classifies an error from the upstream client.
    pub fn from_client(err: hyper_util::client::legacy::Error) -> Self {
        if chain(&err).any(|e| e.is::<super::body::SlowBody>()) {
            return ProxyError::SlowBody;
        }
        let timed_out = chain(&err).any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        });
        match (err.is_connect(), timed_out) {
            (true, true) => ProxyError::ConnectTimeout(Box::new(err)),
            (true, false) => ProxyError::Connect(Box::new(err)),
            _ => ProxyError::Exchange(Box::new(err)),
        }
    }

    /// The kind of upstream failure, for the metrics; `None` for the client's.
    pub fn upstream_kind(&self) -> Option<crate::metrics::UpstreamError> {
        use crate::metrics::UpstreamError as Kind;
        match self {
            ProxyError::Connect(_) => Some(Kind::Connect),
            ProxyError::ConnectTimeout(_) | ProxyError::Timeout => Some(Kind::Timeout),
            ProxyError::Exchange(_) | ProxyError::UnexpectedUpgrade => Some(Kind::Reset),
            ProxyError::Busy => Some(Kind::Busy),
            ProxyError::BadTarget | ProxyError::SlowBody => None,
        }
    }

    /// Whose fault it is.
    pub fn fault(&self) -> Fault {
        match self {
            ProxyError::BadTarget | ProxyError::SlowBody => Fault::Downstream,
            _ => Fault::Upstream,
        }
    }

    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::ConnectTimeout(_) | ProxyError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::BadTarget => StatusCode::BAD_REQUEST,
            ProxyError::SlowBody => StatusCode::REQUEST_TIMEOUT,
            ProxyError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// The error and all its causes, `: `-separated, for one log field.
    pub fn causes(&self) -> String {
        let mut out = String::new();
        for (i, e) in chain(self).enumerate() {
            if i > 0 {
                out.push_str(": ");
            }
            out.push_str(&e.to_string());
        }
        out
    }

    /// A short plain-text response; it names no internal address.
    pub fn response(&self) -> Response<ProxyBody> {
        let status = self.status();
        let text = match status {
            StatusCode::GATEWAY_TIMEOUT => {
                "504 Gateway Timeout: the application did not answer in time.\n"
            }
            StatusCode::BAD_REQUEST => "400 Bad Request\n",
            StatusCode::REQUEST_TIMEOUT => {
                "408 Request Timeout: the request body came too slowly.\n"
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                "503 Service Unavailable: the application is busy; try again.\n"
            }
            _ => "502 Bad Gateway: the application is unavailable.\n",
        };
        plain_response(status, text)
    }
}

/// A plain-text response that no cache keeps.
pub fn plain_response(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        header::CONTENT_LENGTH,
        header::HeaderValue::from(text.len()),
    );
    response
}

fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e: &&'a (dyn StdError + 'static)| e.source())
}
