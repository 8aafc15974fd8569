//! `intercom-secure-proxy demo`: a built-in legacy app with the proxy in front of it, on
//! loopback, with fresh random secrets; no network and no setup needed.

mod app;
mod widget;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use app::{DemoApp, SESSION_COOKIE, USERS};
pub use widget::StandInIntercom;

use crate::config::Config;
use crate::proxy;

/// Serves `handler` over HTTP/1.1 and h2 on `listener` until the task is dropped (the
/// demo's own small servers; the proxy has its own, hardened, accept loop).
pub(crate) async fn serve_plain<H, F>(listener: TcpListener, handler: H)
where
    H: Fn(http::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = http::Response<proxy::ProxyBody>> + Send + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Usually out of file descriptors: back off instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let handler = handler.clone();
        let service = hyper::service::service_fn(move |req| {
            let response = handler(req);
            async move { Ok::<_, std::convert::Infallible>(response.await) }
        });
        tokio::spawn(
            builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned(),
        );
    }
}

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
widget_url = "http://{widget}/widget/demo1234"

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
    let widget_listener = TcpListener::bind("127.0.0.1:0").await?;
    let widget_addr = widget_listener.local_addr()?;
    let intercom = Arc::new(StandInIntercom::new(
        "demo1234",
        messenger_secret.as_bytes(),
    ));
    let widget_task = tokio::spawn(intercom.serve(widget_listener));
    let addrs = DemoAddrs {
        app: app_addr,
        widget: widget_addr,
    };

    // The preferred port if it is free, else any free port.
    let preferred = SocketAddr::from(([127, 0, 0, 1], PREFERRED_PORT));
    let config = demo_config(&addrs, preferred, &session_secret, &messenger_secret)?;
    let server = match crate::bind(&config).await {
        Ok(server) => server,
        Err(crate::StartError::Proxy(proxy::StartError::Bind { .. })) => {
            let any = SocketAddr::from(([127, 0, 0, 1], 0));
            crate::bind(&demo_config(
                &addrs,
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
    println!(
        "  Intercom        stand-in at http://{widget_addr}/ (offline; verifies the Messenger JWT)"
    );
    println!("Press Ctrl-C to stop.");

    server.serve(shutdown).await;
    app_task.abort();
    widget_task.abort();
    Ok(())
}

/// Where the demo's own servers listen.
pub struct DemoAddrs {
    /// The legacy app.
    pub app: SocketAddr,
    /// The stand-in Intercom (widget script and JWT check).
    pub widget: SocketAddr,
}

/// The demo's config, with its secrets supplied in memory rather than the environment.
pub fn demo_config(
    addrs: &DemoAddrs,
    listen: SocketAddr,
    session_secret: &str,
    messenger_secret: &str,
) -> Result<Config, crate::config::ConfigError> {
    let text = DEMO_CONFIG
        .replace("{upstream}", &addrs.app.to_string())
        .replace("{widget}", &addrs.widget.to_string())
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
    crate::net::install_crypto_provider();
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
