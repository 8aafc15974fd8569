//! End to end with a Rails-shaped app made of Rails 6.1's own middleware (tests/fixtures/rails-app,
//! Debian's ruby-rails under WEBrick): ActionDispatch::Cookies and the cookie session store
//! encrypt the `_app_session` cookie with keys derived from `secret_key_base`, the way a Rails
//! app's env_config sets them up. The proxy decrypts the cookie and reads Devise's
//! `warden.user.user.key` from it, for each cipher, key-generator digest and serializer a Rails
//! app uses, through login and logout; cookies Rails itself refuses are nobody to the proxy.
#![cfg(feature = "server")]

mod common;

use std::io::BufRead;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use http::{HeaderMap, Request, StatusCode};
use sha2::Digest;

const COOKIE: &str = "_app_session";
/// The fixture's users (Devise ids).
const ALICE: &str = "31";
const BOB: &str = "32";
const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";

/// How the fixture app is configured.
#[derive(Clone, Copy)]
struct Settings {
    /// The key generator's digest: "sha1" (Rails 5.2-6.1) or "sha256" (Rails 7.0).
    digest: &'static str,
    /// `use_authenticated_cookie_encryption`: AES-256-GCM when true, AES-256-CBC + HMAC when
    /// false.
    gcm: bool,
    /// `cookies_serializer`: "json", "hybrid" or "marshal".
    serializer: &'static str,
}

/// Rails 6.1's new-app defaults.
const RAILS_61: Settings = Settings {
    digest: "sha1",
    gcm: true,
    serializer: "json",
};
/// Rails 7.0's new-app defaults (a SHA-256 key generator).
const RAILS_70: Settings = Settings {
    digest: "sha256",
    gcm: true,
    serializer: "json",
};
/// An older app: AES-256-CBC with an HMAC-SHA1.
const CBC: Settings = Settings {
    digest: "sha1",
    gcm: false,
    serializer: "json",
};
const MARSHAL: Settings = Settings {
    serializer: "marshal",
    ..RAILS_61
};
const HYBRID: Settings = Settings {
    serializer: "hybrid",
    ..RAILS_61
};

/// The app's page, byte for byte.
fn app_page(text: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><title>Rails app</title></head><body><p>{text}</p></body></html>"
    )
}

/// The fixture app, killed on drop.
struct RailsApp {
    child: std::process::Child,
    port: u16,
}

impl RailsApp {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for RailsApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether ruby can load the fixture's Rails pieces. Says "skipped: …" when not (a failure
/// in CI).
fn rails_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let ok = std::process::Command::new("ruby")
            .args([
                "-e",
                "require 'action_dispatch'; require 'action_dispatch/middleware/session/cookie_store'; require 'rack/handler/webrick'",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "ruby-rails is missing (apt-get install ruby-rails)"
            );
            eprintln!("skipped: ruby-rails is missing (apt-get install ruby-rails)");
        }
        ok
    })
}

/// Starts the fixture with `secret_key_base` and `settings` on a free port; `None` (after
/// "skipped: …") without ruby-rails, except in CI.
fn start_rails(secret_key_base: &str, settings: Settings) -> Option<RailsApp> {
    if !rails_available() {
        return None;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rails-app");
    let mut child = std::process::Command::new("ruby")
        .arg("app.rb")
        .current_dir(&dir)
        .env("PORT", "0")
        .env("SECRET_KEY_BASE", secret_key_base)
        .env("KEY_DIGEST", settings.digest)
        .env(
            "AUTHENTICATED_ENCRYPTION",
            if settings.gcm { "1" } else { "0" },
        )
        .env("COOKIES_SERIALIZER", settings.serializer)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ruby runs");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("rails app output");
    let port = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("rails app did not start: {line:?}"));
    Some(RailsApp { child, port })
}

/// A fresh `secret_key_base` as `rails secret` prints it: 128 hex digits.
fn secret_key_base() -> String {
    let mut out = String::new();
    while out.len() < 128 {
        for byte in sha2::Sha256::digest(unique_name("secret_key_base").as_bytes()) {
            out.push_str(&format!("{byte:02x}"));
        }
    }
    out.truncate(128);
    out
}

