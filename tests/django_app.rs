//! End to end with a real Django 5.2 app (tests/fixtures/django-app, from PyPI into a venv
//! the tests make, tests/common/python.rs): `django.contrib.auth` logs users in and
//! `django.contrib.sessions` keeps the session in a PostgreSQL or MariaDB `django_session` row
//! (the db backend) or in the `sessionid` cookie itself (signed_cookies), signed with
//! SECRET_KEY. The proxy reads the session where Django wrote it, then the user's record from
//! `auth_user` (SQL) or from the app (HTTP), through login, compressed sessions, logout, key
//! rotation, expiry and cookies Django itself refuses.
#![cfg(feature = "server")]

mod common;

use std::path::{Path, PathBuf};

use common::python::{PythonApp, python_output, start_python_app};
use common::*;
use http::StatusCode;

const COOKIE: &str = "sessionid";
const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";
const MYSQL_DEFAULT: &str = "mysql://root@127.0.0.1:3306/test";
/// Django's SESSION_COOKIE_AGE (two weeks): the signed cookie's greatest age.
const COOKIE_AGE_SECS: u64 = 14 * 24 * 3600;

/// The app's page, byte for byte.
fn app_page(text: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><title>Django app</title></head><body><p>{text}</p></body></html>"
    )
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/django-app")
}

/// The app's environment: every variable its settings read (so none leaks in from the
/// test's own), `settings` overriding the empty defaults.
fn app_env<'a>(settings: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("DJANGO_SETTINGS_MODULE", "djapp.settings"),
        ("SECRET_KEY", ""),
        ("SECRET_KEY_FALLBACKS", ""),
        ("SESSION_ENGINE", ""),
        ("DATABASE", ""),
        ("SQLITE_DIR", ""),
    ];
    for &(name, value) in settings {
        match env.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => panic!("the fixture does not read {name}"),
        }
    }
    env
}

/// Starts the app (migrate, users alice and bob, then the server) with `settings`.
fn start_django(settings: &[(&str, &str)]) -> Option<PythonApp> {
    start_python_app(&fixture(), "serve.py", &app_env(settings))
}

/// A file holding `text` in `dir`, for the `*_file` settings.
fn key_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The proxy in front of `app`: `[session.django]` is `django`, `lookup` the
/// `[session.lookup]` lines (none when empty), and `server` more `[server]` lines.
async fn django_proxy(app: &PythonApp, django: &str, lookup: &str, server: &str) -> Proxy {
    let lookup_fields = if lookup.is_empty() {
        ""
    } else {
        "email = \"/lookup/email\"\nname = \"/lookup/name\""
    };
    let lookup = if lookup.is_empty() {
        String::new()
    } else {
        format!("[session.lookup]\n{lookup}\n")
    };
    let config = config_with_session(
        &app.url(""),
        &format!(
            r#"[session]
cookie = "{COOKIE}"
resolver = "django"
cache_ttl = "0s"
timeout = "5s"

[session.django]
{django}

{lookup}
[session.fields]
user_id = "/_auth_user_id"
{lookup_fields}
"#
        ),
    );
    let config = config.replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:0\"\n{server}"),
        1,
    );
    proxy_with(&config).await
}

/// Logs `username` in through the proxy (`query` after `/login`): Django answers 302 with a
/// new `sessionid`, returned as `sessionid=…`.
async fn log_in(proxy: &Proxy, username: &str, query: &str) -> String {
    let login = post_form(
        proxy,
        &format!("/login{query}"),
        &format!("username={username}&password={username}-password"),
        None,
    )
    .await;
    assert_eq!(login.status(), StatusCode::FOUND, "{username}'s login");
    set_cookie(login.headers(), COOKIE).expect("the login sets sessionid")
}

/// The cookie's value (after `sessionid=`).
fn value(cookie: &str) -> &str {
    cookie.strip_prefix("sessionid=").unwrap()
}

/// Checks `page` is what the app wrote for a visitor, untouched: no Messenger.
fn assert_visitor_page(status: StatusCode, page: &str, what: &str) {
    assert_eq!(status, StatusCode::OK, "{what}");
    assert_eq!(
        page,
        app_page("Hello visitor"),
        "{what}: the app's page, untouched"
    );
}

