//! The proxy's entry points: build everything the config describes (what `check` verifies),
//! bind, and serve until shutdown, saying at start what the proxy will do.

use std::future::Future;
use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::config::{self, Config};
use crate::reload::{PidFile, Reloader};
use crate::stack::{self, Prepared, ProxyServer};
use crate::{identity, proxy};

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Listeners, TLS or the upstream client.
    #[error(transparent)]
    Proxy(#[from] proxy::StartError),
    /// The session resolver.
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
}

/// Builds everything the config describes without binding: what `check` verifies.
pub fn prepare(config: &Config) -> Result<Prepared, StartError> {
    stack::prepare(config)
}

/// Builds the proxy (injection included) and binds its listeners.
pub async fn bind(config: &Config) -> Result<ProxyServer, StartError> {
    stack::bind(prepare(config)?, config)
}

/// How [`run_with`] runs the proxy, beyond its config.
#[derive(Default)]
pub struct RunOptions {
    /// Run on each worker thread beside its connections (the binary's allocator upkeep).
    pub worker_task: Option<proxy::WorkerTask>,
    /// Reload the config from its file on request (SIGHUP) and, with
    /// `server.watch_config`, when the file changes.
    pub reload: Option<ReloadOptions>,
}

/// Where a reload reads the config, and when it is asked for.
pub struct ReloadOptions {
    /// The config file the proxy was started with.
    pub config_path: PathBuf,
    /// One message per reload asked for (the binary forwards SIGHUP here); see
    /// [`reload_requests`](crate::reload::reload_requests).
    pub requests: mpsc::Receiver<()>,
}

/// Binds and serves until `shutdown` completes, then drains in-flight requests.
pub async fn run(config: &Config, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    run_with(config, shutdown, RunOptions::default()).await
}

/// [`run`], with [`RunOptions`].
pub async fn run_with(
    config: &Config,
    shutdown: impl Future<Output = ()>,
    options: RunOptions,
) -> Result<(), StartError> {
    let prepared = prepare(config)?;
    let inject = prepared.inject().clone();
    let handles = prepared.handles();
    let mut server = stack::bind(prepared, config)?;
    if let Some(task) = options.worker_task {
        server = server.with_worker_task(task);
    }
    for addr in server.local_addrs() {
        tracing::info!(%addr, upstream = %config.upstream.url, "listening");
    }
    if let Some(addr) = server.admin_addr() {
        // Not "listening": tools find the proxy's address by that word.
        tracing::info!(admin = %addr, "serving /healthz, /readyz and /metrics");
    }
    log_plan(config, &inject.identity().describe_store());
    // In the background: a slow or dead store must not delay serving.
    tokio::spawn(async move { inject.identity().log_reachability().await });
    let reloader = options.reload.map(|reload| {
        let reloader = Reloader::new(reload.config_path, config.clone(), handles);
        tokio::spawn(reloader.run(reload.requests))
    });
    // Written once the proxy listens: from then on `reload` finds it.
    let pid_file = config.server.pid_file.as_deref().and_then(PidFile::write);
    server.serve(shutdown).await;
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    drop(pid_file);
    Ok(())
}

/// One line at start saying what the proxy will do with pages, so a config that means
/// something else than intended shows before the first request does.
pub(crate) fn log_plan(config: &Config, store: &str) {
    use config::{AnonymousPolicy, CookieFormat, IdentityMode, ResolverConfig};
    let session = &config.session;
    let intercom = &config.intercom;
    let resolver = match &session.resolver {
        ResolverConfig::Jwt(jwt) => {
            format!("jwt ({:?}, key from {})", jwt.algorithms, jwt.key_origin)
        }
        ResolverConfig::Http(_) => format!("http ({store})"),
        ResolverConfig::Redis(redis) => format!(
            "redis ({store}, key \"{}\", {})",
            redis.key,
            match (redis.cookie_format, &redis.cookie_secret) {
                (CookieFormat::Raw, _) => "raw cookie".to_string(),
                (CookieFormat::Express, None) => "express cookie, signature not checked".into(),
                (CookieFormat::Express, Some(secret)) => {
                    format!("express cookie signed with {}", secret.origin())
                }
            }
        ),
        ResolverConfig::Sql(_) => format!("sql ({store})"),
        ResolverConfig::Laravel(laravel) => format!(
            "laravel ({store}, {} cookie, key from {})",
            laravel.cipher,
            laravel.app_key.origin()
        ),
        ResolverConfig::Rails(rails) => format!(
            "rails ({:?}, {:?} key generator, key from {})",
            rails.cipher,
            rails.digest,
            rails.secret_key_base.origin()
        ),
        ResolverConfig::Django(django) => format!(
            "django ({}, key from {})",
            match django.backend {
                config::DjangoBackend::Db { .. } => store.to_string(),
                config::DjangoBackend::SignedCookies => "signed cookies".to_string(),
            },
            django.secret_key.origin()
        ),
        ResolverConfig::Flask(flask) => {
            format!(
                "flask (signed cookie, key from {})",
                flask.secret_key.origin()
            )
        }
        ResolverConfig::Php(php) => format!("php ({store}, {:?} data)", php.serialize_handler),
        ResolverConfig::Header(header) => format!(
            "header ({} believed from {} network(s))",
            header
                .headers
                .iter()
                .map(|h| h.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            header.trusted_proxies.len()
        ),
    };
    let mode = match intercom.mode {
        IdentityMode::Jwt => format!(
            "JWTs valid {}",
            humantime::format_duration(intercom.token_ttl)
        ),
        IdentityMode::UserHash => "user_hash".to_string(),
    };
    let visitors = match intercom.anonymous {
        AnonymousPolicy::Skip => "untouched (anonymous = \"skip\")",
        AnonymousPolicy::Boot => "Messenger without identity (anonymous = \"boot\")",
    };
    let mut logouts = config.logout.paths.clone();
    if config.logout.detect_cookie_clear {
        logouts.push("responses clearing the session cookie".to_string());
    }
    let logouts = match logouts.is_empty() {
        true => "none detected".to_string(),
        false => logouts.join(", "),
    };
    tracing::info!(
        session_cookie = %session.cookie,
        %resolver,
        user_id = %session.fields.user_id,
        visitors,
        routes = %config.routes.describe(),
        %logouts,
        "pages from {} get the Messenger (app {}, region {}, {mode}) for the users their \
         session cookie names",
        config.upstream.url,
        intercom.app_id,
        intercom.region.name(),
    );
}
