//! The client side of outgoing connections: rustls config and the pooled connector.

use std::path::Path;
#[cfg(feature = "client")]
use std::time::Duration;

#[cfg(feature = "client")]
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
#[cfg(feature = "client")]
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// The CA file given for an `https` upstream is unusable.
#[derive(Debug, thiserror::Error)]
#[error("upstream.ca_file: {path}: {reason}")]
pub struct CaFileError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// Installs the process-wide crypto provider (aws-lc-rs), once; later calls are no-ops.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The client config for `https` peers: the system's roots plus `ca_file`.
pub fn client_tls(ca_file: Option<&Path>) -> Result<ClientConfig, CaFileError> {
    install_crypto_provider();
    let mut roots = RootCertStore::empty();
    // Missing system roots are not fatal: a peer on a private CA only needs ca_file.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let unusable = |reason: String| CaFileError {
            path: path.display().to_string(),
            reason,
        };
        for cert in read_certs(path).map_err(unusable)? {
            roots.add(cert).map_err(|e| unusable(e.to_string()))?;
        }
    }
    // ALPN is left empty: hyper-rustls sets it (HTTP/1.1 only) and panics if the config
    // already has protocols.
    Ok(ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A client config that trusts nothing, for the (unused) TLS side of an `http` peer.
pub fn client_tls_without_roots() -> ClientConfig {
    install_crypto_provider();
    ClientConfig::builder()
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth()
}

#[cfg(feature = "client")]
/// A connector for `http` and `https` URLs over HTTP/1.1 (WebSocket upgrades need it end to
/// end, as in nginx), with Nagle off and connecting bounded by `connect_timeout`.
pub fn connector(tls: ClientConfig, connect_timeout: Duration) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// The certificates of a PEM file; at least one.
pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(certs)
}
