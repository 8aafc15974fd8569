//! The lol_html parser behind [`PageRewriter`](super::PageRewriter): the handlers that
//! insert the snippet once (before `</head>`, else at the start of `<body>`, else at the
//! document end) and rewrite a `<meta>` CSP on the way, and the state they share with the
//! body that drives them.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use lol_html::html_content::ContentType;
use lol_html::send::{HtmlRewriter, Settings};
use lol_html::{
    AsciiCompatibleEncoding, ElementContentHandlers, MemorySettings, OutputSink, Selector, end,
    end_tag,
};
use tracing::debug;

use super::csp::{self, CspContext};
use super::markup::charref::{decode_attribute, encode_attribute};
use super::outcome::{PageResult, PassReason};
use crate::intercom::{IntercomHosts, Snippet};

/// The selectors, parsed once: lol_html's `element!` would parse them for every page.
static HEAD: LazyLock<Selector> = LazyLock::new(|| parse_static("head"));
static BODY: LazyLock<Selector> = LazyLock::new(|| parse_static("body"));
static META_CSP: LazyLock<Selector> = LazyLock::new(|| parse_static("meta[http-equiv]"));

fn parse_static(selector: &str) -> Selector {
    selector
        .parse()
        .unwrap_or_else(|e| unreachable!("static selector {selector:?}: {e}"))
}

type SendElement<'r, 't> =
    lol_html::html_content::Element<'r, 't, lol_html::send::SendHandlerTypes>;

/// An element handler on a pre-parsed selector.
fn handler<F>(
    selector: &'static Selector,
    handler: F,
) -> (
    Cow<'static, Selector>,
    ElementContentHandlers<'static, lol_html::send::SendHandlerTypes>,
)
where
    F: FnMut(&mut SendElement<'_, '_>) -> lol_html::HandlerResult + Send + 'static,
{
    (
        Cow::Borrowed(selector),
        ElementContentHandlers::default().element(handler),
    )
}

/// Parser memory cap per page; past it the rest of the page flows through untouched.
const MAX_PARSER_MEMORY: usize = 1 << 20;

/// State shared between the handlers and the body that drives the rewriter.
pub(super) struct InsertState {
    pub(super) snippet: Snippet,
    pub(super) hosts: Arc<IntercomHosts>,
    /// The insertion is decided (made, or skipped because the page has the Messenger).
    pub(super) done: AtomicBool,
    /// The page already loads the Messenger before our insertion point.
    pub(super) present: AtomicBool,
    /// Insert regardless of `present`.
    pub(super) even_if_present: bool,
    /// The nonce our `<script>` carries: from the CSP header, else from a `<meta>` CSP.
    pub(super) nonce: Mutex<Option<String>>,
    /// What became of the page, for the metrics and the access log.
    pub(super) result: Arc<PageResult>,
}

impl InsertState {
    /// True exactly once, for the handler that should insert the snippet.
    pub(super) fn claim(&self) -> bool {
        if self.present.load(Ordering::Relaxed) && !self.even_if_present {
            self.pass(PassReason::MessengerPresent);
            return false;
        }
        let first = !self.done.swap(true, Ordering::Relaxed);
        if first {
            self.result.decide(Ok(()));
        }
        first
    }

    /// The insertion is decided against: the page goes without the snippet.
    pub(super) fn pass(&self, reason: PassReason) {
        self.done.store(true, Ordering::Relaxed);
        self.result.decide(Err(reason));
    }

    pub(super) fn html(&self) -> String {
        let nonce = self.nonce.lock().unwrap_or_else(PoisonError::into_inner);
        self.snippet.html(nonce.as_deref())
    }

    pub(super) fn write_html(&self, out: &mut Vec<u8>) {
        let nonce = self.nonce.lock().unwrap_or_else(PoisonError::into_inner);
        self.snippet.write_html(nonce.as_deref(), out);
    }
}

