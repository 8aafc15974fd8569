//! Property: for any HTML and any chunking, the injected page is the app's page byte for
//! byte with the snippet inserted exactly once; compressed or not.
#![cfg(feature = "server")]

use std::io::{Read, Write};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
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
use proptest::prelude::*;

/// Pieces that stress the insertion logic: head ends in comments, scripts, attributes and
/// odd case; unclosed markup; ambiguous markup; non-ASCII and invalid UTF-8.
const FRAGMENTS: &[&[u8]] = &[
    b"<!DOCTYPE html>",
    b"<html>",
    b"<head>",
    b"</head>",
    b"</HEAD  >",
    b"<body>",
    b"<BODY class=a>",
    b"</body>",
    b"</html>",
    b"<title>t</title>",
    b"<!-- </head> -->",
    b"<!--",
    b"-->",
    b"<script>var s='</head>';</script>",
    b"<script>",
    b"</script>",
    b"<style>p{}</style>",
    b"<div title=\"</head>\">",
    b"<p>",
    b"text ",
    b"&amp; &lt;",
    b"<br/>",
    b"<select><xmp>",
    b"<textarea></head></textarea>",
    b"<meta charset=utf-8>",
    b"\xc3\xa9\xe2\x82\xac",
    b"\xff\xfe\x80",
    b"<",
    b">",
    b"</",
];

fn page_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40).prop_map(|parts| parts.concat())
}

/// Cut points (fractions of the page length) for the chunking.
fn cuts_strategy() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.0..1.0f64, 0..12)
}

fn snippet() -> Snippet {
    let mut settings = serde_json::Map::new();
    settings.insert("app_id".into(), "abc".into());
    Snippet::render(&settings, "https://widget.intercom.io/widget/abc")
}

fn chunks_of(data: &[u8], cuts: &[f64]) -> Vec<Bytes> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|f| (f * data.len() as f64) as usize)
        .collect();
    points.push(0);
    points.push(data.len());
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| Bytes::copy_from_slice(&data[w[0]..w[1]]))
        .collect()
}

/// Runs the production body over `chunks` and returns what the client would receive.
fn inject_with(chunks: Vec<Bytes>, coding: Coding, memo: &Arc<HeadMemo>) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let memo = memo.clone();
    runtime.block_on(async move {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(c)));
        let inner = StreamBody::new(stream::iter(frames));
        let rewriter = PageRewriter::new(PagePlan {
            snippet: snippet(),
            nonce: None,
            hosts: Arc::new(IntercomHosts::new(Region::Us, None)),
            markers: Arc::new(MessengerMarkers::new(
                "https://widget.intercom.io/widget/abc",
            )),
            encoding: AsciiCompatibleEncoding::utf_8(),
            memo: memo.clone(),
            even_if_present: false,
        });
        let body = RewriteBody::new(inner, rewriter, coding.decoder(), coding.encoder());
        body.collect().await.expect("body").to_bytes().to_vec()
    })
}

/// A page through a parser that has seen nothing before.
fn inject(chunks: Vec<Bytes>, coding: Coding) -> Vec<u8> {
    inject_with(chunks, coding, &Arc::new(HeadMemo::off()))
}

/// One memo for every case: heads recur across pages, as they do across an app's pages.
static SHARED_MEMO: LazyLock<Arc<HeadMemo>> = LazyLock::new(|| Arc::new(HeadMemo::default()));

/// Removes the one snippet; fails if it is missing or present twice.
fn strip_snippet(out: &[u8]) -> Vec<u8> {
    let html = snippet().html(None).into_bytes();
    // A page whose end is not in the text state (an open comment, say) gets no snippet.
    let Some(at) = out.windows(html.len()).position(|w| w == html.as_slice()) else {
        return out.to_vec();
    };
    let mut rest = out[..at].to_vec();
    rest.extend_from_slice(&out[at + html.len()..]);
    assert!(
        !rest.windows(html.len()).any(|w| w == html.as_slice()),
        "snippet inserted twice"
    );
    rest
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn identity_pages_are_byte_identical_outside_the_snippet(page in page_strategy(), cuts in cuts_strategy()) {
        let out = inject(chunks_of(&page, &cuts), Coding::Identity);
        prop_assert_eq!(strip_snippet(&out), page.clone());
        // A remembered head gives exactly what the parser gives: first sight, then again.
        let first = inject_with(chunks_of(&page, &cuts), Coding::Identity, &SHARED_MEMO);
        let again = inject_with(chunks_of(&page, &cuts), Coding::Identity, &SHARED_MEMO);
        prop_assert_eq!(&first, &out);
        prop_assert_eq!(&again, &out);
    }

    #[test]
    fn gzip_pages_are_byte_identical_outside_the_snippet(page in page_strategy(), cuts in cuts_strategy()) {
        let compressed = gzip(&page);
        let out = inject(chunks_of(&compressed, &cuts), Coding::Gzip);
        prop_assert_eq!(strip_snippet(&gunzip(&out)), page);
    }
}

#[test]
fn the_34k_page_split_at_every_offset_around_head_end() {
    let page = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/pages/page-34k.html"),
    )
    .expect("bench/pages/page-34k.html");
    let head_end = page.windows(7).position(|w| w == b"</head>").unwrap();
    // Every 2-way split in a window around the insertion point (and a few far away).
    for cut in
        (head_end.saturating_sub(40)..head_end + 48).chain([1, page.len() / 2, page.len() - 1])
    {
        let chunks = vec![
            Bytes::copy_from_slice(&page[..cut]),
            Bytes::copy_from_slice(&page[cut..]),
        ];
        let out = inject(chunks, Coding::Identity);
        assert_eq!(strip_snippet(&out), page, "split at {cut}");
        let at = out.windows(7).position(|w| w == b"</head>").unwrap();
        assert!(
            out[..at].ends_with(snippet().html(None).as_bytes()),
            "split at {cut}: snippet right before </head>"
        );
    }
}
