//! End to end with a Laravel 8.83 app made of Laravel's own classes (tests/fixtures/laravel-app,
//! the Debian package php-laravel-framework under `php -S`): EncryptCookies encrypts the
//! `laravel_session` cookie with APP_KEY, StartSession keeps the session in the file, Redis
//! or database driver, the session guard logs users in. The proxy decrypts the cookie and
//! reads the session where Laravel wrote it, through login, rolling cookies, another user's
//! login, logout, key rotation and cookies Laravel itself refuses.
#![cfg(feature = "server")]

mod common;

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use http::{HeaderMap, Request, StatusCode};
use sha2::Digest;

/// `'login_web_'.sha1(\Illuminate\Auth\SessionGuard::class)`: where the session guard `web`
/// keeps the user's id.
const LOGIN_KEY: &str = "login_web_59ba36addc2b2f9401580f014c7f58ea4e30989d";
const ALICE: &str = "11";
const BOB: &str = "12";
const COOKIE: &str = "laravel_session";
const REDIS_DEFAULT: &str = "redis://127.0.0.1:6379/0";
const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";
const MYSQL_DEFAULT: &str = "mysql://root@127.0.0.1:3306/test";

/// The app's page, byte for byte.
fn app_page(text: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><title>Laravel app</title></head><body><p>{text}</p></body></html>"
    )
}

/// The page without what the proxy injected (a boot, a boot after a shutdown, a shutdown):
/// what the app wrote.
fn app_part(page: &str) -> String {
    match script(page) {
        Some(injected) => page.replacen(&format!("{injected}</script>"), "", 1),
        None => page.to_string(),
    }
}

/// `n` bytes no other call returns (SHA-256 of a unique name): keys and junk for tests.
fn unique_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < n {
        out.extend_from_slice(&sha2::Sha256::digest(unique_name("bytes").as_bytes()));
    }
    out.truncate(n);
    out
}

/// A fresh APP_KEY as `php artisan key:generate` writes it, for a cipher of `len`-byte keys.
fn app_key(len: usize) -> String {
    format!("base64:{}", STANDARD.encode(unique_bytes(len)))
}

/// Whether php can run the fixture: Laravel 8 on its include path, and `extensions`.
/// Says "skipped: …" when not (a failure in CI).
fn php_has_laravel(extensions: &[&str]) -> bool {
    let mut check = String::from(
        "if (!stream_resolve_include_path('Illuminate/autoload.php')) { echo 'php-laravel-framework'; exit(1); }",
    );
    for ext in extensions {
        check.push_str(&format!(
            "if (!extension_loaded('{ext}')) {{ echo 'php-{ext}'; exit(1); }}"
        ));
    }
    let missing = match std::process::Command::new("php")
        .args(["-d", "include_path=.:/usr/share/php", "-r"])
        .arg(&check)
        .output()
    {
        Ok(out) if out.status.success() => return true,
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(_) => "php".to_string(),
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "{missing} is missing; CI needs it"
    );
    eprintln!(
        "skipped: {missing} is missing (apt-get install php-cli php-redis php-pgsql php-mysql php-laravel-framework)"
    );
    false
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/laravel-app")
}

/// The app's environment: every variable it reads, so none leaks in from the test's own.
/// `settings` override the defaults.
fn app_env(settings: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        "APP_KEY",
        "CIPHER",
        "SESSION_DRIVER",
        "SESSION_COOKIE",
        "SESSION_ENCRYPT",
        "SESSION_LIFETIME",
        "SESSION_PATH",
        "SESSION_CONNECTION",
        "SESSION_STORE",
        "REDIS_HOST",
        "REDIS_PORT",
        "REDIS_DB",
        "REDIS_CACHE_DB",
        "REDIS_PASSWORD",
        "REDIS_PREFIX",
        "CACHE_PREFIX",
        "DB_DRIVER",
        "DB_HOST",
        "DB_PORT",
        "DB_DATABASE",
        "DB_USERNAME",
        "DB_PASSWORD",
        "DB_TABLE",
    ]
    .iter()
    .map(|name| (name.to_string(), String::new()))
    .collect();
    for (name, value) in settings {
        match env.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => panic!("the fixture does not read {name}"),
        }
    }
    env
}