/// A `<meta http-equiv>` before the insertion point: a CSP is rewritten so the snippet runs,
/// read and written back as the browser decodes the attribute (character references and
/// all). One whose meaning is not certain (a reference this proxy cannot decode) is left as
/// it is, and the page then goes without the snippet: a page whose policy the proxy did not
/// read must not get a script that policy may block or a rewrite that may change it.
fn meta_csp(state: &InsertState, el: &mut SendElement<'_, '_>) {
    let Some(equiv) = el.get_attribute("http-equiv") else {
        return;
    };
    let is_csp = decode_attribute(&equiv).map(|v| {
        v.trim_ascii()
            .eq_ignore_ascii_case("content-security-policy")
    });
    let content = match (is_csp, el.get_attribute("content")) {
        (Some(false), _) | (_, None) => return,
        (Some(true), Some(content)) => content,
        (None, Some(_)) => {
            debug!("<meta http-equiv> cannot be read; page passed through without the snippet");
            state.pass(PassReason::CspUnreadable);
            return;
        }
    };
    let Some(policy) = decode_attribute(&content) else {
        debug!("<meta> CSP cannot be read; page passed through without the snippet");
        state.pass(PassReason::CspUnreadable);
        return;
    };
    let mut nonce = state.nonce.lock().unwrap_or_else(PoisonError::into_inner);
    if nonce.is_none() {
        *nonce = csp::find_nonce(&policy);
    }
    let hash = state.snippet.csp_hash();
    let ctx = CspContext {
        snippet_hash: &hash,
        nonce: nonce.as_deref(),
        hosts: &state.hosts,
    };
    let rewritten = csp::rewrite(&policy, &ctx);
    if rewritten != policy {
        // Setting an attribute makes lol_html write the whole tag out again, each attribute
        // as it came but after a space: `<meta … a/=">` would become `<meta … a =">`, where
        // `=` now gives `a` a value that swallows the markup after the tag. Only an attribute
        // name starting with `=` can be read differently so (found by fuzz/, `rewrite`).
        if el.attributes().iter().any(|a| a.name().starts_with('=')) {
            debug!("<meta> CSP tag cannot be written out faithfully; page passed through");
            state.pass(PassReason::CspUnreadable);
            return;
        }
        // The name is fixed and valid; lol_html escapes only `"`, the rest is ours to encode.
        let _ = el.set_attribute("content", &encode_attribute(&rewritten));
    }
}

/// Rewriter output, collected for the body to send (the sink is owned by the rewriter).
#[derive(Clone, Default)]
pub(super) struct SharedSink(Arc<Mutex<Vec<u8>>>);

impl OutputSink for SharedSink {
    fn handle_chunk(&mut self, chunk: &[u8]) {
        // Uncontended: the body is polled by one task at a time.
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(chunk);
    }
}

impl SharedSink {
    pub(super) fn drain_into(&self, out: &mut Vec<u8>) {
        out.append(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// The lol_html rewriter for one page: inserts at the first of `</head>`, `<body>`, the
/// document end, and rewrites a `<meta>` CSP before that point.
pub(super) fn build_parser(
    state: &Arc<InsertState>,
    encoding: AsciiCompatibleEncoding,
    sink: SharedSink,
) -> HtmlRewriter<'static, SharedSink> {
    let (s3, s4, s5, s6) = (state.clone(), state.clone(), state.clone(), state.clone());
    let settings = Settings::new_send()
        // Strict mode aborts on ambiguous markup and truncates the page: never for a proxy.
        .with_strict(false)
        .with_encoding(encoding)
        .with_memory_settings(
            MemorySettings::new()
                .with_max_allowed_memory_usage(MAX_PARSER_MEMORY)
                .with_graceful_bail_out_on_memory_limit_exceeded(true),
        )
        .append_element_content_handler(handler(&META_CSP, move |el| {
            if s3.done.load(Ordering::Relaxed) {
                // Past the insertion point: the page is the app's again.
                return Ok(());
            }
            meta_csp(&s3, el);
            Ok(())
        }))
        .append_element_content_handler(handler(&HEAD, move |el| {
            let state = s4.clone();
            // Fires only for an explicit `</head>`; otherwise <body> or the end insert.
            let _ = el.on_end_tag(end_tag!(move |end| {
                if state.claim() {
                    end.before(&state.html(), ContentType::Html);
                }
                Ok(())
            }));
            Ok(())
        }))
        .append_element_content_handler(handler(&BODY, move |el| {
            if s5.claim() {
                el.prepend(&s5.html(), ContentType::Html);
            }
            Ok(())
        }))
        .append_document_content_handler(end!(move |end| {
            if s6.claim() {
                end.append(&s6.html(), ContentType::Html);
            }
            Ok(())
        }));
    HtmlRewriter::new(settings, sink)
}