/// `secret` in a temporary file, for `secret_key_base_file` (read once, as the config loads),
/// removed on drop.
fn secret_file(secret: &str) -> tempfile::TempPath {
    use std::io::Write;
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(secret.as_bytes()).unwrap();
    file.into_temp_path()
}

/// The `[session]` sections for the fixture's sessions under the secret in `secret_file`;
/// `rails` are more
/// `[session.rails]` lines, `fields` more `[session.fields]` lines, `rest` more sections.
fn rails_session(secret_file: &Path, rails: &str, fields: &str, rest: &str) -> String {
    format!(
        r#"
[session]
cookie = "{COOKIE}"
resolver = "rails"
[session.rails]
secret_key_base_file = "{}"
{rails}
[session.fields]
user_id = "/warden.user.user.key/0/0"
{fields}
{rest}
"#,
        secret_file.display()
    )
}

/// The proxy in front of `app`, reading its sessions with `secret` and `rails` settings.
async fn proxy_for_app(app: &RailsApp, secret: &str, rails: &str) -> Proxy {
    proxy_with(&config_with_session(
        &app.url(),
        &rails_session(&secret_file(secret), rails, "", ""),
    ))
    .await
}

/// [`proxy_for_app`] with `server` as more `[server]` lines.
async fn proxy_for_app_with(app: &RailsApp, secret: &str, server: &str) -> Proxy {
    let file = secret_file(secret);
    let config = config_with_session(&app.url(), &rails_session(&file, "", "", ""));
    let config = config.replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:0\"\n{server}"),
        1,
    );
    proxy_with(&config).await
}

/// Logs in through the proxy with `form`; the session cookie the app set (`name=value`).
async fn login(proxy: &Proxy, form: &str) -> String {
    let response = post_form(proxy, "/login", form, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "login {form}");
    set_cookie(response.headers(), COOKIE).expect("Rails sets _app_session")
}