/// GET `path` as a browser would with `cookie`: the response's headers and page.
async fn get_with_headers(proxy: &Proxy, path: &str, cookie: &str) -> (http::HeaderMap, String) {
    let req = http::Request::get(proxy.url(path))
        .header("accept", "text/html")
        .header("cookie", cookie);
    let response = client().request(req.body(empty()).unwrap()).await.unwrap();
    let headers = response.headers().clone();
    let body = body_bytes(response.into_body()).await;
    (headers, String::from_utf8_lossy(&body).into_owned())
}

/// The page without what the proxy injected: what the app wrote.
fn app_part(page: &str) -> String {
    match script(page) {
        Some(injected) => page.replacen(&format!("{injected}</script>"), "", 1),
        None => page.to_string(),
    }
}

/// A db-backend cookie naming no live session: Django answers the visitor's page and
/// expires the cookie, which the proxy takes for a logout (a shutdown, never a boot).
async fn assert_db_visitor(proxy: &Proxy, cookie: &str, what: &str) {
    let (headers, page) = get_with_headers(proxy, "/", cookie).await;
    assert_eq!(
        app_part(&page),
        app_page("Hello visitor"),
        "{what}: the app's page"
    );
    assert_eq!(
        set_cookie(&headers, COOKIE).as_deref(),
        Some("sessionid=\"\""),
        "{what}: Django expires the cookie"
    );
    assert!(booted_user(&page).is_none(), "{what}: nobody boots");
    assert!(
        runs_shutdown(&page),
        "{what}: the cleared cookie shuts the Messenger down"
    );
}

/// Checks `page` greets `greeting` and boots the Messenger for `user_id`; its claims.
fn assert_boots(page: &str, greeting: &str, user_id: &str) -> serde_json::Value {
    assert_eq!(without_snippet(page), app_page(greeting), "{page}");
    let (_, _, settings) = find_snippet(page).expect("the page gets the Messenger");
    let claims = verify_messenger_jwt(settings["intercom_user_jwt"].as_str().unwrap());
    assert_eq!(claims["user_id"], user_id, "{claims}");
    claims
}

/// A database of its own for a test (Django's table names are fixed), on the PostgreSQL or
/// MariaDB server at `admin`; dropped on drop.
struct TestDatabase {
    admin: String,
    name: String,
    /// The database's URL.
    url: String,
}

impl TestDatabase {
    async fn create(admin: &str) -> TestDatabase {
        let name = unique_name("isp");
        if is_postgres(admin) {
            let pool = sqlx::PgPool::connect(admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        } else {
            let pool = sqlx::MySqlPool::connect(admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE {name} CHARACTER SET utf8mb4"
            )))
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let base = admin.split(['?', '#']).next().unwrap();
        let (server, _) = base.split_at(base.rfind('/').unwrap());
        TestDatabase {
            admin: admin.to_string(),
            url: format!("{server}/{name}"),
            name,
        }
    }

    fn is_postgres(&self) -> bool {
        is_postgres(&self.url)
    }

    /// The first column of the first row of `sql` (a text value), if any.
    async fn text(&self, sql: &str) -> Option<String> {
        if self.is_postgres() {
            let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
            let v = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_optional(&pool)
                .await
                .unwrap();
            pool.close().await;
            v
        } else {
            let pool = sqlx::MySqlPool::connect(&self.url).await.unwrap();
            let v = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_optional(&pool)
                .await
                .unwrap();
            pool.close().await;
            v
        }
    }

    async fn execute(&self, sql: &str) -> u64 {
        if self.is_postgres() {
            let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
            let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            done.rows_affected()
        } else {
            let pool = sqlx::MySqlPool::connect(&self.url).await.unwrap();
            let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            done.rows_affected()
        }
    }

    /// `username`'s primary key, as Django stores it in the session (a string).
    async fn user_id(&self, username: &str) -> String {
        let cast = if self.is_postgres() {
            "id::text"
        } else {
            "CAST(id AS CHAR)"
        };
        self.text(&format!(
            "SELECT {cast} FROM auth_user WHERE username = '{username}'"
        ))
        .await
        .unwrap_or_else(|| panic!("{username} in auth_user"))
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres")
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop is not async: a runtime of its own on another thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if is_postgres(&admin) {
                    if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&pool)
                        .await;
                        pool.close().await;
                    }
                } else if let Ok(pool) = sqlx::MySqlPool::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name}"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// The db backend on the server at `admin` (a database of the test's own, where the app
