//! Test harness: a real upstream server and the proxy, both on 127.0.0.1:0, in-process.
#![allow(dead_code)] // each test binary uses a different part of the harness
pub mod process;
pub mod python;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use intercom_secure_proxy::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub type TestBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

pub fn full(data: impl Into<Bytes>) -> TestBody {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> TestBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A test upstream app running on 127.0.0.1:0.
pub struct Upstream {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts an upstream that answers every request with `handler`.
pub async fn upstream<F, Fut>(handler: F) -> Upstream
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    Upstream {
        addr,
        task: serve_on(listener, handler),
    }
}

/// Serves `handler` (HTTP/1.1 and h2, upgrades allowed) on an already bound listener.
pub fn serve_on<F, Fut>(listener: TcpListener, handler: F) -> JoinHandle<()>
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        let builder = auto::Builder::new(TokioExecutor::new());
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let service = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            tokio::spawn(conn);
        }
    })
}

/// A raw upstream: for each connection, reads one request head and writes `response`
/// verbatim, then closes. Lets tests send headers a well-behaved server never would.
pub async fn raw_upstream(response: &'static [u8]) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(response).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Upstream { addr, task }
}

/// Secret values the harness puts in the config's environment.
pub const MESSENGER_SECRET: &str = "test-messenger-secret-0123456789abcdef";
pub const SESSION_SECRET: &str = "test-app-session-secret-0123456789";

/// A minimal config for `upstream_url`; `extra` is appended (more sections or routes).
pub fn config_text(upstream_url: &str, server_extra: &str, extra: &str) -> String {
    config_base(
        upstream_url,
        server_extra,
        &format!(
            r#"[session]
cookie = "session"
resolver = "jwt"

[session.fields]
user_id = "/sub"
email = "/email"

[session.jwt]
algorithms = ["HS256"]
key_env = "TEST_SESSION_SECRET"
{extra}"#
        ),
    )
}

/// `[server]` on port 0, `[upstream]`, `[intercom]`, then `rest`.
fn config_base(upstream_url: &str, server_extra: &str, rest: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
{server_extra}

[upstream]
url = "{upstream_url}"
connect_timeout = "1s"
timeout = "2s"

[intercom]
app_id = "testapp1"
secret_env = "TEST_MESSENGER_SECRET"

{rest}
"#
    )
}

pub fn test_env() -> HashMap<String, String> {
    HashMap::from([
        (
            "TEST_MESSENGER_SECRET".to_string(),
            MESSENGER_SECRET.to_string(),
        ),
        (
            "TEST_SESSION_SECRET".to_string(),
            SESSION_SECRET.to_string(),
        ),
    ])
}

/// A running proxy; dropping it without `shutdown` aborts it.
pub struct Proxy {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Signals shutdown and returns the serve task, to await the drain.
    pub fn begin_shutdown(&mut self) -> JoinHandle<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().expect("proxy already shut down")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Starts the proxy in front of `upstream_url`.
pub async fn proxy_for(upstream_url: &str) -> Proxy {
    proxy_with(&config_text(upstream_url, "", "")).await
}

/// Starts the proxy from full config text.
pub async fn proxy_with(config_text: &str) -> Proxy {
    let config = Config::from_toml(config_text, "test.toml", &test_env())
        .unwrap_or_else(|e| panic!("test config rejected:\n{e}"));
    let server = intercom_secure_proxy::bind(&config)
        .await
        .expect("proxy binds");
    let addr = server.local_addrs()[0];
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async {
        let _ = rx.await;
    }));
    Proxy {
        addr,
        shutdown: Some(tx),
        task: Some(task),
    }
}

/// A plain HTTP/1.1 client with connection pooling.
pub fn client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// Sends raw bytes on a fresh connection and reads until the server closes it.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// The header block of a raw response, lower-cased names, one `name: value` per line.
pub fn head_lines(raw: &str) -> Vec<String> {
    raw.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .lines()
        .skip(1)
        .map(|l| match l.split_once(':') {
            Some((n, v)) => format!("{}: {}", n.to_ascii_lowercase(), v.trim()),
            None => l.to_string(),
        })
        .collect()
}

/// Collects a response body (tests only; the proxy never does this).
pub async fn body_bytes<B>(body: B) -> Bytes
where
    B: hyper::body::Body,
    B::Error: std::fmt::Debug,
{
    body.collect().await.expect("body").to_bytes()
}

