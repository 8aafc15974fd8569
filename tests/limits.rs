//! What one client may hold, on the wire: silent HTTP/2 connections close after
//! `server.idle_timeout` (pings or not), `server.max_connections` holds new clients back,
//! trickled or never-ending request bodies are cut off (`server.body_timeout`,
//! `server.body_min_rate`), HTTP/2 streams per connection and app connections are bounded.
#![cfg(feature = "server")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Method, Request, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Guards against a hang: what must end ends long before this.
const HANG_GUARD: Duration = Duration::from_secs(30);

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const H2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];
/// A PING frame (8 bytes of opaque data).
const H2_PING: &[u8] = &[0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];

async fn proxy_with_server(server_extra: &str, extra: &str) -> (Upstream, Proxy) {
    let app = html_app().await;
    let proxy = proxy_with(&config_text(
        &format!("http://{}", app.addr),
        server_extra,
        extra,
    ))
    .await;
    (app, proxy)
}

/// A proxy in front of `app` that waits at most a second for the next bytes of a body.
async fn slow_body_proxy(app: &BodyApp) -> Proxy {
    proxy_with(&config_text(
        &format!("http://{}", app.upstream.addr),
        "body_timeout = \"1s\"",
        "",
    ))
    .await
}

/// Reads until the peer closes the connection (or resets it).
async fn until_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

#[tokio::test]
async fn silent_h2_connections_close_after_the_idle_timeout_even_when_they_ping() {
    let (_app, proxy) = proxy_with_server("idle_timeout = \"1s\"", "").await;
    let mut silent = Vec::new();
    for _ in 0..2000 {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(H2_PREFACE).await.unwrap();
        stream.write_all(H2_SETTINGS).await.unwrap();
        silent.push(stream);
    }
    // One more that keeps pinging: pings are no request, so it idles out too.
    let mut pinging = TcpStream::connect(proxy.addr).await.unwrap();
    pinging.write_all(H2_PREFACE).await.unwrap();
    pinging.write_all(H2_SETTINGS).await.unwrap();
    let pinger = async {
        let mut buf = [0u8; 4096];
        let mut ticks = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    if pinging.write_all(H2_PING).await.is_err() {
                        return;
                    }
                }
                read = pinging.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
            }
        }
    };
    let all_closed = async {
        futures_util::future::join_all(silent.iter_mut().map(until_closed)).await;
    };
    tokio::time::timeout(HANG_GUARD, async { tokio::join!(all_closed, pinger) })
        .await
        .expect("idle h2 connections stayed open");
}

#[tokio::test]
async fn a_request_in_flight_keeps_its_connection_past_the_idle_timeout() {
    let app = upstream(|_| async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        http::Response::new(full("slow but fine"))
    })
    .await;
    let proxy = proxy_with(&config_text(
        &format!("http://{}", app.addr),
        "idle_timeout = \"500ms\"",
        "",
    ))
    .await;
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<TestBody>();
    let response = h2
        .request(Request::get(proxy.url("/slow")).body(empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_bytes(response.into_body()).await, "slow but fine");
}

#[tokio::test]
async fn at_the_connection_limit_new_clients_wait_until_one_closes() {
    let (_app, proxy) = proxy_with_server("max_connections = 2", "").await;
    let request = b"GET /asset.css HTTP/1.1\r\nHost: x\r\nAccept: text/css\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    let mut third = TcpStream::connect(proxy.addr).await.unwrap();
    third.write_all(request).await.unwrap();
    let mut buf = [0u8; 1024];
    assert!(
        tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf))
            .await
            .is_err(),
        "a third connection was served past max_connections = 2"
    );
    drop(held.pop());
    let n = tokio::time::timeout(HANG_GUARD, third.read(&mut buf))
        .await
        .expect("the waiting client was never served")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
}

/// An app that reads every request body to its end and says how that went.
struct BodyApp {
    upstream: Upstream,
    /// Request bodies that ended in an error (the proxy gave up on them), as they come.
    broken: tokio::sync::watch::Receiver<usize>,
    /// Most request bodies being read at once.
    peak: Arc<AtomicUsize>,
}

async fn body_app() -> BodyApp {
    let (broken_tx, broken) = tokio::sync::watch::channel(0usize);
    let broken_tx = Arc::new(broken_tx);
    let peak = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (b, p) = (broken_tx, peak.clone());
    let upstream = upstream(move |req| {
        let (broken, peak, in_flight) = (b.clone(), p.clone(), in_flight.clone());
        async move {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let read = req.into_body().collect().await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            match read {
                Ok(body) => http::Response::new(full(format!("{} bytes", body.to_bytes().len()))),
                Err(_) => {
                    broken.send_modify(|n| *n += 1);
                    http::Response::new(full("broken"))
                }
            }
        }
    })
    .await;
    BodyApp {
        upstream,
        broken,
        peak,
    }
}

