//! Session resolvers against real stores: Redis, PostgreSQL, MariaDB/MySQL and an
//! introspection endpoint. Each test uses its own keys or tables, so they run in parallel.
#![cfg(feature = "server")]

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use http::{Response, StatusCode};
use redis::AsyncCommands;
use serde_json::json;

const REDIS_DEFAULT: &str = "redis://127.0.0.1:6379/0";
const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";
const MYSQL_DEFAULT: &str = "mysql://root@127.0.0.1:3306/test";

fn redis_session(redis_url: &str, prefix: &str, extra: &str) -> String {
    format!(
        r#"
[session]
cookie = "sid"
resolver = "redis"
timeout = "500ms"
cache_ttl = "0s"
[session.fields]
user_id = "/user/id"
email = "/user/email"
plan = "/plan"
[session.redis]
url = "{redis_url}"
key = "{prefix}:{{sid}}"
{extra}
"#
    )
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn redis_json_and_hash_sessions_resolve_and_unknown_ones_do_not() {
    let Some(url) = store_url("REDIS_URL", REDIS_DEFAULT, "Redis").await else {
        return;
    };
    let prefix = unique_name("sess");
    let mut conn = redis_conn(&url).await;
    let _: () = conn
        .set(
            format!("{prefix}:s-alice"),
            json!({"user": {"id": "u-1", "email": "alice@example.com"}, "plan": "pro"}).to_string(),
        )
        .await
        .unwrap();
    let _: () = conn
        .hset_multiple(
            format!("{prefix}:s-bob"),
            &[
                ("user", r#"{"id":"u-2","email":"bob@example.com"}"#),
                ("plan", "free"),
            ],
        )
        .await
        .unwrap();
    let _: () = conn
        .set(
            format!("{prefix}:s-nobody"),
            json!({"cookie": {}}).to_string(),
        )
        .await
        .unwrap();

    let app = html_app().await;
    let proxy = proxy_with(&config_with_session(
        &format!("http://{}", app.addr),
        &redis_session(&url, &prefix, ""),
    ))
    .await;
    let (_, page) = get_page(&proxy, "/", Some("sid=s-alice")).await;
    assert_eq!(messenger_user(&page).as_deref(), Some("u-1"));
    let (_, _, settings) = find_snippet(&page).unwrap();
    let claims = verify_messenger_jwt(settings["intercom_user_jwt"].as_str().unwrap());
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["plan"], "pro");

    let (_, page) = get_page(&proxy, "/", Some("sid=s-bob")).await;
    assert_eq!(
        messenger_user(&page).as_deref(),
        Some("u-2"),
        "a hash session resolves too"
    );

    for cookie in ["sid=s-unknown", "sid=s-nobody", "sid=*", "other=s-alice"] {
        let (status, page) = get_page(&proxy, "/", Some(cookie)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page, APP_PAGE, "{cookie}: untouched");
    }
    let _: () = conn
        .del(&[
            format!("{prefix}:s-alice"),
            format!("{prefix}:s-bob"),
            format!("{prefix}:s-nobody"),
        ])
        .await
        .unwrap();
}

#[tokio::test]
async fn express_cookies_are_verified_before_the_lookup() {
    let Some(url) = store_url("REDIS_URL", REDIS_DEFAULT, "Redis").await else {
        return;
    };
    let prefix = unique_name("sess");
    let mut conn = redis_conn(&url).await;
    let _: () = conn
        .set(
            format!("{prefix}:abc123"),
            json!({"user": {"id": "u-9", "email": "e@x.io"}}).to_string(),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("cookie-secret");
    std::fs::write(&secret_file, "keyboard cat\n").unwrap();
    let session = redis_session(
        &url,
        &prefix,
        &format!(
            "cookie_format = \"express\"\ncookie_secret_file = \"{}\"",
            secret_file.display()
        ),
    );
    let app = html_app().await;
    let proxy = proxy_with(&config_with_session(
        &format!("http://{}", app.addr),
        &session,
    ))
    .await;

    let good = express_cookie("abc123", "keyboard cat");
    let (_, page) = get_page(&proxy, "/", Some(&format!("sid={good}"))).await;
    assert_eq!(messenger_user(&page).as_deref(), Some("u-9"));

    let forged = express_cookie("abc123", "guessed secret");
    let tampered = good.replacen("abc123", "abc124", 1);
    for cookie in [
        forged,
        tampered,
        "abc123".to_string(),
        "s%3Aabc123".to_string(),
    ] {
        let (_, page) = get_page(&proxy, "/", Some(&format!("sid={cookie}"))).await;
        assert_eq!(page, APP_PAGE, "{cookie}: a bad signature is anonymous");
    }
    let _: () = conn.del(format!("{prefix}:abc123")).await.unwrap();
}

#[tokio::test]
async fn cached_sessions_survive_the_store_and_cache_ttl_zero_does_not_cache() {
    let Some(url) = store_url("REDIS_URL", REDIS_DEFAULT, "Redis").await else {
        return;
    };
    let prefix = unique_name("sess");
    let mut conn = redis_conn(&url).await;
    let key = format!("{prefix}:s1");
    let value = json!({"user": {"id": "u-5"}}).to_string();
    let app = html_app().await;

    let cached =
        redis_session(&url, &prefix, "").replace("cache_ttl = \"0s\"", "cache_ttl = \"1h\"");
    let proxy = proxy_with(&config_with_session(
        &format!("http://{}", app.addr),
        &cached,
    ))
    .await;
    let _: () = conn.set(&key, &value).await.unwrap();
    assert_eq!(
        messenger_user(&get_page(&proxy, "/", Some("sid=s1")).await.1).as_deref(),
        Some("u-5")
    );
    let _: () = conn.del(&key).await.unwrap();
    assert_eq!(
        messenger_user(&get_page(&proxy, "/", Some("sid=s1")).await.1).as_deref(),
        Some("u-5"),
        "served from the cache"
    );

    let uncached = proxy_with(&config_with_session(
        &format!("http://{}", app.addr),
        &redis_session(&url, &prefix, ""),
    ))
    .await;
    let _: () = conn.set(&key, &value).await.unwrap();
    assert_eq!(
        messenger_user(&get_page(&uncached, "/", Some("sid=s1")).await.1).as_deref(),
        Some("u-5")
    );
    let _: () = conn.del(&key).await.unwrap();
    assert_eq!(
        get_page(&uncached, "/", Some("sid=s1")).await.1,
        APP_PAGE,
        "cache_ttl = 0: the deletion is seen at once"
    );
}

/// A private redis-server on its own port, for outage tests.
struct PrivateRedis {
    child: Child,
}

impl PrivateRedis {
    async fn start(port: u16) -> Option<PrivateRedis> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        // Ready once it answers PING (bounded polling, not a fixed sleep).
        let url = format!("redis://127.0.0.1:{port}/0");
        for _ in 0..200 {
            if let Ok(client) = redis::Client::open(url.as_str())
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return Some(PrivateRedis { child });
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("redis-server on port {port} did not start");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_redis_outage_serves_pages_without_identity_and_identity_returns_after_restart() {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is needed in CI"
        );
        eprintln!("skipped: no redis-server binary");
        return;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("redis://127.0.0.1:{port}/0");
    let seed = |url: String| async move {
        let mut conn = redis_conn(&url).await;
        let _: () = conn
            .set("sess:s1", json!({"user": {"id": "u-7"}}).to_string())
            .await
            .unwrap();
    };
    let server = PrivateRedis::start(port).await.unwrap();
    seed(url.clone()).await;

    let app = html_app().await;
    let session = redis_session(&url, "sess", "");
    let proxy = proxy_with(&config_with_session(
        &format!("http://{}", app.addr),
        &session,
    ))
    .await;
    assert_eq!(
        messenger_user(&get_page(&proxy, "/", Some("sid=s1")).await.1).as_deref(),
        Some("u-7")
    );

    drop(server);
    let (status, page) = get_page(&proxy, "/", Some("sid=s1")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the page is served while the store is down"
    );
    assert_eq!(page, APP_PAGE, "without identity");

    let _server = PrivateRedis::start(port).await.unwrap();
    seed(url.clone()).await;
    // The connection manager reconnects on its own; a few pages may still miss while it does.
    let mut user = None;
    for _ in 0..50 {
        user = messenger_user(&get_page(&proxy, "/", Some("sid=s1")).await.1);
        if user.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        user.as_deref(),
        Some("u-7"),
        "identity is back without a restart of the proxy"
    );
}

#[tokio::test]
async fn parallel_users_never_get_each_others_identity() {
    let Some(url) = store_url("REDIS_URL", REDIS_DEFAULT, "Redis").await else {
        return;
    };
    let prefix = unique_name("sess");
    let mut conn = redis_conn(&url).await;
    for i in 0..20 {
        let _: () = conn
            .set(
                format!("{prefix}:s{i}"),
                json!({"user": {"id": format!("u-{i}")}}).to_string(),
            )
            .await
            .unwrap();
    }
    let app = html_app().await;
    let session =
        redis_session(&url, &prefix, "").replace("cache_ttl = \"0s\"", "cache_ttl = \"30s\"");
    let proxy = Arc::new(
        proxy_with(&config_with_session(
            &format!("http://{}", app.addr),
            &session,
        ))
        .await,
    );
    let mut tasks = Vec::new();
    for round in 0..10 {
        for i in 0..20 {
            let proxy = proxy.clone();
            tasks.push(tokio::spawn(async move {
                let (_, page) =
                    get_page(&proxy, &format!("/r{round}"), Some(&format!("sid=s{i}"))).await;
                (i, messenger_user(&page))
            }));
        }
    }
    for task in tasks {
        let (i, user) = task.await.unwrap();
        assert_eq!(
            user,
            Some(format!("u-{i}")),
            "session s{i} must only ever be u-{i}"
        );
    }
    for i in 0..20 {
        let _: () = conn.del(format!("{prefix}:s{i}")).await.unwrap();
    }
}

async fn sql_proxy(url: &str, query: &str) -> (Upstream, Proxy) {
    let session = format!(
        r#"
[session]
cookie = "sid"
resolver = "sql"
timeout = "2s"
cache_ttl = "0s"
[session.fields]
user_id = "/user_id"
email = "/email"
plan = "/data/plan"
[session.sql]
url = "{url}"
query = "{query}"
"#
    );
    let app = html_app().await;
    let proxy = proxy_with(&config_with_session(
        &format!("http://{}", app.addr),
        &session,
    ))
    .await;
    (app, proxy)
}

#[tokio::test]
async fn postgres_sessions_resolve_expired_and_injection_looking_ids_do_not() {
    let Some(url) = store_url("DATABASE_URL", POSTGRES_DEFAULT, "PostgreSQL").await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let table = unique_name("sessions");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {table} (id text PRIMARY KEY, user_id bigint, email text, data jsonb, expires_at timestamptz)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} VALUES
         ('s-valid', 1001, 'alice@example.com', '{{\"plan\": \"pro\"}}', now() + interval '1 hour'),
         ('s-expired', 1002, 'bob@example.com', '{{}}', now() - interval '1 hour')"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let query =
        format!("SELECT user_id, email, data FROM {table} WHERE id = $1 AND expires_at > now()");
    let (_app, proxy) = sql_proxy(&url, &query).await;

    let (_, page) = get_page(&proxy, "/", Some("sid=s-valid")).await;
    let (_, _, settings) = find_snippet(&page).expect("valid session");
    let claims = verify_messenger_jwt(settings["intercom_user_jwt"].as_str().unwrap());
    assert_eq!(claims["user_id"], "1001", "a numeric id becomes a string");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["plan"], "pro", "JSONB columns are nested values");

    for sid in [
        "s-expired",
        "s-unknown",
        "x' OR '1'='1",
        "s-valid'; DROP TABLE x; --",
    ] {
        let (_, page) = get_page(&proxy, "/", Some(&format!("sid={sid}"))).await;
        assert_eq!(page, APP_PAGE, "{sid}: no identity");
    }
    let rows: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(rows, 2, "the table is intact");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(&pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn mysql_sessions_resolve_and_expired_ones_do_not() {
    let Some(url) = store_url("MYSQL_URL", MYSQL_DEFAULT, "MySQL/MariaDB").await else {
        return;
    };
    let pool = sqlx::MySqlPool::connect(&url).await.unwrap();
    let table = unique_name("sessions");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {table} (id VARCHAR(64) PRIMARY KEY, user_id VARCHAR(64), email VARCHAR(255), data JSON, expires_at DATETIME)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} VALUES
         ('s-valid', 'u-1', 'alice@example.com', '{{\"plan\": \"pro\"}}', NOW() + INTERVAL 1 HOUR),
         ('s-numeric', '1e3', 'n@example.com', NULL, NOW() + INTERVAL 1 HOUR),
         ('s-expired', 'u-2', 'bob@example.com', '{{}}', NOW() - INTERVAL 1 HOUR)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let query =
        format!("SELECT user_id, email, data FROM {table} WHERE id = ? AND expires_at > NOW()");
    let (_app, proxy) = sql_proxy(&url, &query).await;

    let (_, page) = get_page(&proxy, "/", Some("sid=s-valid")).await;
    let (_, _, settings) = find_snippet(&page).expect("valid session");
    let claims = verify_messenger_jwt(settings["intercom_user_jwt"].as_str().unwrap());
    assert_eq!(claims["user_id"], "u-1");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["plan"], "pro", "JSON columns are nested values");
    for sid in ["s-expired", "x' OR '1'='1"] {
        let (_, page) = get_page(&proxy, "/", Some(&format!("sid={sid}"))).await;
        assert_eq!(page, APP_PAGE, "{sid}: no identity");
    }
    let (_, page) = get_page(&proxy, "/", Some("sid=s-numeric")).await;
    assert_eq!(
        messenger_user(&page).as_deref(),
        Some("1e3"),
        "text ids stay text, never 1000.0"
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(&pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn introspection_answers_map_to_identity_and_are_cached() {
    let hits = Arc::new(AtomicUsize::new(0));
    let seen_headers = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (h, s) = (hits.clone(), seen_headers.clone());
    let auth = upstream(move |req| {
        let (hits, seen) = (h.clone(), s.clone());
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            seen.lock().unwrap().push(req.headers().clone());
            let cookie = req
                .headers()
                .get("cookie")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let (status, body) = if cookie.contains("sid=good") {
                (
                    StatusCode::OK,
                    json!({"id": "u-77", "email": "me@example.com"}).to_string(),
                )
            } else if cookie.contains("sid=broken") {
                (StatusCode::INTERNAL_SERVER_ERROR, "oops".to_string())
            } else {
                (StatusCode::UNAUTHORIZED, "{}".to_string())
            };
            let mut r = Response::new(full(body));
            *r.status_mut() = status;
            r
        }
    })
    .await;
    let session = format!(
        r#"
[session]
cookie = "sid"
resolver = "http"
cache_ttl = "1h"
[session.fields]
user_id = "/id"
email = "/email"
[session.http]
url = "http://{}/api/me"
"#,
        auth.addr
    );
    let app = html_app().await;
    let proxy = proxy_with(&config_with_session(
        &format!("http://{}", app.addr),
        &session,
    ))
    .await;

    for round in 0..5 {
        let req = http::Request::get(proxy.url(&format!("/p{round}")))
            .header("accept", "text/html")
            .header("cookie", "theme=dark; sid=good")
            .header("authorization", "Bearer secret-token")
            .body(empty())
            .unwrap();
        let response = client().request(req).await.unwrap();
        let page = String::from_utf8(body_bytes(response.into_body()).await.to_vec()).unwrap();
        assert_eq!(messenger_user(&page).as_deref(), Some("u-77"));
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1, "5 page loads, 1 lookup");
    let first = seen_headers.lock().unwrap()[0].clone();
    assert_eq!(
        first["cookie"], "theme=dark; sid=good",
        "the browser's Cookie header is sent"
    );
    assert!(
        first.get("authorization").is_none(),
        "and nothing else of the request's secrets"
    );

    for cookie in ["sid=nobody", "sid=broken"] {
        let (status, page) = get_page(&proxy, "/", Some(cookie)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page, APP_PAGE, "{cookie}: no identity");
    }
}

#[tokio::test]
async fn a_logout_drops_the_cached_session_even_when_the_app_keeps_the_cookie() {
    let Some(url) = store_url("REDIS_URL", REDIS_DEFAULT, "Redis").await else {
        return;
    };
    let prefix = unique_name("sess");
    let mut conn = redis_conn(&url).await;
    let key = format!("{prefix}:s1");
    let _: () = conn
        .set(&key, json!({"user": {"id": "u-1"}}).to_string())
        .await
        .unwrap();
    let app = html_app().await;
    // Cached for an hour; /logout is an HTML logout page that leaves the cookie alone
    // (express's `req.session.destroy()` without `clearCookie`).
    let session =
        redis_session(&url, &prefix, "").replace("cache_ttl = \"0s\"", "cache_ttl = \"1h\"");
    let config = config_with_session(&format!("http://{}", app.addr), &session)
        + "\n[logout]\npaths = [\"/logout\"]\n";
    let proxy = proxy_with(&config).await;
    assert_eq!(
        messenger_user(&get_page(&proxy, "/", Some("sid=s1")).await.1).as_deref(),
        Some("u-1")
    );
    let _: () = conn.del(&key).await.unwrap();
    let (_, logout_page) = get_page(&proxy, "/logout", Some("sid=s1")).await;
    assert!(logout_page.contains("window.Intercom('shutdown')"));
    let mut user = messenger_user(&get_page(&proxy, "/", Some("sid=s1")).await.1);
    // The invalidation is spawned before the logout answer leaves; allow it to land.
    for _ in 0..20 {
        if user.is_none() {
            break;
        }
        tokio::task::yield_now().await;
        user = messenger_user(&get_page(&proxy, "/", Some("sid=s1")).await.1);
    }
    assert_eq!(
        user, None,
        "the destroyed session must not boot from the cache"
    );
}

#[tokio::test]
async fn a_store_that_accepts_but_never_answers_still_serves_the_page() {
    // A listener that accepts connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let app = html_app().await;
    let session = redis_session(&format!("redis://127.0.0.1:{port}/0"), "sess", "")
        .replace("timeout = \"500ms\"", "timeout = \"200ms\"");
    let proxy = proxy_with(&config_with_session(
        &format!("http://{}", app.addr),
        &session,
    ))
    .await;
    let (status, page) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        get_page(&proxy, "/", Some("sid=s1")),
    )
    .await
    .expect("the page must not wait for a silent store");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page, APP_PAGE);
}