/// A session cookie value the way the test app would issue it: an HS256 JWT.
pub fn session_jwt(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SESSION_SECRET.as_bytes()),
    )
    .unwrap()
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The injected `<script>…</script>` in a page: (start, end) byte offsets and the settings.
pub fn find_snippet(page: &str) -> Option<(usize, usize, serde_json::Value)> {
    let marker = "window.intercomSettings=";
    let at = page.find(marker)?;
    let start = page[..at].rfind("<script")?;
    let end = at + page[at..].find("</script>")? + "</script>".len();
    let json_start = at + marker.len();
    let json_end = json_start + page[json_start..].find(";(function(){")?;
    let settings = serde_json::from_str(&page[json_start..json_end]).ok()?;
    Some((start, end, settings))
}

/// The page with the injected snippet cut out: must equal the app's page byte for byte.
pub fn without_snippet(page: &str) -> String {
    match find_snippet(page) {
        Some((start, end, _)) => format!("{}{}", &page[..start], &page[end..]),
        None => page.to_string(),
    }
}

/// The page with the proxy's snippet cut out, whatever its form (a boot, or a shutdown then
/// a boot).
pub fn without_snippet_any(page: &str) -> String {
    let Some(at) = page
        .find("(function(){var w=window")
        .or_else(|| page.find("window.intercomSettings="))
    else {
        return page.to_string();
    };
    let Some(start) = page[..at].rfind("<script") else {
        return page.to_string();
    };
    let Some(end) = page[at..]
        .find("</script>")
        .map(|e| at + e + "</script>".len())
    else {
        return page.to_string();
    };
    format!("{}{}", &page[..start], &page[end..])
}

/// Verifies a Messenger JWT with the Messenger secret, as Intercom would.
pub fn verify_messenger_jwt(token: &str) -> serde_json::Value {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims = ["exp".to_string()].into();
    jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(MESSENGER_SECRET.as_bytes()),
        &validation,
    )
    .expect("the Messenger JWT verifies with the Messenger secret")
    .claims
}

