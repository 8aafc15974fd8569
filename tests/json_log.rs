//! `[log] format = "json"` on the real binary: every line is a JSON object, each request's
//! access line has its fields (the injection outcome and reason, a request id the app got
//! as `X-Request-Id` too), and no cookie, token, query string or secret ever shows, even
//! at debug level.
#![cfg(feature = "server")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use http::{Request, Response};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_intercom-secure-proxy");
const QUERY_SECRET: &str = "query-token-7f3a9c";
const AUTH_SECRET: &str = "bearer-token-91be2d";

/// The proxy's log lines as they come, and the process.
struct Logged {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Logged {
    /// The next line that, parsed, satisfies `wanted` (every line must parse).
    fn wait_for(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no such line in:\n{}", self.seen.join("\n")));
            self.seen.push(line.clone());
            let parsed: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
            assert!(parsed.is_object(), "{line}");
            if wanted(&parsed) {
                return parsed;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_access_fields_and_never_a_secret() {
    // The app records the X-Request-Id it gets.
    let ids = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = ids.clone();
    let app = upstream(move |req| {
        let id = req
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string());
        seen.lock().unwrap().push(id.unwrap_or_default());
        async {
            let mut r = Response::new(full(APP_PAGE));
            r.headers_mut()
                .insert("content-type", "text/html".parse().unwrap());
            r
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    let config = config_text(
        &format!("http://{}", app.addr),
        "",
        "\n[log]\nformat = \"json\"\n",
    );
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .envs(test_env())
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = send.send(line);
        }
    });
    let mut log = Logged {
        child,
        lines,
        seen: Vec::new(),
    };
    let listening = log.wait_for(|l| l["message"] == "listening");
    let addr = listening["addr"].as_str().expect("addr").to_string();

    let cookie_value = session_jwt(json!({"sub": "u-secret-42", "exp": now_secs() + 600}));
    let send = |path: &str, cookie: Option<&str>, id: Option<&str>| {
        let mut req = Request::get(format!("http://{addr}{path}"))
            .header("accept", "text/html")
            .header("authorization", format!("Bearer {AUTH_SECRET}"));
        if let Some(c) = cookie {
            req = req.header("cookie", format!("session={c}; other=1"));
        }
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        let req = req.body(empty()).unwrap();
        async move {
            let response = client().request(req).await.unwrap();
            String::from_utf8(body_bytes(response.into_body()).await.to_vec()).unwrap()
        }
    };
    let page = send(
        &format!("/account?token={QUERY_SECRET}&x=1"),
        Some(&cookie_value),
        Some("req-from-the-lb-1"),
    )
    .await;
    let (_, _, settings) = find_snippet(&page).expect("injected");
    let messenger_jwt = settings["intercom_user_jwt"].as_str().unwrap().to_string();
    send("/", None, None).await;
    send("/", None, Some("bad id with spaces")).await;

    let access: Vec<Value> = (0..3)
        .map(|_| log.wait_for(|l| l["target"] == "access"))
        .collect();
    let injected = &access[0];
    for field in ["timestamp", "level", "latency_ms", "client"] {
        assert!(injected.get(field).is_some(), "{field} in {injected}");
    }
    assert_eq!(injected["level"], "INFO");
    assert_eq!(injected["method"], "GET");
    assert_eq!(injected["path"], "/account", "no query");
    assert_eq!(injected["status"], 200);
    assert_eq!(injected["client"], "127.0.0.1");
    assert_eq!(injected["outcome"], "injected");
    assert!(injected.get("reason").is_none(), "{injected}");
    assert_eq!(injected["request_id"], "req-from-the-lb-1");

    let visitor = &access[1];
    assert_eq!(visitor["outcome"], "passed");
    assert_eq!(visitor["reason"], "no_session");
    let generated = visitor["request_id"].as_str().unwrap().to_string();
    assert!(
        generated.len() == 32 && generated.bytes().all(|b| b.is_ascii_hexdigit()),
        "{generated}"
    );
    let replaced = access[2]["request_id"].as_str().unwrap().to_string();
    assert_ne!(replaced, "bad id with spaces");
    assert_ne!(replaced, generated, "a new id per request");
    assert_eq!(
        *ids.lock().unwrap(),
        ["req-from-the-lb-1", generated.as_str(), replaced.as_str()],
        "the app gets the id the log shows"
    );

    // Stop it, and read everything it logged.
    let pid = log.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    log.wait_for(|l| l["message"] == "stopped");
    assert!(log.child.wait().unwrap().success());
    while let Ok(line) = log.lines.recv_timeout(Duration::from_secs(2)) {
        log.seen.push(line);
    }
    assert!(log.seen.len() > 10, "debug lines too: {:#?}", log.seen);
    for line in &log.seen {
        assert!(serde_json::from_str::<Value>(line).is_ok(), "{line}");
        for secret in [
            cookie_value.as_str(),
            messenger_jwt.as_str(),
            QUERY_SECRET,
            AUTH_SECRET,
            MESSENGER_SECRET,
            SESSION_SECRET,
            "u-secret-42",
        ] {
            assert!(!line.contains(secret), "{secret:?} logged: {line}");
        }
    }
}
