//! The page rewriter: where the snippet goes, what is left alone.

use super::*;
use crate::config::Region;
use crate::inject::markup::charref::decode_attribute;

#[test]
fn http_equiv_is_spotted_in_any_case_and_anywhere() {
    assert!(mentions_http_equiv(b"<meta HTTP-Equiv=refresh>"));
    assert!(mentions_http_equiv(b"http-equiv"));
    assert!(!mentions_http_equiv(
        b"<link rel=x-y> -equiv http- http-equi"
    ));
    assert!(!mentions_http_equiv(b""));
}

fn plan() -> PagePlan {
    PagePlan {
        snippet: Snippet { script: "S".into() },
        nonce: None,
        hosts: Arc::new(IntercomHosts::new(Region::Us, None)),
        markers: Arc::new(MessengerMarkers::new(
            "https://widget.intercom.io/widget/abc",
        )),
        encoding: AsciiCompatibleEncoding::utf_8(),
        memo: Arc::new(HeadMemo::default()),
        even_if_present: false,
    }
}

#[test]
fn a_head_seen_before_is_spliced_without_a_parser_and_the_same_bytes_come_out() {
    let memo = Arc::new(HeadMemo::default());
    let page = b"<!DOCTYPE html><html><head><title>t</title></head><body>hi</body></html>";
    let head_end = page.windows(7).position(|w| w == b"</head>").unwrap() + 7;
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let mut rw = PageRewriter::new(PagePlan {
            memo: memo.clone(),
            ..plan()
        });
        let mut out = Vec::new();
        rw.write(&page[..head_end], &mut out).unwrap();
        assert!(rw.is_done());
        outputs.push((out, rw.parser.is_some()));
        rw.end(&mut Vec::new()).unwrap();
    }
    assert_eq!(outputs[0].0, outputs[1].0);
    assert!(outputs[0].1, "first sight: parsed");
    assert!(
        !outputs[1].1,
        "second sight: from the memo, no parser built"
    );
    assert_eq!(
        String::from_utf8(outputs[1].0.clone()).unwrap(),
        "<!DOCTYPE html><html><head><title>t</title><script>S</script></head>"
    );
}

#[test]
fn heads_the_parser_changes_or_that_load_the_messenger_are_never_remembered() {
    let memo = Arc::new(HeadMemo::default());
    let csp =
        "<head><meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'self'\"></head>";
    // A policy the parser leaves as it is (it already allows the script by the nonce
    // the response's header names): remembering it would drop the nonce on a response
    // without that header.
    let unchanged = "<head><meta HTTP-EQUIV=\"Content-Security-Policy\" content=\"script-src 'nonce-abc' https://app.intercom.io https://widget.intercom.io https://js.intercomcdn.com\"></head>";
    let present = "<head><script>window.intercomSettings={}</script></head>";
    for head in [csp, present, unchanged] {
        for _ in 0..2 {
            let mut rw = PageRewriter::new(PagePlan {
                memo: memo.clone(),
                nonce: Some("abc".into()),
                ..plan()
            });
            rw.write(head.as_bytes(), &mut Vec::new()).unwrap();
            assert!(rw.parser.is_some(), "{head}: parsed every time");
        }
    }
}

