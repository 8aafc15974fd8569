//! The request/response header filters (`proxy::headers`) on arbitrary header maps.
//!
//! Input: byte 0 flags (trusted peer, https, a Host to forward), bytes 1-16 the peer's
//! IPv6 address (an IPv4-mapped one is read as IPv4), then `name: value` lines; lines
//! `http` refuses are skipped. Checked:
//!
//! - `remove_hop_by_hop` leaves no hop-by-hop header and nothing `Connection` named (but
//!   `TE: trailers` when asked for, and `Trailer`), and every other header as it was;
//! - `websocket_upgrade` only ever returns a `websocket` Upgrade;
//! - `merge_cookies` leaves one `Cookie` field, the fields joined by "; ";
//! - `set_forwarded`: from an untrusted peer no client claim survives and
//!   `X-Forwarded-For` is the peer; from a trusted one the chain ends with the peer.
#![no_main]

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use intercom_secure_proxy::net::Downstream;
use intercom_secure_proxy::proxy::headers::{
    merge_cookies, remove_hop_by_hop, restore_upgrade, set_forwarded, websocket_upgrade,
};
use libfuzzer_sys::fuzz_target;

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "transfer-encoding",
    "upgrade",
];

const SPOOFABLE: [&str; 19] = [
    "forwarded",
    "x-real-ip",
    "x-forwarded-port",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-forwarded-uri",
    "x-original-url",
    "x-rewrite-url",
    "x-original-host",
    "x-host",
    "true-client-ip",
    "cf-connecting-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "fastly-client-ip",
    "client-ip",
    "x-originating-ip",
];

/// The comma-separated tokens of every `name` field that is text.
fn tokens(headers: &HeaderMap, name: &HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn values<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Vec<&'h HeaderValue> {
    headers.get_all(name).iter().collect()
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 17 {
        return;
    }
    let flags = input[0];
    let ip: [u8; 16] = input[1..17].try_into().expect("16 bytes");
    let ip = Ipv6Addr::from(ip);
    let peer = match ip.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(ip),
    };
    let mut headers = HeaderMap::new();
    for line in input[17..].split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let original = headers.clone();

    // Hop-by-hop removal.
    let upgrade = websocket_upgrade(&headers);
    if let Some(protocol) = &upgrade {
        assert!(
            protocol
                .to_str()
                .is_ok_and(|p| p.trim().eq_ignore_ascii_case("websocket"))
        );
    }
    let mut stripped = headers.clone();
    remove_hop_by_hop(&mut stripped);
    let listed: Vec<HeaderName> = tokens(&original, &header::CONNECTION)
        .iter()
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    let wants_trailers = tokens(&original, &header::TE)
        .iter()
        .any(|t| t.eq_ignore_ascii_case("trailers"));
    for name in HOP_BY_HOP {
        let name = HeaderName::from_static(name);
        if name == header::TE && wants_trailers {
            assert_eq!(
                values(&stripped, &name),
                [&HeaderValue::from_static("trailers")]
            );
        } else {
            assert!(!stripped.contains_key(&name), "{name} left in {stripped:?}");
        }
    }
    for name in &listed {
        if *name != header::TE && *name != header::TRAILER {
            assert!(!stripped.contains_key(name), "listed {name} left");
        }
    }
    for name in original.keys() {
        let removed = HOP_BY_HOP.contains(&name.as_str())
            || (listed.contains(name) && *name != header::TRAILER);
        if !removed {
            assert_eq!(
                values(&stripped, name),
                values(&original, name),
                "{name} changed"
            );
        }
    }
    if let Some(protocol) = upgrade {
        restore_upgrade(&mut stripped, protocol.clone());
        assert_eq!(stripped.get(header::UPGRADE), Some(&protocol));
    }

    // Cookie fields joined.
    let mut merged = stripped.clone();
    merge_cookies(&mut merged);
    let cookies = values(&stripped, &header::COOKIE);
    let after = values(&merged, &header::COOKIE);
    match cookies.len() {
        0 => assert!(after.is_empty()),
        1 => assert_eq!(after, cookies),
        _ => {
            let joined: Vec<u8> = cookies
                .iter()
                .map(|v| v.as_bytes())
                .collect::<Vec<_>>()
                .join(&b"; "[..]);
            assert_eq!(after.len(), 1);
            assert_eq!(after[0].as_bytes(), joined.as_slice());
        }
    }

    // X-Forwarded-*.
    let downstream = Downstream {
        peer: SocketAddr::new(peer, 4321),
        scheme: if flags & 2 == 0 { "http" } else { "https" },
        trusted: flags & 1 == 1,
    };
    let host = original.get(header::HOST).filter(|_| flags & 4 == 0).cloned();
    let mut forwarded = merged.clone();
    set_forwarded(&mut forwarded, &downstream, host.as_ref());
    let peer_text = peer.to_canonical().to_string();
    let xff = HeaderName::from_static("x-forwarded-for");
    let chain: Vec<&HeaderValue> = values(&forwarded, &xff);
    assert_eq!(chain.len(), 1);
    let chain = chain[0].to_str().expect("text");
    let proto = forwarded.get("x-forwarded-proto").expect("proto");
    assert_eq!(proto.as_bytes(), downstream.scheme.as_bytes());
    if downstream.trusted {
        assert!(chain.ends_with(&peer_text), "{chain} for {peer_text}");
    } else {
        assert_eq!(chain, peer_text);
        for name in SPOOFABLE {
            assert!(!forwarded.contains_key(name), "{name} kept from {peer}");
        }
        assert_eq!(forwarded.get("x-forwarded-host"), host.as_ref());
    }
});
