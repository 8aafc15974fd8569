//! Decompression bombs: injectable pages whose compressed bodies expand to 1 GiB of zeros
//! (brotli: ~800 bytes on the wire; gzip: ~1 MB). The real binary runs as a child process,
//! four bombs at once, and must stay within 64 MB of its resting memory while answering an
//! unrelated page within a second. `ISP_BIN` runs another build of the proxy instead (say,
//! an old release, to see it fail).
#![cfg(feature = "server")]

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::process::ProxyProcess;
use common::{TestBody, config_text, full, now_secs, session_jwt, upstream};
use http::{Request, Response};
use http_body_util::BodyExt;
use serde_json::json;

const GIB: usize = 1 << 30;
/// Memory the proxy may grow by with four bombs in flight.
const MAX_GROWTH: u64 = 64 << 20;
/// How long an unrelated page may take meanwhile.
const MAX_LATENCY: Duration = Duration::from_secs(1);

/// LSB-first bit packing, as brotli reads its stream.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u64, bits: u32) {
        self.acc |= value << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A brotli stream of `blocks` x `block` zeros, written by hand (RFC 7932): each meta-block
/// is one command (a literal 0, then a copy of the rest at distance 1) with single-symbol
/// prefix codes, so ~13 bytes stand for up to 16 MiB.
fn brotli_zeros(block: usize, blocks: usize) -> Vec<u8> {
    assert!((2119..=1 << 24).contains(&block));
    let mut bits = Bits::default();
    bits.put(1, 1); // WBITS: 17 + 5 = 22
    bits.put(5, 3);
    let len = block as u64 - 1;
    let nibbles = (64 - len.leading_zeros()).div_ceil(4).max(4);
    for _ in 0..blocks {
        bits.put(0, 1); // ISLAST
        bits.put(u64::from(nibbles - 4), 2); // MNIBBLES
        bits.put(len, nibbles * 4); // MLEN - 1
        bits.put(0, 1); // ISUNCOMPRESSED
        bits.put(0, 3); // one block type each for literals, commands, distances
        bits.put(0, 2); // NPOSTFIX
        bits.put(0, 4); // NDIRECT
        bits.put(0, 2); // context mode
        bits.put(0, 2); // one literal tree, one distance tree
        // Simple prefix codes of one symbol each (zero bits per use): literal 0; command
        // 399 (insert code 1: one literal; copy code 23: 2118 + 24 extra bits; explicit
        // distance); distance code 16 (distance 1 + one extra bit).
        for (symbol, alphabet_bits) in [(0, 8), (399, 10), (16, 6)] {
            bits.put(1, 2);
            bits.put(0, 2);
            bits.put(symbol, alphabet_bits);
        }
        bits.put(len - 2118, 24); // copy length extra bits
        bits.put(0, 1); // distance extra bit
    }
    bits.put(1, 1); // ISLAST
    bits.put(1, 1); // ISLASTEMPTY
    bits.finish()
}

/// `copies` gzip members of 1 MiB of zeros each.
fn gzip_zeros(copies: usize) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![0u8; 1 << 20]).unwrap();
    e.finish().unwrap().repeat(copies)
}

#[test]
fn the_hand_made_brotli_stream_is_valid() {
    let mut out = Vec::new();
    brotli::Decompressor::new(&brotli_zeros(1 << 20, 3)[..], 4096)
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out.len(), 3 << 20);
    assert!(out.iter().all(|&b| b == 0));
}

