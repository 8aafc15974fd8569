//! Forwarding behaviour seen on the wire: streaming, byte fidelity, headers, HEAD, 204/304,
//! trailers and h2c, against real upstream servers on port 0.
#![cfg(feature = "server")]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::stream;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// Guards against a hang: if the proxy buffered instead of streaming, a read would never end.
const HANG_GUARD: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic pseudo-random bytes (xorshift), so corruption cannot hide in a pattern.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A body fed by the test through a channel, one chunk at a time.
fn channel_body(rx: mpsc::Receiver<Bytes>) -> TestBody {
    StreamBody::new(stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, BoxError>(Frame::data(b)), rx))
    }))
    .boxed()
}

#[tokio::test]
async fn first_byte_of_a_slow_response_arrives_before_the_app_finishes() {
    let (senders_tx, mut senders_rx) = mpsc::unbounded_channel::<mpsc::Sender<Bytes>>();
    let app = upstream(move |_req| {
        let senders_tx = senders_tx.clone();
        async move {
            let (tx, rx) = mpsc::channel::<Bytes>(1);
            senders_tx.send(tx).expect("test is listening");
            let mut r = Response::new(channel_body(rx));
            r.headers_mut()
                .insert("content-type", "text/html".parse().unwrap());
            r
        }
    })
    .await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;

    let pending =
        tokio::spawn(client().request(Request::get(proxy.url("/slow")).body(empty()).unwrap()));
    let app_side = senders_rx.recv().await.expect("upstream saw the request");
    app_side
        .send(Bytes::from_static(b"<html><head>"))
        .await
        .unwrap();

    let response = tokio::time::timeout(HANG_GUARD, pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = tokio::time::timeout(HANG_GUARD, body.frame())
        .await
        .expect("the first chunk must arrive while the app is still sending")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "<html><head>");

    // Only now does the app finish the page.
    app_side
        .send(Bytes::from_static(b"</head></html>"))
        .await
        .unwrap();
    drop(app_side);
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "</head></html>");
}

#[tokio::test]
async fn five_mib_upload_and_download_are_byte_identical() {
    const SIZE: usize = 5 * 1024 * 1024;
    let download = Bytes::from(payload(SIZE, 7));
    let served = download.clone();
    let app = upstream(move |req| {
        let served = served.clone();
        async move {
            if req.method() == Method::POST {
                // Hash the upload as it streams in.
                let mut hasher = Sha256::new();
                let mut len = 0usize;
                let mut body = req.into_body();
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame.unwrap().into_data() {
                        len += data.len();
                        hasher.update(&data);
                    }
                }
                Response::new(full(format!("{len} {}", hex(&hasher.finalize()))))
            } else {
                // Serve in 64 KiB chunks with a Content-Length, like a static file server.
                let chunks: Vec<_> = served
                    .chunks(64 * 1024)
                    .map(|c| Ok::<_, BoxError>(Frame::data(served.slice_ref(c))))
                    .collect();
                let mut r = Response::new(StreamBody::new(stream::iter(chunks)).boxed());
                r.headers_mut()
                    .insert("content-length", served.len().into());
                r
            }
        }
    })
    .await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;

    let upload = Bytes::from(payload(SIZE, 11));
    let chunks: Vec<_> = (0..upload.len())
        .step_by(100_000)
        .map(|i| {
            Ok::<_, BoxError>(Frame::data(
                upload.slice(i..(i + 100_000).min(upload.len())),
            ))
        })
        .collect();
    let req = Request::post(proxy.url("/upload"))
        .body(StreamBody::new(stream::iter(chunks)).boxed())
        .unwrap();
    let response = client().request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer = body_bytes(response.into_body()).await;
    assert_eq!(answer, format!("{SIZE} {}", hex(&Sha256::digest(&upload))));

    let response = client()
        .request(Request::get(proxy.url("/download")).body(empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-length"],
        SIZE.to_string().as_str()
    );
    let got = body_bytes(response.into_body()).await;
    assert_eq!(got.len(), SIZE);
    assert_eq!(hex(&Sha256::digest(&got)), hex(&Sha256::digest(&download)));
}

/// Echoes the request head the app received: one `name: value` line per header.
async fn echo_head(req: Request<hyper::body::Incoming>) -> Response<TestBody> {
    let mut lines = format!("{} {} {:?}\n", req.method(), req.uri(), req.version());
    for (name, value) in req.headers() {
        lines.push_str(&format!(
            "{name}: {}\n",
            value.to_str().unwrap_or("<bytes>")
        ));
    }
    Response::new(full(lines))
}

