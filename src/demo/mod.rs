//! `intercom-secure-proxy demo`: a built-in legacy app with the proxy in front of it, on
//! loopback, with fresh random secrets; no network and no setup needed.

mod app;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use app::{DemoApp, SESSION_COOKIE, USERS};

use crate::config::Config;
use crate::proxy;

/// The port the demo tries first, so the URL is easy to remember.
const PREFERRED_PORT: u16 = 8080;

/// The demo's proxy config; `{upstream}` and `{listen}` are filled in at start.
const DEMO_CONFIG: &str = r#"
[server]
listen = "{listen}"

[upstream]
url = "http://{upstream}"

[intercom]
app_id = "demo1234"
secret_env = "DEMO_MESSENGER_SECRET"
region = "us"
token_ttl = "15m"

[session]
cookie = "demo_session"
resolver = "jwt"

[session.fields]
user_id = "/sub"
email = "/email"
name = "/name"
plan = "/plan"

[session.jwt]
algorithms = ["HS256"]
key_env = "DEMO_APP_SESSION_SECRET"

[logout]
paths = ["/logout"]

[[routes]]
path = "/admin/**"
inject = false
[[routes]]
path = "/admin"
inject = false
"#;

/// Starts the demo app and the proxy, prints how to use them, and runs until `shutdown`.
pub async fn run(shutdown: impl Future<Output = ()>) -> Result<(), Box<dyn std::error::Error>> {
    let session_secret = random_secret();
    let messenger_secret = random_secret();

    let app_listener = TcpListener::bind("127.0.0.1:0").await?;
    let app_addr = app_listener.local_addr()?;
    let app = Arc::new(DemoApp::new(session_secret.as_bytes()));
    let app_task = tokio::spawn(app.serve(app_listener));

    // The preferred port if it is free, else any free port.
    let preferred = SocketAddr::from(([127, 0, 0, 1], PREFERRED_PORT));
    let config = demo_config(app_addr, preferred, &session_secret, &messenger_secret)?;
    let server = match proxy::bind(&config).await {
        Ok(server) => server,
        Err(proxy::StartError::Bind { .. }) => {
            let any = SocketAddr::from(([127, 0, 0, 1], 0));
            proxy::bind(&demo_config(
                app_addr,
                any,
                &session_secret,
                &messenger_secret,
            )?)
            .await?
        }
        Err(e) => return Err(e.into()),
    };
    let proxy_addr = server
        .local_addrs()
        .first()
        .copied()
        .ok_or("the proxy has no listener")?;

    println!("intercom-secure-proxy demo");
    println!("  open            http://{proxy_addr}/");
    println!("  demo users      alice / alice   (alice@example.com, plan pro)");
    println!("                  bob / bob       (bob@example.com, plan free)");
    println!("  legacy app      http://{app_addr}/  (direct, without the proxy)");
    println!("  try             /dashboard, /api/me (JSON), /admin (injection off), /logout");
    println!("Press Ctrl-C to stop.");

    server.serve(shutdown).await;
    app_task.abort();
    Ok(())
}

/// The demo's config, with its secrets supplied in memory rather than the environment.
pub fn demo_config(
    upstream: SocketAddr,
    listen: SocketAddr,
    session_secret: &str,
    messenger_secret: &str,
) -> Result<Config, crate::config::ConfigError> {
    let text = DEMO_CONFIG
        .replace("{upstream}", &upstream.to_string())
        .replace("{listen}", &listen.to_string());
    let env: HashMap<String, String> = HashMap::from([
        (
            "DEMO_APP_SESSION_SECRET".to_string(),
            session_secret.to_string(),
        ),
        (
            "DEMO_MESSENGER_SECRET".to_string(),
            messenger_secret.to_string(),
        ),
    ]);
    Config::from_toml(&text, "(built-in demo config)", &env)
}

/// 32 random bytes from the TLS crypto provider, hex-encoded.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    proxy::tls::install_crypto_provider();
    let filled = rustls::crypto::CryptoProvider::get_default()
        .map(|p| p.secure_random.fill(&mut bytes).is_ok())
        .unwrap_or(false);
    if !filled {
        // Demo only: a time-derived fallback is still unique per run.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes[..16].copy_from_slice(&nanos.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