/// Feeds `page` in chunks the way the body does (stopping at the first `is_done`).
fn run(page: &str, chunk: usize) -> String {
    let mut rw = PageRewriter::new(plan());
    let mut out = Vec::new();
    let bytes = page.as_bytes();
    let mut offset = 0;
    while offset < bytes.len() {
        let end = (offset + chunk).min(bytes.len());
        rw.write(&bytes[offset..end], &mut out).unwrap();
        offset = end;
        if rw.is_done() {
            rw.end(&mut out).unwrap();
            out.extend_from_slice(&bytes[offset..]);
            return String::from_utf8(out).unwrap();
        }
    }
    rw.end(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn inserts_before_head_end_then_at_body_then_at_document_end() {
    for chunk in [1, 3, 7, 1000] {
        assert_eq!(
            run(
                "<html><head><title>x</title></HEAD ><body>b</body></html>",
                chunk
            ),
            "<html><head><title>x</title><script>S</script></HEAD ><body>b</body></html>"
        );
        assert_eq!(
            run("<p>no head<body>b", chunk),
            "<p>no head<body><script>S</script>b"
        );
        assert_eq!(
            run("<p>fragment</p>", chunk),
            "<p>fragment</p><script>S</script>"
        );
    }
}

#[test]
fn head_end_inside_comments_or_scripts_is_not_an_insertion_point() {
    let page = "<head><!-- </head> --><script>var s='</head>';</script></head><body></body>";
    assert_eq!(
        run(page, 5),
        "<head><!-- </head> --><script>var s='</head>';</script><script>S</script></head><body></body>"
    );
}

#[test]
fn pages_that_already_load_the_messenger_are_left_alone() {
    let page =
        "<head><script src=\"https://widget.intercom.io/widget/abc\"></script></head><body></body>";
    assert_eq!(run(page, 4), page);
    let inline = "<head><script>window.intercomSettings={};</script></head><body></body>";
    assert_eq!(run(inline, 1000), inline);
}

#[test]
fn markers_after_the_insertion_point_do_not_count() {
    let page = "<head></head><body><p>We use intercomSettings in our docs</p><meta http-equiv=content-security-policy content=\"script-src 'self'\"></body>";
    for chunk in [1, 9, 4096] {
        assert_eq!(
            run(page, chunk),
            page.replace("</head>", "<script>S</script></head>"),
            "chunk {chunk}"
        );
    }
    let split = "<head><script>window.interc";
    assert_eq!(
        run(&format!("{split}omSettings={{}}</script></head>"), 3),
        format!("{split}omSettings={{}}</script></head>")
    );
}

#[test]
fn meta_csp_gets_the_hash_and_hosts() {
    let page =
        "<head><meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'self'\"></head>";
    let out = run(page, 1000);
    let hash = Snippet { script: "S".into() }.csp_hash();
    assert!(
        out.contains(&format!(
            "content=\"script-src 'self' {hash} https://app.intercom.io"
        )),
        "{out}"
    );
    assert!(out.ends_with("<script>S</script></head>"), "{out}");
}

#[test]
fn meta_csp_nonce_is_put_on_the_script() {
    let page = "<head><meta http-equiv=\"content-security-policy\" content=\"script-src 'nonce-r4nd'\"></head>";
    let out = run(page, 1000);
    assert!(
        out.ends_with("<script nonce=\"r4nd\">S</script></head>"),
        "{out}"
    );
    assert!(!out.contains("'sha256-"), "{out}");
}

/// The `content` of the first `<meta>` in `out`, as the browser reads it.
fn meta_content(out: &str) -> String {
    let start = out.find("content=\"").unwrap() + 9;
    let raw = &out[start..start + out[start..].find('"').unwrap()];
    decode_attribute(raw).unwrap().into_owned()
}

#[test]
fn meta_csp_written_with_references_is_read_and_written_back_as_the_browser_reads_it() {
    let page = "<head><meta http-equiv=\"Content-Security-Policy\" content=\"script-src &#39;self&#39;; style-src &apos;none&apos;; base-uri &#x27;none&#x27;; report-uri /r?a=1&amp;b=2\"></head>";
    let hash = Snippet { script: "S".into() }.csp_hash();
    for chunk in [1, 7, 1000] {
        let out = run(page, chunk);
        let policy = meta_content(&out);
        assert!(
            policy.starts_with(&format!("script-src 'self' {hash} https://app.intercom.io")),
            "{policy}"
        );
        assert!(
            policy.ends_with("; style-src 'none'; base-uri 'none'; report-uri /r?a=1&b=2"),
            "{policy}"
        );
        assert!(
            out.contains("/r?a=1&amp;b=2\">"),
            "`&` written back escaped: {out}"
        );
        assert!(out.ends_with("<script>S</script></head>"), "{out}");
    }
}

#[test]
fn http_equiv_written_with_references_is_still_a_csp() {
    let page = "<head><meta http-equiv=\"&#67;ontent-Security-Policy\" content=\"script-src &quot;x&quot; &#39;nonce-n1&#39;\"></head>";
    let out = run(page, 1000);
    assert!(
        out.ends_with("<script nonce=\"n1\">S</script></head>"),
        "{out}"
    );
    assert!(
        meta_content(&out).starts_with("script-src \"x\" 'nonce-n1' https://app.intercom.io"),
        "{out}"
    );
    assert!(out.contains("script-src &quot;x&quot; 'nonce-n1'"), "{out}");
}

#[test]
fn a_meta_csp_that_cannot_be_read_leaves_the_page_as_it_is() {
    for page in [
        "<head><meta http-equiv=\"Content-Security-Policy\" content=\"script-src &rsquo;self&rsquo;\"></head><body>b</body>",
        "<head><meta http-equiv=\"Content-Security-Policy&zwj;\" content=\"script-src 'self'\"></head><body>b</body>",
        "<meta http-equiv=content-security-policy content=\"default-src &unknown; 'self'\"><p>fragment",
    ] {
        for chunk in [1, 9, 1000] {
            assert_eq!(run(page, chunk), page, "chunk {chunk}");
        }
    }
    // Another http-equiv, unreadable or not, is none of our business.
    let refresh = "<head><meta http-equiv=\"refresh\" content=\"5;url=/a?b&zwj;\"></head>";
    assert_eq!(
        run(refresh, 1000),
        refresh.replace("</head>", "<script>S</script></head>")
    );
}

#[test]
fn the_document_end_gets_the_snippet_only_in_text() {
    for page in [
        "<p>x<img src='http://127.0.0.1:9/exfil?x=",
        "<p>x<img src=\"http://127.0.0.1:9/exfil?x=",
        "<p>x<img src=http://127.0.0.1:9/exfil?x=",
        "<p>x<img alt",
        "<p>x<img",
        "<p>x</",
        "<p>x<!-- note",
        "<!DOCTYPE html",
        "<p>x<script>var a = 1;",
        "<p>x<style>p{background:url('http://127.0.0.1:9/?x=",
        "<p>x<textarea name=t>",
        "<title>x",
        "<p><noscript>",
        "<p><xmp>",
        "<p><iframe>",
        "<p><noembed>",
        "<p><noframes>",
        "<p><plaintext>",
        "<template><p>x",
        "<svg><text>x</text></svg><p>y",
        "<math><mi>x",
    ] {
        for chunk in [1, 5, 1000] {
            assert_eq!(run(page, chunk), page, "chunk {chunk}");
        }
    }
    for page in [
        "<p>x<img src='a'>",
        "<p>x</p><!-- c --><script>var a = '<p>';</script><style>p{}</style><textarea></textarea>",
        "<title>t</title><template><p></template> a < b &amp",
    ] {
        for chunk in [1, 5, 1000] {
            assert_eq!(
                run(page, chunk),
                format!("{page}<script>S</script>"),
                "{page}"
            );
        }
    }
}

#[test]
fn the_word_intercom_settings_outside_a_script_is_not_a_messenger() {
    for page in [
        "<head><title>intercomSettings: a how-to</title></head><body></body>",
        "<head><meta name=description content=\"window.intercomSettings\"></head><body></body>",
        "<head><!-- window.intercomSettings --><noscript><script>window.intercomSettings={}</script></noscript></head><body></body>",
        "<head><link rel=preload href=\"https://widget.intercom.io/widget/abc\"></head><body></body>",
        "<head><textarea>Intercom('boot'</textarea></head><body></body>",
        // Cut right after `<script>`, the word is still wholly in the chunk before.
        "<head><title>intercomSettings</title><script>var a = 1;</script></head>",
    ] {
        for chunk in 1..=page.len() {
            assert_eq!(
                run(page, chunk),
                page.replace("</head>", "<script>S</script></head>"),
                "chunk {chunk}"
            );
        }
    }
    // A real one after a word in the same chunk is still found.
    for page in [
        "<head><title>intercomSettings</title><script>window.intercomSettings={}</script></head>",
        "<head><title>Intercom('boot'</title><script>Intercom('boot', {app_id: 'x'})</script></head>",
        "<head><title>widget.intercom.io/widget/</title><script async src=https://widget.intercom.io/widget/abc></script></head>",
        "<p>intercomSettings<script>window.intercomSettings={}</script>",
    ] {
        for chunk in [1, 6, 1000] {
            assert_eq!(run(page, chunk), page, "chunk {chunk}");
        }
    }
}

#[test]
fn a_head_with_the_word_is_parsed_each_time_and_gets_the_snippet_each_time() {
    let memo = Arc::new(HeadMemo::default());
    let head = "<head><title>intercomSettings</title></head>";
    for _ in 0..2 {
        let mut rw = PageRewriter::new(PagePlan {
            memo: memo.clone(),
            ..plan()
        });
        let mut out = Vec::new();
        rw.write(head.as_bytes(), &mut out).unwrap();
        assert!(rw.parser.is_some(), "parsed, never spliced from the memo");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            head.replace("</head>", "<script>S</script></head>")
        );
    }
}

#[test]
fn a_raw_text_tag_lol_html_misreads_stops_the_parser_before_any_insertion() {
    let page = "<head><title>t</title><script async=><p><head></p></script></head><body>x";
    for chunk in [1, 7, 64, page.len()] {
        let mut rw = PageRewriter::new(plan());
        let result = rw.result();
        let mut out = Vec::new();
        for piece in page.as_bytes().chunks(chunk) {
            rw.write(piece, &mut out).unwrap();
        }
        rw.end(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), page, "chunk {chunk}");
        assert_eq!(result.get(), Some(Err(PassReason::AmbiguousMarkup)));
    }
    // After the insertion point it changes nothing.
    let page = "<head></head><body><script async=><head>";
    assert_eq!(
        run(page, 5),
        "<head><script>S</script></head><body><script async=><head>"
    );
}
