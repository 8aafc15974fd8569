//! What happens when the app is down or slow, and on shutdown with a request in flight.
#![cfg(feature = "server")]

mod common;

use std::time::Duration;

use common::*;
use http::{Request, Response, StatusCode};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

const HANG_GUARD: Duration = Duration::from_secs(10);

async fn get(url: String) -> (StatusCode, http::HeaderMap, String) {
    let response = tokio::time::timeout(
        HANG_GUARD,
        client().request(Request::get(url).body(empty()).unwrap()),
    )
    .await
    .expect("the proxy must answer")
    .expect("a response");
    let status = response.status();
    let headers = response.headers().clone();
    let body = String::from_utf8(body_bytes(response.into_body()).await.to_vec()).unwrap();
    (status, headers, body)
}

#[tokio::test]
async fn app_down_gives_502_and_service_resumes_when_it_is_back() {
    // A bound socket that does not listen: connections are refused, and no other test can
    // take the port before the app "comes back" on it.
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = reserved.local_addr().unwrap().port();
    let proxy = proxy_for(&format!("http://127.0.0.1:{port}")).await;

    let (status, headers, body) = get(proxy.url("/")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert!(body.starts_with("502 Bad Gateway"), "{body}");
    assert!(
        !body.contains(&port.to_string()),
        "the error must not reveal the upstream address"
    );

    // The app comes back on the same port: the next request is served.
    let listener = reserved.listen(64).unwrap();
    let _app = serve_on(listener, |_req| async { Response::new(full("back")) });
    let (status, _, body) = get(proxy.url("/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "back");
}

#[tokio::test]
async fn app_too_slow_gives_504() {
    let app = upstream(|_req| async {
        // Never answers: the response head must be cut off by upstream.timeout.
        std::future::pending::<()>().await;
        Response::new(empty())
    })
    .await;
    let config = config_text(&format!("http://{}", app.addr), "", "")
        .replace("timeout = \"2s\"", "timeout = \"300ms\"");
    let proxy = proxy_with(&config).await;
    let (status, headers, body) = get(proxy.url("/slow")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(headers["cache-control"], "no-store");
    assert!(body.starts_with("504 Gateway Timeout"), "{body}");
}

#[tokio::test]
async fn app_closing_the_connection_without_answering_gives_502() {
    let app = raw_upstream(b"").await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let (status, _, _) = get(proxy.url("/")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
}

/// An app that holds each request until released: every request sends its release on the
/// returned channel when it arrives, and is then answered with `body(path)`.
async fn held_app(
    body: fn(&str) -> String,
) -> (Upstream, mpsc::UnboundedReceiver<oneshot::Sender<()>>) {
    let (arrived_tx, arrived_rx) = mpsc::unbounded_channel::<oneshot::Sender<()>>();
    let app = upstream(move |req| {
        let arrived_tx = arrived_tx.clone();
        async move {
            let (release_tx, release_rx) = oneshot::channel();
            arrived_tx.send(release_tx).unwrap();
            let _ = release_rx.await;
            Response::new(full(body(req.uri().path())))
        }
    })
    .await;
    (app, arrived_rx)
}

#[tokio::test]
async fn shutdown_stops_accepting_and_finishes_the_request_in_flight() {
    let (app, mut arrived_rx) = held_app(|_| "finished after shutdown began".to_string()).await;
    let mut proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let addr = proxy.addr;

    let in_flight = tokio::spawn(get(proxy.url("/long")));
    let release = arrived_rx.recv().await.expect("request reached the app");
    let serve_task = proxy.begin_shutdown();

    // New connections are refused once the listener is closed.
    let refused = tokio::time::timeout(HANG_GUARD, async {
        loop {
            if TcpStream::connect(addr).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        refused.is_ok(),
        "the listener must close after the shutdown signal"
    );
    assert!(
        !serve_task.is_finished(),
        "the server must wait for the request in flight"
    );

    release.send(()).unwrap();
    let (status, _, body) = in_flight.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "finished after shutdown began");
    tokio::time::timeout(HANG_GUARD, serve_task)
        .await
        .expect("serve returns once the last request is done")
        .unwrap();
}

#[tokio::test]
async fn shutdown_is_bounded_when_a_request_never_finishes() {
    let (arrived_tx, mut arrived_rx) = mpsc::unbounded_channel::<()>();
    let app = upstream(move |_req| {
        let arrived_tx = arrived_tx.clone();
        async move {
            arrived_tx.send(()).unwrap();
            std::future::pending::<()>().await;
            Response::new(empty())
        }
    })
    .await;
    let config = config_text(
        &format!("http://{}", app.addr),
        "shutdown_timeout = \"200ms\"",
        "",
    )
    .replace("timeout = \"2s\"", "timeout = \"1h\"");
    let mut proxy = proxy_with(&config).await;
    let _stuck =
        tokio::spawn(client().request(Request::get(proxy.url("/stuck")).body(empty()).unwrap()));
    arrived_rx.recv().await.unwrap();
    let serve_task = proxy.begin_shutdown();
    tokio::time::timeout(HANG_GUARD, serve_task)
        .await
        .expect("shutdown_timeout bounds the drain")
        .unwrap();
}

#[tokio::test]
async fn slow_request_heads_are_cut_off_and_oversized_heads_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = upstream(|_req| async { Response::new(full("ok")) }).await;
    let config = config_text(
        &format!("http://{}", app.addr),
        "header_read_timeout = \"200ms\"\nmax_header_bytes = 8192",
        "",
    );
    let proxy = proxy_with(&config).await;

    // Slowloris: half a request head, then silence. The proxy must hang up on its own.
    let mut slow = TcpStream::connect(proxy.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(HANG_GUARD, slow.read_to_end(&mut sink)).await;
    assert!(
        closed.is_ok(),
        "the proxy must close a connection whose head never completes"
    );
    assert!(!String::from_utf8_lossy(&sink).contains("200 OK"));

    // A head larger than max_header_bytes is refused, not forwarded. Exactly the limit is
    // sent (and no more) so that no unread bytes make the close a reset that eats the answer.
    let mut big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big.resize(8192, b'a');
    let raw = raw_exchange(proxy.addr, &big).await;
    assert!(raw.starts_with("HTTP/1.1 431"), "{raw}");
}

#[tokio::test]
async fn silent_and_idle_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = upstream(|_req| async { Response::new(full("ok")) }).await;
    let config = config_text(
        &format!("http://{}", app.addr),
        "header_read_timeout = \"200ms\"",
        "",
    );
    let proxy = proxy_with(&config).await;

    // Connects and never sends a byte (not even enough to tell HTTP/1.1 from h2).
    let mut silent = TcpStream::connect(proxy.addr).await.unwrap();
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(HANG_GUARD, silent.read_to_end(&mut sink)).await;
    assert!(
        closed.is_ok(),
        "a silent connection must be closed by the proxy"
    );
    assert!(sink.is_empty());

    // Half of the h2 preface, then silence.
    let mut partial = TcpStream::connect(proxy.addr).await.unwrap();
    partial.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let closed = tokio::time::timeout(HANG_GUARD, partial.read_to_end(&mut sink)).await;
    assert!(
        closed.is_ok(),
        "a partial preface must not hold the connection"
    );

    // One request, then an idle keep-alive connection.
    let mut idle = TcpStream::connect(proxy.addr).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let closed = tokio::time::timeout(HANG_GUARD, idle.read_to_end(&mut sink)).await;
    assert!(
        closed.is_ok(),
        "an idle keep-alive connection must be closed eventually"
    );
    assert!(String::from_utf8_lossy(&sink).starts_with("HTTP/1.1 200 OK"));
}

#[tokio::test]
async fn upstream_timeout_starts_after_the_upload_ends() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};
    let app = upstream(|req| async move {
        let body = req.into_body().collect().await.unwrap().to_bytes();
        Response::new(full(format!("{} bytes", body.len())))
    })
    .await;
    let config = config_text(&format!("http://{}", app.addr), "", "")
        .replace("timeout = \"2s\"", "timeout = \"300ms\"");
    let proxy = proxy_with(&config).await;
    // The upload takes longer than upstream.timeout; the app answers at once after it.
    let slow_upload = futures_util::stream::unfold(0, |i| async move {
        if i == 3 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        Some((
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(http_body::Frame::data(
                Bytes::from_static(b"0123456789"),
            )),
            i + 1,
        ))
    });
    let request = Request::post(proxy.url("/upload"))
        .body(StreamBody::new(slow_upload).boxed())
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_bytes(response.into_body()).await, "30 bytes");
}

#[tokio::test]
async fn every_worker_drains_its_requests_before_the_server_stops() {
    const IN_FLIGHT: usize = 24;
    let (app, mut arrived_rx) = held_app(|path| format!("done {path}")).await;
    let config = config_text(&format!("http://{}", app.addr), "workers = 3", "");
    let mut proxy = proxy_with(&config).await;
    // Separate connections, so the workers share them out.
    let requests: Vec<_> = (0..IN_FLIGHT)
        .map(|i| tokio::spawn(get(proxy.url(&format!("/r{i}")))))
        .collect();
    let mut releases = Vec::new();
    for _ in 0..IN_FLIGHT {
        releases.push(arrived_rx.recv().await.expect("request reached the app"));
    }
    let serve_task = proxy.begin_shutdown();
    assert!(!serve_task.is_finished(), "requests are still in flight");
    for release in releases {
        release.send(()).unwrap();
    }
    for (i, request) in requests.into_iter().enumerate() {
        let (status, _, body) = request.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, format!("done /r{i}"));
    }
    tokio::time::timeout(HANG_GUARD, serve_task)
        .await
        .expect("serve returns once every worker has drained")
        .unwrap();
}
