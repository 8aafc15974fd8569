//! The HTTPS front end's certificate reloaded by SIGHUP: new connections get the new
//! certificate, a connection made before keeps working.
#![cfg(feature = "server")]

mod common;
mod reload_support;

use std::sync::Arc;

use common::html_app;
use reload_support::*;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

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

/// A TLS connection to the proxy, trusting both certificates.
async fn connect(running: &Running, trusted: &[&TestCert]) -> TlsStream<TcpStream> {
    intercom_secure_proxy::net::install_crypto_provider();
    let mut roots = RootCertStore::empty();
    for cert in trusted {
        roots.add(cert.der.clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(running.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

fn presented(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// One keep-alive request on `stream`; the status line.
async fn get(stream: &mut TlsStream<TcpStream>) -> String {
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\naccept: application/json\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("a content-length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    head.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_certificate_is_served_to_new_connections_after_sighup() {
    let app = html_app().await;
    let (first, second) = (localhost_cert(), localhost_cert());
    let tls = |dir: &std::path::Path| {
        format!(
            "tls_cert = {:?}\ntls_key = {:?}",
            dir.join("cert.pem"),
            dir.join("key.pem")
        )
    };
    let running = Running::start(|dir| {
        write(&dir.join("cert.pem"), &first.pem);
        write(&dir.join("key.pem"), &first.key_pem);
        config(dir, app.addr, &tls(dir), "15m", "", "")
    });
    let mut before = connect(&running, &[&first, &second]).await;
    assert_eq!(presented(&before), first.der);
    assert_eq!(get(&mut before).await, "HTTP/1.1 200 OK");

    // A key that does not fit the certificate is refused, and the first one stays.
    write(&running.path("cert.pem"), &second.pem);
    let from = running.lines();
    running.hup();
    let refused = running.wait_for_log(from, "config reload refused");
    assert!(
        running
            .log_since(from)
            .iter()
            .any(|l| l.contains("server.tls_cert / server.tls_key")),
        "{refused}"
    );
    assert_eq!(
        presented(&connect(&running, &[&first, &second]).await),
        first.der
    );

    write(&running.path("key.pem"), &second.key_pem);
    let from = running.lines();
    running.hup();
    running.wait_for_log(from, "config reloaded");
    let after = connect(&running, &[&first, &second]).await;
    assert_eq!(presented(&after), second.der);
    // The connection made before the reload carries on.
    assert_eq!(get(&mut before).await, "HTTP/1.1 200 OK");
}