/// One of the benchmark pages committed under `bench/pages` (the 34 KB and 1.7 MB pages).
pub fn bench_page(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench/pages")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A config whose `[session]` (and its subsections) is `session`.
pub fn config_with_session(upstream_url: &str, session: &str) -> String {
    config_base(upstream_url, "", session)
}

/// An express-session cookie: `s:<sid>.<base64 HMAC-SHA256(secret, sid)>`, URL-encoded.
pub fn express_cookie(sid: &str, secret: &str) -> String {
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(sid.as_bytes());
    let signature =
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(mac.finalize().into_bytes());
    let raw = format!("s:{sid}.{signature}");
    percent_encoding::utf8_percent_encode(&raw, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A name no other test (or test run) uses, for keys, tables and schemas.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The address of a store from `var`, or the machine default. `None` (after saying
/// "skipped: …") when nothing answers there and CI is not set; in CI a missing store fails.
pub async fn store_url(var: &str, default: &str, what: &str) -> Option<String> {
    let url = std::env::var(var).unwrap_or_else(|_| default.to_string());
    let host_port = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(|authority| {
            authority
                .rsplit('@')
                .next()
                .unwrap_or(authority)
                .to_string()
        })
        .unwrap_or_default();
    if TcpStream::connect(&host_port).await.is_ok() {
        return Some(url);
    }
    if std::env::var_os("CI").is_some() {
        panic!("no {what} at {host_port} ({var}); CI needs it");
    }
    eprintln!("skipped: no {what} at {host_port} (set {var})");
    None
}

/// The `user_id` in the Messenger JWT of an injected page, if any.
pub fn messenger_user(page: &str) -> Option<String> {
    let (_, _, settings) = find_snippet(page)?;
    let claims = verify_messenger_jwt(settings["intercom_user_jwt"].as_str()?);
    claims["user_id"].as_str().map(str::to_string)
}

/// The snippet's script text, if any.
pub fn script(page: &str) -> Option<String> {
    let start = page
        .find("<script>(function(){var w=window")
        .or_else(|| page.find("<script>window.intercomSettings="))?;
    let end = start + page[start..].find("</script>")?;
    Some(page[start..end].to_string())
}

/// Whether the page runs the shutdown up front (right after the loader), as opposed to the
/// refresh script's conditional one.
pub fn runs_shutdown(page: &str) -> bool {
    script(page).is_some_and(|s| s.contains("})();window.Intercom('shutdown');"))
}

/// The JWT the page boots with, explicitly (after a shutdown) or through intercomSettings.
pub fn booted_user(page: &str) -> Option<String> {
    let s = script(page)?;
    let at = s.find("intercom_user_jwt\":\"")? + "intercom_user_jwt\":\"".len();
    let token = &s[at..at + s[at..].find('"')?];
    verify_messenger_jwt(token)["user_id"]
        .as_str()
        .map(str::to_string)
}

/// GET a page as a browser would, with `cookie` as the whole Cookie header.
pub async fn get_page(
    proxy: &Proxy,
    path: &str,
    cookie: Option<&str>,
) -> (http::StatusCode, String) {
    let mut req = Request::get(proxy.url(path)).header("accept", "text/html");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let response = client().request(req.body(empty()).unwrap()).await.unwrap();
    let status = response.status();
    let body = body_bytes(response.into_body()).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// An upstream serving the same small HTML page on every path.
pub async fn html_app() -> Upstream {
    upstream(|_req| async {
        let mut r = Response::new(full(APP_PAGE));
        r.headers_mut()
            .insert("content-type", "text/html".parse().unwrap());
        r
    })
    .await
}

pub const APP_PAGE: &str = "<html><head><title>app</title></head><body>hi</body></html>";

/// Installs a Node fixture's packages from its lockfile when they are missing (a fresh
/// clone); `.ci/run` does the same up front.
pub fn npm_ci(dir: &std::path::Path) -> bool {
    dir.join("node_modules").is_dir()
        || std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .is_ok_and(|s| s.success())
}

/// The real express-session + connect-redis app (tests/fixtures/express-app), killed on drop.
pub struct ExpressApp {
    child: std::process::Child,
    /// Where it listens on 127.0.0.1.
    pub port: u16,
}

impl Drop for ExpressApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `[session]` sections for the Express fixture's `connect.sid` sessions in Redis under
/// `prefix`, signed with `cookie_secret` (written to a file, as `cookie_secret_file` wants);
/// `extra_fields` are more `[session.fields]` lines.
pub fn express_session(
    redis_url: &str,
    prefix: &str,
    cookie_secret: &str,
    extra_fields: &str,
) -> String {
    let secret_file =
        std::env::temp_dir().join(format!("{}-cookie-secret", unique_name("express")));
    std::fs::write(&secret_file, cookie_secret).unwrap();
    format!(
        r#"
[session]
cookie = "connect.sid"
resolver = "redis"
cache_ttl = "0s"
timeout = "1s"
[session.fields]
user_id = "/user/id"
email = "/user/email"
{extra_fields}
[session.redis]
url = "{redis_url}"
key = "{prefix}{{sid}}"
cookie_format = "express"
cookie_secret_file = "{}"
"#,
        secret_file.display()
    )
}

/// Starts the Express app on a free port, its sessions in Redis under `prefix`, signed with
/// `cookie_secret`. `None` (after saying "skipped: …") without Node packages, except in CI.
pub fn start_express(redis_url: &str, prefix: &str, cookie_secret: &str) -> Option<ExpressApp> {
    start_express_with(redis_url, prefix, cookie_secret, false)
}

/// [`start_express`], with express-session's `rolling` (the cookie re-set on every response)
/// when `rolling`.
pub fn start_express_with(
    redis_url: &str,
    prefix: &str,
    cookie_secret: &str,
    rolling: bool,
) -> Option<ExpressApp> {
    use std::io::BufRead;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/express-app");
    if !npm_ci(&dir) {
        assert!(
            std::env::var_os("CI").is_none(),
            "npm ci failed in tests/fixtures/express-app"
        );
        eprintln!("skipped: npm ci failed in tests/fixtures/express-app (Node.js and npm needed)");
        return None;
    }
    let mut child = std::process::Command::new("node")
        .arg("server.js")
        .current_dir(&dir)
        .env("PORT", "0")
        .env("REDIS_URL", redis_url)
        .env("SESSION_PREFIX", prefix)
        .env("COOKIE_SECRET", cookie_secret)
        .env("ROLLING", if rolling { "1" } else { "0" })
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("express app output");
    let port = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("express app did not start: {line:?}"));
    Some(ExpressApp { child, port })
}

/// A PHP app served by `php -S` (PHP's built-in server), stopped on drop.
pub struct PhpApp {
    child: std::process::Child,
    pub port: u16,
}

impl Drop for PhpApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `php -S 127.0.0.1:0 <router>` in `dir` with `-d` settings `ini` and environment
/// `env`. `None` (after "skipped: …") when php is missing and CI is not set; in CI a missing
/// php (or a PHP extension the app needs) fails.
pub fn start_php(
    dir: &std::path::Path,
    router: &str,
    ini: &[(&str, &str)],
    env: &[(&str, &str)],
) -> Option<PhpApp> {
    use std::io::BufRead;
    if std::process::Command::new("php")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "php is missing (apt-get install php-cli php-redis php-pgsql php-mysql php-laravel-framework)"
        );
        eprintln!(
            "skipped: php is missing (apt-get install php-cli php-redis php-pgsql php-mysql php-laravel-framework)"
        );
        return None;
    }
    let mut command = std::process::Command::new("php");
    for (key, value) in ini {
        // An ini line: quoted, so URLs with `?`, `=` and `&` stay one value.
        command.arg("-d").arg(format!("{key}=\"{value}\""));
    }
    let mut child = command
        .arg("-S")
        .arg("127.0.0.1:0")
        .arg(router)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("php runs");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    // "[date] PHP 8.2.x Development Server (http://127.0.0.1:PORT) started"
    let port = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let at = line.find("http://127.0.0.1:")? + "http://127.0.0.1:".len();
            line[at..].split(')').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("php -S {router} did not start"));
    // Keep reading the server's log so it never blocks on a full pipe; echo errors.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if line.contains("PHP ") && !line.contains("Accepted") && !line.contains("Closing") {
                eprintln!("php: {line}");
            }
        }
    });
    Some(PhpApp { child, port })
}

