//! End to end with a real express-session + connect-redis app (tests/fixtures/express-app):
//! the proxy resolves its `connect.sid` cookie from Redis, through login and logout.
#![cfg(feature = "server")]

mod common;

use common::*;
use http::{Request, StatusCode};

const COOKIE_SECRET: &str = "express-fixture-cookie-secret";

/// The `name=value` of the `connect.sid` Set-Cookie in a response, if any.
fn set_session_cookie(headers: &http::HeaderMap) -> Option<String> {
    set_cookie(headers, "connect.sid")
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

async fn get_with_headers(proxy: &Proxy, cookie: &str) -> (http::HeaderMap, String) {
    let req = Request::get(proxy.url("/"))
        .header("accept", "text/html")
        .header("cookie", cookie);
    let response = client().request(req.body(empty()).unwrap()).await.unwrap();
    let headers = response.headers().clone();
    let body = body_bytes(response.into_body()).await;
    (headers, String::from_utf8_lossy(&body).into_owned())
}

/// express-session with `rolling: true` re-sets `connect.sid` on every page: the page still
/// gets the Messenger for its user. A login answered with a page (no redirect) sets another
/// user's session: that user boots, after a shutdown of the one booted before.
#[tokio::test]
async fn rolling_sessions_and_a_page_setting_a_new_session_boot_the_user_it_names() {
    let Some(redis_url) = store_url("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis").await else {
        return;
    };
    let prefix = format!("{}:", unique_name("express-rolling"));
    let Some(app) = start_express_with(&redis_url, &prefix, COOKIE_SECRET, true) else {
        return;
    };
    let session = express_session(&redis_url, &prefix, COOKIE_SECRET, "");
    let proxy = proxy_with(&config_with_session(
        &format!("http://127.0.0.1:{}", app.port),
        &session,
    ))
    .await;

    let alice = set_session_cookie(
        post_form(&proxy, "/login", "username=alice", None)
            .await
            .headers(),
    )
    .expect("express sets connect.sid");
    let (headers, page) = get_with_headers(&proxy, &alice).await;
    assert_eq!(
        set_session_cookie(&headers).as_deref(),
        Some(alice.as_str()),
        "the rolling app re-sets its session cookie on the page"
    );
    assert_eq!(booted_user(&page).as_deref(), Some("u-alice"), "{page}");
    assert!(!runs_shutdown(&page));
    let booted = set_cookie(&headers, "__isp_booted").expect("the booted-for marker");

    // In the same browser, bob logs in and the app answers with a page.
    let login = post_form(
        &proxy,
        "/login-page",
        "username=bob",
        Some(&format!("{alice}; {booted}")),
    )
    .await;
    assert_eq!(login.status(), StatusCode::OK);
    let bob = set_session_cookie(login.headers()).expect("a new session for bob");
    assert_ne!(bob, alice);
    let page = String::from_utf8_lossy(&body_bytes(login.into_body()).await).into_owned();
    assert!(page.contains("Welcome Bob"), "{page}");
    assert_eq!(booted_user(&page).as_deref(), Some("u-bob"), "{page}");
    assert!(runs_shutdown(&page), "alice's Messenger is shut down first");
}
