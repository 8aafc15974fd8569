//! A misconfiguration is never silent: the proxy binary, run as a user runs it, logs one
//! warning naming the key to fix when session cookies turn into no user, and a line at start
//! saying what it will do. Each test reads the process's stderr.
#![cfg(feature = "server")]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use http::{Request, Response};
use redis::AsyncCommands;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_intercom-secure-proxy");
/// How long to wait for a log line that must come; reached only when the test fails.
const LINE_TIMEOUT: Duration = Duration::from_secs(20);

/// The proxy binary, running with a config, its stderr read line by line.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start(config: &str, env: &[(&str, &str)]) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut running = Running {
            child,
            lines,
            seen: Vec::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            _dir: dir,
        };
        let listening = running.wait_for(|l| l.contains("listening"));
        running.addr = listening
            .split_whitespace()
            .find_map(|field| field.strip_prefix("addr="))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no addr in {listening:?}"));
        running
    }

    /// The next line matching `wanted` (every line read is kept in `seen`).
    fn wait_for(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no such line; the proxy logged:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Waits for the access lines of `n` more requests (logged once each response is
    /// ready, so every warning its lookup produced is already in `seen`).
    fn wait_for_requests(&mut self, n: usize) {
        for _ in 0..n {
            self.wait_for(|l| l.contains(" access: "));
        }
    }

    fn warnings(&self) -> Vec<&String> {
        self.seen.iter().filter(|l| l.contains(" WARN ")).collect()
    }

    async fn page(&self, cookie: &str) -> String {
        let request = Request::get(format!("http://{}/", self.addr))
            .header("accept", "text/html")
            .header("cookie", cookie)
            .body(empty())
            .unwrap();
        let response = client().request(request).await.unwrap();
        String::from_utf8(body_bytes(response.into_body()).await.to_vec()).unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn html_upstream() -> Upstream {
    upstream(|_req| async {
        let mut response = Response::new(full(
            "<!DOCTYPE html><html><head><title>t</title></head><body>app</body></html>",
        ));
        response
            .headers_mut()
            .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
        response
    })
    .await
}

fn secrets(session_secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TEST_MESSENGER_SECRET", MESSENGER_SECRET.to_string()),
        ("TEST_SESSION_SECRET", session_secret.to_string()),
    ]
}

fn start(config: &str, env: &[(&'static str, String)]) -> Running {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Running::start(config, &env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_jwt_key_is_named_once_and_the_start_line_says_what_the_proxy_does() {
    let app = html_upstream().await;
    let config = config_text(
        &format!("http://{}", app.addr),
        "",
        "\n[[routes]]\npath = \"/admin/**\"\ninject = false\n",
    );
    let mut proxy = start(&config, &secrets("not-the-apps-secret"));
    let plan = proxy.wait_for(|l| l.contains("get the Messenger"));
    for part in [
        "app testapp1",
        "region us",
        "session_cookie=session",
        "jwt ([HS256], key from session.jwt.key_env (environment variable TEST_SESSION_SECRET))",
        "user_id=/sub",
        "JWTs valid 1h",
        "visitors=\"untouched",
        "/admin/** off, others on",
    ] {
        assert!(plan.contains(part), "{part:?} in {plan}");
    }

    let tokens: Vec<String> = (0..3)
        .map(|i| session_jwt(json!({"sub": format!("u-{i}"), "exp": now_secs() + 600})))
        .collect();
    for token in &tokens {
        let page = proxy.page(&format!("session={token}")).await;
        assert!(
            !page.contains("intercom"),
            "never a user the proxy cannot verify"
        );
    }
    proxy.wait_for_requests(3);
    let latency = proxy
        .seen
        .iter()
        .find_map(|l| l.split("latency_ms=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an access line with latency_ms")
        .to_string();
    assert!(
        latency
            .split('.')
            .nth(1)
            .is_none_or(|decimals| decimals.len() <= 3),
        "latency_ms in whole microseconds: {latency}"
    );
    let warnings = proxy.warnings();
    assert_eq!(
        warnings.len(),
        1,
        "one warning, not one per cookie: {warnings:#?}"
    );
    let warning = warnings[0];
    assert!(warning.contains("key=session.jwt.key_env"), "{warning}");
    assert!(
        warning.contains("TEST_SESSION_SECRET) is probably not the key the app signs"),
        "{warning}"
    );
    for token in &tokens {
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !proxy.seen.iter().any(|l| l.contains(signature)),
            "no token in the log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_cookie_among_verified_ones_is_no_misconfiguration() {
    let app = html_upstream().await;
    let mut proxy = start(
        &config_text(&format!("http://{}", app.addr), "", ""),
        &secrets(SESSION_SECRET),
    );
    let good = session_jwt(json!({"sub": "u-1", "exp": now_secs() + 600}));
    assert_eq!(
        messenger_user(&proxy.page(&format!("session={good}")).await).as_deref(),
        Some("u-1")
    );
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "u-2", "exp": now_secs() + 600}),
        &jsonwebtoken::EncodingKey::from_secret(b"guessed"),
    )
    .unwrap();
    proxy.page(&format!("session={forged}")).await;
    proxy.wait_for_requests(2);
    assert!(proxy.warnings().is_empty(), "{:#?}", proxy.warnings());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_id_pointer_that_names_nothing_lists_the_keys_the_session_has() {
    let app = html_upstream().await;
    let config = config_text(&format!("http://{}", app.addr), "", "")
        .replace("user_id = \"/sub\"", "user_id = \"/id\"");
    let mut proxy = start(&config, &secrets(SESSION_SECRET));
    let token = session_jwt(json!({
        "user": {"id": "u-7", "email": "seven@example.com"},
        "exp": now_secs() + 600,
    }));
    let page = proxy.page(&format!("session={token}")).await;
    assert!(!page.contains("intercom"));
    let warning = proxy.wait_for(|l| l.contains(" WARN "));
    assert!(warning.contains("key=session.fields.user_id"), "{warning}");
    assert!(
        warning.contains(
            "session.fields.user_id (\"/id\") names nothing in the sessions found (their top-level keys: exp, user), did you mean \"/user/id\"?"
        ),
        "{warning}"
    );
    assert!(
        !warning.contains("seven@example.com"),
        "no values: {warning}"
    );
}

const REDIS_DEFAULT: &str = "redis://127.0.0.1:6379/0";

fn redis_config(app: &Upstream, redis_url: &str, key: &str, extra: &str) -> String {
    let base = config_text(&format!("http://{}", app.addr), "", "");
    let session = base.find("[session]").unwrap();
    format!(
        r#"{}[session]
cookie = "connect.sid"
resolver = "redis"
cache_ttl = "0s"
timeout = "5s"
[session.fields]
user_id = "/user/id"
[session.redis]
url = "{redis_url}"
key = "{key}"
{extra}
"#,
        &base[..session]
    )
}

/// Redis (its URL) with a session of user u-1 at `<prefix>:<key>` (the prefix, unique to
/// this test); `None` when there is no Redis here, after saying "skipped".
async fn redis_holding_a_session(name: &str, key: &str) -> Option<(String, String)> {
    let url = store_url("REDIS_URL", REDIS_DEFAULT, "Redis").await?;
    let prefix = unique_name(name);
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = conn
        .set_ex(
            format!("{prefix}:{key}"),
            json!({"user": {"id": "u-1"}}).to_string(),
            60,
        )
        .await
        .unwrap();
    Some((url, prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_express_cookie_secret_is_named() {
    let Some((url, prefix)) = redis_holding_a_session("misconfig_secret", "sid1").await else {
        return;
    };
    let app = html_upstream().await;
    let config = redis_config(
        &app,
        &url,
        &format!("{prefix}:{{sid}}"),
        "cookie_format = \"express\"\ncookie_secret_env = \"TEST_COOKIE_SECRET\"",
    );
    let mut env = secrets(SESSION_SECRET);
    env.push(("TEST_COOKIE_SECRET", "not the app's secret".to_string()));
    let mut proxy = start(&config, &env);
    let cookie = express_cookie("sid1", "the app's secret");
    let page = proxy.page(&format!("connect.sid={cookie}")).await;
    assert!(!page.contains("intercom"));
    let warning = proxy.wait_for(|l| l.contains(" WARN ") && l.contains("key=session.redis"));
    assert!(
        warning.contains("key=session.redis.cookie_secret_env"),
        "{warning}"
    );
    assert!(
        warning.contains("(environment variable TEST_COOKIE_SECRET) is probably not the app's express-session secret"),
        "{warning}"
    );
    assert!(!warning.contains("sid1"), "no session id: {warning}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_template_that_finds_no_session_is_named() {
    let Some((url, prefix)) = redis_holding_a_session("misconfig_key", "sess:sid1").await else {
        return;
    };
    let app = html_upstream().await;
    // The app writes `<prefix>:sess:<sid>`; the config forgot the `sess:`.
    let template = format!("{prefix}:{{sid}}");
    let mut proxy = start(
        &redis_config(&app, &url, &template, ""),
        &secrets(SESSION_SECRET),
    );
    proxy.page("connect.sid=sid1").await;
    let warning = proxy.wait_for(|l| l.contains(" WARN "));
    assert!(warning.contains("key=session.redis.key"), "{warning}");
    assert!(
        warning.contains(&format!(
            "has no session under session.redis.key (\"{template}\")"
        )),
        "{warning}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_finds_no_row_is_named() {
    let Some(url) = store_url(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/test",
        "PostgreSQL",
    )
    .await
    else {
        return;
    };
    let app = html_upstream().await;
    let base = config_text(&format!("http://{}", app.addr), "", "");
    let config = format!(
        r#"{}[session]
cookie = "sessionid"
resolver = "sql"
# The first lookup opens the pool: room for a loaded machine (the default is 300 ms).
timeout = "5s"
[session.fields]
user_id = "/user_id"
[session.sql]
url = "{url}"
query = "SELECT 'u-1' AS user_id WHERE $1 = 'a session id no cookie has'"
"#,
        &base[..base.find("[session]").unwrap()]
    );
    let mut proxy = start(&config, &secrets(SESSION_SECRET));
    proxy.page("sessionid=abc").await;
    let warning = proxy.wait_for(|l| l.contains(" WARN "));
    assert!(warning.contains("key=session.sql.query"), "{warning}");
    assert!(
        warning.contains("session.sql.query returned no row for any session cookie seen"),
        "{warning}"
    );
}
