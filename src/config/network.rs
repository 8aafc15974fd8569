//! `[server]` and `[upstream]`: the two network ends of the proxy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::Uri;

use super::limits::{ClientLimits, read_limits};
use super::reader::Section;

pub(super) const SERVER_KEYS: &[&str] = &[
    "listen",
    "tls_cert",
    "tls_key",
    "header_read_timeout",
    "max_header_bytes",
    "keep_alive",
    "shutdown_timeout",
    "workers",
    // limits.rs
    "idle_timeout",
    "body_timeout",
    "body_min_rate",
    "max_connections",
    "h2_max_streams",
    "trusted_proxies",
    "allowed_hosts",
    // reload
    "pid_file",
    "watch_config",
];

pub(super) const UPSTREAM_KEYS: &[&str] = &[
    "url",
    "connect_timeout",
    "timeout",
    "ca_file",
    "max_connections",
];

/// Requests in flight to the app at once, by default: enough for any app server a legacy
/// app runs on, few enough that one client cannot take them all (see `h2_max_streams`).
const DEFAULT_UPSTREAM_CONNECTIONS: usize = 512;

/// hyper refuses a header buffer smaller than this.
const MIN_HEADER_BYTES: u64 = 8192;

/// `[server]`: listeners and connection limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Addresses to listen on (at least one).
    pub listen: Vec<SocketAddr>,
    /// Certificate and key files: when set, every listener serves HTTPS.
    pub tls: Option<TlsFiles>,
    /// A client must send a whole request head within this time (slowloris guard).
    pub header_read_timeout: Duration,
    /// The largest request head accepted, in bytes.
    pub max_header_bytes: usize,
    /// Whether HTTP/1.1 connections are kept alive between requests.
    pub keep_alive: bool,
    /// How long in-flight requests may run after SIGTERM/Ctrl-C before connections close.
    pub shutdown_timeout: Duration,
    /// Worker threads, each serving its share of connections with its own upstream pool
    /// (nginx's `worker_processes`); default: one per CPU.
    pub workers: usize,
    /// Connection, stream and body limits, and whose forwarding headers are believed.
    pub limits: ClientLimits,
    /// Where the running proxy writes its process id (for `intercom-secure-proxy reload`).
    pub pid_file: Option<PathBuf>,
    /// Reload the config when its file changes (checked every second), as on SIGHUP.
    pub watch_config: bool,
}

/// More workers than this is a typo, not a machine.
const MAX_WORKERS: u64 = 1024;

/// One worker per CPU the process may use.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// PEM files for the TLS front end.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[upstream]`: the legacy app.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Base URL: scheme and authority, and an optional path prefix.
    pub url: Uri,
    /// Limit for establishing a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Limit for the app's response head, from sending the request.
    pub timeout: Duration,
    /// Extra CA certificates (PEM) trusted for an `https` upstream.
    pub ca_file: Option<PathBuf>,
    /// Requests in flight to the app at once (each holds an app connection); more wait
    /// for one, up to `timeout`.
    pub max_connections: usize,
}

pub(super) fn read_server(section: Option<Section<'_>>) -> Option<ServerConfig> {
    let defaults = ServerConfig {
        listen: vec![SocketAddr::from(([0, 0, 0, 0], 8080))],
        tls: None,
        header_read_timeout: Duration::from_secs(10),
        max_header_bytes: 64 * 1024,
        keep_alive: true,
        shutdown_timeout: Duration::from_secs(30),
        workers: default_workers(),
        limits: ClientLimits::default(),
        pid_file: None,
        watch_config: false,
    };
    let Some(mut s) = section else {
        return Some(defaults);
    };
    let mut ok = true;
    let listen = match s.string_or_list("listen") {
        None => defaults.listen.clone(),
        Some(list) if list.is_empty() => {
            s.issue(
                "listen",
                "empty list (expected at least one address like \"0.0.0.0:8080\")",
            );
            ok = false;
            Vec::new()
        }
        Some(list) => {
            let mut addrs = Vec::new();
            for raw in list {
                match raw.parse::<SocketAddr>() {
                    Ok(a) => addrs.push(a),
                    Err(_) => {
                        s.issue(
                            "listen",
                            format!("invalid address {raw:?} (expected IP:PORT like \"0.0.0.0:8080\" or \"[::]:8443\")"),
                        );
                        ok = false;
                    }
                }
            }
            for (i, addr) in addrs.iter().enumerate() {
                if addrs[..i].contains(addr) {
                    s.issue("listen", format!("{addr} is listed twice"));
                    ok = false;
                }
            }
            addrs
        }
    };
    let cert = s.string("tls_cert");
    let key = s.string("tls_key");
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
        }),
        (None, None) => None,
        (Some(_), None) => {
            s.issue("tls_key", "missing (tls_cert is set; set both or neither)");
            ok = false;
            None
        }
        (None, Some(_)) => {
            s.issue("tls_cert", "missing (tls_key is set; set both or neither)");
            ok = false;
            None
        }
    };
    if let Some(files) = &tls {
        ok &= readable(&s, "tls_cert", &files.cert) & readable(&s, "tls_key", &files.key);
    }
    let header_read_timeout = positive(&mut s, "header_read_timeout", defaults.header_read_timeout);
    let max_header_bytes = match s.unsigned("max_header_bytes") {
        None => Some(defaults.max_header_bytes),
        Some(n) if n < MIN_HEADER_BYTES => {
            s.issue(
                "max_header_bytes",
                format!("{n} is too small (expected at least {MIN_HEADER_BYTES})"),
            );
            None
        }
        Some(n) => usize::try_from(n).ok(),
    };
    let keep_alive = s.bool("keep_alive").unwrap_or(defaults.keep_alive);
    let shutdown_timeout = s
        .duration("shutdown_timeout")
        .unwrap_or(defaults.shutdown_timeout);
    let workers = match s.unsigned("workers") {
        None => Some(defaults.workers),
        Some(n) if (1..=MAX_WORKERS).contains(&n) => usize::try_from(n).ok(),
        Some(n) => {
            s.issue(
                "workers",
                format!("{n} is out of range (expected 1 to {MAX_WORKERS}; leave it out for one per CPU)"),
            );
            None
        }
    };
    let limits = read_limits(&mut s);
    let pid_file = s.string("pid_file").map(PathBuf::from);
    if let Some(path) = &pid_file {
        // Written at start: a missing directory would only show then.
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if path.as_os_str().is_empty() {
            s.issue("pid_file", "empty path (leave it out for no pid file)");
            ok = false;
        } else if let Some(dir) = dir.filter(|d| !d.is_dir()) {
            s.issue(
                "pid_file",
                format!("directory {} does not exist", dir.display()),
            );
            ok = false;
        }
    }
    let watch_config = s.bool("watch_config").unwrap_or(defaults.watch_config);
    s.finish();
    if !ok {
        return None;
    }
    Some(ServerConfig {
        listen,
        tls,
        header_read_timeout: header_read_timeout?,
        max_header_bytes: max_header_bytes?,
        keep_alive,
        shutdown_timeout,
        workers: workers?,
        limits: limits?,
        pid_file,
        watch_config,
    })
}

