//! Secure-mode injection as a browser would meet it: the snippet, the JWT it carries, the
//! headers, the bytes around it, and everything that must be left alone.
#![cfg(feature = "server")]

mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::*;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};

const PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Orders</title><script src=\"/app.js\"></script></head>\n<body><h1>Orders</h1><script>var app = 1;</script></body></html>\n";

/// An app that serves `PAGE` as HTML on every path except a few special ones, and records
/// the request headers it saw.
async fn app(seen: Arc<Mutex<Vec<HeaderMap>>>) -> Upstream {
    upstream(move |req| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(req.headers().clone());
            let path = req.uri().path().to_string();
            let mut r = Response::new(full(PAGE));
            let h = r.headers_mut();
            h.insert("content-type", "text/html; charset=utf-8".parse().unwrap());
            h.insert("etag", "\"v1\"".parse().unwrap());
            h.insert(
                "last-modified",
                "Wed, 21 Oct 2026 07:28:00 GMT".parse().unwrap(),
            );
            h.insert("cache-control", "public, max-age=600".parse().unwrap());
            h.insert("content-length", PAGE.len().into());
            match path.as_str() {
                "/api.json" => {
                    h.insert("content-type", "application/json".parse().unwrap());
                }
                "/missing" => *r.status_mut() = StatusCode::NOT_FOUND,
                "/image.png" => {
                    h.insert("content-type", "image/png".parse().unwrap());
                }
                "/utf16" => {
                    h.insert("content-type", "text/html; charset=utf-16".parse().unwrap());
                }
                "/download" => {
                    h.insert(
                        "content-disposition",
                        "attachment; filename=report.html".parse().unwrap(),
                    );
                }
                "/login" => {
                    h.insert(
                        "set-cookie",
                        "session=new-session-token; Path=/; HttpOnly"
                            .parse()
                            .unwrap(),
                    );
                }
                "/stacked" => {
                    h.append("content-encoding", "identity".parse().unwrap());
                    h.append("content-encoding", "identity".parse().unwrap());
                }
                _ => {}
            }
            r
        }
    })
    .await
}

fn alice() -> String {
    session_jwt(json!({"sub": "u-1001", "email": "alice@example.com", "exp": now_secs() + 3600}))
}

async fn get(proxy: &Proxy, path: &str, cookie: Option<&str>) -> (StatusCode, HeaderMap, String) {
    get_with(proxy, path, cookie, &[]).await
}

