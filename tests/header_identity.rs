//! `resolver = "header"`: an authenticating proxy in front (oauth2-proxy and the like) names
//! the user in request headers. Believed from `trusted_proxies` only; from anyone else the
//! headers are stripped before the app sees them. A user switch or a sign-out at the auth
//! proxy is a user switch or a logout for the Messenger.
#![cfg(feature = "server")]

mod common;

use common::*;
use http::{Request, Response, StatusCode};

/// An app page that shows which identity header it was given.
async fn app() -> Upstream {
    upstream(|req: Request<hyper::body::Incoming>| async move {
        let user = req
            .headers()
            .get("x-auth-request-user")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_string();
        let mut r = Response::new(full(format!(
            "<html><head><title>app</title></head><body>user={user}</body></html>"
        )));
        r.headers_mut()
            .insert("content-type", "text/html".parse().unwrap());
        r
    })
    .await
}

fn config(app: &Upstream, trusted: &str) -> String {
    config_with_session(
        &format!("http://{}", app.addr),
        &format!(
            r#"
[session]
resolver = "header"
[session.header]
trusted_proxies = [{trusted}]
headers = ["X-Auth-Request-User", "X-Auth-Request-Email"]
[session.fields]
user_id = "/x-auth-request-user"
email = "/x-auth-request-email"
"#
        ),
    )
}

async fn page(proxy: &Proxy, headers: &[(&str, &str)]) -> (http::HeaderMap, String) {
    let mut req = Request::get(proxy.url("/")).header("accept", "text/html");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let response = client().request(req.body(empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let body = body_bytes(response.into_body()).await;
    (headers, String::from_utf8_lossy(&body).into_owned())
}

fn booted_cookie(headers: &http::HeaderMap) -> String {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__isp_booted="))
        .and_then(|v| v.split(';').next())
        .expect("the booted-for marker")
        .to_string()
}

#[tokio::test]
async fn a_trusted_auth_proxy_names_the_user_and_its_switches_and_sign_outs_count() {
    let app = app().await;
    let proxy = proxy_with(&config(&app, "\"127.0.0.1/32\"")).await;
    let alice = [
        ("x-auth-request-user", "alice"),
        ("x-auth-request-email", "alice@example.com"),
    ];
    let (headers, body) = page(&proxy, &alice).await;
    assert!(
        body.contains("user=alice"),
        "the app sees the header: {body}"
    );
    let (_, _, settings) = find_snippet(&body).expect("the Messenger for alice");
    let claims = verify_messenger_jwt(settings["intercom_user_jwt"].as_str().unwrap());
    assert_eq!(claims["user_id"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    let booted = booted_cookie(&headers);

    // The auth proxy now says bob, in the browser alice's Messenger was booted in.
    let (_, body) = page(
        &proxy,
        &[("x-auth-request-user", "bob"), ("cookie", &booted)],
    )
    .await;
    assert_eq!(booted_user(&body).as_deref(), Some("bob"));
    assert!(
        runs_shutdown(&body),
        "alice's Messenger is shut down before bob's boots"
    );

    // Signed out at the auth proxy: no identity headers any more.
    let (_, body) = page(&proxy, &[("cookie", &booted)]).await;
    assert!(
        runs_shutdown(&body),
        "a sign-out shuts the Messenger down: {body}"
    );
    assert_eq!(booted_user(&body), None);
}

#[tokio::test]
async fn identity_headers_from_an_untrusted_peer_are_ignored_and_stripped() {
    let app = app().await;
    // The test client connects from 127.0.0.1, which is not trusted here.
    let proxy = proxy_with(&config(&app, "\"10.0.0.0/8\", \"::1\"")).await;
    let (_, body) = page(&proxy, &[("x-auth-request-user", "mallory")]).await;
    assert!(
        body.contains("user=none"),
        "the app never sees a forged header: {body}"
    );
    assert!(
        find_snippet(&body).is_none(),
        "and no one is booted: {body}"
    );
}

#[tokio::test]
async fn check_names_what_is_wrong_in_session_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    let text = config_with_session(
        "http://127.0.0.1:1",
        r#"
[session]
resolver = "header"
[session.header]
trusted_proxies = ["10.0.0.300/8"]
headers = ["bad header"]
[session.fields]
user_id = "/x-auth-request-user"
"#,
    );
    std::fs::write(&path, text).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_intercom-secure-proxy"))
        .arg("check")
        .arg("--config")
        .arg(&path)
        .envs(test_env())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("session.header.trusted_proxies"),
        "{stdout}"
    );
    assert!(stdout.contains("session.header.headers"), "{stdout}");
}
