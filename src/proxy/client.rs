//! The pooled HTTP/1.1 client that talks to the upstream app.

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::body::RequestBody;
use crate::config::UpstreamConfig;
use crate::net::{self, CaFileError};

/// Idle upstream connections kept per host, shared out between the workers' pools.
const MAX_IDLE_UPSTREAM: usize = 128;

/// The upstream client: keep-alive pool, http and https, request bodies streamed.
pub(crate) type UpstreamClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// Builds the pooled client for `[upstream]`.
pub(crate) fn build(
    config: &UpstreamConfig,
    workers: usize,
) -> Result<UpstreamClient, CaFileError> {
    let tls = if config.url.scheme_str() == Some("https") {
        net::client_tls(config.ca_file.as_deref())?
    } else {
        // Never used for an http upstream; an empty trust store costs nothing to build.
        net::client_tls_without_roots()
    };
    let connector = net::connector(tls, config.connect_timeout);
    Ok(Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        // The proxy writes Host itself: the browser's, not the upstream's address.
        .set_host(false)
        // Enough warm connections for bursts; a spike of 1,000 clients must not leave
        // 1,000 idle upstream connections (and their buffers) behind.
        .pool_max_idle_per_host((MAX_IDLE_UPSTREAM / workers.max(1)).max(8))
        .http1_max_buf_size(128 * 1024)
        .build(connector))
}