/// The `name=value` of the response's `Set-Cookie` named `name` (what a browser sends back).
pub fn set_cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

/// POSTs a form as a browser would (asking for HTML), with `cookie` as the Cookie header.
pub async fn post_form(
    proxy: &Proxy,
    path: &str,
    form: &str,
    cookie: Option<&str>,
) -> http::Response<Incoming> {
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

/// A browser's cookie jar: what `Set-Cookie` headers and the page's own `document.cookie`
/// writes (the proxy clears its markers from the snippet) leave behind.
#[derive(Clone, Default)]
pub struct Jar {
    cookies: std::collections::BTreeMap<String, String>,
    session_only: std::collections::BTreeSet<String>,
}

impl Jar {
    /// Takes in the response's `Set-Cookie` headers.
    pub fn absorb(&mut self, headers: &http::HeaderMap) {
        for line in headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            self.store(line);
        }
    }

    /// Runs the page's `document.cookie="…"` assignments, as the browser would.
    pub fn run_scripts(&mut self, page: &str) {
        for written in page.split("document.cookie=\"").skip(1) {
            if let Some(line) = written.split('"').next() {
                self.store(line);
            }
        }
    }

    fn store(&mut self, line: &str) {
        let c = cookie::Cookie::parse(line.to_string()).expect("a well-formed cookie");
        let expired = c.max_age().is_some_and(|a| a.whole_seconds() <= 0)
            || c.expires_datetime()
                .is_some_and(|t| t <= cookie::time::OffsetDateTime::now_utc());
        if expired {
            self.cookies.remove(c.name());
        } else {
            self.cookies
                .insert(c.name().to_string(), c.value().to_string());
        }
        if c.max_age().is_none() && c.expires_datetime().is_none() {
            self.session_only.insert(c.name().to_string());
        } else {
            self.session_only.remove(c.name());
        }
    }

    /// The browser is closed and opened again: its session cookies are gone.
    pub fn restart(&mut self) {
        let session_only = &self.session_only;
        self.cookies.retain(|name, _| !session_only.contains(name));
    }

    /// The `Cookie` header the browser sends.
    pub fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    pub fn has(&self, name: &str) -> bool {
        self.cookies.contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_string(), value.to_string());
    }

    pub fn remove(&mut self, name: &str) {
        self.cookies.remove(name);
    }
}
