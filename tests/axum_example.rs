//! `examples/axum.rs` as a user would meet it: an axum app with its own login, with
//! `InjectLayer` around it. The Messenger boots with a JWT that verifies for the logged-in
//! user, shuts down after a logout, and shuts down before booting for the next user.
#![cfg(feature = "server")]

mod common;

#[allow(dead_code)] // its `main`
#[path = "../examples/axum.rs"]
mod example;

use common::*;
use http::{Request, StatusCode};
use intercom_secure_proxy::crypto::Secret;

/// The example app on 127.0.0.1:0, and its address.
async fn serve_example() -> std::net::SocketAddr {
    let app = example::app("testapp1", Secret::new(MESSENGER_SECRET), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A browser session against the example: keeps the cookies it is given.
struct Browser {
    addr: std::net::SocketAddr,
    jar: Jar,
}

impl Browser {
    async fn get(&mut self, path: &str) -> (StatusCode, http::HeaderMap, String) {
        let cookie = self.jar.header();
        let request = Request::get(format!("http://{}{path}", self.addr))
            .header("accept", "text/html")
            .header("cookie", cookie)
            .body(empty())
            .unwrap();
        let response = client().request(request).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        self.jar.absorb(&headers);
        let page = String::from_utf8(body_bytes(response.into_body()).await.to_vec()).unwrap();
        self.jar.run_scripts(&page);
        (status, headers, page)
    }
}

#[tokio::test]
async fn the_axum_example_boots_shuts_down_and_switches_users() {
    let mut browser = Browser {
        addr: serve_example().await,
        jar: Jar::default(),
    };

    // A visitor: the page is the app's, untouched.
    let (_, _, page) = browser.get("/").await;
    assert!(
        page.contains("Log in as alice") && script(&page).is_none(),
        "{page}"
    );

    // Alice logs in: her page boots the Messenger with a JWT signed for her.
    let (status, _, _) = browser.get("/login/alice").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, headers, page) = browser.get("/").await;
    assert!(page.contains("Hello alice"), "{page}");
    assert_eq!(messenger_user(&page).as_deref(), Some("user-alice"));
    assert!(!runs_shutdown(&page));
    assert_eq!(headers["cache-control"], "private, no-store");

    // Bob logs in on the same browser without Alice logging out: shutdown, then Bob.
    browser.get("/login/bob").await;
    let (_, _, page) = browser.get("/").await;
    assert!(runs_shutdown(&page), "{page}");
    assert_eq!(booted_user(&page).as_deref(), Some("user-bob"));
    assert!(!page.contains("user-alice"));

    // Bob logs out with a redirect: Intercom's cookie is expired there, and the next page
    // (a visitor's) runs the shutdown.
    let (status, headers, _) = browser.get("/logout").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set_cookies: Vec<&str> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        set_cookies
            .iter()
            .any(|c| c.starts_with("intercom-session-testapp1=;") && c.contains("Max-Age=0")),
        "{set_cookies:?}"
    );
    let (_, _, page) = browser.get("/").await;
    assert!(page.contains("Log in as alice"));
    assert!(runs_shutdown(&page), "{page}");
    assert_eq!(
        booted_user(&page),
        None,
        "a visitor: no identity after the shutdown"
    );
    // Once only.
    let (_, _, page) = browser.get("/").await;
    assert!(script(&page).is_none(), "{page}");
}