async fn get_with(
    proxy: &Proxy,
    path: &str,
    cookie: Option<&str>,
    extra: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let mut req = Request::get(proxy.url(path)).header("accept", "text/html");
    if let Some(c) = cookie {
        req = req.header("cookie", format!("session={c}"));
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let response = client().request(req.body(empty()).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = body_bytes(response.into_body()).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn proxy_config(app: &Upstream, extra: &str) -> String {
    config_text(&format!("http://{}", app.addr), "", extra)
}

#[tokio::test]
async fn logged_in_page_gets_a_jwt_signed_with_the_messenger_secret() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = app(seen.clone()).await;
    let proxy = proxy_with(&proxy_config(&app, "")).await;
    let before = now_secs();
    let (status, headers, page) = get_with(
        &proxy,
        "/orders",
        Some(&alice()),
        &[
            ("if-none-match", "\"v1\""),
            ("if-modified-since", "Wed, 21 Oct 2026 07:28:00 GMT"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (start, _, settings) = find_snippet(&page).expect("snippet injected");
    assert!(
        page[..start].ends_with("<script src=\"/app.js\"></script>"),
        "snippet goes right before </head>"
    );
    assert_eq!(
        without_snippet(&page),
        PAGE,
        "the rest of the page is the app's, byte for byte"
    );
    assert_eq!(settings["app_id"], "testapp1");
    assert_eq!(settings["api_base"], "https://api-iam.intercom.io");
    let keys: Vec<&str> = settings
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["api_base", "app_id", "intercom_user_jwt"],
        "no identity outside the token"
    );

    let claims = verify_messenger_jwt(settings["intercom_user_jwt"].as_str().unwrap());
    assert_eq!(claims["user_id"], "u-1001");
    assert_eq!(claims["email"], "alice@example.com");
    let iat = claims["iat"].as_u64().unwrap();
    assert!(iat >= before && iat <= now_secs());
    assert_eq!(
        claims["exp"].as_u64().unwrap(),
        iat + 3600,
        "default token_ttl is 1h"
    );

    // Injected pages: not cacheable by shared caches, no validators, no stale length.
    assert_eq!(headers["cache-control"], "private, no-store");
    assert_eq!(headers["vary"], "Cookie");
    for gone in ["etag", "last-modified", "content-length"] {
        assert!(headers.get(gone).is_none(), "{gone} must be dropped");
    }
    // The app was asked for a full page, not a 304.
    let app_saw = seen.lock().unwrap().last().cloned().unwrap();
    assert!(app_saw.get("if-none-match").is_none() && app_saw.get("if-modified-since").is_none());
}

#[tokio::test]
async fn token_ttl_fields_and_route_attributes_are_signed() {
    let app = app(Arc::new(Mutex::new(Vec::new()))).await;
    let config = proxy_config(
        &app,
        "\n[[routes]]\npath = \"/billing/**\"\nattributes = { section = \"billing\", seats = 5 }\n",
    )
    .replace(
        "email = \"/email\"",
        "email = \"/email\"\nname = \"/name\"\nplan = \"/org/plan\"",
    )
    .replace(
        "secret_env = \"TEST_MESSENGER_SECRET\"",
        "secret_env = \"TEST_MESSENGER_SECRET\"\ntoken_ttl = \"15m\"",
    );
    let proxy = proxy_with(&config).await;
    let cookie = session_jwt(
        json!({"sub": "u-7", "email": "e@x.io", "name": "Eve", "org": {"plan": "pro"}, "exp": now_secs() + 60}),
    );
    let (_, _, page) = get(&proxy, "/billing/invoices", Some(&cookie)).await;
    let (_, _, settings) = find_snippet(&page).unwrap();
    let claims = verify_messenger_jwt(settings["intercom_user_jwt"].as_str().unwrap());
    assert_eq!(claims["name"], "Eve");
    assert_eq!(claims["plan"], "pro");
    assert_eq!(claims["section"], "billing");
    assert_eq!(claims["seats"], 5);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        900
    );

    let (_, _, page) = get(&proxy, "/orders", Some(&cookie)).await;
    let (_, _, settings) = find_snippet(&page).unwrap();
    let claims = verify_messenger_jwt(settings["intercom_user_jwt"].as_str().unwrap());
    assert!(
        claims.get("section").is_none(),
        "route attributes only on their route"
    );
}

#[tokio::test]
async fn sessions_that_do_not_verify_leave_the_page_untouched() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = app(seen.clone()).await;
    let proxy = proxy_with(&proxy_config(&app, "")).await;
    let claims = json!({"sub": "u-1001", "email": "alice@example.com", "exp": now_secs() + 3600});
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"not the app's secret"),
    )
    .unwrap();
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    let expired = session_jwt(json!({"sub": "u-1001", "exp": now_secs() - 3600}));
    let wrong_alg = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS384),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SESSION_SECRET.as_bytes()),
    )
    .unwrap();
    let no_user = session_jwt(json!({"email": "alice@example.com", "exp": now_secs() + 3600}));
    // A validly signed session, but longer than any app issues: not looked at.
    let absurd =
        session_jwt(json!({"sub": "u-1001", "pad": "x".repeat(9_000), "exp": now_secs() + 3600}));
    for (what, cookie) in [
        ("forged", forged.as_str()),
        ("alg=none", alg_none.as_str()),
        ("expired", expired.as_str()),
        ("wrong algorithm", wrong_alg.as_str()),
        ("no user id", no_user.as_str()),
        ("garbage", "not-a-jwt"),
        ("absurdly long", absurd.as_str()),
    ] {
        let (status, headers, page) = get_with(
            &proxy,
            "/orders",
            Some(cookie),
            &[("if-none-match", "\"v1\"")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{what}");
        assert_eq!(page, PAGE, "{what}: page must be untouched");
        assert_eq!(headers["etag"], "\"v1\"", "{what}");
        assert_eq!(
            headers["content-length"],
            PAGE.len().to_string().as_str(),
            "{what}"
        );
        let app_saw = seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(
            app_saw["if-none-match"], "\"v1\"",
            "{what}: conditional requests kept"
        );
    }
    let (_, _, page) = get(&proxy, "/orders", None).await;
    assert_eq!(page, PAGE, "no cookie, anonymous = skip");
}

#[tokio::test]
async fn hostile_user_data_cannot_break_out_of_the_script() {
    let app = app(Arc::new(Mutex::new(Vec::new()))).await;
    let config = proxy_config(&app, "").replace(
        "secret_env = \"TEST_MESSENGER_SECRET\"",
        "secret_env = \"TEST_MESSENGER_SECRET\"\nmode = \"user_hash\"",
    );
    let proxy = proxy_with(&config).await;
    let evil = "</script><script>alert(1)</script>\u{2028}&";
    let cookie = session_jwt(json!({"sub": evil, "email": "a@b.c", "exp": now_secs() + 60}));
    let (_, _, page) = get(&proxy, "/", Some(&cookie)).await;
    assert_eq!(
        page.matches("<script").count(),
        PAGE.matches("<script").count() + 1
    );
    assert!(!page.contains("alert(1)</script>"));
    let (_, _, settings) = find_snippet(&page).unwrap();
    assert_eq!(
        settings["user_id"], evil,
        "the value survives escaping intact"
    );
}

#[tokio::test]
async fn user_hash_mode_carries_the_hmac_of_the_user_id() {
    use hmac::{Hmac, KeyInit, Mac};
    let app = app(Arc::new(Mutex::new(Vec::new()))).await;
    let config = proxy_config(&app, "").replace(
        "secret_env = \"TEST_MESSENGER_SECRET\"",
        "secret_env = \"TEST_MESSENGER_SECRET\"\nmode = \"user_hash\"\nregion = \"au\"",
    );
    let proxy = proxy_with(&config).await;
    let (_, _, page) = get(&proxy, "/", Some(&alice())).await;
    let (_, _, settings) = find_snippet(&page).unwrap();
    let mut mac =
        <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(MESSENGER_SECRET.as_bytes()).unwrap();
    mac.update(b"u-1001");
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(settings["user_hash"], expected.as_str());
    assert_eq!(settings["user_id"], "u-1001");
    assert_eq!(settings["email"], "alice@example.com");
    assert_eq!(settings["api_base"], "https://api-iam.au.intercom.io");
    assert!(settings.get("intercom_user_jwt").is_none());
}

#[tokio::test]
async fn each_region_has_its_api_base_and_anonymous_boot_has_no_identity() {
    let app = app(Arc::new(Mutex::new(Vec::new()))).await;
    for (region, base) in [
        ("us", "https://api-iam.intercom.io"),
        ("eu", "https://api-iam.eu.intercom.io"),
        ("au", "https://api-iam.au.intercom.io"),
    ] {
        let config = proxy_config(&app, "").replace(
            "secret_env = \"TEST_MESSENGER_SECRET\"",
            &format!("secret_env = \"TEST_MESSENGER_SECRET\"\nregion = \"{region}\"\nanonymous = \"boot\""),
        );
        let proxy = proxy_with(&config).await;
        let (_, _, page) = get(&proxy, "/", None).await;
        let (_, _, settings) = find_snippet(&page).expect("anonymous boot injects");
        assert_eq!(settings, json!({"api_base": base, "app_id": "testapp1"}));
    }
}

#[tokio::test]
async fn non_pages_and_switched_off_routes_pass_through_byte_for_byte() {
    let app = app(Arc::new(Mutex::new(Vec::new()))).await;
    let proxy = proxy_with(&proxy_config(
        &app,
        "\n[[routes]]\npath = \"/admin/**\"\ninject = false\n",
    ))
    .await;
    let cookie = alice();
    for path in [
        "/api.json",
        "/missing",
        "/image.png",
        "/admin/users",
        "/utf16",
    ] {
        let (_, headers, page) = get(&proxy, path, Some(&cookie)).await;
        assert_eq!(page, PAGE, "{path}");
        assert_eq!(headers["etag"], "\"v1\"", "{path}");
        assert_eq!(headers["cache-control"], "public, max-age=600", "{path}");
    }
    // HEAD: same headers as the app's, no body, no rewriting.
    let raw = raw_exchange(
        proxy.addr,
        format!("HEAD / HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nCookie: session={cookie}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(
        raw.to_ascii_lowercase()
            .contains(&format!("content-length: {}", PAGE.len())),
        "{raw}"
    );
    assert!(raw.ends_with("\r\n\r\n"), "{raw}");
    // A stylesheet request keeps its conditional headers and is not a page.
    let (_, headers, page) =
        get_with(&proxy, "/", Some(&cookie), &[("sec-fetch-dest", "style")]).await;
    assert_eq!(page, PAGE);
    assert_eq!(headers["etag"], "\"v1\"");
}

#[tokio::test]
async fn insertion_falls_back_to_body_start_and_document_end() {
    let app = upstream(|req| async move {
        let page = match req.uri().path() {
            "/no-head" => "<html><body class=x><p>hi</p></body></html>",
            _ => "<p>just a fragment</p>",
        };
        let mut r = Response::new(full(page));
        r.headers_mut()
            .insert("content-type", "text/html".parse().unwrap());
        r
    })
    .await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let (_, _, page) = get(&proxy, "/no-head", Some(&alice())).await;
    let (start, end, _) = find_snippet(&page).unwrap();
    assert_eq!(&page[..start], "<html><body class=x>");
    assert_eq!(&page[end..], "<p>hi</p></body></html>");
    let (_, _, page) = get(&proxy, "/fragment", Some(&alice())).await;
    let (start, end, _) = find_snippet(&page).unwrap();
    assert_eq!(&page[..start], "<p>just a fragment</p>");
    assert_eq!(end, page.len());
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = ::brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
    w.write_all(data).unwrap();
    drop(w);
    out
}

fn decode(coding: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap(),
        "deflate" => flate2::read::ZlibDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap(),
        "br" => ::brotli::Decompressor::new(data, 4096)
            .read_to_end(&mut out)
            .unwrap(),
        _ => unreachable!(),
    };
    out
}

#[tokio::test]
async fn compressed_pages_are_decoded_rewritten_and_reencoded() {
    let page = bench_page("page-34k.html");
    let encoded: Arc<Vec<(&str, Bytes)>> = Arc::new(vec![
        ("gzip", Bytes::from(gzip(page.as_bytes()))),
        ("deflate", Bytes::from(deflate(page.as_bytes()))),
        ("br", Bytes::from(brotli(page.as_bytes()))),
        // Stacked codings are not decoded: passed through untouched.
        ("gzip, br", Bytes::from_static(b"opaque")),
    ]);
    let served = encoded.clone();
    let app = upstream(move |req| {
        let served = served.clone();
        async move {
            let coding = req
                .uri()
                .path()
                .trim_start_matches('/')
                .replace("%20", " ")
                .replace("%2C", ",");
            let (name, body) = served.iter().find(|(n, _)| *n == coding).cloned().unwrap();
            // Sent in 1000-byte chunks, so decoding really streams.
            let chunks: Vec<_> = body
                .chunks(1000)
                .map(|c| {
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(http_body::Frame::data(
                        Bytes::copy_from_slice(c),
                    ))
                })
                .collect();
            let mut r = Response::new(
                http_body_util::StreamBody::new(futures_util::stream::iter(chunks)).boxed(),
            );
            r.headers_mut()
                .insert("content-type", "text/html".parse().unwrap());
            r.headers_mut()
                .insert("content-encoding", name.parse().unwrap());
            r
        }
    })
    .await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    for coding in ["gzip", "deflate", "br"] {
        let req = Request::get(proxy.url(&format!("/{coding}")))
            .header("accept", "text/html")
            .header("accept-encoding", "gzip, deflate, br")
            .header("cookie", format!("session={}", alice()))
            .body(empty())
            .unwrap();
        let response = client().request(req).await.unwrap();
        assert_eq!(response.headers()["content-encoding"], coding);
        let body = body_bytes(response.into_body()).await;
        let html = String::from_utf8(decode(coding, &body)).unwrap();
        assert!(find_snippet(&html).is_some(), "{coding}: snippet injected");
        assert_eq!(
            without_snippet(&html),
            page,
            "{coding}: page intact around the snippet"
        );
    }
    let req = Request::get(proxy.url("/gzip%2C%20br"))
        .header("accept", "text/html")
        .header("cookie", format!("session={}", alice()))
        .body(empty())
        .unwrap();
    let response = client().request(req).await.unwrap();
    assert_eq!(body_bytes(response.into_body()).await, "opaque");
}

#[tokio::test]
async fn a_truncated_gzip_page_ends_in_an_error_not_a_panic_or_a_fixed_up_page() {
    let page = bench_page("page-34k.html");
    let mut truncated = gzip(page.as_bytes());
    truncated.truncate(truncated.len() / 2);
    let truncated = Bytes::from(truncated);
    let app = upstream(move |_req| {
        let body = truncated.clone();
        async move {
            let mut r = Response::new(full(body));
            r.headers_mut()
                .insert("content-type", "text/html".parse().unwrap());
            r.headers_mut()
                .insert("content-encoding", "gzip".parse().unwrap());
            r
        }
    })
    .await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let req = Request::get(proxy.url("/"))
        .header("accept", "text/html")
        .header("cookie", format!("session={}", alice()))
        .body(empty())
        .unwrap();
    // hyper may not have flushed the head when the body fails: either way the client must
    // see an incomplete response, never a page that looks complete.
    match client().request(req).await {
        Err(e) => assert!(format!("{e:?}").contains("IncompleteMessage"), "{e:?}"),
        Ok(response) => assert!(
            response.into_body().collect().await.is_err(),
            "the client must see the page is incomplete"
        ),
    }
    // The proxy is fine afterwards.
    let (status, _, _) = get(&proxy, "/", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn large_page_is_intact_around_the_snippet() {
    let page = bench_page("page-1.7m.html");
    let served = Bytes::from(page.clone());
    let app = upstream(move |_req| {
        let served = served.clone();
        async move {
            // Odd chunk sizes, so the insertion point straddles chunk boundaries.
            let chunks: Vec<_> = served
                .chunks(4093)
                .map(|c| {
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(http_body::Frame::data(
                        served.slice_ref(c),
                    ))
                })
                .collect();
            let mut r = Response::new(
                http_body_util::StreamBody::new(futures_util::stream::iter(chunks)).boxed(),
            );
            r.headers_mut()
                .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
            r
        }
    })
    .await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let (_, _, out) = get(&proxy, "/", Some(&alice())).await;
    assert!(find_snippet(&out).is_some());
    assert_eq!(without_snippet(&out).len(), page.len());
    assert!(
        without_snippet(&out) == page,
        "1.7 MB page must be byte-identical outside the snippet"
    );
}

/// The `'sha256-…'` CSP source of the injected script's text, computed independently.
fn snippet_hash(page: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let (start, end, _) = find_snippet(page).unwrap();
    let element = &page[start..end];
    let text = &element[element.find('>').unwrap() + 1..element.len() - "</script>".len()];
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes()))
    )
}

