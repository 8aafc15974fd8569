//! The lol_html rewriter that inserts the snippet once, at the first of: before `</head>`,
//! the start of `<body>`, the end of the document; and rewrites a `<meta>` CSP on the way.
//!
//! Everything a handler needs is prepared before the rewriter is built (the JWT is signed,
//! the script rendered and hashed), so handlers cannot fail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use lol_html::AsciiCompatibleEncoding;
use lol_html::send::HtmlRewriter;
use tracing::warn;

use super::memo::HeadMemo;
use super::parser::{InsertState, SharedSink, build_parser};
use super::scan::{MessengerMarkers, MessengerScan, head_end_hint};
use crate::intercom::IntercomHosts;
use crate::intercom::Snippet;

/// What the page rewriter needs, prepared per response.
pub struct PagePlan {
    /// The rendered snippet.
    pub snippet: Snippet,
    /// The nonce chosen from the CSP header, if any.
    pub nonce: Option<String>,
    /// Intercom's CSP hosts for the region.
    pub hosts: Arc<IntercomHosts>,
    /// What shows the page already loads the Messenger.
    pub markers: Arc<MessengerMarkers>,
    /// The page's character encoding.
    pub encoding: AsciiCompatibleEncoding,
    /// Heads parsed before.
    pub memo: Arc<HeadMemo>,
    /// Insert even when the page already loads the Messenger (a shutdown must run).
    pub even_if_present: bool,
}

/// A streaming HTML rewriter that inserts the snippet once. The parser is only built when
/// the page needs one (not for a head the memo knows).
pub struct PageRewriter {
    parser: Option<HtmlRewriter<'static, SharedSink>>,
    encoding: AsciiCompatibleEncoding,
    sink: SharedSink,
    state: Arc<InsertState>,
    /// The parser hit its memory cap and flushed the rest raw; it must not be used again.
    bailed_out: bool,
    /// Nothing of the page was seen yet.
    at_start: bool,
    scan: MessengerScan,
    memo: Arc<HeadMemo>,
}

/// The rewriter failed; the page cannot be completed faithfully.
pub type RewriteError = lol_html::errors::RewritingError;

impl PageRewriter {
    /// Prepares the rewriter for one page.
    pub fn new(plan: PagePlan) -> Self {
        let state = Arc::new(InsertState {
            snippet: plan.snippet,
            hosts: plan.hosts,
            done: AtomicBool::new(false),
            present: AtomicBool::new(false),
            even_if_present: plan.even_if_present,
            nonce: Mutex::new(plan.nonce),
        });
        PageRewriter {
            parser: None,
            encoding: plan.encoding,
            sink: SharedSink::default(),
            state,
            bailed_out: false,
            at_start: true,
            scan: MessengerScan::new(plan.markers),
            memo: plan.memo,
        }
    }