#[tokio::test]
async fn request_hop_by_hop_headers_are_removed_and_forwarded_headers_set() {
    let app = upstream(echo_head).await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let raw = raw_exchange(
        proxy.addr,
        b"GET /page?q=1 HTTP/1.1\r\n\
Host: app.example:8443\r\n\
Connection: keep-alive, X-Hop-Secret, close\r\n\
X-Hop-Secret: 1\r\n\
Keep-Alive: timeout=5\r\n\
Proxy-Connection: keep-alive\r\n\
Proxy-Authorization: Basic Zm9vOmJhcg==\r\n\
TE: gzip, trailers\r\n\
X-Forwarded-For: 203.0.113.9, 198.51.100.2\r\n\
X-Forwarded-Proto: ftp\r\n\
Cookie: a=1; b=2\r\n\
X-End-To-End: kept\r\n\r\n",
    )
    .await;
    let body = raw.split("\r\n\r\n").nth(1).unwrap();
    let seen: Vec<&str> = body.lines().collect();
    assert_eq!(seen[0], "GET /page?q=1 HTTP/1.1");
    for gone in [
        "connection:",
        "x-hop-secret:",
        "keep-alive:",
        "proxy-connection:",
        "proxy-authorization:",
    ] {
        assert!(
            !seen.iter().any(|l| l.starts_with(gone)),
            "{gone} reached the app: {seen:?}"
        );
    }
    for expected in [
        "host: app.example:8443",
        "te: trailers",
        // The client is no trusted proxy: its chain is replaced (tests/client_trust.rs).
        "x-forwarded-for: 127.0.0.1",
        "x-forwarded-proto: http",
        "x-forwarded-host: app.example:8443",
        "cookie: a=1; b=2",
        "x-end-to-end: kept",
    ] {
        assert!(seen.contains(&expected), "missing {expected:?} in {seen:?}");
    }
    assert_eq!(
        seen.iter()
            .filter(|l| l.starts_with("x-forwarded-for:"))
            .count(),
        1
    );
}

#[tokio::test]
async fn response_hop_by_hop_headers_are_removed_and_every_set_cookie_kept() {
    let app = raw_upstream(
        b"HTTP/1.1 200 OK\r\n\
Content-Type: text/plain\r\n\
Connection: X-Resp-Hop\r\n\
X-Resp-Hop: secret\r\n\
Keep-Alive: timeout=5\r\n\
Proxy-Authenticate: Basic\r\n\
Set-Cookie: a=1; Path=/\r\n\
Set-Cookie: b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly\r\n\
Set-Cookie: theme=; Max-Age=0\r\n\
X-App: yes\r\n\
Content-Length: 5\r\n\r\nhello",
    )
    .await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let raw = raw_exchange(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let head = head_lines(&raw);
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    assert!(raw.ends_with("\r\n\r\nhello"), "{raw}");
    let cookies: Vec<_> = head
        .iter()
        .filter(|l| l.starts_with("set-cookie:"))
        .collect();
    assert_eq!(
        cookies,
        [
            "set-cookie: a=1; Path=/",
            "set-cookie: b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly",
            "set-cookie: theme=; Max-Age=0",
        ]
    );
    for gone in ["x-resp-hop:", "keep-alive:", "proxy-authenticate:"] {
        assert!(
            !head.iter().any(|l| l.starts_with(gone)),
            "{gone} reached the client: {head:?}"
        );
    }
    assert!(head.contains(&"x-app: yes".to_string()));
    assert!(head.contains(&"content-length: 5".to_string()));
}

#[tokio::test]
async fn head_204_and_304_keep_framing_on_a_kept_alive_connection() {
    let app = upstream(|req| async move {
        let mut r = Response::new(empty());
        match req.uri().path() {
            "/head" => {
                r.headers_mut().insert("content-length", 1234.into());
                r.headers_mut()
                    .insert("content-type", "text/html".parse().unwrap());
            }
            "/nocontent" => *r.status_mut() = StatusCode::NO_CONTENT,
            "/cached" => {
                *r.status_mut() = StatusCode::NOT_MODIFIED;
                r.headers_mut().insert("etag", "\"v1\"".parse().unwrap());
            }
            _ => return Response::new(full("last")),
        }
        r
    })
    .await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    // Four requests pipelined on one connection: any framing mistake corrupts the next one.
    let raw = raw_exchange(
        proxy.addr,
        b"HEAD /head HTTP/1.1\r\nHost: x\r\n\r\n\
GET /nocontent HTTP/1.1\r\nHost: x\r\n\r\n\
GET /cached HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"v1\"\r\n\r\n\
GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let statuses: Vec<_> = raw.lines().filter(|l| l.starts_with("HTTP/1.1 ")).collect();
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 204 No Content",
            "HTTP/1.1 304 Not Modified",
            "HTTP/1.1 200 OK"
        ],
        "{raw}"
    );
    let head_response = raw.split("HTTP/1.1 204").next().unwrap();
    assert!(
        head_response
            .to_ascii_lowercase()
            .contains("content-length: 1234"),
        "{head_response}"
    );
    assert!(
        head_response.ends_with("\r\n\r\n"),
        "HEAD response must have no body: {head_response:?}"
    );
    assert!(raw.contains("etag: \"v1\""));
    assert!(raw.ends_with("\r\n\r\nlast"), "{raw}");
}

