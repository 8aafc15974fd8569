//! The lol_html rewriter that inserts the snippet once, at the first of: before `</head>`,
//! the start of `<body>`, the end of the document (only when the document ends in text:
//! appended inside an open tag, attribute, comment or raw-text element, the snippet would
//! become part of it); and rewrites a `<meta>` CSP on the way.
//!
//! Everything a handler needs is prepared before the rewriter is built (the JWT is signed,
//! the script rendered and hashed), so handlers cannot fail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use lol_html::AsciiCompatibleEncoding;
use lol_html::send::HtmlRewriter;
use tracing::{debug, warn};

use super::markup::lexer::Lexer;
use super::memo::HeadMemo;
use super::outcome::{PageResult, PassReason};
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
    /// The parser stopped (its memory cap, or markup it would misread) and flushed what it
    /// held raw; it must not be used again, the rest of the page passes as it is.
    bailed_out: bool,
    /// Nothing of the page was seen yet.
    at_start: bool,
    scan: MessengerScan,
    /// The tokenizer state after what the parser was fed, until the snippet is in.
    lexer: Lexer,
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
            result: Arc::default(),
        });
        PageRewriter {
            parser: None,
            encoding: plan.encoding,
            sink: SharedSink::default(),
            state,
            bailed_out: false,
            at_start: true,
            scan: MessengerScan::new(plan.markers),
            lexer: Lexer::default(),
            memo: plan.memo,
        }
    }

    /// What becomes of the page (settled as the rewriter goes).
    pub(super) fn result(&self) -> Arc<PageResult> {
        self.state.result.clone()
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
        // Parse up to each marker first: a marker after the insertion point is the page's
        // business, and one is only a Messenger in a `<script>`'s text or `src` (not in a
        // title, another attribute, a comment...).
        let mut from = 0;
        let mut marker = self.scan.find_in(chunk);
        while let Some(at) = marker {
            self.write_parsed(&chunk[from..at], out)?;
            from = at;
            if self.is_done() {
                break;
            }
            if self.lexer.in_script() || self.lexer.in_script_src() {
                self.state.present.store(true, Ordering::Relaxed);
                break;
            }
            marker = self.scan.next_in(chunk, at + 1);
        }
        self.write_parsed(&chunk[from..], out)
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
            self.state.result.decide(Ok(()));
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

    /// Parses `chunk`, the lexer reading it first: where it finds lol_html about to read on
    /// differently from a browser, the parser gets the chunk up to there and no more.
    fn write_parsed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), RewriteError> {
        // Once the snippet is in (or the parser bailed out), where the tokenizer stands no
        // longer matters.
        let parted_at = match self.is_done() {
            true => None,
            false => self.lexer.feed(chunk),
        };
        let Some(at) = parted_at else {
            return self.write_to_parser(chunk, out);
        };
        self.write_to_parser(&chunk[..at], out)?;
        if self.is_done() {
            // Inserted before the tags lol_html misreads: the rest is the app's again.
            return self.write_to_parser(&chunk[at..], out);
        }
        // lol_html would now look for `</head>` or `<body>` in a `<script>`'s text, say, and
        // put the snippet there: the page goes as it is.
        debug!("markup lol_html would read differently from a browser; page passed through");
        self.stop_parsing(PassReason::AmbiguousMarkup, out)?;
        out.extend_from_slice(&chunk[at..]);
        Ok(())
    }

    /// Flushes what the parser holds back, untouched, and passes the rest of the page raw.
    fn stop_parsing(&mut self, reason: PassReason, out: &mut Vec<u8>) -> Result<(), RewriteError> {
        // Decided first, so the parser's document-end handler does not insert.
        self.state.pass(reason);
        self.bailed_out = true;
        let ended = self.parser.take().map_or(Ok(()), HtmlRewriter::end);
        self.sink.drain_into(out);
        ended
    }

    fn write_to_parser(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), RewriteError> {
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
                self.state.result.decide(Err(PassReason::ParserBailout));
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

    /// Ends the document (inserting at the end if nothing came earlier and the document
    /// ends in text); appends the tail.
    pub fn end(self, out: &mut Vec<u8>) -> Result<(), RewriteError> {
        if self.bailed_out {
            return Ok(());
        }
        if !self.is_done() && !self.lexer.at_text() {
            // Inside a tag, an attribute, a comment, raw text, a template or foreign content,
            // the snippet (and its JWT) would be read as part of that: the page goes as it is.
            debug!("the page ends inside markup; passed through without the snippet");
            self.state.pass(PassReason::NoInsertionPoint);
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
mod tests;