async fn csp_app() -> Upstream {
    upstream(|req| async move {
        let path = req.uri().path().to_string();
        let body = if path == "/meta" {
            PAGE.replace("<title>", "<meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'self'; img-src 'self'\"><title>")
        } else {
            PAGE.to_string()
        };
        let mut r = Response::new(full(body));
        let h = r.headers_mut();
        h.insert("content-type", "text/html".parse().unwrap());
        let policy = match path.as_str() {
            "/nonce" => Some(("content-security-policy", "script-src 'nonce-abc123' 'strict-dynamic'; object-src 'none'; base-uri 'self'")),
            "/hash" => Some(("content-security-policy", "default-src 'self'")),
            "/report-only" => Some(("content-security-policy-report-only", "script-src 'self'; report-uri /csp")),
            "/unsafe-inline" => Some(("content-security-policy", "script-src 'self' 'unsafe-inline'")),
            _ => None,
        };
        if let Some((name, value)) = policy {
            h.insert(name, value.parse().unwrap());
        }
        r
    })
    .await
}

#[tokio::test]
async fn csp_nonce_is_reused_and_hashes_added_only_where_needed() {
    let app = csp_app().await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let cookie = alice();

    let (_, headers, page) = get(&proxy, "/nonce", Some(&cookie)).await;
    let (start, _, _) = find_snippet(&page).unwrap();
    assert!(
        page[start..].starts_with("<script nonce=\"abc123\">"),
        "{}",
        &page[start..start + 40]
    );
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.starts_with("script-src 'nonce-abc123' 'strict-dynamic'"),
        "{policy}"
    );
    assert!(
        !policy.contains("'sha256-"),
        "a nonce needs no hash: {policy}"
    );
    assert!(
        policy.contains("object-src 'none'") && policy.contains("base-uri 'self'"),
        "{policy}"
    );

    let (_, headers, page) = get(&proxy, "/hash", Some(&cookie)).await;
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.starts_with("default-src 'self'; script-src 'self' "),
        "{policy}"
    );
    assert!(
        policy.contains(&snippet_hash(&page)),
        "the hash of the script actually sent: {policy}"
    );
    assert!(
        policy.contains("connect-src 'self' https://via.intercom.io"),
        "{policy}"
    );

    let (_, headers, page) = get(&proxy, "/report-only", Some(&cookie)).await;
    let policy = headers["content-security-policy-report-only"]
        .to_str()
        .unwrap();
    assert!(policy.contains(&snippet_hash(&page)), "{policy}");
    assert!(headers.get("content-security-policy").is_none());

    let (_, headers, _) = get(&proxy, "/unsafe-inline", Some(&cookie)).await;
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(
        !policy.contains("'sha256-"),
        "a hash would switch off the app's 'unsafe-inline': {policy}"
    );

    let (_, headers, page) = get(&proxy, "/meta", Some(&cookie)).await;
    assert!(
        headers.get("content-security-policy").is_none(),
        "no policy is added to pages without one"
    );
    let expected = format!("content=\"script-src 'self' {}", snippet_hash(&page));
    assert!(page.contains(&expected), "{page}");

    let (_, headers, _) = get(&proxy, "/plain", Some(&cookie)).await;
    assert!(headers.get("content-security-policy").is_none());
}

