//! The reverse proxy: listeners, forwarding, hop-by-hop hygiene and upstream errors.

mod access;
mod body;
mod client;
mod connection;
mod error;
mod forward;
mod guard;
pub mod headers;
mod preface;
mod request_id;
mod server;
pub mod tls;
mod workers;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

pub use access::{AccessBody, AccessFuture, AccessLog, AccessLogLayer};
pub use body::ProxyBody;
pub use error::{BoxError, Fault, ProxyError, plain_response};
pub use forward::{ForwardFuture, Forwarder, Upgrades};
pub use guard::{Guard, GuardFuture, GuardLayer};
pub use server::{Serve, Server, WorkerTask};

use crate::config::{Config, ServerConfig};

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A listen address could not be bound.
    #[error("server.listen: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// `admin.listen` could not be bound.
    #[error("admin.listen: cannot listen on {addr}: {source}")]
    AdminBind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The HTTPS front end `[server]` asks for, if any; fails on unusable TLS files.
pub fn tls_acceptor(config: &ServerConfig) -> Result<Option<TlsAcceptor>, StartError> {
    Ok(reloadable_tls(config)?.map(|(acceptor, _)| acceptor))
}

/// [`tls_acceptor`], with the handle a reload puts a new certificate in.
pub fn reloadable_tls(
    config: &ServerConfig,
) -> Result<Option<(TlsAcceptor, Arc<tls::CurrentCert>)>, StartError> {
    crate::net::install_crypto_provider();
    Ok(match &config.tls {
        Some(files) => {
            let (server, cert) = tls::reloadable_server_config(files)?;
            Some((TlsAcceptor::from(server), cert))
        }
        None => None,
    })
}

/// The forwarder of one worker, with its own upstream pool; fails on an unusable
/// `upstream.ca_file`. `slots` (one per `upstream.max_connections`) is shared by every
/// worker's forwarder.
pub fn forwarder(
    config: &Config,
    upgrades: &Upgrades,
    slots: &Arc<Semaphore>,
) -> Result<Forwarder, StartError> {
    let client =
        client::build(&config.upstream, config.server.workers).map_err(tls::TlsError::from)?;
    Ok(Forwarder::new(
        client,
        &config.upstream,
        &config.server.limits,
        upgrades.subscribe(),
        slots.clone(),
    ))
}

/// The places under `upstream.max_connections`, for [`forwarder`].
pub fn upstream_slots(config: &Config) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(
        config.upstream.max_connections.min(Semaphore::MAX_PERMITS),
    ))
}

/// Binds every `server.listen` address.
pub fn listen_all(config: &ServerConfig) -> Result<Vec<std::net::TcpListener>, StartError> {
    config
        .listen
        .iter()
        .map(|&addr| listen(addr).map_err(|source| StartError::Bind { addr, source }))
        .collect()
}

/// A listening socket; IPv6 sockets are IPv6-only, so `0.0.0.0:p` and `[::]:p` can both be
/// listed (Linux would otherwise give the IPv6 socket the IPv4 port too).
fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}