/// migrates and keeps both auth_user and django_session), the user's record from auth_user
/// by `query`: login, another user at the same time with a compressed session, a session key
/// Django never issued, a cut one, an expired row, logout.
async fn db_sessions_boot_through_login_and_logout(admin: &str, query: &str) {
    let db = TestDatabase::create(admin).await;
    let dir = tempfile::tempdir().unwrap();
    let key = unique_name("django-secret-key");
    let Some(app) = start_django(&[
        ("SECRET_KEY", &key),
        ("SESSION_ENGINE", "db"),
        ("DATABASE", &db.url),
    ]) else {
        return;
    };
    let proxy = django_proxy(
        &app,
        &format!(
            "secret_key_file = \"{}\"\nbackend = \"db\"\nurl = \"{}\"",
            key_file(dir.path(), "secret-key", &key),
            db.url
        ),
        &format!("url = \"{}\"\nquery = \"{query}\"", db.url),
        "",
    )
    .await;
    let alice_id = db.user_id("alice").await;
    let bob_id = db.user_id("bob").await;

    let (status, page) = get_page(&proxy, "/", None).await;
    assert_visitor_page(status, &page, "no cookie");

    // Alice logs in: her page boots her, with her record from auth_user.
    let alice = log_in(&proxy, "alice", "").await;
    let (status, page) = get_page(&proxy, "/", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    let claims = assert_boots(&page, "Hello Alice", &alice_id);
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["name"], "Alice Liddell", "first_name and last_name");

    // Bob, in another browser, with a big session: Django stores it zlib-compressed.
    let bob = log_in(&proxy, "bob", "?big=1").await;
    let data = db
        .text(&format!(
            "SELECT session_data FROM django_session WHERE session_key = '{}'",
            value(&bob)
        ))
        .await
        .expect("bob's row");
    assert!(
        data.starts_with('.'),
        "a compressed session starts with '.': {data:.40}"
    );
    let (_, page) = get_page(&proxy, "/", Some(&bob)).await;
    let claims = assert_boots(&page, "Hello Bob", &bob_id);
    assert_eq!(claims["name"], "Bob Builder");
    let (_, page) = get_page(&proxy, "/", Some(&alice)).await;
    assert_eq!(messenger_user(&page).as_deref(), Some(alice_id.as_str()));

    // A session key Django never issued, and alice's cut short: visitors to both.
    let forged = format!("{COOKIE}=0123456789abcdefghijklmnopqrstuv");
    assert_db_visitor(&proxy, &forged, "an unknown session key").await;
    assert_db_visitor(&proxy, &alice[..alice.len() - 4], "a truncated session key").await;

    // Bob's row expires (Django keeps expired rows until clearsessions): nobody.
    let expire = if db.is_postgres() {
        "now() - interval '1 hour'"
    } else {
        "UTC_TIMESTAMP(6) - INTERVAL 1 HOUR"
    };
    let changed = db
        .execute(&format!(
            "UPDATE django_session SET expire_date = {expire} WHERE session_key = '{}'",
            value(&bob)
        ))
        .await;
    assert_eq!(changed, 1);
    assert_db_visitor(&proxy, &bob, "an expired session row").await;

    // Alice logs out: Django deletes her row and her cookie; the old cookie is nobody.
    let logout = post_form(&proxy, "/logout", "", Some(&alice)).await;
    assert_eq!(logout.status(), StatusCode::FOUND);
    assert_eq!(
        set_cookie(logout.headers(), COOKIE).as_deref(),
        Some("sessionid=\"\""),
        "Django clears the cookie"
    );
    assert_db_visitor(&proxy, &alice, "a logged-out session").await;
}

#[tokio::test]
async fn db_sessions_on_postgresql_boot_with_the_user_record_from_auth_user() {
    let Some(admin) = store_url("DATABASE_URL", POSTGRES_DEFAULT, "PostgreSQL").await else {
        return;
    };
    db_sessions_boot_through_login_and_logout(
        &admin,
        "SELECT email, first_name || ' ' || last_name AS name FROM auth_user WHERE id = $1",
    )
    .await;
}

#[tokio::test]
async fn db_sessions_on_mariadb_boot_with_the_user_record_from_auth_user() {
    let Some(admin) = store_url("MYSQL_URL", MYSQL_DEFAULT, "MySQL/MariaDB").await else {
        return;
    };
    db_sessions_boot_through_login_and_logout(
        &admin,
        "SELECT email, CONCAT(first_name, ' ', last_name) AS name FROM auth_user WHERE id = ?",
    )
    .await;
}

