//! The proxy as a tower stack, assembled in this one place:
//!
//! ```text
//! AccessLog -> Guard (trusted peers, refused targets) -> Inject (token endpoint, identity,
//! snippet) -> Forwarder -> the app
//! ```
//!
//! Each worker gets its own stack (its own upstream pool); the layers' state is shared, and
//! a reload swaps it for all of them (`reload.rs`).

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceBuilder;

use crate::StartError;
use crate::admin::Admin;
use crate::config::Config;
use crate::inject::{Inject, InjectConfig, InjectLayer};
use crate::proxy::{
    self, AccessLog, AccessLogLayer, Forwarder, Guard, GuardLayer, Server, Upgrades,
};
use crate::reload::Handles;

/// One worker's stack.
pub type Stack = AccessLog<Guard<Inject<Forwarder>>>;

/// The proxy's server, serving [`Stack`]s.
pub type ProxyServer = Server<Stack>;

/// Everything the config describes, built but not bound: what `check` verifies.
pub struct Prepared {
    tls: Option<TlsAcceptor>,
    inject: InjectLayer,
    guard: GuardLayer,
    /// What a reload swaps (the layers above share it).
    handles: Handles,
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

    /// What a reload changes.
    pub(crate) fn handles(&self) -> Handles {
        self.handles.clone()
    }
}

/// Builds the layers, the TLS front end and a first stack; fails on anything unusable.
pub(crate) fn prepare(config: &Config) -> Result<Prepared, StartError> {
    let inject = InjectLayer::new(InjectConfig::from_config(config)?);
    let guard = GuardLayer::new(&config.server.limits);
    let (tls, cert) = match proxy::reloadable_tls(&config.server)? {
        Some((acceptor, cert)) => (Some(acceptor), Some(cert)),
        None => (None, None),
    };
    let upgrades = Upgrades::default();
    let slots = proxy::upstream_slots(config);
    let first = stack(config, &inject, &guard, &upgrades, &slots)?;
    Ok(Prepared {
        tls,
        handles: Handles {
            inject: inject.clone(),
            guard: guard.clone(),
            cert,
        },
        inject,
        guard,
        upgrades,
        slots,
        first,
    })
}

/// One worker's stack.
fn stack(
    config: &Config,
    inject: &InjectLayer,
    guard: &GuardLayer,
    upgrades: &Upgrades,
    slots: &Arc<Semaphore>,
) -> Result<Stack, StartError> {
    Ok(ServiceBuilder::new()
        .layer(AccessLogLayer)
        .layer(guard.clone())
        .layer(inject.clone())
        .service(proxy::forwarder(config, upgrades, slots)?))
}

/// Binds every `server.listen` address and gives each worker its stack.
pub(crate) fn bind(prepared: Prepared, config: &Config) -> Result<ProxyServer, StartError> {
    let listeners = proxy::listen_all(&config.server)?;
    let admin = match &config.admin {
        Some(admin) => Some(Admin::bind(
            admin,
            &config.upstream,
            prepared.inject.clone(),
        )?),
        None => None,
    };
    let mut stacks = vec![prepared.first];
    for _ in 1..config.server.workers {
        stacks.push(stack(
            config,
            &prepared.inject,
            &prepared.guard,
            &prepared.upgrades,
            &prepared.slots,
        )?);
    }
    let server = Server::new(
        listeners,
        prepared.tls,
        &config.server,
        stacks,
        prepared.upgrades,
        config.upstream.max_connections,
    );
    Ok(match admin {
        Some(admin) => server.with_admin(admin),
        None => server,
    })
}
