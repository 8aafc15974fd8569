//! Hot reload. On SIGHUP (`intercom-secure-proxy reload` sends it), or when the config file
//! changes and `[server] watch_config` is on, the file is read and checked again, every
//! secret re-read (`*_env`, `*_file`) and the TLS certificate too; then either everything
//! that can change is swapped in at once, or nothing is and every problem is logged with its
//! key. Each layer keeps its state behind an `ArcSwap` that a request loads once: requests
//! in flight, and keep-alive connections between requests, carry on; the next request runs
//! under the new config. What cannot change without a restart (listeners, workers,
//! upstream pools…) is named in a warning (`restart.rs`).

mod pid;
mod restart;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::inject::{InjectConfig, InjectLayer};
use crate::proxy::GuardLayer;
use crate::proxy::tls::{self, CurrentCert};

pub(crate) use pid::PidFile;
pub use pid::read_pid_file;

/// How often `watch_config` looks at the file.
const WATCH_PERIOD: Duration = Duration::from_secs(1);

/// What a reload swaps: shared by every worker's stack.
#[derive(Clone)]
pub(crate) struct Handles {
    pub(crate) inject: InjectLayer,
    pub(crate) guard: GuardLayer,
    /// The HTTPS front end's certificate, when it serves HTTPS.
    pub(crate) cert: Option<Arc<CurrentCert>>,
}

/// Reloads the config at `path` into the running proxy.
pub(crate) struct Reloader {
    path: PathBuf,
    /// The config the proxy started with: what restart-only keys are compared with.
    started: Config,
    /// Whether the file is watched (the last config applied says).
    watch: bool,
    /// The file's bytes when last read, to tell a change.
    seen: Option<Vec<u8>>,
    handles: Handles,
}

impl Reloader {
    pub(crate) fn new(path: PathBuf, started: Config, handles: Handles) -> Self {
        Reloader {
            seen: std::fs::read(&path).ok(),
            watch: started.server.watch_config,
            path,
            started,
            handles,
        }
    }

    /// Reloads on each request (SIGHUP), and on each change of the file while watched,
    /// until the requests end and nothing is watched (or the task is dropped at shutdown).
    pub(crate) async fn run(mut self, mut requests: mpsc::Receiver<()>) {
        let mut tick = tokio::time::interval(WATCH_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut open = true;
        loop {
            tokio::select! {
                request = requests.recv(), if open => match request {
                    Some(()) => {
                        self.seen = std::fs::read(&self.path).ok();
                        self.reload("SIGHUP");
                    }
                    None => open = false,
                },
                _ = tick.tick(), if self.watch => {
                    let now = std::fs::read(&self.path).ok();
                    // A file being replaced may be missing for a moment: wait for it.
                    if now.is_some() && now != self.seen {
                        self.seen = now;
                        self.reload("config file changed");
                    }
                }
                else => return,
            }
        }
    }

    /// Reads, checks and applies the file; `false` (and the running config kept) on any
    /// problem.
    pub(crate) fn reload(&mut self, trigger: &str) -> bool {
        let applied = self.try_reload(trigger);
        crate::metrics::reload(applied);
        applied
    }

    fn try_reload(&mut self, trigger: &str) -> bool {
        let source = self.path.display().to_string();
        let refused = |problems: usize| {
            error!(
                trigger,
                config = %source,
                "config reload refused: {problems} problem(s); the running config stays"
            );
            false
        };
        let config = match Config::load(&self.path) {
            Ok(config) => config,
            Err(e) => {
                for issue in &e.issues {
                    error!(key = %issue.key, "config reload: {issue}");
                }
                return refused(e.issues.len());
            }
        };
        let inject = match InjectConfig::from_config(&config) {
            Ok(inject) => inject,
            Err(e) => {
                error!("config reload: {e}");
                return refused(1);
            }
        };
        let cert = match (&self.handles.cert, &config.server.tls) {
            (Some(_), Some(files)) => match tls::certified_key(files) {
                Ok(key) => Some(key),
                Err(e) => {
                    error!("config reload: {e}");
                    return refused(1);
                }
            },
            _ => None,
        };
        // Everything is built: swap it all in.
        self.handles.inject.reload(inject);
        self.handles.guard.reload(&config.server.limits);
        if let (Some(current), Some(key)) = (&self.handles.cert, cert) {
            current.replace(key);
        }
        for key in restart::changed_keys(&self.started, &config) {
            warn!(
                key,
                "config reload: {key} changed, which takes effect only after a restart; \
                 the running value stays"
            );
        }
        self.watch = config.server.watch_config;
        info!(trigger, config = %source, "config reloaded");
        let identity = self.handles.inject.identity();
        crate::run::log_plan(&config, &identity.describe_store());
        // A store named anew may be down: said in the background, as at start.
        tokio::spawn(async move { identity.log_reachability().await });
        true
    }
}

/// The channel SIGHUP (or anything else asking for a reload) is forwarded into.
pub fn reload_requests() -> (mpsc::Sender<()>, mpsc::Receiver<()>) {
    // One pending request is enough: a reload reads the file as it is then.
    mpsc::channel(1)
}
