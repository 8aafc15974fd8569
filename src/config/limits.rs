//! The `[server]` keys that protect the proxy and the app from clients: connection and
//! stream limits, idle and body timeouts, and which peers' forwarding headers are believed.
//! Every default protects with no configuration.

use std::time::Duration;

use ipnet::IpNet;

use super::header::parse_networks;
use super::reader::Section;

/// Client-facing limits and trust.
#[derive(Debug, Clone)]
pub struct ClientLimits {
    /// A connection with no request in flight closes after this long, HTTP/2 included
    /// (pings do not count as activity).
    pub idle_timeout: Duration,
    /// The longest wait for the next piece of a request body; also the grace period before
    /// `body_min_rate` applies.
    pub body_timeout: Duration,
    /// After `body_timeout`, an upload slower than this on average (bytes per second) is
    /// cut off: a client trickling bytes must not hold an app connection. 0 turns it off.
    pub body_min_rate: u64,
    /// Client connections served at once; `None`: derived from the open-file limit at start.
    pub max_connections: Option<usize>,
    /// Concurrent HTTP/2 streams per client connection.
    pub h2_max_streams: u32,
    /// Peers whose `X-Forwarded-*` (and similar) headers are believed and extended; from
    /// anyone else those headers are replaced or dropped.
    pub trusted_proxies: Vec<IpNet>,
    /// When not empty, the only `Host` values served (`*.example.com` matches subdomains).
    pub allowed_hosts: Vec<String>,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            // Kestrel's floor is 240 B/s; 1 KiB/s is still slower than any real uplink.
            body_min_rate: 1024,
            max_connections: None,
            // nginx's http2_max_concurrent_streams.
            h2_max_streams: 128,
            trusted_proxies: Vec::new(),
            allowed_hosts: Vec::new(),
        }
    }
}

/// Most concurrent streams a client may open on one HTTP/2 connection.
const MAX_H2_STREAMS: u64 = 1000;

/// Reads the limit keys of `[server]`; `None` when one is wrong (each problem recorded).
pub(super) fn read_limits(s: &mut Section<'_>) -> Option<ClientLimits> {
    let defaults = ClientLimits::default();
    let mut ok = true;
    let mut timeout = |s: &mut Section<'_>, key: &str, default: Duration| {
        if !s.has(key) {
            return default;
        }
        match s.duration(key) {
            Some(d) if !d.is_zero() => d,
            Some(_) => {
                s.issue(key, "must be greater than zero");
                ok = false;
                default
            }
            None => {
                ok = false;
                default
            }
        }
    };
    let idle_timeout = timeout(s, "idle_timeout", defaults.idle_timeout);
    let body_timeout = timeout(s, "body_timeout", defaults.body_timeout);
    let body_min_rate = s
        .unsigned("body_min_rate")
        .unwrap_or(defaults.body_min_rate);
    let max_connections = match s.unsigned("max_connections") {
        None => None,
        Some(0) => {
            s.issue(
                "max_connections",
                "must be at least 1 (leave it out to derive it from the open-file limit)",
            );
            ok = false;
            None
        }
        Some(n) => usize::try_from(n).ok(),
    };
    let h2_max_streams = match s.unsigned("h2_max_streams") {
        None => defaults.h2_max_streams,
        Some(n) if (1..=MAX_H2_STREAMS).contains(&n) => u32::try_from(n).unwrap_or(u32::MAX),
        Some(n) => {
            s.issue(
                "h2_max_streams",
                format!("{n} is out of range (expected 1 to {MAX_H2_STREAMS})"),
            );
            ok = false;
            defaults.h2_max_streams
        }
    };
    let trusted_proxies = match s.string_list("trusted_proxies") {
        None => Vec::new(),
        Some(list) => match parse_networks(s, &list) {
            Some(networks) if networks.iter().any(|n| n.prefix_len() == 0) => {
                s.issue(
                    "trusted_proxies",
                    "trusts every address: any client could claim any address, scheme or host (list the load balancer's addresses)",
                );
                ok = false;
                Vec::new()
            }
            Some(networks) => networks,
            None => {
                ok = false;
                Vec::new()
            }
        },
    };
    let allowed_hosts = match s.string_list("allowed_hosts") {
        None => Vec::new(),
        Some(list) => {
            let mut hosts = Vec::with_capacity(list.len());
            for host in list {
                match normalise_host_pattern(&host) {
                    Some(h) => hosts.push(h),
                    None => {
                        s.issue(
                            "allowed_hosts",
                            format!("{host:?} is not a host name (expected e.g. \"app.example.com\" or \"*.example.com\", no scheme or port)"),
                        );
                        ok = false;
                    }
                }
            }
            hosts
        }
    };
    ok.then_some(ClientLimits {
        idle_timeout,
        body_timeout,
        body_min_rate,
        max_connections,
        h2_max_streams,
        trusted_proxies,
        allowed_hosts,
    })
}