#[tokio::test]
async fn a_trickled_upload_is_cut_off_and_frees_the_app_connection() {
    let app = body_app().await;
    let proxy = slow_body_proxy(&app).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    // One byte every 200 ms: never a gap of body_timeout, but far below body_min_rate.
    let mut response = Vec::new();
    let trickle = async {
        let mut ticks = tokio::time::interval(Duration::from_millis(200));
        let mut buf = [0u8; 1024];
        loop {
            tokio::select! {
                _ = ticks.tick() => { let _ = stream.write_all(b"x").await; }
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        response.extend_from_slice(&buf[..n]);
                        if response.windows(4).any(|w| w == b"\r\n\r\n") {
                            return;
                        }
                    }
                },
            }
        }
    };
    tokio::time::timeout(HANG_GUARD, trickle)
        .await
        .expect("the trickled upload was never cut off");
    let head = String::from_utf8_lossy(&response);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    let mut broken = app.broken.clone();
    tokio::time::timeout(HANG_GUARD, broken.wait_for(|n| *n == 1))
        .await
        .expect("the app still waits for the trickled body")
        .unwrap();
}

#[tokio::test]
async fn a_body_that_never_comes_is_cut_off_after_body_timeout() {
    let app = body_app().await;
    let proxy = slow_body_proxy(&app).await;
    let raw = tokio::time::timeout(
        HANG_GUARD,
        raw_exchange(
            proxy.addr,
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        ),
    )
    .await
    .expect("a stalled body held the request");
    assert!(raw.starts_with("HTTP/1.1 408"), "{raw}");
}

#[tokio::test]
async fn a_fast_upload_is_untouched_by_the_pace_rules() {
    let app = body_app().await;
    let proxy = slow_body_proxy(&app).await;
    let body = vec![b'x'; 4 * 1024 * 1024];
    let response = client()
        .request(
            Request::builder()
                .method(Method::POST)
                .uri(proxy.url("/upload"))
                .body(full(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_bytes(response.into_body()).await, "4194304 bytes");
}

#[tokio::test]
async fn h2_streams_per_connection_and_app_connections_are_bounded() {
    let app = body_app().await;
    let config = config_text(
        &format!("http://{}", app.upstream.addr),
        "h2_max_streams = 8\nbody_timeout = \"1s\"",
        "",
    )
    .replace(
        "timeout = \"2s\"\n",
        "timeout = \"2s\"\nmax_connections = 4\n",
    );
    assert!(config.contains("max_connections = 4"));
    let proxy = proxy_with(&config).await;

    // The server announces the stream limit in its first SETTINGS frame.
    let mut raw = TcpStream::connect(proxy.addr).await.unwrap();
    raw.write_all(H2_PREFACE).await.unwrap();
    raw.write_all(H2_SETTINGS).await.unwrap();
    let mut head = [0u8; 9];
    raw.read_exact(&mut head).await.unwrap();
    assert_eq!(head[3], 4, "the server's first frame is SETTINGS");
    let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
    let mut settings = vec![0u8; len];
    raw.read_exact(&mut settings).await.unwrap();
    let max_streams = settings
        .chunks(6)
        .find(|s| s[..2] == [0, 3])
        .map(|s| u32::from_be_bytes([s[2], s[3], s[4], s[5]]));
    assert_eq!(max_streams, Some(8));

    // Fifty streams whose bodies never come, on one connection: the app never sees more
    // than upstream.max_connections at once, and every one of them ends.
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<StreamBody<tokio_stream_shim::Receiver>>();
    let mut senders = Vec::new();
    let mut requests = Vec::new();
    for _ in 0..50 {
        let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::convert::Infallible>>(1);
        senders.push(tx);
        let request = Request::post(proxy.url("/upload"))
            .body(StreamBody::new(tokio_stream_shim::Receiver(rx)))
            .unwrap();
        requests.push(h2.request(request));
    }
    let answers = tokio::time::timeout(HANG_GUARD, futures_util::future::join_all(requests))
        .await
        .expect("never-ending bodies held their streams");
    drop(senders);
    for answer in answers {
        match answer.map(|r| r.status()) {
            Ok(StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE) => {}
            // Streams past the 8 the server allows, sent before its SETTINGS arrived.
            Err(e) if format!("{e:?}").contains("REFUSED_STREAM") => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(
        app.peak.load(Ordering::SeqCst) >= 1,
        "no request reached the app"
    );
    assert!(
        app.peak.load(Ordering::SeqCst) <= 4,
        "{} app connections at once",
        app.peak.load(Ordering::SeqCst)
    );
}

/// An mpsc receiver as a `Stream`, without tokio-stream.
mod tokio_stream_shim {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use http_body::Frame;

    pub struct Receiver(
        pub tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, std::convert::Infallible>>,
    );

    impl futures_util::Stream for Receiver {
        type Item = Result<Frame<Bytes>, std::convert::Infallible>;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.0.poll_recv(cx)
        }
    }
}