/// The signed_cookies app with its auth tables in SQLite under `dir`, signing with `key`
/// (and accepting `fallbacks`, a comma list).
fn signed_cookies_app(dir: &Path, key: &str, fallbacks: &str) -> Option<PythonApp> {
    start_django(&[
        ("SECRET_KEY", key),
        ("SECRET_KEY_FALLBACKS", fallbacks),
        ("SESSION_ENGINE", "signed_cookies"),
        ("SQLITE_DIR", &dir.display().to_string()),
    ])
}

/// `[session.django]` for signed cookies under `key` (and `fallbacks`), in files in `dir`.
fn signed_cookies_section(dir: &Path, key: &str, fallbacks: Option<&str>) -> String {
    let mut section = format!(
        "secret_key_file = \"{}\"\nbackend = \"signed_cookies\"",
        key_file(dir, &unique_name("secret-key"), key)
    );
    if let Some(fallbacks) = fallbacks {
        section.push_str(&format!(
            "\nfallback_keys_file = \"{}\"",
            key_file(dir, &unique_name("fallback-keys"), fallbacks)
        ));
    }
    section
}

#[tokio::test]
async fn signed_cookie_sessions_boot_compressed_with_the_user_record_from_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let key = unique_name("django-secret-key");
    let Some(app) = signed_cookies_app(dir.path(), &key, "") else {
        return;
    };
    let lookup = format!("url = \"{}\"", app.url("/internal/users/{user_id}"));
    let proxy = django_proxy(
        &app,
        &signed_cookies_section(dir.path(), &key, None),
        &lookup,
        "",
    )
    .await;

    let (status, page) = get_page(&proxy, "/", None).await;
    assert_visitor_page(status, &page, "no cookie");

    // The whole session is in the cookie, ~30 KB of it compressed to a few hundred bytes.
    let alice = log_in(&proxy, "alice", "?big=1").await;
    assert!(
        value(&alice).starts_with('.') && alice.len() < 4096,
        "a compressed signed session: {alice}"
    );
    let (status, page) = get_page(&proxy, "/", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    let claims = assert_boots(&page, "Hello Alice", "1");
    assert_eq!(
        claims["email"], "alice@example.com",
        "from /internal/users/1"
    );
    assert_eq!(claims["name"], "Alice Liddell");

    // A small session (not compressed) for bob.
    let bob = log_in(&proxy, "bob", "").await;
    let (_, page) = get_page(&proxy, "/", Some(&bob)).await;
    assert_boots(&page, "Hello Bob", "2");

    // Logout clears the cookie: the browser sends none, nobody boots.
    let logout = post_form(&proxy, "/logout", "", Some(&alice)).await;
    assert_eq!(logout.status(), StatusCode::FOUND);
    assert_eq!(
        set_cookie(logout.headers(), COOKIE).as_deref(),
        Some("sessionid=\"\"")
    );
    let (status, page) = get_page(&proxy, "/", None).await;
    assert_visitor_page(status, &page, "after logout");
}