    /// The lol_html rewriter, built on first use.
    fn parser(&mut self) -> &mut HtmlRewriter<'static, SharedSink> {
        let (state, encoding, sink) = (&self.state, self.encoding, &self.sink);
        self.parser
            .get_or_insert_with(|| build_parser(state, encoding, sink.clone()))
    }

    /// Feeds a chunk of the page; appends the output ready so far to `out`.
    pub fn write(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), RewriteError> {
        if self.bailed_out {
            out.extend_from_slice(chunk);
            return Ok(());
        }
        if std::mem::take(&mut self.at_start)
            && let Some(at) = self.whole_head(chunk)
        {
            return self.write_head(chunk, at, out);
        }
        if let Some(at) = self.scan.find_in(chunk) {
            // Parse up to the marker first: a marker after the insertion point is the page's
            // business, not a Messenger that is already there.
            self.write_parsed(&chunk[..at], out)?;
            if !self.is_done() {
                self.state.present.store(true, Ordering::Relaxed);
            }
            return self.write_parsed(&chunk[at..], out);
        }
        self.write_parsed(chunk, out)
    }

    /// `Some(where </head> starts)` when `chunk` is the page's whole head, as the memo knows
    /// heads: UTF-8, ending right after its first `</head>`, with no Messenger in it and no
    /// `http-equiv` at all. Without a `<meta http-equiv>` the parser's only action is the
    /// insertion, so its output depends on nothing but these bytes and the script; a `<meta>`
    /// CSP's rewrite would also depend on the response's nonce and on the script's hash.
    fn whole_head(&self, chunk: &[u8]) -> Option<usize> {
        if self.encoding != AsciiCompatibleEncoding::utf_8() || mentions_http_equiv(chunk) {
            return None;
        }
        let (at, end) = head_end_hint(chunk, chunk.len())?;
        (end == chunk.len() && !self.scan.has_marker(chunk)).then_some(at)
    }

    /// The page's head: spliced when the memo knows it, else parsed (and remembered when
    /// the parser's output was the plain splice).
    fn write_head(
        &mut self,
        head: &[u8],
        at: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), RewriteError> {
        if let Some(at) = self.memo.insertion_point(head) {
            out.extend_from_slice(&head[..at]);
            self.state.write_html(out);
            out.extend_from_slice(&head[at..]);
            self.state.done.store(true, Ordering::Relaxed);
            return Ok(());
        }
        // Rendered before parsing: a head whose `<meta>` CSP supplies a nonce gives a
        // different script, so it never matches the splice and is never remembered.
        let snippet = self.state.html();
        let start = out.len();
        self.write_parsed(head, out)?;
        if self.is_done() && !self.bailed_out {
            self.memo
                .remember_if_plain(head, at, snippet.as_bytes(), &out[start..]);
        }
        Ok(())
    }

    fn write_parsed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), RewriteError> {
        if self.bailed_out {
            out.extend_from_slice(chunk);
            return Ok(());
        }
        match self.parser().write(chunk) {
            Ok(()) => {
                self.sink.drain_into(out);
                Ok(())
            }
            Err(RewriteError::MemoryLimitExceeded(_)) => {
                // The unparsed input was flushed raw: nothing is lost, the page just goes
                // without the snippet.
                warn!(
                    "HTML parser memory cap reached before the insertion point; page passed through"
                );
                self.bailed_out = true;
                self.sink.drain_into(out);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// True once the snippet is in (or the page was found to have the Messenger): the rest
    /// of the page needs no parsing.
    pub fn is_done(&self) -> bool {
        self.bailed_out || self.state.done.load(Ordering::Relaxed)
    }

    /// Ends the document (inserting at the end if nothing came earlier); appends the tail.
    pub fn end(self, out: &mut Vec<u8>) -> Result<(), RewriteError> {
        if self.bailed_out {
            return Ok(());
        }
        let result = match self.parser {
            Some(parser) => parser.end(),
            // The head came from the memo: nothing was parsed, nothing is held back.
            None if self.state.done.load(Ordering::Relaxed) => Ok(()),
            // Nothing came at all (an empty page): the end handler still inserts.
            None => build_parser(&self.state, self.encoding, self.sink.clone()).end(),
        };
        self.sink.drain_into(out);
        result
    }
}

/// Whether `html` contains `http-equiv` in any case (a `<meta http-equiv>` may be there).
/// Found from its `-`, which is rare in a head, instead of trying every offset.
fn mentions_http_equiv(html: &[u8]) -> bool {
    memchr::memchr_iter(b'-', html).any(|dash| {
        dash >= 4
            && html[dash - 4..dash].eq_ignore_ascii_case(b"http")
            && html
                .get(dash + 1..dash + 6)
                .is_some_and(|after| after.eq_ignore_ascii_case(b"equiv"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_equiv_is_spotted_in_any_case_and_anywhere() {
        assert!(mentions_http_equiv(b"<meta HTTP-Equiv=refresh>"));
        assert!(mentions_http_equiv(b"http-equiv"));
        assert!(!mentions_http_equiv(
            b"<link rel=x-y> -equiv http- http-equi"
        ));
        assert!(!mentions_http_equiv(b""));
    }
    use crate::config::Region;

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
        let csp = "<head><meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'self'\"></head>";
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
        let page = "<head><script src=\"https://widget.intercom.io/widget/abc\"></script></head><body></body>";
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
        let page = "<head><meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'self'\"></head>";
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
}
