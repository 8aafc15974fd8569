//! `[[routes]]` and `[logout] paths` hold for every spelling of a path the app would route
//! the same way: percent-escapes (`%2F` included), `;` parameters, doubled slashes, dot
//! segments, backslashes.
#![cfg(feature = "server")]

mod common;

use common::*;
use http::{HeaderMap, Request, StatusCode};
use serde_json::json;

/// The proxy in front of an app that serves the same HTML page on every path, with
/// `/admin/**` switched off and `/logout` a logout.
async fn proxy(app: &Upstream) -> Proxy {
    proxy_with(&config_text(
        &format!("http://{}", app.addr),
        "",
        "\n[logout]\npaths = [\"/logout\"]\n\n[[routes]]\npath = \"/admin/**\"\ninject = false\n",
    ))
    .await
}

fn alice() -> String {
    let token = session_jwt(json!({
        "sub": "alice",
        "email": "alice@example.com",
        "exp": now_secs() + 3600,
    }));
    format!("session={token}")
}

/// GET `path` (sent exactly as written) as a browser page load with `cookie`.
async fn get(proxy: &Proxy, path: &str, cookie: &str) -> (StatusCode, HeaderMap, String) {
    let request = Request::get(proxy.url(path))
        .header("accept", "text/html")
        .header("cookie", cookie)
        .body(empty())
        .unwrap();
    let response = client().request(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = body_bytes(response.into_body()).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn expires_intercom_session(headers: &HeaderMap) -> bool {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("intercom-session-testapp1=;") && c.contains("Max-Age=0"))
}

#[tokio::test]
async fn encoded_spellings_of_a_switched_off_route_get_no_snippet() {
    let app = html_app().await;
    let proxy = proxy(&app).await;
    let cookie = alice();
    // The rule is in force, and other pages do get the Messenger.
    let (_, _, page) = get(&proxy, "/admin/panel", &cookie).await;
    assert_eq!(page, APP_PAGE);
    let (_, _, page) = get(&proxy, "/dashboard", &cookie).await;
    assert_eq!(messenger_user(&page).as_deref(), Some("alice"));
    for path in [
        // The reported ones.
        "/%61dmin/panel",
        "/admin%2fpanel",
        "/admin;x/panel",
        // And their relatives.
        "/%61%64%6D%69%6E/panel",
        "/admin%2Fpanel",
        "/admin;jsessionid=1/panel",
        "//admin/panel",
        "/./admin/panel",
        "/x/../admin/panel",
        "/x/%2e%2e/admin/panel",
        "/x/..;/admin/panel",
        "/x%2F..%2Fadmin/panel",
        "/admin\\panel",
        "/admin%5Cpanel",
    ] {
        let (status, _, page) = get(&proxy, path, &cookie).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(page, APP_PAGE, "{path}: the page is the app's, untouched");
    }
    // Paths are case-sensitive: another case is another route.
    let (_, _, page) = get(&proxy, "/ADMIN/panel", &cookie).await;
    assert_eq!(messenger_user(&page).as_deref(), Some("alice"));
}

#[tokio::test]
async fn encoded_spellings_of_a_logout_path_are_logouts() {
    let app = html_app().await;
    let proxy = proxy(&app).await;
    let cookie = alice();
    for path in [
        "/logout",
        "/%6Cogout",
        "/%6c%6f%67%6f%75%74",
        "/logout;jsessionid=1",
        "//logout",
        "/./logout",
        "/x/../logout",
        "/x/%2E%2E/logout",
        "/x%2F..%2Flogout",
        "/x\\..\\logout",
        "/logout/",
    ] {
        let (status, headers, page) = get(&proxy, path, &cookie).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            expires_intercom_session(&headers),
            "{path}: Intercom's cookie is expired"
        );
        assert!(runs_shutdown(&page), "{path}: the page shuts down");
        assert_eq!(messenger_user(&page), None, "{path}: no identity");
    }
    for path in ["/logouts", "/log/out", "/x/logout", "/LOGOUT"] {
        let (_, headers, page) = get(&proxy, path, &cookie).await;
        assert!(!expires_intercom_session(&headers), "{path}");
        assert_eq!(messenger_user(&page).as_deref(), Some("alice"), "{path}");
    }
}
