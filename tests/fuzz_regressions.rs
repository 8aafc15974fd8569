//! Inputs the fuzz targets (`fuzz/`, see fuzz/RESULTS.md) found failing, as ordinary tests:
//! each reproduces the failure without the nightly toolchain. The raw inputs are kept in
//! fuzz/regressions/<target>/, which fuzz/ci.sh replays through the targets themselves.
#![cfg(feature = "server")]

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use intercom_secure_proxy::config::Region;
use intercom_secure_proxy::inject::{
    HeadMemo, MessengerMarkers, PagePlan, PageRewriter, RewriteBody,
};
use intercom_secure_proxy::intercom::{IntercomHosts, Snippet};
use lol_html::AsciiCompatibleEncoding;

fn snippet() -> Snippet {
    let mut settings = serde_json::Map::new();
    settings.insert("app_id".into(), "abc".into());
    Snippet::render(&settings, "https://widget.intercom.io/widget/abc")
}

/// An uncompressed UTF-8 page through the production body, in one chunk.
fn inject(page: &[u8]) -> Vec<u8> {
    inject_chunks(&[page])
}

/// The same, as the app sent it in these chunks.
fn inject_chunks(chunks: &[&[u8]]) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let frames: Vec<_> = chunks
            .iter()
            .map(|chunk| Ok::<_, Infallible>(Frame::data(Bytes::copy_from_slice(chunk))))
            .collect();
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

/// fuzz/regressions/rewrite/meta-csp-attribute-equals (found by the `rewrite` target).
/// `a/="` is a valueless attribute `a` and one named `="`; rewriting the CSP made lol_html
/// write the tag out again as `a ="`, where `=` gives `a` the value `>x<p class=`: the
/// text and the `<p>` after the `<meta>` were swallowed into an attribute. Such a tag is
/// now left as it is, and the page goes without the snippet.
#[test]
fn a_meta_csp_tag_lol_html_cannot_write_out_again_is_left_as_it_is() {
    let page = br#"<meta http-equiv="Content-Security-Policy" content="script-src x" a/=">x<p class="c">y"#;
    let out = inject(page);
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(page),
        "the page must pass through untouched"
    );
}

/// The same tag without the hazard still has its CSP rewritten and gets the snippet.
#[test]
fn a_meta_csp_tag_with_a_slash_between_attributes_is_still_rewritten() {
    let page =
        br#"<meta http-equiv="Content-Security-Policy" content="script-src x" a/b>x<p class="c">y"#;
    let out = String::from_utf8(inject(page)).expect("UTF-8");
    let html = snippet().html(None);
    assert!(out.contains(&html), "no snippet in {out}");
    assert!(out.contains("'sha256-"), "CSP not rewritten: {out}");
    assert!(out.ends_with(&format!(">x<p class=\"c\">y{html}")), "{out}");
}