pub(super) fn read_upstream(section: Option<Section<'_>>) -> Option<UpstreamConfig> {
    let mut s = section?;
    let url = s
        .required_string("url", "\"http://127.0.0.1:3000\"")
        .and_then(|raw| http_url(&s, "url", &raw));
    let connect_timeout = positive(&mut s, "connect_timeout", Duration::from_secs(2));
    let timeout = positive(&mut s, "timeout", Duration::from_secs(60));
    let ca_file = s.string("ca_file").map(PathBuf::from);
    let ca_ok = ca_file.as_ref().is_none_or(|p| readable(&s, "ca_file", p));
    let max_connections = match s.unsigned("max_connections") {
        None => Some(DEFAULT_UPSTREAM_CONNECTIONS),
        Some(0) => {
            s.issue("max_connections", "must be at least 1");
            None
        }
        Some(n) => usize::try_from(n).ok(),
    };
    s.finish();
    if !ca_ok {
        return None;
    }
    Some(UpstreamConfig {
        url: url?,
        connect_timeout: connect_timeout?,
        timeout: timeout?,
        ca_file,
        max_connections: max_connections?,
    })
}

/// Parses an absolute `http://` or `https://` URL, recording a problem on `key` otherwise.
pub(super) fn http_url(s: &Section<'_>, key: &str, raw: &str) -> Option<Uri> {
    let uri = match raw.parse::<Uri>() {
        Ok(u) => u,
        Err(e) => {
            s.issue(key, format!("invalid URL {raw:?}: {e}"));
            return None;
        }
    };
    let scheme_ok = matches!(uri.scheme_str(), Some("http") | Some("https"));
    if !scheme_ok || uri.authority().is_none() {
        s.issue(
            key,
            format!("invalid URL {raw:?} (expected http://host[:port][/path] or https://…)"),
        );
        return None;
    }
    if uri.query().is_some() {
        s.issue(key, format!("URL {raw:?} must not carry a query string"));
        return None;
    }
    let authority = uri.authority().map_or("", |a| a.as_str());
    if authority.contains('@') {
        s.issue(
            key,
            "URL must not carry credentials (user:password@)".to_string(),
        );
        return None;
    }
    // `http` accepts any digits after ':' and then reports no port; refuse that here.
    if let Some((_, port)) = authority.rsplit_once(':')
        && !port.ends_with(']')
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        s.issue(
            key,
            format!("invalid port {port:?} in URL {raw:?} (expected 1-65535)"),
        );
        return None;
    }
    Some(uri)
}

/// A duration that must be greater than zero, with a default when absent.
fn positive(s: &mut Section<'_>, key: &str, default: Duration) -> Option<Duration> {
    if !s.has(key) {
        return Some(default);
    }
    let d = s.duration(key)?;
    if d.is_zero() {
        s.issue(key, "must be greater than zero");
        return None;
    }
    Some(d)
}

fn readable(s: &Section<'_>, key: &str, path: &std::path::Path) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => true,
        Ok(_) => {
            s.issue(key, format!("{} is not a file", path.display()));
            false
        }
        Err(e) => {
            s.issue(key, format!("cannot read {}: {e}", path.display()));
            false
        }
    }
}
