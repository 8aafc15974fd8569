//! End to end with a real Flask 3.1 + Flask-Login app (tests/fixtures/flask-app, from PyPI
//! into a venv the tests make, tests/common/python.rs): Flask keeps the session in the
//! `session` cookie, signed with SECRET_KEY by itsdangerous, and Flask-Login keeps the user's
//! id there as `_user_id`. The proxy verifies the cookie, then fetches the user's record from
//! the app's own JSON endpoint or from SQL, through login, logout, key rotation, cookies Flask
//! itself refuses, ids made to inject SQL, missing records and a slow database.
#![cfg(feature = "server")]

mod common;

use std::path::{Path, PathBuf};

use common::python::{PythonApp, python_output, start_python_app};
use common::*;
use http::StatusCode;

const COOKIE: &str = "session";
const ALICE: &str = "21";
const BOB: &str = "22";
const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";
const MYSQL_DEFAULT: &str = "mysql://root@127.0.0.1:3306/test";
/// Flask's PERMANENT_SESSION_LIFETIME (31 days): the signed cookie's greatest age.
const LIFETIME_SECS: u64 = 31 * 24 * 3600;

/// The app's page, byte for byte.
fn app_page(text: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><title>Flask app</title></head><body><p>{text}</p></body></html>"
    )
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flask-app")
}

/// The app's environment: its key and fallbacks (nothing else read).
fn app_env<'a>(key: &'a str, fallbacks: &'a str) -> [(&'a str, &'a str); 2] {
    [("SECRET_KEY", key), ("SECRET_KEY_FALLBACKS", fallbacks)]
}

/// Starts the app signing with `key` and accepting `fallbacks` (a comma list).
fn start_flask(key: &str, fallbacks: &str) -> Option<PythonApp> {
    start_python_app(&fixture(), "app.py", &app_env(key, fallbacks))
}

