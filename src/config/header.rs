//! `[session.header]`: the user named by an authenticating proxy in front (oauth2-proxy,
//! Pomerium, Authentik, Cloudflare Access), believed only from the peers listed.

use http::HeaderName;
use ipnet::IpNet;

use super::reader::Section;

pub(super) const HEADER_KEYS: &[&str] = &["trusted_proxies", "headers"];

/// `[session.header]`.
#[derive(Clone, Debug)]
pub struct HeaderResolverConfig {
    /// Peers whose identity headers are believed; from anyone else they are stripped.
    pub trusted_proxies: Vec<IpNet>,
    /// The headers that make the session document (keys: the names, lower-cased).
    pub headers: Vec<HeaderName>,
}

pub(super) fn read_header(mut s: Section<'_>) -> Option<HeaderResolverConfig> {
    let trusted = match s.string_list("trusted_proxies") {
        None if !s.has("trusted_proxies") => {
            s.issue("trusted_proxies", "missing (required: the auth proxy's addresses, e.g. [\"127.0.0.1/32\"]; from anyone else the headers are ignored)");
            None
        }
        None => None,
        Some(list) if list.is_empty() => {
            s.issue(
                "trusted_proxies",
                "empty (the headers would never be believed)",
            );
            None
        }
        Some(list) => parse_networks(&s, &list).filter(|networks| {
            let everyone = networks.iter().any(|n| n.prefix_len() == 0);
            if everyone {
                s.issue("trusted_proxies", "trusts every address: any client could name a user (list the auth proxy's addresses)");
            }
            !everyone
        }),
    };
    let headers = match s.string_list("headers") {
        None if !s.has("headers") => {
            s.issue(
                "headers",
                "missing (e.g. [\"X-Auth-Request-User\", \"X-Auth-Request-Email\"])",
            );
            None
        }
        None => None,
        Some(list) if list.is_empty() => {
            s.issue(
                "headers",
                "empty (name at least the header carrying the user)",
            );
            None
        }
        Some(list) => {
            let parsed: Vec<_> = list
                .iter()
                .filter_map(|name| match HeaderName::from_bytes(name.as_bytes()) {
                    Ok(h) => Some(h),
                    Err(_) => {
                        s.issue("headers", format!("{name:?} is not a header name"));
                        None
                    }
                })
                .collect();
            (parsed.len() == list.len()).then_some(parsed)
        }
    };
    s.finish();
    Some(HeaderResolverConfig {
        trusted_proxies: trusted?,
        headers: headers?,
    })
}

/// `"10.0.0.0/8"` or a bare address (`"127.0.0.1"`, `"::1"`: that host only).
pub(super) fn parse_networks(s: &Section<'_>, list: &[String]) -> Option<Vec<IpNet>> {
    let mut networks = Vec::with_capacity(list.len());
    for item in list {
        let parsed = item
            .parse::<IpNet>()
            .ok()
            .or_else(|| item.parse::<std::net::IpAddr>().ok().map(IpNet::from));
        match parsed {
            Some(net) => networks.push(net.trunc()),
            None => {
                s.issue(
                    "trusted_proxies",
                    format!("{item:?} is not an address or a network like \"10.0.0.0/8\""),
                );
                return None;
            }
        }
    }
    Some(networks)
}
