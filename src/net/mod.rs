//! Connections: who is on the other end of an incoming one ([`Downstream`], which the server
//! puts in each request's extensions), and for outgoing ones (the proxy's to the app, the
//! identity layer's to an introspection URL) the rustls client config and the connector.

use std::net::SocketAddr;

#[cfg(feature = "client-tls")]
mod client;

#[cfg(feature = "client")]
pub use client::connector;
#[cfg(feature = "server")]
pub(crate) use client::read_certs;
#[cfg(feature = "client-tls")]
pub use client::{CaFileError, client_tls, client_tls_without_roots, install_crypto_provider};

/// The client side of one incoming connection, in each request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Downstream {
    /// The client's address.
    pub peer: SocketAddr,
    /// `"http"` or `"https"`: how the client reached the proxy, or, from a trusted proxy,
    /// how the browser reached it (`X-Forwarded-Proto`).
    pub scheme: &'static str,
    /// Whether the peer is one of `server.trusted_proxies`: its `X-Forwarded-*` headers
    /// are believed and extended, anyone else's replaced.
    pub trusted: bool,
}
