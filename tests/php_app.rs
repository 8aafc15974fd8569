//! A real PHP app (`session_start()`, tests/fixtures/php-app) behind the proxy, served by
//! PHP's built-in server: `resolver = "php"` reads the sessions PHP itself wrote, in files
//! and in Redis (phpredis), with both serialize handlers; and what a hostile or broken
//! session cookie or session file gets: the page, without the Messenger.
#![cfg(feature = "server")]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use http::{Request, StatusCode};

fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/php-app")
}

/// Where PHP keeps its sessions in a test: a directory, or a Redis key prefix.
enum Store {
    Files(tempfile::TempDir),
    Redis { url: String, prefix: String },
}

impl Store {
    fn files() -> Store {
        Store::Files(tempfile::tempdir().unwrap())
    }

    async fn redis() -> Option<Store> {
        let url = store_url("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis").await?;
        Some(Store::Redis {
            url,
            prefix: format!("{}:", unique_name("phpsess")),
        })
    }

    /// PHP's `-d` settings for this store.
    fn ini(&self) -> Vec<(&'static str, String)> {
        match self {
            Store::Files(dir) => vec![
                ("session.save_handler", "files".into()),
                ("session.save_path", dir.path().display().to_string()),
            ],
            Store::Redis { url, prefix } => {
                let authority = url.split("://").nth(1).unwrap_or_default();
                let (host_port, db) = authority.split_once('/').unwrap_or((authority, "0"));
                let db = if db.is_empty() { "0" } else { db };
                vec![
                    ("session.save_handler", "redis".into()),
                    (
                        "session.save_path",
                        format!("tcp://{host_port}?database={db}&prefix={prefix}"),
                    ),
                ]
            }
        }
    }

    /// The proxy's `[session.php]` lines for this store.
    fn config(&self) -> String {
        match self {
            Store::Files(dir) => format!(
                "save_handler = \"files\"\npath = \"{}\"",
                dir.path().display()
            ),
            Store::Redis { url, prefix } => {
                format!("save_handler = \"redis\"\nurl = \"{url}\"\nkey = \"{prefix}{{sid}}\"")
            }
        }
    }
}

/// The PHP app with sessions in `store` written by `handler`, and the proxy in front.
fn start(store: &Store, handler: &str) -> Option<(PhpApp, String)> {
    let mut ini = store.ini();
    ini.push(("session.serialize_handler", handler.to_string()));
    ini.push(("session.use_strict_mode", "1".into()));
    let ini: Vec<(&str, &str)> = ini.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = start_php(&app_dir(), "index.php", &ini, &[])?;
    let session = format!(
        r#"
[session]
resolver = "php"
[session.php]
{}
serialize_handler = "{handler}"
[session.fields]
user_id = "/user_id"
email = "/user/email"
name = "/user/name"
"#,
        store.config()
    );
    let config = config_with_session(&format!("http://127.0.0.1:{}", app.port), &session);
    Some((app, config))
}