/// An empty form POST as a browser sends it: with `Content-Length: 0` (WEBrick answers 411
/// without; hyper's client leaves it out for an empty body).
async fn post_empty(
    proxy: &Proxy,
    path: &str,
    cookie: &str,
) -> http::Response<hyper::body::Incoming> {
    let req = Request::post(proxy.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", "0")
        .header("accept", "text/html")
        .header("cookie", cookie);
    client().request(req.body(empty()).unwrap()).await.unwrap()
}

/// GET / with `cookie`: the response's headers and page.
async fn get_with_headers(proxy: &Proxy, cookie: &str) -> (StatusCode, HeaderMap, String) {
    let req = Request::get(proxy.url("/"))
        .header("accept", "text/html")
        .header("cookie", cookie);
    let response = client().request(req.body(empty()).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = body_bytes(response.into_body()).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// The page boots the Messenger for user `id` and is otherwise the app's page saying `text`.
fn assert_boots(page: &str, text: &str, id: &str) {
    assert_eq!(without_snippet(page), app_page(text), "{page}");
    let (_, _, settings) = find_snippet(page).unwrap_or_else(|| panic!("no snippet: {page}"));
    let claims = verify_messenger_jwt(settings["intercom_user_jwt"].as_str().unwrap());
    assert_eq!(claims["user_id"], id, "{claims}");
}

/// The page is exactly the app's page saying `text`: nothing injected.
fn assert_untouched(status: StatusCode, page: &str, text: &str, what: &str) {
    assert_eq!(status, StatusCode::OK, "{what}: {page}");
    assert_eq!(page, app_page(text), "{what}: {page}");
    assert!(script(page).is_none(), "{what}: {page}");
}

/// Login, another user, logout through the proxy in front of an app with `settings`, the
/// proxy told `rails` (digest, cipher).
async fn users_are_identified_through_login_and_logout(settings: Settings, rails: &str) {
    let secret = secret_key_base();
    let Some(app) = start_rails(&secret, settings) else {
        return;
    };
    let proxy = proxy_for_app(&app, &secret, rails).await;

    let (status, page) = get_page(&proxy, "/", None).await;
    assert_untouched(status, &page, "Hello visitor", "no cookie");

    let alice = login(&proxy, "username=alice").await;
    let (status, page) = get_page(&proxy, "/", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    assert_boots(&page, "Hello Alice", ALICE);

    // Another browser, another user, at the same time.
    let bob = login(&proxy, "username=bob").await;
    assert_boots(&get_page(&proxy, "/", Some(&bob)).await.1, "Hello Bob", BOB);
    assert_boots(
        &get_page(&proxy, "/", Some(&alice)).await.1,
        "Hello Alice",
        ALICE,
    );

    // Logout: Rails answers with a fresh, empty session cookie, and the browser keeps it.
    let logout = post_empty(&proxy, "/logout", &alice).await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    let after = set_cookie(logout.headers(), COOKIE).expect("Rails sets the emptied session");
    assert_ne!(after, alice);
    let (status, page) = get_page(&proxy, "/", Some(&after)).await;
    assert_untouched(status, &page, "Hello visitor", "after logout");

    // A cookie store cannot revoke: the cookie from before the logout is still Alice's to
    // Rails, and the proxy agrees with the app.
    assert_boots(
        &get_page(&proxy, "/", Some(&alice)).await.1,
        "Hello Alice",
        ALICE,
    );
}

/// Rails 6.1 defaults: AES-256-GCM, a PBKDF2-HMAC-SHA1 key generator, the JSON serializer.
#[tokio::test]
async fn gcm_sha1_json_sessions_rails_6_1_defaults() {
    users_are_identified_through_login_and_logout(
        RAILS_61,
        "digest = \"sha1\"\ncipher = \"aes-256-gcm\"",
    )
    .await;
}

/// Rails 7.0 defaults: the key generator's digest is SHA-256.
#[tokio::test]
async fn gcm_sha256_json_sessions_rails_7_0_defaults() {
    users_are_identified_through_login_and_logout(
        RAILS_70,
        "digest = \"sha256\"\ncipher = \"aes-256-gcm\"",
    )
    .await;
}

/// Older apps: `use_authenticated_cookie_encryption = false`, AES-256-CBC then HMAC-SHA1.
#[tokio::test]
async fn cbc_sha1_sessions_of_older_apps() {
    users_are_identified_through_login_and_logout(
        CBC,
        "digest = \"sha1\"\ncipher = \"aes-256-cbc\"",
    )
    .await;
}

/// `digest = "auto"` (also the default) reads the sessions of a SHA-1 and of a SHA-256 app.
#[tokio::test]
async fn digest_auto_reads_sha1_and_sha256_apps() {
    for (settings, rails) in [
        (RAILS_61, "digest = \"auto\""),
        (RAILS_70, "digest = \"auto\""),
        (RAILS_61, ""),
        (RAILS_70, ""),
    ] {
        let secret = secret_key_base();
        let Some(app) = start_rails(&secret, settings) else {
            return;
        };
        let proxy = proxy_for_app(&app, &secret, rails).await;
        let alice = login(&proxy, "username=alice").await;
        assert_boots(
            &get_page(&proxy, "/", Some(&alice)).await.1,
            "Hello Alice",
            ALICE,
        );
        let (status, page) = get_page(&proxy, "/", None).await;
        assert_untouched(status, &page, "Hello visitor", "no cookie");
    }
}

/// The metadata envelope inside a GCM cookie from a SHA-1 key generator
/// (`{"_rails":{"message":…,"exp":…,"pur":…}}`), decrypted as ActiveSupport::MessageEncryptor
/// does: the tests' own check of what the fixture wrote.
fn gcm_envelope(secret: &str, cookie: &str) -> serde_json::Value {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let value = cookie.split_once('=').unwrap().1;
    let value = percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .unwrap();
    let parts: Vec<Vec<u8>> = value
        .split("--")
        .map(|p| STANDARD.decode(p).unwrap())
        .collect();
    let [data, iv, tag] = &parts[..] else {
        panic!("not a GCM cookie: {value}")
    };
    let mut key = [0u8; 32];
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA1,
        NonZeroU32::new(1000).unwrap(),
        b"authenticated encrypted cookie",
        secret.as_bytes(),
        &mut key,
    );
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
    let mut in_out = [data.as_slice(), tag.as_slice()].concat();
    let plain = key
        .open_in_place(
            Nonce::try_assume_unique_for_key(iv).unwrap(),
            Aad::empty(),
            &mut in_out,
        )
        .expect("the cookie decrypts");
    let envelope: serde_json::Value = serde_json::from_slice(plain).unwrap();
    assert_eq!(envelope["_rails"]["pur"], "cookie._app_session");
    envelope
}

/// The payload in the envelope: what the cookie jar's serializer wrote.
fn gcm_payload(secret: &str, cookie: &str) -> Vec<u8> {
    let envelope = gcm_envelope(secret, cookie);
    STANDARD
        .decode(envelope["_rails"]["message"].as_str().unwrap())
        .unwrap()
}

/// A session written with `:marshal` (Marshal data of plain values: a Hash of Strings, an
/// Array of an Array of an Integer) boots its user, in front of the `:marshal` app and in
/// front of an app moving to JSON with `:hybrid`, which reads it and re-writes it as JSON.
#[tokio::test]
async fn marshal_sessions_boot_and_hybrid_apps_read_them() {
    let secret = secret_key_base();
    let Some(marshal_app) = start_rails(&secret, MARSHAL) else {
        return;
    };
    let Some(hybrid_app) = start_rails(&secret, HYBRID) else {
        return;
    };
    let marshal_proxy = proxy_for_app(&marshal_app, &secret, "").await;
    let hybrid_proxy = proxy_for_app(&hybrid_app, &secret, "").await;

    let alice = login(&marshal_proxy, "username=alice").await;
    assert!(
        gcm_payload(&secret, &alice).starts_with(b"\x04\x08"),
        "the :marshal app wrote Marshal data"
    );
    assert_boots(
        &get_page(&marshal_proxy, "/", Some(&alice)).await.1,
        "Hello Alice",
        ALICE,
    );

    let (status, headers, page) = get_with_headers(&hybrid_proxy, &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_boots(&page, "Hello Alice", ALICE);
    let upgraded = set_cookie(&headers, COOKIE).expect("the :hybrid app re-writes the session");
    assert!(gcm_payload(&secret, &upgraded).starts_with(b"{"), "as JSON");
    assert_boots(
        &get_page(&hybrid_proxy, "/", Some(&upgraded)).await.1,
        "Hello Alice",
        ALICE,
    );

    // The :hybrid app's own logins are JSON and boot too.
    let bob = login(&hybrid_proxy, "username=bob").await;
    assert!(gcm_payload(&secret, &bob).starts_with(b"{"));
    assert_boots(
        &get_page(&hybrid_proxy, "/", Some(&bob)).await.1,
        "Hello Bob",
        BOB,
    );
}

/// A Marshal session holding a Ruby object (`session["obj"] = Object.new`) is nobody to the
/// proxy: it never instantiates objects. The app, which does, still says Hello Alice.
#[tokio::test]
async fn a_marshal_session_holding_a_ruby_object_is_refused() {
    let secret = secret_key_base();
    let Some(app) = start_rails(&secret, MARSHAL) else {
        return;
    };
    let proxy = proxy_for_app(&app, &secret, "").await;

    let with_object = login(&proxy, "username=alice&with_object=1").await;
    let payload = gcm_payload(&secret, &with_object);
    assert!(payload.starts_with(b"\x04\x08"));
    assert!(
        payload.windows(9).any(|w| w == b"o:\x0bObject"),
        "the session holds an Object: {payload:?}"
    );
    let (status, page) = get_page(&proxy, "/", Some(&with_object)).await;
    assert_untouched(
        status,
        &page,
        "Hello Alice",
        "Marshal session with an Object",
    );

    // The same session without the object boots.
    let plain = login(&proxy, "username=alice").await;
    assert_boots(
        &get_page(&proxy, "/", Some(&plain)).await.1,
        "Hello Alice",
        ALICE,
    );
}

/// `[session.lookup]` on PostgreSQL: the user's email and name from a users table, by the id
/// in the session, with the query an app would write (`WHERE id = $1`), for the `bigint` ids
/// of Rails 5.1+ tables and the `integer` ids of older ones.
#[cfg(feature = "sql")]
#[tokio::test]
async fn a_postgres_lookup_gives_the_users_email_and_name() {
    let Some(url) = store_url("DATABASE_URL", POSTGRES_DEFAULT, "PostgreSQL").await else {
        return;
    };
    let secret = secret_key_base();
    let Some(app) = start_rails(&secret, RAILS_61) else {
        return;
    };
    let secret_file = secret_file(&secret);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    for id_type in ["bigint", "integer"] {
        let table = unique_name("rails_users");
        let session = rails_session(
            &secret_file,
            "",
            "email = \"/lookup/email\"\nname = \"/lookup/name\"",
            &format!(
                "[session.lookup]\nurl = \"{url}\"\nquery = \"SELECT email, name FROM {table} WHERE id = $1\"\n"
            ),
        );
        let proxy = proxy_with(&config_with_session(&app.url(), &session)).await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {table} (id {id_type} PRIMARY KEY, email text NOT NULL, name text NOT NULL)"
        )))
        .execute(&pool)
        .await
        .unwrap();
        // In a task of its own, so the table is dropped whatever happens.
        let pages = tokio::spawn({
            let pool = pool.clone();
            let table = table.clone();
            async move {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {table} (id, email, name) VALUES (31, 'alice@example.com', 'Alice Liddell')"
                )))
                .execute(&pool)
                .await
                .unwrap();
                let alice = login(&proxy, "username=alice").await;
                let (_, alice_page) = get_page(&proxy, "/", Some(&alice)).await;
                // Bob has a session but no row: a visitor to the Messenger.
                let bob = login(&proxy, "username=bob").await;
                let (bob_status, bob_page) = get_page(&proxy, "/", Some(&bob)).await;
                (alice_page, bob_status, bob_page)
            }
        })
        .await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
            .execute(&pool)
            .await
            .unwrap();

        let (alice_page, bob_status, bob_page) =
            pages.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let (_, _, settings) = find_snippet(&alice_page)
            .unwrap_or_else(|| panic!("{id_type} ids: no snippet for alice: {alice_page}"));
        assert_boots(&alice_page, "Hello Alice", ALICE);
        let claims = verify_messenger_jwt(settings["intercom_user_jwt"].as_str().unwrap());
        assert_eq!(
            claims["email"], "alice@example.com",
            "{id_type} ids: {claims}"
        );
        assert_eq!(claims["name"], "Alice Liddell", "{id_type} ids: {claims}");
        assert_untouched(
            bob_status,
            &bob_page,
            "Hello Bob",
            &format!("{id_type} ids: a user without a record"),
        );
    }
}

