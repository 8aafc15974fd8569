//! End to end with a real express-session + connect-redis app (tests/fixtures/express-app):
//! the proxy resolves its `connect.sid` cookie from Redis, through login and logout.
#![cfg(feature = "server")]

mod common;

use common::*;
use http::{Request, StatusCode};

const COOKIE_SECRET: &str = "express-fixture-cookie-secret";

/// The `name=value` of the `connect.sid` Set-Cookie in a response, if any.
fn set_session_cookie(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("connect.sid="))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

async fn post_form(
    proxy: &Proxy,
    path: &str,
    form: &str,
    cookie: Option<&str>,
) -> http::Response<hyper::body::Incoming> {
    let mut req = Request::post(proxy.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    client()
        .request(req.body(full(form.to_string())).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn express_session_users_are_identified_through_login_and_logout() {
    let Some(redis_url) = store_url("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis").await else {
        return;
    };
    let prefix = format!("{}:", unique_name("express"));
    let Some(app) = start_express(&redis_url, &prefix, COOKIE_SECRET) else {
        return;
    };
    let session = express_session(&redis_url, &prefix, COOKIE_SECRET, "name = \"/user/name\"");
    let proxy = proxy_with(&config_with_session(
        &format!("http://127.0.0.1:{}", app.port),
        &session,
    ))
    .await;

    let (_, page) = get_page(&proxy, "/", None).await;
    assert!(page.contains("Hello visitor") && find_snippet(&page).is_none());

    let login = post_form(&proxy, "/login", "username=alice", None).await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let alice = set_session_cookie(login.headers()).expect("express sets connect.sid");
    let (_, page) = get_page(&proxy, "/", Some(&alice)).await;
    assert!(page.contains("Hello Alice"), "{page}");
    let (_, _, settings) = find_snippet(&page).expect("alice's page gets the snippet");
    let claims = verify_messenger_jwt(settings["intercom_user_jwt"].as_str().unwrap());
    assert_eq!(claims["user_id"], "u-alice");
    assert_eq!(claims["email"], "alice@example.com");

    // Another browser, another user, at the same time.
    let bob = set_session_cookie(
        post_form(&proxy, "/login", "username=bob", None)
            .await
            .headers(),
    )
    .unwrap();
    assert_eq!(
        messenger_user(&get_page(&proxy, "/", Some(&bob)).await.1).as_deref(),
        Some("u-bob")
    );
    assert_eq!(
        messenger_user(&get_page(&proxy, "/", Some(&alice)).await.1).as_deref(),
        Some("u-alice")
    );

    // A tampered cookie (another sid, same signature) is nobody.
    let tampered = alice.replacen("s%3A", "s%3AX", 1);
    let (_, page) = get_page(&proxy, "/", Some(&tampered)).await;
    assert!(find_snippet(&page).is_none());

    let logout = post_form(&proxy, "/logout", "", Some(&alice)).await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    let (_, page) = get_page(&proxy, "/", Some(&alice)).await;
    assert!(
        page.contains("Hello visitor"),
        "the app forgot the session: {page}"
    );
    assert!(find_snippet(&page).is_none(), "and so does the proxy");
}