/// Logs `username` in; the session cookie the app set.
async fn login(proxy: &Proxy, username: &str) -> String {
    let response = post_form(proxy, "/login", &format!("username={username}"), None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    set_cookie(response.headers(), "PHPSESSID").expect("PHP sets PHPSESSID at login")
}

/// Login, a page with the Messenger for that user, another user logging in with a page in
/// the same browser, logout.
async fn login_page_logout(store: Store, handler: &str) {
    let Some((_app, config)) = start(&store, handler) else {
        return;
    };
    let proxy = proxy_with(&config).await;

    let (status, page) = get_page(&proxy, "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Hello visitor") && find_snippet(&page).is_none());

    let alice = login(&proxy, "alice").await;
    let response = client()
        .request(
            Request::get(proxy.url("/"))
                .header("accept", "text/html")
                .header("cookie", &alice)
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let booted = set_cookie(response.headers(), "__isp_booted").expect("booted-for marker");
    let page = String::from_utf8_lossy(&body_bytes(response.into_body()).await).into_owned();
    assert!(page.contains("Hello Alice"), "{page}");
    let (_, _, settings) = find_snippet(&page).expect("alice's page gets the Messenger");
    let claims = verify_messenger_jwt(settings["intercom_user_jwt"].as_str().unwrap());
    assert_eq!(claims["user_id"], "21");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["name"], "Alice");

    // Bob logs in in the same browser and the app answers with a page: bob, after a shutdown.
    let response = post_form(
        &proxy,
        "/login-page",
        "username=bob",
        Some(&format!("{alice}; {booted}")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let bob = set_cookie(response.headers(), "PHPSESSID").expect("a new session id for bob");
    let page = String::from_utf8_lossy(&body_bytes(response.into_body()).await).into_owned();
    assert!(page.contains("Welcome Bob"), "{page}");
    assert_eq!(booted_user(&page).as_deref(), Some("22"), "{page}");
    assert!(runs_shutdown(&page), "alice's Messenger is shut down first");

    let response = post_form(&proxy, "/logout", "", Some(&bob)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, page) = get_page(&proxy, "/", Some(&bob)).await;
    assert!(page.contains("Hello visitor"), "{page}");
    assert!(
        find_snippet(&page).is_none(),
        "no Messenger after logout: {page}"
    );
}

#[tokio::test]
async fn files_with_the_php_serialize_handler() {
    login_page_logout(Store::files(), "php_serialize").await;
}

#[tokio::test]
async fn files_with_the_default_php_handler() {
    login_page_logout(Store::files(), "php").await;
}

#[tokio::test]
async fn phpredis_with_the_default_php_handler() {
    let Some(store) = Store::redis().await else {
        return;
    };
    login_page_logout(store, "php").await;
}

#[tokio::test]
async fn phpredis_with_the_php_serialize_handler() {
    let Some(store) = Store::redis().await else {
        return;
    };
    login_page_logout(store, "php_serialize").await;
}

/// Cookies and session files an attacker or a broken app could produce: the page is served
/// as the app wrote it, with no Messenger, and nothing outside the session directory is read.
#[tokio::test]
async fn hostile_cookies_and_broken_session_files_name_no_one() {
    let store = Store::files();
    let Some((_app, config)) = start(&store, "php") else {
        return;
    };
    let Store::Files(dir) = &store else {
        unreachable!()
    };
    let proxy = proxy_with(&config).await;
    let sessions = dir.path();
    // A session PHP would read for alice, planted outside the session directory.
    let outside = sessions
        .parent()
        .unwrap()
        .join(format!("sess_{}", unique_name("outside")));
    std::fs::write(&outside, b"user_id|i:21;").unwrap();
    let outside_name = outside.file_name().unwrap().to_str().unwrap().to_string();
    let plant = |name: &str, data: &[u8]| {
        std::fs::write(sessions.join(format!("sess_{name}")), data).unwrap()
    };
    plant(
        "object",
        b"user_id|i:21;o|O:8:\"stdClass\":1:{s:1:\"a\";i:1;}",
    );
    plant("recursion", b"user_id|i:21;r|a:1:{i:0;R:2;}");
    plant(
        "truncated",
        b"user_id|i:21;user|a:2:{s:5:\"email\";s:17:\"alice@exa",
    );
    let mut big = b"user_id|i:21;pad|s:1048576:\"".to_vec();
    big.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    big.extend(b"\";");
    plant("big", &big);

    for (cookie, why) in [
        (
            format!("../{outside_name}"),
            "a path out of the session directory",
        ),
        (format!("..%2F{outside_name}"), "the same, URL-encoded"),
        (
            "recursion".to_string(),
            "PHP data with a recursion reference",
        ),
        ("truncated".to_string(), "a truncated session"),
        ("big".to_string(), "a 1 MB session file"),
        ("nosuchsession".to_string(), "a session id PHP never issued"),
    ] {
        let (status, page) = get_page(&proxy, "/", Some(&format!("PHPSESSID={cookie}"))).await;
        assert_eq!(status, StatusCode::OK, "{why}");
        assert!(page.contains("Hello visitor"), "{why}: {page}");
        assert!(find_snippet(&page).is_none(), "{why}: no Messenger");
    }
    // An object is read as its public properties and never instantiated: the user is found.
    let (_, page) = get_page(&proxy, "/", Some("PHPSESSID=object")).await;
    assert_eq!(messenger_user(&page).as_deref(), Some("21"));
}