#[tokio::test]
async fn asymmetric_session_jwts_verify_with_a_public_key_file() {
    let app = app(Arc::new(Mutex::new(Vec::new()))).await;
    let dir = tempfile::tempdir().unwrap();
    let claims = json!({"sub": "u-42", "email": "k@example.com", "exp": now_secs() + 600});
    for (alg, rcgen_alg, jwt_alg) in [
        (
            "ES256",
            &rcgen::PKCS_ECDSA_P256_SHA256,
            jsonwebtoken::Algorithm::ES256,
        ),
        (
            "RS256",
            &rcgen::PKCS_RSA_SHA256,
            jsonwebtoken::Algorithm::RS256,
        ),
    ] {
        let key = rcgen::KeyPair::generate_for(rcgen_alg).unwrap();
        let public = dir.path().join(format!("{alg}.pub.pem"));
        std::fs::write(&public, key.public_key_pem()).unwrap();
        let config = proxy_config(&app, "").replace(
            "algorithms = [\"HS256\"]\nkey_env = \"TEST_SESSION_SECRET\"",
            &format!(
                "algorithms = [\"{alg}\"]\nkey_file = \"{}\"",
                public.display()
            ),
        );
        let proxy = proxy_with(&config).await;
        let private = key.serialize_pem();
        let encoding = match jwt_alg {
            jsonwebtoken::Algorithm::ES256 => {
                jsonwebtoken::EncodingKey::from_ec_pem(private.as_bytes())
            }
            _ => jsonwebtoken::EncodingKey::from_rsa_pem(private.as_bytes()),
        }
        .unwrap();
        let token =
            jsonwebtoken::encode(&jsonwebtoken::Header::new(jwt_alg), &claims, &encoding).unwrap();
        let (_, _, page) = get(&proxy, "/", Some(&token)).await;
        let (_, _, settings) =
            find_snippet(&page).unwrap_or_else(|| panic!("{alg}: snippet expected"));
        let messenger = verify_messenger_jwt(settings["intercom_user_jwt"].as_str().unwrap());
        assert_eq!(messenger["user_id"], "u-42", "{alg}");

        // Algorithm confusion: HS256 "signed" with the public key as the HMAC secret.
        let confused = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(key.public_key_pem().as_bytes()),
        )
        .unwrap();
        let (_, _, page) = get(&proxy, "/", Some(&confused)).await;
        assert_eq!(page, PAGE, "{alg}: an HS256 token must not pass as {alg}");
    }
}