async fn get(addr: SocketAddr, path: &str, cookie: &str) -> Response<hyper::body::Incoming> {
    let req = Request::get(format!("http://{addr}{path}"))
        .header("accept", "text/html")
        .header("accept-encoding", "gzip, br")
        .header("cookie", format!("session={cookie}"))
        .body(common::empty())
        .unwrap();
    common::client().request(req).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_bombs_stay_within_memory_and_leave_the_worker_responsive() {
    let br = Bytes::from(brotli_zeros(1 << 24, GIB >> 24));
    let gz = Bytes::from(gzip_zeros(GIB >> 20));
    assert!(
        br.len() < 1_000 && gz.len() < 2_000_000,
        "{} {}",
        br.len(),
        gz.len()
    );
    let app = upstream(move |req| {
        let (br, gz) = (br.clone(), gz.clone());
        async move {
            let (body, coding): (TestBody, _) = match req.uri().path() {
                "/br" => (full(br), Some("br")),
                "/gzip" => (full(gz), Some("gzip")),
                _ => (full(common::APP_PAGE), None),
            };
            let mut r = Response::new(body);
            r.headers_mut()
                .insert("content-type", "text/html".parse().unwrap());
            if let Some(coding) = coding {
                r.headers_mut()
                    .insert("content-encoding", coding.parse().unwrap());
            }
            r
        }
    })
    .await;
    // One worker: the bombs and the unrelated page share it.
    let proxy = ProxyProcess::start(&config_text(
        &format!("http://{}", app.addr),
        "workers = 1",
        "",
    ));
    let cookie = session_jwt(json!({"sub": "u-1", "exp": now_secs() + 3600}));

    // At rest, after a page of each kind has been through.
    let small = get(proxy.addr, "/small", &cookie).await;
    let small = small.into_body().collect().await.unwrap().to_bytes();
    assert!(
        String::from_utf8_lossy(&small).contains("intercomSettings"),
        "the page is injected"
    );
    let _ = std::fs::write(format!("/proc/{}/clear_refs", proxy.child.id()), "5");
    let baseline = proxy.status("VmRSS:");

    let started = Instant::now();
    let mut bombs = Vec::new();
    for path in ["/br", "/gzip", "/br", "/gzip"] {
        let response = get(proxy.addr, path, &cookie).await;
        assert_eq!(response.status(), 200, "{path}");
        bombs.push(tokio::spawn(async move {
            let mut body = response.into_body();
            let mut bytes = 0usize;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(frame) => bytes += frame.data_ref().map_or(0, |d| d.len()),
                    Err(_) => break,
                }
            }
            (bytes, started.elapsed())
        }));
    }
    let heads = started.elapsed();
    // While they are in flight: unrelated pages, one after the other.
    let mut latencies = Vec::new();
    while bombs.iter().any(|b| !b.is_finished()) && started.elapsed() < Duration::from_secs(60) {
        let asked = Instant::now();
        let page = tokio::time::timeout(Duration::from_secs(30), async {
            let response = get(proxy.addr, "/small", &cookie).await;
            response.into_body().collect().await.unwrap().to_bytes()
        })
        .await
        .expect("the unrelated page is answered");
        assert!(String::from_utf8_lossy(&page).contains("intercomSettings"));
        latencies.push(asked.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut ends = Vec::new();
    for bomb in bombs {
        let end = tokio::time::timeout(Duration::from_secs(60), bomb)
            .await
            .expect("the bombs end")
            .unwrap();
        ends.push(end);
    }
    let growth = proxy.status("VmHWM:").saturating_sub(baseline);
    let slowest = latencies.iter().max().copied().unwrap_or_default();
    eprintln!(
        "4 bombs: heads in {heads:?}, (bytes sent, ended) {ends:?}; memory growth {} MiB; \
         unrelated pages meanwhile: {latencies:?}",
        growth >> 20,
    );
    assert!(
        growth < MAX_GROWTH,
        "the proxy grew by {} MiB",
        growth >> 20
    );
    assert!(
        !latencies.is_empty(),
        "no page was asked while the bombs ran"
    );
    assert!(slowest < MAX_LATENCY, "an unrelated page took {slowest:?}");
    for (bytes, _) in ends {
        assert!(bytes < 1 << 20, "{bytes} bytes sent for a bomb");
    }
    let log = proxy.log.lock().unwrap().join("\n");
    assert_eq!(
        log.matches("decompression bomb").count(),
        4,
        "a warning per bomb:\n{log}"
    );
}
