//! The proxy as a tower stack, assembled in this one place:
//!
//! ```text
//! AccessLog -> Guard (trusted peers, refused targets) -> Inject (token endpoint, identity,
//! snippet) -> Forwarder -> the app
//! ```
//!
//! Each worker gets its own stack (its own upstream pool); the layers' state is shared.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceBuilder;

use crate::StartError;
use crate::config::Config;
use crate::inject::{Inject, InjectConfig, InjectLayer};
use crate::proxy::{
    self, AccessLog, AccessLogLayer, Forwarder, Guard, GuardLayer, Server, Upgrades,
};

/// One worker's stack.
pub type Stack = AccessLog<Guard<Inject<Forwarder>>>;

/// The proxy's server, serving [`Stack`]s.
pub type ProxyServer = Server<Stack>;

/// Everything the config describes, built but not bound: what `check` verifies.
pub struct Prepared {
    tls: Option<TlsAcceptor>,
    inject: InjectLayer,
    upgrades: Upgrades,
    /// `upstream.max_connections`, shared by every worker.
    slots: Arc<Semaphore>,
    /// The first worker's stack (building it checks the upstream settings).
    first: Stack,
}

impl Prepared {
    /// The injection layer (its session resolver, for start-up checks and log lines).
    pub fn inject(&self) -> &InjectLayer {
        &self.inject
    }
}

/// Builds the layers, the TLS front end and a first stack; fails on anything unusable.
pub(crate) fn prepare(config: &Config) -> Result<Prepared, StartError> {
    let inject = InjectLayer::new(InjectConfig::from_config(config)?);
    let tls = proxy::tls_acceptor(&config.server)?;
    let upgrades = Upgrades::default();
    let slots = proxy::upstream_slots(config);
    let first = stack(config, &inject, &upgrades, &slots)?;
    Ok(Prepared {
        tls,
        inject,
        upgrades,
        slots,
        first,
    })
}

/// One worker's stack.
fn stack(
    config: &Config,
    inject: &InjectLayer,
    upgrades: &Upgrades,
    slots: &Arc<Semaphore>,
) -> Result<Stack, StartError> {
    Ok(ServiceBuilder::new()
        .layer(AccessLogLayer)
        .layer(GuardLayer::new(&config.server.limits))
        .layer(inject.clone())
        .service(proxy::forwarder(config, upgrades, slots)?))
}

/// Binds every `server.listen` address and gives each worker its stack.
pub(crate) fn bind(prepared: Prepared, config: &Config) -> Result<ProxyServer, StartError> {
    let listeners = proxy::listen_all(&config.server)?;
    let mut stacks = vec![prepared.first];
    for _ in 1..config.server.workers {
        stacks.push(stack(
            config,
            &prepared.inject,
            &prepared.upgrades,
            &prepared.slots,
        )?);
    }
    Ok(Server::new(
        listeners,
        prepared.tls,
        &config.server,
        stacks,
        prepared.upgrades,
        config.upstream.max_connections,
    ))
}