#[tokio::test]
async fn a_rotated_secret_key_still_boots_cookies_signed_with_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let old = unique_name("django-old-key");
    let new = unique_name("django-new-key");

    // Alice logs in while the app signs with the old key.
    let Some(old_app) = signed_cookies_app(dir.path(), &old, "") else {
        return;
    };
    let old_proxy = django_proxy(
        &old_app,
        &signed_cookies_section(dir.path(), &old, None),
        "",
        "",
    )
    .await;
    let alice = log_in(&old_proxy, "alice", "").await;
    let (_, page) = get_page(&old_proxy, "/", Some(&alice)).await;
    assert_boots(&page, "Hello Alice", "1");
    drop(old_proxy);
    drop(old_app);

    // The app restarts with SECRET_KEY=new, SECRET_KEY_FALLBACKS=old (same users).
    let Some(app) = signed_cookies_app(dir.path(), &new, &old) else {
        return;
    };
    let proxy = django_proxy(
        &app,
        &signed_cookies_section(dir.path(), &new, Some(&old)),
        "",
        "",
    )
    .await;
    let (status, page) = get_page(&proxy, "/", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    assert_boots(&page, "Hello Alice", "1");
    let bob = log_in(&proxy, "bob", "").await;
    let (_, page) = get_page(&proxy, "/", Some(&bob)).await;
    assert_boots(&page, "Hello Bob", "2");

    // Another proxy, told only the new key.
    let new_only = django_proxy(
        &app,
        &signed_cookies_section(dir.path(), &new, None),
        "",
        "",
    )
    .await;

    // A page that never reads the session: the app leaves the cookie alone, only the
    // request's cookie names the user, and only the fallback key verifies it.
    let (status, page) = get_page(&proxy, "/about", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    assert_boots(&page, "About", "1");
    let (status, page) = get_page(&new_only, "/about", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page,
        app_page("About"),
        "untouched: the old key is unknown to it"
    );

    // A page that reads the session: Django accepts it through SECRET_KEY_FALLBACKS and
    // re-signs it under the new key, which the page boots for with either proxy.
    let (headers, page) = get_with_headers(&proxy, "/", &alice).await;
    assert_boots(&page, "Hello Alice", "1");
    let renewed = set_cookie(&headers, COOKIE).expect("Django re-signs the session");
    assert_ne!(renewed, alice);
    let (headers, page) = get_with_headers(&new_only, "/", &alice).await;
    assert!(set_cookie(&headers, COOKIE).is_some());
    assert_boots(&page, "Hello Alice", "1");
    let (_, page) = get_page(&new_only, "/about", Some(&renewed)).await;
    assert_boots(&page, "About", "1");
    let (_, page) = get_page(&new_only, "/about", Some(&bob)).await;
    assert_boots(&page, "About", "2");
}

/// Python that re-signs the session in cookie `argv[1]` (read with the app's SECRET_KEY, from
/// the environment) with key `argv[3]`, `argv[2]` seconds in the past, through Django's own
/// signed_cookies SessionStore.
const RESIGN: &str = r#"
import sys, time
import django
django.setup()
from django.conf import settings
from django.contrib.sessions.backends.signed_cookies import SessionStore
data = SessionStore(session_key=sys.argv[1]).load()
assert data, "the cookie does not load"
settings.SECRET_KEY = sys.argv[3]
real_time = time.time
time.time = lambda: real_time() - int(sys.argv[2])
store = SessionStore()
store._session_cache = data
print(store._get_session_key())
"#;

#[tokio::test]
async fn cookies_django_refuses_are_visitors_and_the_page_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let key = unique_name("django-secret-key");
    let Some(app) = signed_cookies_app(dir.path(), &key, "") else {
        return;
    };
    // Room for the 100 KB cookie (the default is 64 KiB of headers).
    let proxy = django_proxy(
        &app,
        &signed_cookies_section(dir.path(), &key, None),
        "",
        "max_header_bytes = 262144",
    )
    .await;
    let alice = log_in(&proxy, "alice", "").await;
    let bob = log_in(&proxy, "bob", "").await;
    let sqlite = dir.path().display().to_string();
    let env = app_env(&[
        ("SECRET_KEY", &key),
        ("SESSION_ENGINE", "signed_cookies"),
        ("SQLITE_DIR", &sqlite),
    ]);
    let resign = |age: u64, with_key: &str| {
        let cookie = python_output(
            &fixture(),
            RESIGN,
            &[value(&alice), &age.to_string(), with_key],
            &env,
        );
        format!("{COOKIE}={cookie}")
    };

    // Re-signed now with the app's key: the same session, it boots (the crafting is faithful).
    let (_, page) = get_page(&proxy, "/", Some(&resign(0, &key))).await;
    assert_boots(&page, "Hello Alice", "1");

    // signed_cookies values are `payload:timestamp:signature`.
    let (alice_payload, alice_signed) = value(&alice).split_once(':').unwrap();
    let (bob_payload, _) = value(&bob).split_once(':').unwrap();
    assert_ne!(alice_payload, bob_payload);
    let cases = [
        (
            format!("{COOKIE}={bob_payload}:{alice_signed}"),
            "bob's session under alice's signature",
        ),
        (
            resign(0, &unique_name("another-key")),
            "alice's session signed with another key",
        ),
        (
            resign(COOKIE_AGE_SECS + 3600, &key),
            "alice's session signed past SESSION_COOKIE_AGE",
        ),
        (
            alice[..alice.len() - 5].to_string(),
            "alice's cookie cut short",
        ),
        (
            format!("{COOKIE}={}", "A".repeat(100 * 1024)),
            "a 100 KB cookie",
        ),
    ];
    for (cookie, what) in &cases {
        let (status, page) = get_page(&proxy, "/", Some(cookie)).await;
        assert_visitor_page(status, &page, what);
    }
}
