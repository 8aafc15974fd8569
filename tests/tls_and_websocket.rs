//! The HTTPS front end (HTTP/1.1 and h2 by ALPN), an https upstream trusted through
//! `upstream.ca_file`, and WebSocket upgrades spliced through the proxy.
#![cfg(feature = "server")]

mod common;

use std::sync::Arc;

use common::*;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode, Version};
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

struct TestCert {
    pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn localhost_cert() -> TestCert {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    TestCert {
        pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
        der: certified.cert.der().clone(),
    }
}

fn https_client(
    cert: &TestCert,
    h2: bool,
) -> hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    TestBody,
> {
    intercom_secure_proxy::net::install_crypto_provider();
    let mut roots = RootCertStore::empty();
    roots.add(cert.der.clone()).unwrap();
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only();
    let connector = if h2 {
        builder.enable_http2().build()
    } else {
        builder.enable_http1().build()
    };
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector)
}

async fn tls_proxy(app: &Upstream, cert: &TestCert, dir: &tempfile::TempDir) -> Proxy {
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert.pem).unwrap();
    std::fs::write(&key_path, &cert.key_pem).unwrap();
    let server = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"",
        cert_path.display(),
        key_path.display()
    );
    proxy_with(&config_text(&format!("http://{}", app.addr), &server, "")).await
}

async fn proto_seen_by_app(req: Request<hyper::body::Incoming>) -> Response<TestBody> {
    let proto = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_string();
    Response::new(full(proto))
}

#[tokio::test]
async fn https_front_end_serves_http11_and_h2_by_alpn() {
    let app = upstream(proto_seen_by_app).await;
    let cert = localhost_cert();
    let dir = tempfile::tempdir().unwrap();
    let proxy = tls_proxy(&app, &cert, &dir).await;
    let url = format!("https://localhost:{}/secure", proxy.addr.port());

    for (h2, version) in [(false, Version::HTTP_11), (true, Version::HTTP_2)] {
        let response = https_client(&cert, h2)
            .request(Request::get(&url).body(empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.version(), version);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body_bytes(response.into_body()).await, "https");
    }
}

/// The proxy's own cookies (here the booted-for marker of a logged-in page) carry `Secure`
/// when the browser came over HTTPS, and not over plain HTTP, where a browser would drop them.
#[tokio::test]
async fn own_cookies_are_secure_over_https_only() {
    let app = html_app().await;
    let cert = localhost_cert();
    let dir = tempfile::tempdir().unwrap();
    let tls = tls_proxy(&app, &cert, &dir).await;
    let plain = proxy_for(&format!("http://{}", app.addr)).await;
    let jwt = session_jwt(serde_json::json!({"sub": "alice", "exp": now_secs() + 600}));
    let booted_cookie = |response: &Response<hyper::body::Incoming>| {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("__isp_booted="))
            .map(str::to_string)
            .expect("a logged-in page sets the booted-for marker")
    };
    let page = |url: String| {
        Request::get(url)
            .header("accept", "text/html")
            .header("cookie", format!("session={jwt}"))
            .body(empty())
            .unwrap()
    };

    let over_https = https_client(&cert, false)
        .request(page(format!("https://localhost:{}/", tls.addr.port())))
        .await
        .unwrap();
    let cookie = booted_cookie(&over_https);
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Not HttpOnly: the snippet itself clears the markers once its shutdown is in the page.
    assert!(!cookie.contains("HttpOnly"), "{cookie}");

    let over_http = client().request(page(plain.url("/"))).await.unwrap();
    let cookie = booted_cookie(&over_http);
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_no_response() {
    let app = upstream(proto_seen_by_app).await;
    let cert = localhost_cert();
    let dir = tempfile::tempdir().unwrap();
    let proxy = tls_proxy(&app, &cert, &dir).await;
    let raw = raw_exchange(proxy.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        !raw.contains("HTTP/1.1 200"),
        "plain HTTP must not be served on the TLS port: {raw}"
    );
}

#[tokio::test]
async fn https_upstream_is_trusted_through_ca_file() {
    intercom_secure_proxy::net::install_crypto_provider();
    let cert = localhost_cert();
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("upstream-ca.pem");
    std::fs::write(&ca_path, &cert.pem).unwrap();

    // An HTTPS app, serving with the same self-signed certificate.
    let key = <rustls::pki_types::PrivateKeyDer<'static> as rustls::pki_types::pem::PemObject>::from_pem_slice(
        cert.key_pem.as_bytes(),
    )
    .unwrap();
    let server_config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der.clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app_task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(Response::new(full("from https app")))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });

    let upstream_url = format!("https://localhost:{port}");
    let trusted = config_text(&upstream_url, "", "").replace(
        "timeout = \"2s\"",
        &format!("timeout = \"2s\"\nca_file = \"{}\"", ca_path.display()),
    );
    let proxy = proxy_with(&trusted).await;
    let response = client()
        .request(Request::get(proxy.url("/")).body(empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_bytes(response.into_body()).await, "from https app");

    // Without the CA the certificate is rejected: 502, never a silent insecure connection.
    let untrusted = proxy_for(&upstream_url).await;
    let response = client()
        .request(Request::get(untrusted.url("/")).body(empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    app_task.abort();
}

#[tokio::test]
async fn websocket_echo_through_the_proxy() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_addr = listener.local_addr().unwrap();
    let app_task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() || msg.is_binary() {
                        if ws.send(msg).await.is_err() {
                            return;
                        }
                    } else if msg.is_close() {
                        return;
                    }
                }
            });
        }
    });
    let proxy = proxy_for(&format!("http://{app_addr}")).await;

    let stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (mut ws, response) =
        tokio_tungstenite::client_async(format!("ws://{}/cable", proxy.addr), stream)
            .await
            .expect("the upgrade must succeed through the proxy");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);

    ws.send(Message::text("hello from the browser"))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("hello from the browser")
    );
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    ws.send(Message::binary(binary.clone())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(binary));
    ws.close(None).await.unwrap();
    app_task.abort();
}
