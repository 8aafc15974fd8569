//! `/readyz`: the upstream answers a TCP connect, and the session store (whatever the
//! resolver and `[session.lookup]` use) answers its probe within `session.timeout`, the
//! probe the proxy logs at start. Checked when asked, each answer reused for at most
//! [`FRESH`], so a store going down or coming back shows within a second and a scraper
//! polling hard does not turn into a load on the store.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::config::UpstreamConfig;
use crate::inject::InjectLayer;

/// How long one probe's answer stands for the next `/readyz`.
const FRESH: Duration = Duration::from_millis(250);
/// The longest a TCP connect to the upstream is given (`upstream.connect_timeout` if
/// shorter): a readiness probe is usually given a second.
const CONNECT_LIMIT: Duration = Duration::from_secs(1);

/// What is down, by name (`upstream`, `session store`), with why; empty when ready.
pub(super) type Down = Map<String, Value>;

pub(super) struct Readiness {
    inject: InjectLayer,
    /// `host:port` of the upstream (never its path or query).
    upstream: String,
    connect_timeout: Duration,
    /// The latest answer and when it was made; held while probing, so that concurrent
    /// requests share one probe.
    last: Mutex<Option<(Instant, Down)>>,
}

impl Readiness {
    pub(super) fn new(upstream: &UpstreamConfig, inject: InjectLayer) -> Self {
        let uri = &upstream.url;
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host = uri.host().unwrap_or("127.0.0.1");
        Readiness {
            inject,
            upstream: format!("{host}:{port}"),
            connect_timeout: upstream.connect_timeout.min(CONNECT_LIMIT),
            last: Mutex::new(None),
        }
    }

    /// What is down now (or within [`FRESH`]).
    pub(super) async fn down(&self) -> Down {
        let mut last = self.last.lock().await;
        if let Some((at, down)) = last.as_ref()
            && at.elapsed() < FRESH
        {
            return down.clone();
        }
        // The resolver in use now (a reload may have replaced it).
        let identity = self.inject.identity();
        let (upstream, store) = tokio::join!(
            self.probe_upstream(),
            identity.probe_store(identity.timeout())
        );
        let mut down = Down::new();
        if let Err(reason) = upstream {
            down.insert("upstream".into(), Value::String(reason));
        }
        if let Err(store) = store {
            down.insert("session store".into(), Value::String(store.to_string()));
        }
        *last = Some((Instant::now(), down.clone()));
        down
    }

    async fn probe_upstream(&self) -> Result<(), String> {
        let target = self.upstream.as_str();
        match tokio::time::timeout(self.connect_timeout, TcpStream::connect(target)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("{target}: {e}")),
            Err(_) => Err(format!(
                "{target}: no connection within {}",
                humantime::format_duration(self.connect_timeout)
            )),
        }
    }
}
