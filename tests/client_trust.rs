//! Whose word about the client the app gets: forwarding headers are believed and extended
//! only from `server.trusted_proxies`, replaced or dropped from anyone else; credentials in
//! the request target are refused; `server.allowed_hosts` names the hosts served.
#![cfg(feature = "server")]

mod common;

use common::*;
use http::{Request, Response};
use serde_json::json;

async fn echo_head(req: Request<hyper::body::Incoming>) -> Response<TestBody> {
    let mut lines = format!("{} {}\n", req.method(), req.uri());
    for (name, value) in req.headers() {
        lines.push_str(&format!(
            "{name}: {}\n",
            value.to_str().unwrap_or("<bytes>")
        ));
    }
    Response::new(full(lines))
}

const CLAIMS: &str = "X-Forwarded-For: 203.0.113.9\r\n\
X-Forwarded-Proto: https\r\n\
X-Forwarded-Host: shop.example\r\n\
True-Client-IP: 6.6.6.6\r\n\
CF-Connecting-IP: 6.6.6.6\r\n\
X-Client-IP: 6.6.6.6\r\n\
X-Original-URL: /admin\r\n\
X-Forwarded-Prefix: /evil\r\n";

async fn app_sees(server_extra: &str) -> Vec<String> {
    let app = upstream(echo_head).await;
    let proxy = proxy_with(&config_text(
        &format!("http://{}", app.addr),
        server_extra,
        "",
    ))
    .await;
    let request =
        format!("GET /p HTTP/1.1\r\nHost: app.example\r\n{CLAIMS}Connection: close\r\n\r\n");
    let raw = raw_exchange(proxy.addr, request.as_bytes()).await;
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default();
    body.lines().map(str::to_string).collect()
}

fn has(seen: &[String], line: &str) -> bool {
    seen.iter().any(|l| l == line)
}

#[tokio::test]
async fn an_untrusted_clients_claims_are_replaced_or_dropped() {
    let seen = app_sees("").await;
    assert!(has(&seen, "x-forwarded-for: 127.0.0.1"), "{seen:?}");
    assert!(has(&seen, "x-forwarded-proto: http"), "{seen:?}");
    assert!(has(&seen, "x-forwarded-host: app.example"), "{seen:?}");
    for dropped in [
        "true-client-ip",
        "cf-connecting-ip",
        "x-client-ip",
        "x-original-url",
        "x-forwarded-prefix",
    ] {
        assert!(
            !seen.iter().any(|l| l.starts_with(&format!("{dropped}:"))),
            "{dropped} reached the app: {seen:?}"
        );
    }
}

#[tokio::test]
async fn a_trusted_proxys_claims_are_believed_and_extended() {
    let seen = app_sees("trusted_proxies = [\"127.0.0.1/32\"]").await;
    assert!(
        has(&seen, "x-forwarded-for: 203.0.113.9, 127.0.0.1"),
        "{seen:?}"
    );
    assert!(has(&seen, "x-forwarded-proto: https"), "{seen:?}");
    assert!(has(&seen, "x-forwarded-host: shop.example"), "{seen:?}");
    assert!(has(&seen, "true-client-ip: 6.6.6.6"), "{seen:?}");
}

#[tokio::test]
async fn credentials_in_the_request_target_are_refused() {
    let app = upstream(echo_head).await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let raw = raw_exchange(
        proxy.addr,
        b"GET http://user:pw@evil.example:8443/ HTTP/1.1\r\nHost: evil.example:8443\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
    assert!(!raw.contains("user:pw"), "{raw}");
}

#[tokio::test]
async fn only_allowed_hosts_are_served() {
    let app = upstream(echo_head).await;
    let proxy = proxy_with(&config_text(
        &format!("http://{}", app.addr),
        "allowed_hosts = [\"app.example\", \"*.app.example\"]",
        "",
    ))
    .await;
    for (host, served) in [
        ("app.example", true),
        ("APP.example:8080", true),
        ("eu.app.example", true),
        ("evil.example", false),
        ("app.example.evil.example", false),
    ] {
        let raw = raw_exchange(
            proxy.addr,
            format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        let status = if served {
            "HTTP/1.1 200"
        } else {
            "HTTP/1.1 421"
        };
        assert!(raw.starts_with(status), "{host}: {raw}");
    }
}

#[tokio::test]
async fn marker_cookies_are_secure_when_a_trusted_proxy_says_https() {
    let app = html_app().await;
    let jwt = session_jwt(json!({"sub": "u-1", "exp": now_secs() + 3600}));
    let secure_of = |raw: &str| {
        raw.lines()
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with("set-cookie: __isp_booted=")
            })
            .map(|l| l.contains("; Secure"))
    };
    let request = format!(
        "GET / HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-Proto: https\r\nCookie: session={jwt}\r\nConnection: close\r\n\r\n"
    );
    for (server_extra, secure) in [
        ("trusted_proxies = [\"127.0.0.1/32\"]", true),
        // From anyone else, X-Forwarded-Proto is no reason to believe the browser uses TLS.
        ("", false),
    ] {
        let proxy = proxy_with(&config_text(
            &format!("http://{}", app.addr),
            server_extra,
            "",
        ))
        .await;
        let raw = raw_exchange(proxy.addr, request.as_bytes()).await;
        assert_eq!(secure_of(&raw), Some(secure), "{server_extra}: {raw}");
    }
}