#[tokio::test]
async fn chunked_response_trailers_reach_the_client() {
    let app = upstream(|_req| async move {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "abc123".parse().unwrap());
        let frames = vec![
            Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"part1,"))),
            Ok(Frame::data(Bytes::from_static(b"part2"))),
            Ok(Frame::trailers(trailers)),
        ];
        let mut r = Response::new(StreamBody::new(stream::iter(frames)).boxed());
        r.headers_mut()
            .insert("trailer", "x-checksum".parse().unwrap());
        r
    })
    .await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let raw = raw_exchange(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n",
    )
    .await;
    let lower = raw.to_ascii_lowercase();
    assert!(lower.contains("transfer-encoding: chunked"), "{raw}");
    assert!(lower.contains("part1,"), "{raw}");
    assert!(
        lower.ends_with("0\r\nx-checksum: abc123\r\n\r\n"),
        "trailer must follow the last chunk: {raw:?}"
    );
}

#[tokio::test]
async fn h2c_client_is_served_and_the_app_gets_http11_with_host() {
    let app = upstream(echo_head).await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<TestBody>();
    let response = h2
        .request(
            Request::get(proxy.url("/over-h2?x=1"))
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(body_bytes(response.into_body()).await.to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "GET /over-h2?x=1 HTTP/1.1");
    assert!(
        lines.contains(&format!("host: {}", proxy.addr).as_str()),
        "{text}"
    );
}

#[tokio::test]
async fn expect_100_continue_gets_an_interim_response_before_the_body_is_sent() {
    let app = upstream(|req| async move {
        let body = req.into_body().collect().await.unwrap().to_bytes();
        Response::new(full(format!("got {}", String::from_utf8_lossy(&body))))
    })
    .await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // The client holds the body back until it sees the interim response.
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(HANG_GUARD, stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1, "connection closed before 100 Continue");
        interim.push(byte[0]);
    }
    assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").await.unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    let rest = String::from_utf8(rest).unwrap();
    assert!(rest.starts_with("HTTP/1.1 200 OK\r\n"), "{rest}");
    assert!(rest.ends_with("\r\n\r\ngot hello"), "{rest}");
}

#[tokio::test]
async fn upstream_path_prefix_is_prepended() {
    let app = upstream(echo_head).await;
    let proxy = proxy_for(&format!("http://{}/legacy/", app.addr)).await;
    let response = client()
        .request(Request::get(proxy.url("/page?id=7")).body(empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(body_bytes(response.into_body()).await.to_vec()).unwrap();
    assert!(
        text.starts_with("GET /legacy/page?id=7 HTTP/1.1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn h2_split_cookies_reach_the_app_as_one_header() {
    let app = upstream(echo_head).await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<TestBody>();
    let request = Request::get(proxy.url("/"))
        .header("cookie", "theme=dark")
        .header("cookie", "session=abc")
        .body(empty())
        .unwrap();
    let response = h2.request(request).await.unwrap();
    let text = String::from_utf8(body_bytes(response.into_body()).await.to_vec()).unwrap();
    let cookies: Vec<&str> = text.lines().filter(|l| l.starts_with("cookie:")).collect();
    assert_eq!(cookies, ["cookie: theme=dark; session=abc"]);
}

#[tokio::test]
async fn only_websocket_upgrades_are_forwarded() {
    let app = upstream(echo_head).await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let raw = raw_exchange(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nX-Forwarded-Ssl: on\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200 OK"), "{raw}");
    let lower = raw.to_ascii_lowercase();
    assert!(
        !lower.contains("upgrade: h2c"),
        "h2c must not reach the app: {raw}"
    );
    assert!(!lower.contains("http2-settings"), "{raw}");
    assert!(!lower.contains("x-forwarded-ssl"), "{raw}");
}