/// fuzz/regressions/cookie_header/non-ascii-name and non-ascii-value (found by the
/// `cookie_header` target; a harness precondition, not a proxy bug). `with_session_cookie`
/// with a name or value beyond ASCII writes a `Cookie` header that `cookie_values` (and
/// `session_cookie`), which read text headers only, do not read back. The proxy never
/// passes such a name (`session.cookie` must be an ASCII token) or value (it comes from a
/// `Set-Cookie` header read as text); within that domain the value always reads back.
#[test]
fn with_session_cookie_reads_back_every_name_the_config_accepts() {
    use http::header::COOKIE;
    use http::{HeaderMap, HeaderValue};
    use intercom_secure_proxy::config::Config;
    use intercom_secure_proxy::identity::{cookie_values, with_session_cookie};

    let mut headers = HeaderMap::new();
    headers.append(COOKIE, HeaderValue::from_static("a=1; s=old"));
    let replaced = with_session_cookie(&headers, "s", "v");
    assert_eq!(cookie_values(&replaced, "s").collect::<Vec<_>>(), ["v"]);

    // What the target found: the header is written but not read back.
    let replaced = with_session_cookie(&HeaderMap::new(), "s\u{e9}", "v");
    assert_eq!(cookie_values(&replaced, "s\u{e9}").count(), 0);
    // And why it cannot happen: the config refuses the name.
    let env: std::collections::HashMap<String, String> = [
        ("MSG".to_string(), "m".to_string()),
        ("K".to_string(), "k".to_string()),
    ]
    .into();
    let toml = "[upstream]\nurl = \"http://127.0.0.1:3000\"\n[intercom]\napp_id = \"abc123de\"\nsecret_env = \"MSG\"\n[session]\ncookie = \"s\u{e9}\"\nresolver = \"jwt\"\n[session.fields]\nuser_id = \"/sub\"\n[session.jwt]\nalgorithms = [\"HS256\"]\nkey_env = \"K\"\n";
    let Err(err) = Config::from_toml(toml, "f.toml", &env) else {
        panic!("a non-ASCII cookie name was accepted");
    };
    assert!(err.to_string().contains("cookie"), "{err}");
    let plain = toml.replace("s\u{e9}", "s");
    assert!(
        Config::from_toml(&plain, "f.toml", &env).is_ok(),
        "the same config with `s`"
    );
}

/// fuzz/regressions/rewrite/raw-text-attribute-without-value and …-body (found by the
/// `rewrite` target). `<script async=>` starts script data (a missing attribute value is
/// only a parse error), so everything after it here is script text and the document ends
/// inside it: the page must pass untouched. lol_html 3.0 ends such a tag in the data state
/// whatever the element, so, given the proxy's selectors, it read the text as markup and
/// inserted the snippet before the `</p>` closing the `<head>` it saw (or after the
/// `<body>`): inside the page's script, whose text it cut short. The proxy's own lexer now
/// stops the parser at such a tag (`PassReason::AmbiguousMarkup`).
#[test]
fn markup_inside_a_script_whose_tag_ends_in_an_empty_value_gets_no_snippet() {
    let changed: Vec<String> = [
        &b"<script async=><p><head></p>x"[..],
        b"<script s=><a><head></a><",
        b"<script async=><head></head><body>x",
        b"<title x= ><a><head></a>x",
        b"<textarea a=\t><body></textarea><body>",
        b"<STYLE a=><head></head></style>",
        b"<plaintext a=><head></head>",
        // Legible to a browser (the script ends, then the head), but lol_html has parted
        // from it: the page goes without the snippet rather than trust the parser.
        b"<head><script async=>x</script></head><body>y",
    ]
    .into_iter()
    .filter(|page| inject(page) != *page)
    .map(|page| String::from_utf8_lossy(page).into_owned())
    .collect();
    assert!(changed.is_empty(), "changed: {changed:?}");
}

/// The same tag past a long head, so the parser is fed it in a later slice than the
/// head's start, and behind a chunk boundary inside the tag.
#[test]
fn the_tag_is_caught_in_any_slice_and_across_chunks() {
    let padding = "<meta name=x content=y>".repeat(40);
    let page = format!("<head>{padding}<script async=><p><head></p></script>x");
    assert_eq!(inject(page.as_bytes()), page.as_bytes());
    let (a, b) = page.split_at(page.find("async=").expect("tag") + 6);
    assert_eq!(
        inject_chunks(&[a.as_bytes(), b.as_bytes()]),
        page.as_bytes()
    );
}

/// Such a tag after the insertion point changes nothing: the snippet went in before it.
#[test]
fn a_tag_ending_in_an_empty_value_after_the_head_leaves_the_snippet_in() {
    let page = b"<head><title>t</title></head><body><script async=><p><head></p></script>";
    let out = String::from_utf8(inject(page)).expect("UTF-8");
    let html = snippet().html(None);
    assert_eq!(
        out,
        format!("<head><title>t</title>{html}</head><body><script async=><p><head></p></script>")
    );
}
