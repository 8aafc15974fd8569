//! The reverse proxy: listeners, forwarding, hop-by-hop hygiene and upstream errors.

mod body;
mod client;
mod error;
mod forward;
pub mod headers;
mod preface;
mod server;
pub mod tls;
mod workers;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

pub use body::ProxyBody;
pub use error::{BoxError, Fault, ProxyError, plain_response};
pub use forward::{BoxFuture, Downstream, Filter, FilterOutcome, Forwarder, ResponseHook};
pub use server::{Server, WorkerTask};

use crate::config::Config;

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
}

/// Everything the proxy builds from the config before it binds: checked by `check` too.
pub struct Prepared {
    tls: Option<TlsAcceptor>,
    /// The first worker's forwarder (building it checks the upstream settings).
    forwarder: Arc<Forwarder>,
    filter: Option<Arc<dyn Filter>>,
}

/// A forwarder with its own upstream pool (one per worker), with `filter` around requests.
fn forwarder(
    config: &Config,
    filter: Option<&Arc<dyn Filter>>,
) -> Result<Arc<Forwarder>, StartError> {
    let client =
        client::build(&config.upstream, config.server.workers).map_err(tls::TlsError::from)?;
    let mut forwarder = Forwarder::new(client, &config.upstream);
    if let Some(filter) = filter {
        forwarder = forwarder.with_filter(filter.clone());
    }
    Ok(Arc::new(forwarder))
}

/// Builds the TLS front end and the upstream client, with `filter` around every request;
/// fails on unusable TLS files.
pub fn prepare(config: &Config, filter: Option<Arc<dyn Filter>>) -> Result<Prepared, StartError> {
    crate::net::install_crypto_provider();
    let tls = match &config.server.tls {
        Some(files) => Some(TlsAcceptor::from(tls::server_config(files)?)),
        None => None,
    };
    Ok(Prepared {
        tls,
        forwarder: forwarder(config, filter.as_ref())?,
        filter,
    })
}

/// Binds every `server.listen` address and returns the ready server.
pub async fn bind(prepared: Prepared, config: &Config) -> Result<Server, StartError> {
    let mut listeners = Vec::new();
    for &addr in &config.server.listen {
        let listener = listen(addr).map_err(|source| StartError::Bind { addr, source })?;
        listeners.push(listener);
    }
    let mut forwarders = vec![prepared.forwarder.clone()];
    for _ in 1..config.server.workers {
        forwarders.push(forwarder(config, prepared.filter.as_ref())?);
    }
    Ok(Server::new(
        listeners,
        prepared.tls,
        &config.server,
        forwarders,
    ))
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
