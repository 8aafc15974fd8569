//! The real binary run on a config file the test owns (and rewrites), with file secrets, its
//! log kept; pages fetched and their Messenger JWTs read under a given secret.
#![allow(dead_code)] // shared by the reload tests

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_intercom-secure-proxy");

/// How long anything a test waits for may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub const OLD_MESSENGER: &str = "messenger-secret-before-the-rotation-0123";
pub const NEW_MESSENGER: &str = "messenger-secret-after-the-rotation-45678";
pub const OLD_APP_KEY: &str = "app-session-key-before-0123456789";
pub const NEW_APP_KEY: &str = "app-session-key-after-9876543210";

/// A proxy process and the directory of its config and secret files.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
    pub dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The config every test starts from: file secrets in `dir`, a pid file, `extra_server`
/// lines in `[server]`, `jwt_extra` in `[session.jwt]`, `rest` at the end (routes).
pub fn config(
    dir: &Path,
    app: SocketAddr,
    extra_server: &str,
    token_ttl: &str,
    jwt_extra: &str,
    rest: &str,
) -> String {
    let d = dir.display();
    format!(
        r#"[server]
listen = "127.0.0.1:0"
workers = 2
pid_file = "{d}/isp.pid"
{extra_server}

[upstream]
url = "http://{app}"
timeout = "5s"

[intercom]
app_id = "testapp1"
secret_file = "{d}/messenger.secret"
token_ttl = "{token_ttl}"

[session]
cookie = "session"
resolver = "jwt"

[session.fields]
user_id = "/sub"

[session.jwt]
key_file = "{d}/app.key"
{jwt_extra}

{rest}
"#
    )
}

impl Running {
    /// Writes the secrets (the "before" ones) and `config_text` into a new directory made
    /// by `config_text(dir)`, and runs the binary until it says where it listens.
    pub fn start(config_text: impl FnOnce(&Path) -> String) -> Running {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("messenger.secret"), OLD_MESSENGER);
        write(&dir.path().join("app.key"), OLD_APP_KEY);
        let path = dir.path().join("proxy.toml");
        write(&path, &config_text(dir.path()));
        let bin = std::env::var("ISP_BIN").unwrap_or_else(|_| BIN.to_string());
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                seen.push(line.clone());
                let at = line.find("listening")?;
                let addr = line[at..].split("addr=").nth(1)?;
                addr.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("the proxy did not start:\n{}", seen.join("\n")));
        let log = Arc::new(Mutex::new(seen));
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                keep.lock().unwrap().push(line);
            }
        });
        Running {
            child,
            addr,
            log,
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Replaces the config file whole (a rename: a watcher never reads half of it).
    pub fn rewrite_config(&self, text: &str) {
        write(&self.path("proxy.toml"), text);
    }

    /// Log lines so far.
    pub fn lines(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Waits for a log line after the first `from` that contains `needle`.
    pub fn wait_for_log(&self, from: usize, needle: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = self.log.lock().unwrap()[from..]
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no log line with {needle:?}; log:\n{}",
                self.log.lock().unwrap()[from..].join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log lines after the first `from`.
    pub fn log_since(&self, from: usize) -> Vec<String> {
        self.log.lock().unwrap()[from..].to_vec()
    }

    /// `intercom-secure-proxy reload` with `args`; its stdout and stderr.
    pub fn reload_command(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(BIN).arg("reload").args(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Sends SIGHUP through `reload --pid`.
    pub fn hup(&self) {
        let (ok, text) = self.reload_command(&["--pid", &self.child.id().to_string()]);
        assert!(ok, "{text}");
    }
}

/// Writes `text` to `path` through a temporary file and a rename.
pub fn write(path: &Path, text: &str) {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).unwrap();
    std::fs::rename(&partial, path).unwrap();
}

/// A session cookie value: an HS256 JWT for `sub`, signed with `key`.
pub fn session(sub: &str, key: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": sub, "exp": now() + 3600}),
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The claims of the Messenger JWT the page boots with, when it verifies with `secret`.
pub fn messenger_claims(page: &str, secret: &str) -> Option<serde_json::Value> {
    let at = page.find("intercom_user_jwt\":\"")? + "intercom_user_jwt\":\"".len();
    let token = &page[at..at + page[at..].find('"')?];
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims = ["exp".to_string()].into();
    jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .ok()
    .map(|data| data.claims)
}