#[tokio::test]
async fn empty_compressed_pages_and_xhtml() {
    let app = upstream(|req| async move {
        let mut r = Response::new(match req.uri().path() {
            "/xhtml" => full("<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>x</title></head><body/></html>"),
            _ => empty(),
        });
        let h = r.headers_mut();
        if req.uri().path() == "/xhtml" {
            h.insert("content-type", "application/xhtml+xml".parse().unwrap());
        } else {
            h.insert("content-type", "text/html".parse().unwrap());
            h.insert("content-encoding", "gzip".parse().unwrap());
        }
        r
    })
    .await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let req = Request::get(proxy.url("/empty"))
        .header("accept", "text/html")
        .header("cookie", format!("session={}", alice()))
        .body(empty())
        .unwrap();
    let response = client().request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("an empty gzip page is a valid page")
        .to_bytes();
    let html = if body.is_empty() {
        String::new()
    } else {
        String::from_utf8(decode("gzip", &body)).unwrap()
    };
    assert!(
        find_snippet(&html).is_some(),
        "the document end still gets the snippet: {html:?}"
    );

    let (_, _, page) = get(&proxy, "/xhtml", Some(&alice())).await;
    let (start, end, _) = find_snippet(&page).unwrap();
    let script = &page[start..end];
    let text = &script[script.find('>').unwrap() + 1..script.len() - "</script>".len()];
    assert!(
        !text.contains('<') && !text.contains('&'),
        "XHTML pages need XML-safe script text"
    );
}
