//! Hop-by-hop header removal and the `X-Forwarded-*` headers.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::headers::header_tokens;
use crate::net::Downstream;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Claims about the client, its connection or the URL it asked for that only a proxy in
/// front should make: apps and their frameworks believe them (Rack treats
/// `X-Forwarded-Ssl: on` as HTTPS, Symfony and IIS route on `X-Original-URL`, CDNs' client-IP
/// headers feed rate limits and audit logs). Only a trusted proxy's pass through.
static SPOOFABLE: [HeaderName; 19] = [
    HeaderName::from_static("forwarded"),
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-ssl"),
    HeaderName::from_static("x-forwarded-scheme"),
    HeaderName::from_static("x-forwarded-prefix"),
    HeaderName::from_static("x-forwarded-server"),
    HeaderName::from_static("x-forwarded-uri"),
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
    HeaderName::from_static("x-original-host"),
    HeaderName::from_static("x-host"),
    HeaderName::from_static("true-client-ip"),
    HeaderName::from_static("cf-connecting-ip"),
    HeaderName::from_static("x-client-ip"),
    HeaderName::from_static("x-cluster-client-ip"),
    HeaderName::from_static("fastly-client-ip"),
    HeaderName::from_static("client-ip"),
    HeaderName::from_static("x-originating-ip"),
];

/// The fixed hop-by-hop headers (besides any a `Connection` header lists).
static HOP_BY_HOP: [&HeaderName; 8] = [
    &header::CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &header::PROXY_AUTHENTICATE,
    &header::PROXY_AUTHORIZATION,
    &header::TE,
    &header::TRANSFER_ENCODING,
    &header::UPGRADE,
];

/// Removes every `names` header there is. One pass over the (few) names present decides
/// whether any removal is needed: most messages carry none, and a lookup per name would
/// hash each of them.
fn remove_all<'n>(
    headers: &mut HeaderMap,
    names: impl IntoIterator<Item = &'n HeaderName> + Clone,
) {
    let present = headers
        .keys()
        .any(|key| names.clone().into_iter().any(|name| name == key));
    if present {
        for name in names {
            headers.remove(name);
        }
    }
}

/// Removes the headers that describe one connection rather than the message
/// (RFC 9110 §7.6.1): `Connection` and every name it lists, `Keep-Alive`, `Proxy-Connection`,
/// `Proxy-Authenticate`, `Proxy-Authorization`, `TE` (except `trailers`, which is kept),
/// `Transfer-Encoding` and `Upgrade`.
///
/// `Trailer` is kept on purpose: RFC 9110 makes it end-to-end, and hyper's HTTP/1 encoder
/// sends only the trailer fields that `Trailer` announces, so dropping it drops the trailers.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = header_tokens(headers, &header::CONNECTION)
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .collect();
    for name in listed {
        // A client must not be able to strip end-to-end headers we rely on by listing them.
        if name != header::TE && name != header::TRAILER {
            headers.remove(&name);
        }
    }
    let keeps_trailers =
        header_tokens(headers, &header::TE).any(|t| t.eq_ignore_ascii_case("trailers"));
    remove_all(headers, HOP_BY_HOP.iter().copied());
    if keeps_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// The `Upgrade` value of a WebSocket handshake (`Connection: upgrade` plus
/// `Upgrade: websocket`), read before the hop-by-hop headers are removed.
///
/// Only WebSocket is spliced: any other protocol (`h2c` above all) would let a client talk
/// to the app directly, past every header rule of the proxy.
pub fn websocket_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let wants_upgrade =
        header_tokens(headers, &header::CONNECTION).any(|t| t.eq_ignore_ascii_case("upgrade"));
    let upgrade = headers.get(header::UPGRADE)?;
    let is_websocket = upgrade
        .to_str()
        .is_ok_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
    (wants_upgrade && is_websocket).then(|| upgrade.clone())
}

/// Joins several `Cookie` fields into one, as HTTP/1.1 apps expect: h2 clients may split
/// cookies into separate fields (RFC 9113 §8.2.3), and many frameworks read only the first.
pub fn merge_cookies(headers: &mut HeaderMap) {
    if headers.get_all(header::COOKIE).iter().nth(1).is_none() {
        return;
    }
    let joined = headers
        .get_all(header::COOKIE)
        .iter()
        .map(|v| v.as_bytes())
        .collect::<Vec<_>>()
        .join(&b"; "[..]);
    // Joining valid header values with "; " keeps the value valid.
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, value);
    }
}

/// Puts the upgrade handshake headers back after hop-by-hop removal.
pub fn restore_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
}

