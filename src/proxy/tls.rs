//! rustls configuration of the HTTPS front end (the client side is in [`crate::net`]).

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::TlsFiles;
use crate::net::{CaFileError, install_crypto_provider, read_certs};

/// Why TLS could not be set up; names the config key to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate chain file is unusable.
    #[error("server.tls_cert: {path}: {reason}")]
    Cert {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The private key file is unusable.
    #[error("server.tls_key: {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The key does not fit the certificate, or rustls refused them.
    #[error("server.tls_cert / server.tls_key: {0}")]
    Pair(rustls::Error),
    /// The upstream CA file is unusable.
    #[error(transparent)]
    Ca(#[from] CaFileError),
}

/// The server config for the HTTPS front end, offering h2 and http/1.1 by ALPN.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    Ok(reloadable_server_config(files)?.0)
}

/// [`server_config`], with the handle a reload puts a new certificate in.
pub fn reloadable_server_config(
    files: &TlsFiles,
) -> Result<(Arc<ServerConfig>, Arc<CurrentCert>), TlsError> {
    let cert = Arc::new(CurrentCert(ArcSwap::from_pointee(certified_key(files)?)));
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(cert.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), cert))
}

/// The certificate chain and key of `files`, checked to belong together.
pub fn certified_key(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    install_crypto_provider();
    let certs = read_certs(&files.cert).map_err(|reason| TlsError::Cert {
        path: files.cert.display().to_string(),
        reason,
    })?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.display().to_string(),
        reason: format!("no usable PEM private key ({e})"),
    })?;
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    CertifiedKey::from_der(certs, key, &provider).map_err(TlsError::Pair)
}

/// The certificate every new handshake presents: a reload swaps it, connections already
/// up keep theirs.
#[derive(Debug)]
pub struct CurrentCert(ArcSwap<CertifiedKey>);

impl CurrentCert {
    /// New handshakes present `key`.
    pub fn replace(&self, key: CertifiedKey) {
        self.0.store(Arc::new(key));
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}