/// A host name or `*.` pattern, lower-cased; `None` for anything else (schemes, ports,
/// paths, userinfo).
fn normalise_host_pattern(raw: &str) -> Option<String> {
    let host = raw.trim().to_ascii_lowercase();
    let name = host.strip_prefix("*.").unwrap_or(&host);
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'[' | b']' | b':'))
        && !name.contains("..")
        // An IPv6 literal is bracketed; any other colon is a port.
        && (!name.contains(':') || (name.starts_with('[') && name.ends_with(']')));
    valid.then_some(host)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::tests::{BASE, problems};
    use crate::config::{Config, ConfigError};

    fn with_server(keys: &str) -> Result<Config, ConfigError> {
        let env = std::collections::HashMap::from([
            ("MSG".to_string(), "messenger-secret".to_string()),
            ("KEY".to_string(), "app-key".to_string()),
        ]);
        Config::from_toml(&format!("[server]\n{keys}\n{BASE}"), "t.toml", &env)
    }

    #[test]
    fn defaults_protect_with_no_configuration() {
        let c = crate::config::tests::load("").unwrap();
        let l = &c.server.limits;
        assert!(l.idle_timeout <= Duration::from_secs(60));
        assert!(l.body_timeout <= Duration::from_secs(60));
        assert_eq!(l.body_min_rate, 1024);
        assert_eq!(l.h2_max_streams, 128);
        assert_eq!(l.max_connections, None, "derived from the fd limit");
        assert!(l.trusted_proxies.is_empty() && l.allowed_hosts.is_empty());
        assert_eq!(c.upstream.max_connections, 512);
    }

    #[test]
    fn limits_are_read_and_checked_by_key() {
        let c = with_server(
            "idle_timeout = \"5s\"\nbody_timeout = \"2s\"\nbody_min_rate = 0\nmax_connections = 100\n\
             h2_max_streams = 8\ntrusted_proxies = [\"10.0.0.0/8\"]\nallowed_hosts = [\"App.example.com\", \"*.example.org\"]",
        )
        .unwrap();
        let l = &c.server.limits;
        assert_eq!(l.idle_timeout, Duration::from_secs(5));
        assert_eq!(l.body_timeout, Duration::from_secs(2));
        assert_eq!(l.body_min_rate, 0);
        assert_eq!(l.max_connections, Some(100));
        assert_eq!(l.h2_max_streams, 8);
        assert_eq!(l.trusted_proxies, ["10.0.0.0/8".parse().unwrap()]);
        assert_eq!(l.allowed_hosts, ["app.example.com", "*.example.org"]);

        let refused = |keys: &str| problems(&format!("[server]\n{keys}\n{BASE}"));
        assert_eq!(
            refused("idle_timeout = \"0s\""),
            ["server.idle_timeout: must be greater than zero"]
        );
        assert_eq!(
            refused("max_connections = 0"),
            [
                "server.max_connections: must be at least 1 (leave it out to derive it from the open-file limit)"
            ]
        );
        assert_eq!(
            refused("h2_max_streams = 5000"),
            ["server.h2_max_streams: 5000 is out of range (expected 1 to 1000)"]
        );
        let everyone = refused("trusted_proxies = [\"0.0.0.0/0\"]");
        assert!(
            everyone[0].starts_with("server.trusted_proxies: trusts every address"),
            "{everyone:?}"
        );
        for host in [
            "https://app.example.com",
            "app.example.com:443",
            "user@app",
            "a/b",
        ] {
            let p = refused(&format!("allowed_hosts = [\"{host}\"]"));
            assert!(p[0].starts_with("server.allowed_hosts: "), "{host}: {p:?}");
        }
        assert_eq!(
            problems(&BASE.replace("[upstream]", "[upstream]\nmax_connections = 0")),
            ["upstream.max_connections: must be at least 1"]
        );
    }
}
