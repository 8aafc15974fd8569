//! rustls configuration of the HTTPS front end (the client side is in [`crate::net`]).

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

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
    install_crypto_provider();
    let certs = read_certs(&files.cert).map_err(|reason| TlsError::Cert {
        path: files.cert.display().to_string(),
        reason,
    })?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.display().to_string(),
        reason: format!("no usable PEM private key ({e})"),
    })?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Pair)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