/// Sets `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` for the app.
///
/// From a trusted proxy (`server.trusted_proxies`) its headers are believed: the peer is
/// appended to its `X-Forwarded-For` chain, and its `X-Forwarded-Proto`/`-Host` and other
/// client claims are kept. From anyone else the chain is replaced by the peer's address,
/// proto and host are ours, and every other client claim ([`SPOOFABLE`]) is dropped.
pub fn set_forwarded(headers: &mut HeaderMap, downstream: &Downstream, host: Option<&HeaderValue>) {
    let mut chain = String::new();
    if downstream.trusted {
        for value in headers.get_all(&X_FORWARDED_FOR) {
            if let Ok(v) = value.to_str() {
                let v = v.trim();
                if !v.is_empty() {
                    chain.push_str(v);
                    chain.push_str(", ");
                }
            }
        }
    } else {
        remove_all(headers, SPOOFABLE.iter());
    }
    chain.push_str(&downstream.peer.ip().to_canonical().to_string());
    // The chain is built from valid header values and an IP address, so it is valid too.
    if let Ok(value) = HeaderValue::from_str(&chain) {
        headers.insert(&X_FORWARDED_FOR, value);
    }
    // From a trusted peer the scheme is already the one its X-Forwarded-Proto named.
    headers.insert(
        &X_FORWARDED_PROTO,
        HeaderValue::from_static(downstream.scheme),
    );
    if downstream.trusted && headers.contains_key(&X_FORWARDED_HOST) {
        return;
    }
    match host {
        Some(h) => {
            headers.insert(&X_FORWARDED_HOST, h.clone());
        }
        None => {
            headers.remove(&X_FORWARDED_HOST);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn strips_hop_by_hop_and_listed_names() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authorization", "Basic abc"),
            ("te", "gzip, trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("trailer", "x-checksum"),
            ("x-end-to-end", "kept"),
        ]);
        remove_hop_by_hop(&mut h);
        let mut names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["te", "trailer", "x-end-to-end"]);
        assert_eq!(h["te"], "trailers");
    }

    #[test]
    fn te_without_trailers_is_dropped() {
        let mut h = map(&[("te", "gzip")]);
        remove_hop_by_hop(&mut h);
        assert!(h.is_empty());
    }

    fn peer(trusted: bool, scheme: &'static str) -> Downstream {
        Downstream {
            peer: "192.0.2.1:4000".parse().unwrap(),
            scheme,
            trusted,
        }
    }

    fn claims() -> HeaderMap {
        map(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "user:pw@evil.example"),
            ("true-client-ip", "6.6.6.6"),
            ("x-original-url", "/admin"),
        ])
    }

    #[test]
    fn a_trusted_proxys_chain_is_extended_and_its_claims_kept() {
        let mut h = claims();
        let host = HeaderValue::from_static("app.example");
        set_forwarded(&mut h, &peer(true, "https"), Some(&host));
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h["x-forwarded-for"], "203.0.113.7, 10.0.0.1, 192.0.2.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "user:pw@evil.example");
        assert_eq!(h["true-client-ip"], "6.6.6.6");
    }

    #[test]
    fn anyone_elses_claims_are_replaced_or_dropped() {
        let mut h = claims();
        let host = HeaderValue::from_static("app.example");
        set_forwarded(&mut h, &peer(false, "http"), Some(&host));
        assert_eq!(h["x-forwarded-for"], "192.0.2.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "app.example");
        assert!(h.get("true-client-ip").is_none() && h.get("x-original-url").is_none());
    }

    #[test]
    fn only_websocket_upgrades_are_recognised() {
        assert!(websocket_upgrade(&map(&[("upgrade", "websocket")])).is_none());
        let p = websocket_upgrade(&map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
        ]));
        assert_eq!(p.unwrap(), "WebSocket");
        assert!(
            websocket_upgrade(&map(&[("connection", "upgrade"), ("upgrade", "h2c")])).is_none()
        );
    }

    #[test]
    fn split_cookies_are_joined_and_spoofable_headers_dropped() {
        let mut h = map(&[
            ("cookie", "a=1"),
            ("cookie", "session=s"),
            ("x-real-ip", "1.2.3.4"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        merge_cookies(&mut h);
        assert_eq!(
            h.get_all("cookie").iter().collect::<Vec<_>>(),
            ["a=1; session=s"]
        );
        set_forwarded(&mut h, &peer(false, "http"), None);
        assert!(h.get("x-real-ip").is_none() && h.get("forwarded").is_none());
    }
}