/// A file holding `text`, for the `*_file` settings.
fn key_file(dir: &Path, text: &str) -> String {
    let path = dir.join(unique_name("key"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The proxy in front of `app`: `[session.flask]` is `flask`, `lookup` the
/// `[session.lookup]` lines (none when empty), `session` more `[session]` lines and `server`
/// more `[server]` lines.
async fn flask_proxy(
    app: &PythonApp,
    flask: &str,
    lookup: &str,
    session: &str,
    server: &str,
) -> Proxy {
    let (lookup, lookup_fields) = if lookup.is_empty() {
        (String::new(), "")
    } else {
        (
            format!("[session.lookup]\n{lookup}\n"),
            "email = \"/lookup/email\"\nname = \"/lookup/name\"",
        )
    };
    let config = config_with_session(
        &app.url(""),
        &format!(
            r#"[session]
cookie = "{COOKIE}"
resolver = "flask"
cache_ttl = "0s"
{session}

[session.flask]
{flask}

{lookup}
[session.fields]
user_id = "/_user_id"
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

/// `[session.flask]` for `key` (and `fallbacks`), in files in `dir`.
fn flask_section(dir: &Path, key: &str, fallbacks: Option<&str>) -> String {
    let mut section = format!("secret_key_file = \"{}\"", key_file(dir, key));
    if let Some(fallbacks) = fallbacks {
        section.push_str(&format!(
            "\nfallback_keys_file = \"{}\"",
            key_file(dir, fallbacks)
        ));
    }
    section
}

/// Logs `username` in through the proxy: Flask answers 302 with the session cookie, returned
/// as `session=…`.
async fn log_in(proxy: &Proxy, username: &str) -> String {
    let login = post_form(
        proxy,
        "/login",
        &format!("username={username}&password={username}-password"),
        None,
    )
    .await;
    assert_eq!(login.status(), StatusCode::FOUND, "{username}'s login");
    set_cookie(login.headers(), COOKIE).expect("the login sets the session cookie")
}

fn value(cookie: &str) -> &str {
    cookie.strip_prefix("session=").unwrap()
}

/// Checks the page is what the app wrote for `greeting`, untouched: no Messenger.
fn assert_untouched(status: StatusCode, page: &str, greeting: &str, what: &str) {
    assert_eq!(status, StatusCode::OK, "{what}");
    assert_eq!(
        page,
        app_page(greeting),
        "{what}: the app's page, untouched"
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

/// Python that prints the session in cookie `argv[1]` as JSON, read by the app's own
/// session interface with its SECRET_KEY (from the environment).
const READ: &str = r#"
import json, sys
from app import app
print(json.dumps(dict(app.session_interface.get_signing_serializer(app).loads(sys.argv[1]))))
"#;

/// Python that signs session `argv[1]` (JSON) as the app would, with key `argv[3]`,
/// `argv[2]` seconds in the past: the app's own session interface (itsdangerous).
const SIGN: &str = r#"
import json, sys, time
from app import app
app.secret_key = sys.argv[3]
app.config["SECRET_KEY_FALLBACKS"] = []
real_time = time.time
time.time = lambda: real_time() - int(sys.argv[2])
print(app.session_interface.get_signing_serializer(app).dumps(json.loads(sys.argv[1])))
"#;

/// The session in the app's cookie `cookie` (`session=…`), as JSON.
fn read_session(key: &str, cookie: &str) -> serde_json::Value {
    serde_json::from_str(&python_output(
        &fixture(),
        READ,
        &[value(cookie)],
        &app_env(key, ""),
    ))
    .unwrap()
}

/// A `session=…` cookie for `session`, signed with `key`, `age_secs` old.
fn sign_session(session: &serde_json::Value, key: &str, age_secs: u64) -> String {
    let cookie = python_output(
        &fixture(),
        SIGN,
        &[&session.to_string(), &age_secs.to_string(), key],
        &app_env(key, ""),
    );
    format!("{COOKIE}={cookie}")
}

#[tokio::test]
async fn flask_login_users_boot_with_their_record_from_the_apps_own_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let key = unique_name("flask-secret-key");
    let Some(app) = start_flask(&key, "") else {
        return;
    };
    let lookup = format!("url = \"{}\"", app.url("/internal/users/{user_id}"));
    let proxy = flask_proxy(
        &app,
        &flask_section(dir.path(), &key, None),
        &lookup,
        "",
        "",
    )
    .await;

    let (status, page) = get_page(&proxy, "/", None).await;
    assert_untouched(status, &page, "Hello visitor", "no cookie");

    // Alice logs in: Flask-Login puts her id in the signed cookie, the record comes from the
    // app's /internal/users/21.
    let alice = log_in(&proxy, "alice").await;
    assert_eq!(read_session(&key, &alice)["_user_id"], ALICE);
    let (status, page) = get_page(&proxy, "/", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    let claims = assert_boots(&page, "Hello Alice", ALICE);
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["name"], "Alice Liddell");

    // Bob, in another browser at the same time.
    let bob = log_in(&proxy, "bob").await;
    let (_, page) = get_page(&proxy, "/", Some(&bob)).await;
    let claims = assert_boots(&page, "Hello Bob", BOB);
    assert_eq!(claims["email"], "bob@example.com");
    let (_, page) = get_page(&proxy, "/", Some(&alice)).await;
    assert_eq!(messenger_user(&page).as_deref(), Some(ALICE));

    // A well-signed session naming a user the app does not have: the app's user_loader finds
    // nobody, the lookup answers 404, nobody boots.
    let mut ghost = read_session(&key, &alice);
    ghost["_user_id"] = "23".into();
    let (status, page) = get_page(&proxy, "/", Some(&sign_session(&ghost, &key, 0))).await;
    assert_untouched(status, &page, "Hello visitor", "a user with no record");

    // Logout: Flask-Login empties the session and Flask expires the cookie.
    let logout = post_form(&proxy, "/logout", "", Some(&alice)).await;
    assert_eq!(logout.status(), StatusCode::FOUND);
    assert_eq!(
        set_cookie(logout.headers(), COOKIE).as_deref(),
        Some("session="),
        "Flask clears the cookie"
    );
    let (status, page) = get_page(&proxy, "/", None).await;
    assert_untouched(status, &page, "Hello visitor", "after logout");
}

#[tokio::test]
async fn a_rotated_secret_key_still_boots_cookies_signed_with_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let old = unique_name("flask-old-key");
    let new = unique_name("flask-new-key");

    // Alice logs in while the app signs with the old key.
    let Some(old_app) = start_flask(&old, "") else {
        return;
    };
    let old_proxy = flask_proxy(&old_app, &flask_section(dir.path(), &old, None), "", "", "").await;
    let alice = log_in(&old_proxy, "alice").await;
    let (_, page) = get_page(&old_proxy, "/", Some(&alice)).await;
    assert_boots(&page, "Hello Alice", ALICE);
    drop(old_proxy);
    drop(old_app);

    // SECRET_KEY=new, SECRET_KEY_FALLBACKS=old (Flask 3.1): the app still knows alice.
    let Some(app) = start_flask(&new, &old) else {
        return;
    };
    let proxy = flask_proxy(
        &app,
        &flask_section(dir.path(), &new, Some(&old)),
        "",
        "",
        "",
    )
    .await;
    let (status, page) = get_page(&proxy, "/", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    assert_boots(&page, "Hello Alice", ALICE);
    let bob = log_in(&proxy, "bob").await;
    let (_, page) = get_page(&proxy, "/", Some(&bob)).await;
    assert_boots(&page, "Hello Bob", BOB);

    // A proxy told only the new key: the app greets alice, the proxy does not know her.
    let new_only = flask_proxy(&app, &flask_section(dir.path(), &new, None), "", "", "").await;
    let (status, page) = get_page(&new_only, "/", Some(&alice)).await;
    assert_untouched(status, &page, "Hello Alice", "the old key is unknown to it");
    let (_, page) = get_page(&new_only, "/", Some(&bob)).await;
    assert_boots(&page, "Hello Bob", BOB);
}

#[tokio::test]
async fn cookies_flask_refuses_are_visitors_and_the_page_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let key = unique_name("flask-secret-key");
    let Some(app) = start_flask(&key, "") else {
        return;
    };
    // Room for the 100 KB cookie (the default is 64 KiB of headers).
    let proxy = flask_proxy(
        &app,
        &flask_section(dir.path(), &key, None),
        "",
        "",
        "max_header_bytes = 262144",
    )
    .await;
    let alice = log_in(&proxy, "alice").await;
    let bob = log_in(&proxy, "bob").await;
    let session = read_session(&key, &alice);

    // Re-signed now with the app's key: the same session, it boots (the crafting is faithful).
    let (_, page) = get_page(&proxy, "/", Some(&sign_session(&session, &key, 0))).await;
    assert_boots(&page, "Hello Alice", ALICE);

    // Flask's cookies are `payload.timestamp.signature` (a compressed payload starts with
    // another "."): bob's payload under alice's timestamp and signature is a forgery.
    let split = |cookie: &str| {
        let v = value(cookie);
        let (rest, signature) = v.rsplit_once('.').unwrap();
        let (payload, timestamp) = rest.rsplit_once('.').unwrap();
        (payload.to_string(), format!("{timestamp}.{signature}"))
    };
    let (alice_payload, alice_signed) = split(&alice);
    let (bob_payload, _) = split(&bob);
    assert_ne!(alice_payload, bob_payload);
    let cases = [
        (
            format!("{COOKIE}={bob_payload}.{alice_signed}"),
            "bob's session under alice's signature",
        ),
        (
            sign_session(&session, &unique_name("another-key"), 0),
            "alice's session signed with another key",
        ),
        (
            sign_session(&session, &key, LIFETIME_SECS + 3600),
            "alice's session signed past PERMANENT_SESSION_LIFETIME",
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
        assert_untouched(status, &page, "Hello visitor", what);
    }
}

/// A users table of the test's own (`id` text, as Flask-Login's ids are), in the database at
/// `url`; dropped on drop.
struct UsersTable {
    url: String,
    name: String,
}

impl UsersTable {
    async fn create(url: &str) -> UsersTable {
        let name = unique_name("isp_users");
        let table = UsersTable {
            url: url.to_string(),
            name,
        };
        let id = if is_postgres(url) {
            "text"
        } else {
            "VARCHAR(64)"
        };
        table
            .execute(&format!(
                "CREATE TABLE {} (id {id} PRIMARY KEY, email VARCHAR(255), name VARCHAR(255))",
                table.name
            ))
            .await;
        table
            .execute(&format!(
                "INSERT INTO {} (id, email, name) VALUES ('{ALICE}', 'alice@db.example', 'Alice from SQL'), ('{BOB}', 'bob@db.example', 'Bob from SQL')",
                table.name
            ))
            .await;
        table
    }

    async fn execute(&self, sql: &str) {
        execute(&self.url, sql).await.unwrap();
    }

    /// How many rows it has (an error if it is gone).
    async fn rows(&self) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {}", self.name);
        if is_postgres(&self.url) {
            let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
            let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            n
        } else {
            let pool = sqlx::MySqlPool::connect(&self.url).await.unwrap();
            let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            n
        }
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres")
}

async fn execute(url: &str, sql: &str) -> Result<(), sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if is_postgres(url) {
        let pool = sqlx::PgPool::connect(url).await?;
        let done = sqlx::query(sql).execute(&pool).await.map(drop);
        pool.close().await;
        done
    } else {
        let pool = sqlx::MySqlPool::connect(url).await?;
        let done = sqlx::query(sql).execute(&pool).await.map(drop);
        pool.close().await;
        done
    }
}

impl Drop for UsersTable {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop is not async: a runtime of its own on another thread.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(execute(&url, &format!("DROP TABLE IF EXISTS {name}")))
        })
        .join();
    }
}

/// The record from SQL (`query` reading `{table}`): a real login boots with it; ids made to
/// inject SQL (in sessions signed with the app's own key, as a compromised or careless app
/// could write them) and an id with no row are visitors, and the table is intact.
async fn sql_lookup_binds_the_user_id(url: &str, query: &str) {
    let table = UsersTable::create(url).await;
    let dir = tempfile::tempdir().unwrap();
    let key = unique_name("flask-secret-key");
    let Some(app) = start_flask(&key, "") else {
        return;
    };
    let lookup = format!(
        "url = \"{url}\"\nquery = \"{}\"",
        query.replace("{table}", &table.name)
    );
    let proxy = flask_proxy(
        &app,
        &flask_section(dir.path(), &key, None),
        &lookup,
        "timeout = \"5s\"",
        "",
    )
    .await;

    let alice = log_in(&proxy, "alice").await;
    let (status, page) = get_page(&proxy, "/", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    let claims = assert_boots(&page, "Hello Alice", ALICE);
    assert_eq!(claims["email"], "alice@db.example", "the row, not the app");
    assert_eq!(claims["name"], "Alice from SQL");

    let mut session = read_session(&key, &alice);
    let name = &table.name;
    for id in [
        format!("{ALICE} OR 1=1"),
        format!("{ALICE}' OR '1'='1"),
        format!("0' UNION SELECT email, name FROM {name} WHERE id = '{ALICE}"),
        format!("{ALICE}; DROP TABLE {name}; --"),
        format!("{ALICE}'; DROP TABLE {name}; --"),
        "23".to_string(),
    ] {
        session["_user_id"] = id.clone().into();
        let cookie = sign_session(&session, &key, 0);
        let (status, page) = get_page(&proxy, "/", Some(&cookie)).await;
        assert_untouched(status, &page, "Hello visitor", &format!("user id {id:?}"));
    }
    assert_eq!(table.rows().await, 2, "the table is intact");

    // Alice again, after all that.
    let (_, page) = get_page(&proxy, "/", Some(&alice)).await;
    assert_eq!(messenger_user(&page).as_deref(), Some(ALICE));
}

#[tokio::test]
async fn sql_lookup_on_postgresql_binds_the_user_id() {
    let Some(url) = store_url("DATABASE_URL", POSTGRES_DEFAULT, "PostgreSQL").await else {
        return;
    };
    sql_lookup_binds_the_user_id(&url, "SELECT email, name FROM {table} WHERE id = $1").await;
}

#[tokio::test]
async fn sql_lookup_on_mariadb_binds_the_user_id() {
    let Some(url) = store_url("MYSQL_URL", MYSQL_DEFAULT, "MySQL/MariaDB").await else {
        return;
    };
    sql_lookup_binds_the_user_id(&url, "SELECT email, name FROM {table} WHERE id = ?").await;
}

/// A lookup slower than `session.timeout`: the page is served, without identity. (With a
/// longer timeout the same query boots: it is the wait, not the query, that fails.)
#[tokio::test]
async fn a_lookup_slower_than_the_session_timeout_serves_the_page_without_identity() {
    let Some(url) = store_url("DATABASE_URL", POSTGRES_DEFAULT, "PostgreSQL").await else {
        return;
    };
    let table = UsersTable::create(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let key = unique_name("flask-secret-key");
    let Some(app) = start_flask(&key, "") else {
        return;
    };
    let lookup = format!(
        "url = \"{url}\"\nquery = \"SELECT email, name FROM {}, pg_sleep(1) WHERE id = $1\"",
        table.name
    );
    let section = flask_section(dir.path(), &key, None);
    let proxy = flask_proxy(&app, &section, &lookup, "timeout = \"300ms\"", "").await;
    let alice = log_in(&proxy, "alice").await;
    let (status, page) = get_page(&proxy, "/", Some(&alice)).await;
    assert_untouched(status, &page, "Hello Alice", "a lookup past the timeout");

    let patient = flask_proxy(&app, &section, &lookup, "timeout = \"10s\"", "").await;
    let (_, page) = get_page(&patient, "/", Some(&alice)).await;
    let claims = assert_boots(&page, "Hello Alice", ALICE);
    assert_eq!(claims["email"], "alice@db.example");
}