/// Logs in to `app` directly (not through the proxy); the session cookie it set.
async fn login_direct(app: &RailsApp, form: &str) -> String {
    let req = Request::post(format!("{}/login", app.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(full(form.to_string()))
        .unwrap();
    let response = client().request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    set_cookie(response.headers(), COOKIE).expect("Rails sets _app_session")
}

/// `cookie` with its value replaced by `f(value)`, still URL-encoded as Rails writes it.
fn with_value(cookie: &str, f: impl Fn(&str) -> String) -> String {
    let value = cookie.split_once('=').unwrap().1;
    let decoded = percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .unwrap();
    let changed = f(&decoded);
    format!(
        "{COOKIE}={}",
        percent_encoding::utf8_percent_encode(&changed, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// Flips one bit of the base64 part `part` (0: the ciphertext) of a `--`-joined value.
fn flip_bit(value: &str, part: usize) -> String {
    let mut parts: Vec<String> = value.split("--").map(str::to_string).collect();
    let mut bytes = STANDARD.decode(&parts[part]).unwrap();
    bytes[0] ^= 1;
    parts[part] = STANDARD.encode(bytes);
    parts.join("--")
}

/// Cookies Rails refuses are nobody to the proxy: the app's page (which says visitor: Rails
/// agrees) goes through intact, nothing injected.
#[tokio::test]
async fn cookies_rails_refuses_are_nobody() {
    let secret = secret_key_base();
    let Some(app) = start_rails(&secret, RAILS_61) else {
        return;
    };
    let Some(other_app) = start_rails(&secret_key_base(), RAILS_61) else {
        return;
    };
    // Room for the 100 KB cookie (the proxy refuses heads past 64 KiB by default, with 431).
    let proxy = proxy_for_app_with(&app, &secret, "max_header_bytes = 262144").await;
    let alice = login(&proxy, "username=alice").await;
    assert_boots(
        &get_page(&proxy, "/", Some(&alice)).await.1,
        "Hello Alice",
        ALICE,
    );

    // The session a forger would write: the JSON Rails would have encrypted, in the cookie's
    // three-part shape, with a made-up IV and tag (no key).
    let message =
        STANDARD.encode(r#"{"warden.user.user.key":[[31],"$2a$12$abcdefghijklmnopqrstuv"]}"#);
    let envelope =
        format!(r#"{{"_rails":{{"message":"{message}","exp":null,"pur":"cookie._app_session"}}}}"#);
    let forged = with_value(&alice, |_| {
        format!(
            "{}--{}--{}",
            STANDARD.encode(&envelope),
            STANDARD.encode([7u8; 12]),
            STANDARD.encode([9u8; 16])
        )
    });
    // A session under another app's secret_key_base (same settings).
    let other_secret = login_direct(&other_app, "username=alice").await;
    // Expired: the session store's `expire_after` went into the encrypted metadata's `exp`.
    // A negative expire_after writes now - 60 s there: the exact cookie a store with a
    // positive expire_after wrote that long ago (Rack computes expires = Time.now +
    // expire_after at write time), without waiting.
    let expired = login(&proxy, "username=alice&expire_after=-60").await;
    let envelope = gcm_envelope(&secret, &expired);
    let exp = envelope["_rails"]["exp"]
        .as_str()
        .expect("an expiry in the metadata");
    let session: serde_json::Value =
        serde_json::from_slice(&gcm_payload(&secret, &expired)).unwrap();
    assert_eq!(
        session["warden.user.user.key"][0][0], 31,
        "otherwise a valid session for alice, expiring at {exp}"
    );
    let (status, page) = {
        // Control: the same with an expiry ahead boots.
        let fresh = login(&proxy, "username=alice&expire_after=3600").await;
        get_page(&proxy, "/", Some(&fresh)).await
    };
    assert_eq!(status, StatusCode::OK);
    assert_boots(&page, "Hello Alice", ALICE);

    let cases = [
        ("forged", forged),
        (
            "ciphertext bit flipped",
            with_value(&alice, |v| flip_bit(v, 0)),
        ),
        ("IV bit flipped", with_value(&alice, |v| flip_bit(v, 1))),
        ("tag bit flipped", with_value(&alice, |v| flip_bit(v, 2))),
        ("another secret_key_base", other_secret),
        ("expired", expired),
        (
            "truncated in the tag",
            with_value(&alice, |v| v[..v.len() - 6].to_string()),
        ),
        (
            "truncated in the ciphertext",
            with_value(&alice, |v| v[..v.len() / 2].to_string()),
        ),
        (
            "without its tag",
            with_value(&alice, |v| v[..v.rfind("--").unwrap()].to_string()),
        ),
        (
            "100 KB",
            with_value(&alice, |v| {
                let (data, rest) = v.split_once("--").unwrap();
                format!("{}{data}--{rest}", "A".repeat(100 * 1024))
            }),
        ),
        ("not base64", format!("{COOKIE}=%00%FF--%01--%02")),
        ("empty", format!("{COOKIE}=")),
    ];
    for (what, cookie) in &cases {
        let (status, page) = get_page(&proxy, "/", Some(cookie)).await;
        assert_untouched(status, &page, "Hello visitor", what);
    }

    // The proxy still serves the real session after all that.
    assert_boots(
        &get_page(&proxy, "/", Some(&alice)).await.1,
        "Hello Alice",
        ALICE,
    );
}
