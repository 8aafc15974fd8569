//! rustls configuration: the HTTPS front end and the trust store for an `https` upstream.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::config::TlsFiles;

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
    #[error("upstream.ca_file: {path}: {reason}")]
    Ca {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Installs the process-wide crypto provider (aws-lc-rs), once; later calls are no-ops.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
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

/// The client config for an `https` upstream: the system's roots plus `ca_file`, HTTP/1.1.
pub fn upstream_client_config(ca_file: Option<&Path>) -> Result<ClientConfig, TlsError> {
    install_crypto_provider();
    let mut roots = RootCertStore::empty();
    // Missing system roots are not fatal: an upstream on a private CA only needs ca_file.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let certs = read_certs(path).map_err(|reason| TlsError::Ca {
            path: path.display().to_string(),
            reason,
        })?;
        for cert in certs {
            roots.add(cert).map_err(|e| TlsError::Ca {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        }
    }
    // ALPN is left empty: hyper-rustls sets it (HTTP/1.1 only, see client.rs) and panics
    // if the config already has protocols.
    Ok(ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(certs)
}

/// A client config that trusts nothing, for the (unused) TLS side of an http upstream.
pub fn upstream_client_config_without_roots() -> ClientConfig {
    install_crypto_provider();
    ClientConfig::builder()
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth()
}