/// Starts the fixture under `php -S` with `settings`.
fn start_laravel(settings: &[(&str, &str)]) -> Option<PhpApp> {
    let env = app_env(settings);
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    start_php(
        &fixture(),
        "index.php",
        &[
            ("include_path", ".:/usr/share/php"),
            ("display_errors", "stderr"),
        ],
        &env,
    )
}

/// The proxy in front of `app`, its `[session.laravel]` being `laravel` (the store, cipher and
/// keys).
async fn laravel_proxy(app: &PhpApp, laravel: &str) -> Proxy {
    proxy_with(&config_with_session(
        &format!("http://127.0.0.1:{}", app.port),
        &format!(
            r#"[session]
cookie = "{COOKIE}"
resolver = "laravel"
cache_ttl = "5s"

[session.laravel]
{laravel}

[session.fields]
user_id = "/{LOGIN_KEY}"
"#
        ),
    ))
    .await
}

/// A new directory for the file driver's sessions in `dir`.
fn sessions_dir(dir: &Path) -> String {
    let sessions = dir.join("sessions");
    std::fs::create_dir(&sessions).unwrap();
    sessions.display().to_string()
}

/// A file holding `text` (an APP_KEY, or a comma list of them) in `dir`.
fn key_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The parts of a store URL the app's DB_* / REDIS_* settings want.
struct UrlParts {
    user: String,
    password: String,
    host: String,
    port: String,
    path: String,
}

fn url_parts(url: &str) -> UrlParts {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, ""));
    UrlParts {
        user: decode(user),
        password: decode(password),
        host: host.trim_matches(['[', ']']).to_string(),
        port: port.to_string(),
        path: decode(path),
    }
}

