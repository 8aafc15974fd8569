//! The rewrite path on the benchmark pages: an injected page through `RewriteBody`, identity
//! and gzip, in 16 KiB chunks as they come off a socket. Run: `cargo bench --bench rewrite`.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::stream;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use intercom_secure_proxy::config::Region;
use intercom_secure_proxy::inject::{
    Coding, HeadMemo, MessengerMarkers, PagePlan, PageRewriter, RewriteBody,
};
use intercom_secure_proxy::intercom::IntercomHosts;
use intercom_secure_proxy::intercom::Snippet;
use lol_html::AsciiCompatibleEncoding;

const CHUNK: usize = 16 * 1024;

fn page(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench/pages")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(5));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn snippet() -> Snippet {
    let mut settings = serde_json::Map::new();
    settings.insert("app_id".into(), "abc123de".into());
    settings.insert("api_base".into(), "https://api-iam.intercom.io".into());
    // A realistic token length.
    settings.insert("intercom_user_jwt".into(), "x".repeat(215).into());
    Snippet::render(&settings, "https://widget.intercom.io/widget/abc123de")
}

/// What the proxy builds once at start and shares between pages.
struct Fixed {
    hosts: Arc<IntercomHosts>,
    markers: Arc<MessengerMarkers>,
    memo: Arc<HeadMemo>,
}

impl Fixed {
    fn new(memo: HeadMemo) -> Self {
        Fixed {
            hosts: Arc::new(IntercomHosts::new(Region::Us, None)),
            markers: Arc::new(MessengerMarkers::new(
                "https://widget.intercom.io/widget/abc123de",
            )),
            memo: Arc::new(memo),
        }
    }

    /// One page's plan, as `insert` builds it for an uncompressed UTF-8 page.
    fn plan(&self, snippet: Snippet) -> PagePlan {
        PagePlan {
            snippet,
            nonce: None,
            hosts: self.hosts.clone(),
            markers: self.markers.clone(),
            encoding: AsciiCompatibleEncoding::utf_8(),
            memo: self.memo.clone(),
            even_if_present: false,
        }
    }
}

fn run(rt: &tokio::runtime::Runtime, chunks: &[Bytes], coding: Coding, fixed: &Fixed) -> usize {
    let frames: Vec<_> = chunks
        .iter()
        .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(c.clone())))
        .collect();
    let rewriter = PageRewriter::new(fixed.plan(snippet()));
    let body = RewriteBody::new(
        StreamBody::new(stream::iter(frames)),
        rewriter,
        coding.decoder(),
        coding.encoder(),
    );
    rt.block_on(body.collect())
        .map(|b| b.to_bytes().len())
        .unwrap_or(0)
}

fn rewrite(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // The memo is shared across pages, as in the proxy: the steady state is a remembered head.
    let fixed = Fixed::new(HeadMemo::default());
    let mut group = c.benchmark_group("inject");
    for name in ["page-34k.html", "page-1.7m.html"] {
        let html = page(name);
        for (coding, bytes) in [
            (Coding::Identity, html.clone()),
            (Coding::Gzip, gzip(&html)),
        ] {
            let chunks: Vec<Bytes> = bytes.chunks(CHUNK).map(Bytes::copy_from_slice).collect();
            group.throughput(Throughput::Bytes(html.len() as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{coding:?}"), name),
                &chunks,
                |b, chunks| b.iter(|| run(&rt, chunks, coding, &fixed)),
            );
        }
    }
    group.finish();
}

/// The fixed per-page pieces, apart: rendering the snippet and building the rewriter.
fn per_page(c: &mut Criterion) {
    let fixed = Fixed::new(HeadMemo::default());
    let unseen = Fixed::new(HeadMemo::off());
    let mut group = c.benchmark_group("per_page");
    group.bench_function("render_snippet", |b| b.iter(snippet));
    // A head never seen before: the parser is built and run (what every page cost before
    // the memo, and what pages with per-request heads still cost).
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let html = page("page-34k.html");
    let chunks: Vec<Bytes> = html.chunks(CHUNK).map(Bytes::copy_from_slice).collect();
    group.bench_function("inject_34k_unseen_head", |b| {
        b.iter(|| run(&rt, &chunks, Coding::Identity, &unseen))
    });
    let rendered = snippet();
    group.bench_function("new_rewriter", |b| {
        b.iter(|| PageRewriter::new(fixed.plan(rendered.clone())))
    });
    group.finish();
}

criterion_group!(benches, rewrite, per_page);
criterion_main!(benches);