/// A browser: its jar takes `Set-Cookie` headers and the page's own cookie writes.
#[derive(Default)]
struct Browser {
    jar: Jar,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Browser {
    fn cookie(&self, name: &str) -> Option<&str> {
        self.jar.get(name)
    }

    fn set(&mut self, name: &str, value: &str) {
        self.jar.set(name, value);
    }

    async fn send(&mut self, req: http::request::Builder, body: TestBody) -> Page {
        let mut req = req.header("accept", "text/html");
        if !self.jar.is_empty() {
            req = req.header("cookie", self.jar.header());
        }
        let response = client().request(req.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = String::from_utf8_lossy(&body_bytes(response.into_body()).await).into_owned();
        self.jar.absorb(&headers);
        self.jar.run_scripts(&body);
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, proxy: &Proxy, path: &str) -> Page {
        self.send(Request::get(proxy.url(path)), empty()).await
    }

    async fn post(&mut self, proxy: &Proxy, path: &str, form: &str) -> Page {
        let req = Request::post(proxy.url(path))
            .header("content-type", "application/x-www-form-urlencoded");
        self.send(req, full(form.to_string())).await
    }

    /// Logs `username` in through `/login`: Laravel redirects with a new session cookie.
    async fn log_in(&mut self, proxy: &Proxy, username: &str) {
        let before = self.cookie(COOKIE).map(str::to_string);
        let login = self
            .post(proxy, "/login", &format!("username={username}"))
            .await;
        assert_eq!(login.status, StatusCode::FOUND, "{}", login.body);
        let after =
            set_cookie_value(&login.headers, COOKIE).expect("the login sets laravel_session");
        assert_ne!(Some(after), before, "a new session cookie");
    }
}

/// The value of the `Set-Cookie` named `name`.
fn set_cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

/// The app with file sessions in `dir` (aes-256-cbc, a fresh key), the proxy in front, and
/// the key.
async fn file_app(dir: &Path) -> Option<(PhpApp, Proxy, String)> {
    let key = app_key(32);
    let sessions = sessions_dir(dir);
    let app = start_laravel(&[
        ("APP_KEY", &key),
        ("CIPHER", "aes-256-cbc"),
        ("SESSION_DRIVER", "file"),
        ("SESSION_PATH", &sessions),
    ])?;
    let proxy = laravel_proxy(
        &app,
        &format!(
            "app_key_file = \"{}\"\ncipher = \"aes-256-cbc\"\ndriver = \"file\"\npath = \"{sessions}\"",
            key_file(dir, "app-key", &key)
        ),
    )
    .await;
    Some((app, proxy, key))
}

/// Logs alice in and checks her page boots her Messenger.
async fn alice_boots(proxy: &Proxy) -> Browser {
    let mut browser = Browser::default();
    browser.log_in(proxy, "alice").await;
    let page = browser.get(proxy, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(app_part(&page.body), app_page("Hello Alice"));
    assert_eq!(
        messenger_user(&page.body).as_deref(),
        Some(ALICE),
        "{}",
        page.body
    );
    browser
}

#[tokio::test]
async fn file_sessions_boot_through_login_rolling_cookies_another_login_and_logout() {
    if !php_has_laravel(&[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some((_app, proxy, _)) = file_app(dir.path()).await else {
        return;
    };

    // A visitor: Laravel gives every response a session (and an XSRF-TOKEN), nobody boots.
    let mut visitor = Browser::default();
    let page = visitor.get(&proxy, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body, app_page("Hello visitor"), "untouched");
    assert!(visitor.cookie(COOKIE).is_some() && visitor.cookie("XSRF-TOKEN").is_some());
    let page = visitor.get(&proxy, "/").await;
    assert_eq!(
        page.body,
        app_page("Hello visitor"),
        "a visitor with a session: untouched"
    );

    // Alice logs in: 302 with a new session cookie, then her page boots her.
    let mut browser = Browser::default();
    browser.log_in(&proxy, "alice").await;
    let sent = browser.cookie(COOKIE).unwrap().to_string();
    let page = browser.get(&proxy, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(app_part(&page.body), app_page("Hello Alice"));
    let (_, _, settings) = find_snippet(&page.body).expect("alice's page gets the Messenger");
    let claims = verify_messenger_jwt(settings["intercom_user_jwt"].as_str().unwrap());
    assert_eq!(
        claims["user_id"], ALICE,
        "Eloquent's integer id, as a string"
    );
    assert!(!runs_shutdown(&page.body));

    // Laravel re-encrypts the cookie on every response (a new IV), the session is the same.
    let rolled = set_cookie_value(&page.headers, COOKIE).expect("the page re-sets laravel_session");
    assert_ne!(rolled, sent, "a new encryption of the same session id");
    assert_eq!(browser.cookie(COOKIE), Some(rolled.as_str()));
    let booted = set_cookie_value(&page.headers, "__isp_booted").expect("the booted-for marker");
    let page = browser.get(&proxy, "/").await;
    assert_eq!(app_part(&page.body), app_page("Hello Alice"));
    assert_eq!(
        booted_user(&page.body).as_deref(),
        Some(ALICE),
        "the rolled cookie boots alice"
    );
    assert!(!runs_shutdown(&page.body), "the same user: no shutdown");
    assert_ne!(
        set_cookie_value(&page.headers, COOKIE).as_deref(),
        Some(rolled.as_str())
    );

    // In the same browser bob logs in, answered with a page: bob boots after a shutdown.
    assert_eq!(browser.cookie("__isp_booted"), Some(booted.as_str()));
    let alice_cookie = browser.cookie(COOKIE).unwrap().to_string();
    let login = browser.post(&proxy, "/login-page", "username=bob").await;
    assert_eq!(login.status, StatusCode::OK);
    let bob_cookie = set_cookie_value(&login.headers, COOKIE).expect("a new session for bob");
    assert_ne!(bob_cookie, alice_cookie);
    assert_eq!(app_part(&login.body), app_page("Welcome Bob"));
    assert_eq!(
        booted_user(&login.body).as_deref(),
        Some(BOB),
        "{}",
        login.body
    );
    assert!(
        runs_shutdown(&login.body),
        "alice's Messenger is shut down first"
    );
    let page = browser.get(&proxy, "/").await;
    assert_eq!(app_part(&page.body), app_page("Hello Bob"));
    assert_eq!(booted_user(&page.body).as_deref(), Some(BOB));
    assert!(!runs_shutdown(&page.body));

    // Logout: Laravel invalidates the session and sets a new (empty) one.
    let logout = browser.post(&proxy, "/logout", "").await;
    assert_eq!(logout.status, StatusCode::FOUND);
    let page = browser.get(&proxy, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        app_part(&page.body),
        app_page("Hello visitor"),
        "the app forgot bob"
    );
    assert_eq!(
        booted_user(&page.body),
        None,
        "no Messenger for anyone: {}",
        page.body
    );
    assert_eq!(messenger_user(&page.body), None);
    assert!(runs_shutdown(&page.body), "bob's Messenger is shut down");
    let page = browser.get(&proxy, "/").await;
    assert_eq!(
        page.body,
        app_page("Hello visitor"),
        "then pages are the app's"
    );
}

/// Laravel's `redis` session driver: CacheBasedSessionHandler over the cache's RedisStore,
/// keys `<database.redis.options.prefix><cache.prefix>:<id>`, values serialized once more;
/// with GCM, which Laravel 8.83 supports.
#[tokio::test]
async fn redis_sessions_with_aes_256_gcm_boot_the_user() {
    let Some(redis_url) = store_url("REDIS_URL", REDIS_DEFAULT, "Redis").await else {
        return;
    };
    if !php_has_laravel(&["redis"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = app_key(32);
    let redis = url_parts(&redis_url);
    let redis_prefix = format!("{}_database_", unique_name("laravel"));
    let db = if redis.path.is_empty() {
        "0"
    } else {
        &redis.path
    };
    let Some(app) = start_laravel(&[
        ("APP_KEY", &key),
        ("CIPHER", "aes-256-gcm"),
        ("SESSION_DRIVER", "redis"),
        ("REDIS_HOST", &redis.host),
        (
            "REDIS_PORT",
            if redis.port.is_empty() {
                "6379"
            } else {
                &redis.port
            },
        ),
        ("REDIS_DB", db),
        ("REDIS_PASSWORD", &redis.password),
        ("REDIS_PREFIX", &redis_prefix),
        ("CACHE_PREFIX", "laravel_cache"),
    ]) else {
        return;
    };
    let proxy = laravel_proxy(
        &app,
        &format!(
            "app_key_file = \"{}\"\ncipher = \"aes-256-gcm\"\ndriver = \"redis\"\nurl = \"{redis_url}\"\nkey = \"{redis_prefix}laravel_cache:{{sid}}\"",
            key_file(dir.path(), "app-key", &key)
        ),
    )
    .await;
    alice_boots(&proxy).await;

    let mut conn = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{redis_prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        keys.iter()
            .all(|k| k.starts_with(&format!("{redis_prefix}laravel_cache:"))),
        "Laravel's keys: {keys:?}"
    );
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

/// Laravel's `database` driver on `url` (`driver` pgsql or mysql): the app creates its
/// sessions table (the columns of `php artisan session:table`), the proxy reads `payload` and
/// `last_activity` by `id`. Returns the table, for the caller to check and drop.
async fn database_sessions_boot(url: &str, driver: &str) -> Option<String> {
    if !php_has_laravel(&[if driver == "mysql" {
        "pdo_mysql"
    } else {
        "pdo_pgsql"
    }]) {
        return None;
    }
    let db = url_parts(url);
    let table = unique_name("lv_sessions");
    let dir = tempfile::tempdir().unwrap();
    let key = app_key(16);
    let app = start_laravel(&[
        ("APP_KEY", &key),
        ("CIPHER", "aes-128-cbc"),
        ("SESSION_DRIVER", "database"),
        ("DB_DRIVER", driver),
        ("DB_HOST", &db.host),
        ("DB_PORT", &db.port),
        ("DB_DATABASE", &db.path),
        ("DB_USERNAME", &db.user),
        ("DB_PASSWORD", &db.password),
        ("DB_TABLE", &table),
    ])?;
    let proxy = laravel_proxy(
        &app,
        &format!(
            "app_key_file = \"{}\"\ncipher = \"aes-128-cbc\"\ndriver = \"database\"\nurl = \"{url}\"\ntable = \"{table}\"",
            key_file(dir.path(), "app-key", &key)
        ),
    )
    .await;
    alice_boots(&proxy).await;
    Some(table)
}

#[tokio::test]
async fn postgres_database_sessions_boot_the_user() {
    let Some(url) = store_url("DATABASE_URL", POSTGRES_DEFAULT, "PostgreSQL").await else {
        return;
    };
    let Some(table) = database_sessions_boot(&url, "pgsql").await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let user: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT user_id FROM {table} WHERE user_id IS NOT NULL"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(user, Some(11), "Laravel filled its user_id column too");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(&pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn mariadb_database_sessions_boot_the_user() {
    let Some(url) = store_url("MYSQL_URL", MYSQL_DEFAULT, "MySQL/MariaDB").await else {
        return;
    };
    let Some(table) = database_sessions_boot(&url, "mysql").await else {
        return;
    };
    let pool = sqlx::MySqlPool::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(&pool)
        .await
        .unwrap();
}

/// `'encrypt' => true`: EncryptedStore writes the session encrypted with APP_KEY, here in
/// files and with AES-128-GCM.
#[tokio::test]
async fn encrypted_sessions_boot_the_user() {
    if !php_has_laravel(&[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = app_key(16);
    let sessions = sessions_dir(dir.path());
    let Some(app) = start_laravel(&[
        ("APP_KEY", &key),
        ("CIPHER", "aes-128-gcm"),
        ("SESSION_DRIVER", "file"),
        ("SESSION_ENCRYPT", "1"),
        ("SESSION_PATH", &sessions),
    ]) else {
        return;
    };
    let key_path = key_file(dir.path(), "app-key", &key);
    let proxy = laravel_proxy(
        &app,
        &format!(
            "app_key_file = \"{key_path}\"\ncipher = \"aes-128-gcm\"\ndriver = \"file\"\npath = \"{sessions}\""
        ),
    )
    .await;
    alice_boots(&proxy).await;
    let stored: Vec<String> = std::fs::read_dir(&sessions)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        !stored.is_empty()
            && stored
                .iter()
                .all(|s| s.starts_with("eyJ") && !s.contains(LOGIN_KEY)),
        "the sessions are stored encrypted: {stored:?}"
    );
}

/// Key rotation: the app still encrypts with B, the proxy has A as its key and B among the
/// previous keys (Laravel 11's APP_PREVIOUS_KEYS).
#[tokio::test]
async fn a_previous_key_still_decrypts_the_apps_cookies() {
    if !php_has_laravel(&[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sessions = sessions_dir(dir.path());
    let (key_a, key_b, key_c) = (app_key(32), app_key(32), app_key(32));
    let Some(app) = start_laravel(&[
        ("APP_KEY", &key_b),
        ("SESSION_DRIVER", "file"),
        ("SESSION_PATH", &sessions),
    ]) else {
        return;
    };
    let store = format!("cipher = \"aes-256-cbc\"\ndriver = \"file\"\npath = \"{sessions}\"");
    let current = key_file(dir.path(), "app-key", &key_a);
    let proxy = laravel_proxy(
        &app,
        &format!(
            "app_key_file = \"{current}\"\nprevious_keys_file = \"{}\"\n{store}",
            key_file(dir.path(), "previous-keys", &format!("{key_c}, {key_b}"))
        ),
    )
    .await;
    let mut browser = alice_boots(&proxy).await;

    // Without B, the same browser is nobody.
    let without_b = laravel_proxy(
        &app,
        &format!(
            "app_key_file = \"{current}\"\nprevious_keys_file = \"{}\"\n{store}",
            key_file(dir.path(), "other-keys", &key_c)
        ),
    )
    .await;
    let page = browser.get(&without_b, "/").await;
    assert_eq!(
        app_part(&page.body),
        app_page("Hello Alice"),
        "the app knows her"
    );
    assert_eq!(
        booted_user(&page.body),
        None,
        "the proxy cannot: {}",
        page.body
    );
    assert!(
        runs_shutdown(&page.body),
        "and shuts down what it booted for her"
    );
}

/// The `laravel_session` cookie EncryptCookies would make around `session_id` with `key`
/// (aes-256-cbc), made by Laravel's Encrypter and CookieValuePrefix.
fn session_cookie_for(key: &str, session_id: &str) -> String {
    let out = std::process::Command::new("php")
        .args(["-d", "include_path=.:/usr/share/php", "-r"])
        .arg(
            r#"require 'Illuminate/autoload.php';
$key = base64_decode(substr(getenv('APP_KEY'), 7));
$encrypter = new Illuminate\Encryption\Encrypter($key, 'aes-256-cbc');
$prefix = Illuminate\Cookie\CookieValuePrefix::create('laravel_session', $key);
echo rawurlencode($encrypter->encrypt($prefix.getenv('SESSION_ID'), false));"#,
        )
        .env("APP_KEY", key)
        .env("SESSION_ID", session_id)
        .output()
        .expect("php runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Cookies Laravel refuses (it starts a new session instead): the page is served as the app
/// wrote it, without the Messenger, and the proxy goes on serving.
#[tokio::test]
async fn cookies_laravel_refuses_are_nobody() {
    if !php_has_laravel(&[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some((_app, proxy, key)) = file_app(dir.path()).await else {
        return;
    };
    let sessions = dir.path().join("sessions").display().to_string();
    let mut alice = alice_boots(&proxy).await;
    let real = alice.cookie(COOKIE).unwrap().to_string();
    let encode = |raw: &[u8]| {
        percent_encoding::percent_encode(
            STANDARD.encode(raw).as_bytes(),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string()
    };
    let envelope = String::from_utf8(
        STANDARD
            .decode(
                percent_encoding::percent_decode_str(&real)
                    .decode_utf8()
                    .unwrap()
                    .as_bytes(),
            )
            .unwrap(),
    )
    .unwrap();

    // The session id itself, as an app without EncryptCookies would send it.
    let alice_files: Vec<_> = std::fs::read_dir(&sessions)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| {
            std::fs::read_to_string(path)
                .unwrap()
                .contains(&format!("{LOGIN_KEY}\";i:11;"))
        })
        .collect();
    assert_eq!(alice_files.len(), 1, "alice's session file");
    let bare_id = alice_files[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    // The XSRF-TOKEN cookie is encrypted with the same key around the session's CSRF token,
    // an id-like 40 characters: sent as laravel_session, only its prefix (made with the
    // cookie's name) tells it apart. A session under that id says alice, to be sure.
    let session = std::fs::read_to_string(&alice_files[0]).unwrap();
    let token_at = session.find("s:6:\"_token\";s:40:\"").unwrap() + 19;
    let token = &session[token_at..token_at + 40];
    std::fs::write(Path::new(&sessions).join(token), &session).unwrap();
    let xsrf = alice.cookie("XSRF-TOKEN").unwrap().to_string();
    let mut minted = Browser::default();
    minted.set(COOKIE, &session_cookie_for(&key, token));
    let page = minted.get(&proxy, "/").await;
    assert_eq!(
        (app_part(&page.body), booted_user(&page.body).as_deref()),
        (app_page("Hello Alice"), Some(ALICE)),
        "a laravel_session cookie around that id is alice's, for Laravel and the proxy"
    );

    // The same session in the same directory, from an app with another APP_KEY.
    let Some(other_app) = start_laravel(&[
        ("APP_KEY", &app_key(32)),
        ("SESSION_DRIVER", "file"),
        ("SESSION_PATH", &sessions),
    ]) else {
        return;
    };
    let login = client()
        .request(
            Request::post(format!("http://127.0.0.1:{}/login", other_app.port))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(full("username=alice"))
                .unwrap(),
        )
        .await
        .unwrap();
    let other_key = set_cookie_value(login.headers(), COOKIE).expect("the other app logs alice in");

    let mac_at = envelope.find("\"mac\":\"").unwrap() + "\"mac\":\"".len();
    let mut flipped = envelope.clone().into_bytes();
    flipped[mac_at] = if flipped[mac_at] == b'0' { b'1' } else { b'0' };
    let forged = format!(
        r#"{{"iv":"{}","value":"{}","mac":"{}","tag":""}}"#,
        STANDARD.encode(unique_bytes(16)),
        STANDARD.encode(unique_bytes(48)),
        unique_bytes(32)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );

    for (what, value) in [
        ("forged envelope", encode(forged.as_bytes())),
        ("truncated", real[..real.len() / 2].to_string()),
        ("one byte of the MAC changed", encode(&flipped)),
        ("another APP_KEY", other_key),
        ("the XSRF-TOKEN cookie's value (another cookie name)", xsrf),
        ("a bare session id", bare_id),
        ("not base64", "%%%%".to_string()),
        ("empty", String::new()),
    ] {
        let mut browser = Browser::default();
        browser.set(COOKIE, &value);
        let page = browser.get(&proxy, "/").await;
        assert_eq!(page.status, StatusCode::OK, "{what}");
        assert_eq!(
            page.body,
            app_page("Hello visitor"),
            "{what}: served as written, no Messenger"
        );
        assert!(
            set_cookie_value(&page.headers, COOKIE).is_some(),
            "{what}: Laravel starts a new session"
        );
    }

    let page = alice.get(&proxy, "/").await;
    assert_eq!(
        booted_user(&page.body).as_deref(),
        Some(ALICE),
        "the proxy still serves"
    );
}
