//! The body of an injected page: decode → rewrite → re-encode, driven from `poll_frame`.
//!
//! Nothing is spawned and nothing is collected: a chunk is pulled from the app only when the
//! client polls, and what the rewriter produced is handed on at once. Once the snippet is in,
//! the rewriter is ended and the rest passes through (still decoded and re-encoded for a
//! compressed page, since the stream itself changed; untouched and uncopied otherwise).
//!
//! A compressed page is decoded a bounded slice at a time (`decoder.rs`), and the app is
//! read again only once the decoder has nothing left: whatever the compression ratio, a page
//! holds one slice of decoded bytes, and each slice goes out as a frame. Workers are
//! single-threaded, so once the body has worked for [`RUN`] without the app making it wait,
//! it yields to the worker's other connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use tracing::warn;

use super::codec::{Decoder, Encoder};
use super::decoder::ExpansionLimit;
use super::outcome::PageResult;
use super::rewrite::PageRewriter;
use super::scan::head_end_hint;
use tower::BoxError;

/// How much of a chunk the parser sees at a time: small enough that little is parsed past
/// `</head>`, large enough that the per-call cost stays negligible.
const FEED: usize = 512;

/// How long a compressed page may keep the worker before it yields (returns `Pending`, to be
/// polled again once the worker has seen to its sockets and other connections): a few slices
/// in a release build. Hyper polls a body for frames as long as it can buffer them,
/// so without this one page, a bomb, or a fast client would hold all the worker's
/// connections. Real pages rarely meet it: the clock restarts whenever the app has nothing
/// ready, and a slice is the most work done past it.
const RUN: Duration = Duration::from_millis(1);

/// Lets the worker run its other tasks before this one is polled again. On tokio, the
/// wake-up is deferred until the runtime has polled its IO driver (as with
/// `tokio::task::yield_now`, whose first poll this is); on other executors it is immediate.
fn yield_now(cx: &mut Context<'_>) {
    let mut yielding = std::pin::pin!(tokio::task::yield_now());
    let _ = yielding.as_mut().poll(cx);
}

enum Phase {
    Streaming,
    /// The app's body ended (with these trailers, if any): what the decoder still holds
    /// goes out, then the page is finished.
    Ending(Option<HeaderMap>),
    /// The body ended with trailers, sent after the last data.
    Trailers(HeaderMap),
    Done,
}

pin_project! {
    /// An HTML response body with the Messenger snippet inserted once: the app's body
    /// decoded, rewritten until the snippet is in, and re-encoded.
    pub struct RewriteBody<B> {
        #[pin]
        inner: B,
        decoder: Option<Decoder>,
        rewriter: Option<PageRewriter>,
        encoder: Option<Encoder>,
        // The unparsed rest of the chunk that held the insertion point, sent next as is.
        pending: Option<Bytes>,
        phase: Phase,
        // When the body last started work without having yielded since.
        since: Option<Instant>,
        // What became of the page (the rewriter settles it; it is dropped once done).
        result: Arc<PageResult>,
    }
}

impl<B> RewriteBody<B> {
    /// Wraps the app's body; `decoder`/`encoder` are `None` for an uncompressed page.
    pub fn new(
        inner: B,
        rewriter: PageRewriter,
        decoder: Option<Decoder>,
        encoder: Option<Encoder>,
    ) -> Self {
        RewriteBody {
            inner,
            decoder,
            result: rewriter.result(),
            rewriter: Some(rewriter),
            encoder,
            pending: None,
            phase: Phase::Streaming,
            since: None,
        }
    }
}

fn failed(what: &str, err: impl std::fmt::Display) -> BoxError {
    warn!(error = %err, "{what}; the page is cut off where the app's bytes stopped making sense");
    format!("{what}: {err}").into()
}

/// The decoder failed: a corrupt or truncated page, or one that expands absurdly.
fn undecodable(err: std::io::Error) -> BoxError {
    if ExpansionLimit::is(&err) {
        warn!(error = %err, "refusing to decode the page further; it is cut off here");
        return format!("the page expands too much: {err}").into();
    }
    failed("cannot decode the page", err)
}

impl<B> RewriteBody<B> {
    /// What became of the page so far.
    pub(super) fn result(&self) -> Arc<PageResult> {
        self.result.clone()
    }

    /// A chunk of an uncompressed page: rewritten until the snippet is in, then passed on
    /// as it came (the rest of the chunk that held the insertion point is returned apart,
    /// so that it is not copied either).
    fn pass(
        rewriter: &mut Option<PageRewriter>,
        encoder: &mut Option<Encoder>,
        data: Bytes,
    ) -> Result<(Bytes, Option<Bytes>), BoxError> {
        if rewriter.is_none() && encoder.is_none() {
            // After the insertion point: zero-copy pass-through.
            return Ok((data, None));
        }
        let (html, rest) = match rewriter {
            Some(_) => {
                let (out, used) = Self::rewrite(rewriter, &data)?;
                (Bytes::from(out), data.slice(used..))
            }
            None => (Bytes::new(), data),
        };
        match encoder {
            Some(e) => Ok((Self::encode(e, [&html, &rest])?, None)),
            None => Ok((html, (!rest.is_empty()).then_some(rest))),
        }
    }

    /// A slice of a decoded page: rewritten until the snippet is in, and re-encoded.
    fn transform(
        rewriter: &mut Option<PageRewriter>,
        encoder: &mut Option<Encoder>,
        html: &[u8],
    ) -> Result<Bytes, BoxError> {
        let (out, used) = match rewriter {
            Some(_) => Self::rewrite(rewriter, html)?,
            None => (Vec::new(), 0),
        };
        match encoder {
            Some(e) => Self::encode(e, [&out, &html[used..]]),
            None => {
                let mut out = out;
                out.extend_from_slice(&html[used..]);
                Ok(Bytes::from(out))
            }
        }
    }

    fn encode(encoder: &mut Encoder, parts: [&[u8]; 2]) -> Result<Bytes, BoxError> {
        let mut encoded: Option<Vec<u8>> = None;
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let bytes = encoder
                .encode(part)
                .map_err(|e| failed("cannot re-encode the page", e))?;
            match &mut encoded {
                Some(all) => all.extend_from_slice(&bytes),
                None => encoded = Some(bytes),
            }
        }
        Ok(encoded.map(Bytes::from).unwrap_or_default())
    }

    /// Feeds the parser in small slices and stops at the insertion point; returns the output
    /// and how much of `html` it covers. The rest is left unparsed, so a page costs about
    /// the same whatever its size.
    fn rewrite(
        rewriter: &mut Option<PageRewriter>,
        html: &[u8],
    ) -> Result<(Vec<u8>, usize), BoxError> {
        let mut out = Vec::with_capacity(4096);
        let mut offset = 0;
        while let Some(rw) = rewriter.as_mut() {
            if offset >= html.len() {
                break;
            }
            // Up to the next `</head>` when it is near (the usual insertion point), so the
            // parser stops right there; else a small slice.
            let end = match head_end_hint(&html[offset..], FEED) {
                Some((_, len)) => offset + len,
                None => (offset + FEED).min(html.len()),
            };
            rw.write(&html[offset..end], &mut out)
                .map_err(|e| failed("cannot rewrite the page", e))?;
            offset = end;
            if rw.is_done()
                && let Some(rw) = rewriter.take()
            {
                // The snippet is in: flush what the parser held back and stop parsing.
                rw.end(&mut out)
                    .map_err(|e| failed("cannot rewrite the page", e))?;
            }
        }
        Ok((out, offset))
    }

    /// The end of the app's body, once the decoder has given all it had: check the
    /// compressed stream was complete, end the rewriter (inserting at the document end if
    /// nothing came earlier), finish the encoding.
    fn finish(
        decoder: &mut Option<Decoder>,
        rewriter: &mut Option<PageRewriter>,
        encoder: &mut Option<Encoder>,
    ) -> Result<Bytes, BoxError> {
        if let Some(d) = decoder.take() {
            d.finish()
                .map_err(|e| failed("the compressed page is truncated", e))?;
        }
        let mut html = Vec::new();
        if let Some(rw) = rewriter.take() {
            rw.end(&mut html)
                .map_err(|e| failed("cannot rewrite the page", e))?;
        }
        match encoder.take() {
            Some(mut e) => {
                let mut out = if html.is_empty() {
                    Vec::new()
                } else {
                    e.encode(&html)
                        .map_err(|e| failed("cannot re-encode the page", e))?
                };
                out.extend(
                    e.finish()
                        .map_err(|e| failed("cannot re-encode the page", e))?,
                );
                Ok(Bytes::from(out))
            }
            None => Ok(Bytes::from(html)),
        }
    }
}

impl<B> Body for RewriteBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            if let Some(rest) = this.pending.take() {
                return Poll::Ready(Some(Ok(Frame::data(rest))));
            }
            match std::mem::replace(this.phase, Phase::Done) {
                Phase::Done => return Poll::Ready(None),
                Phase::Trailers(trailers) => {
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                phase => *this.phase = phase,
            }
            // A compressed page: what the decoder holds goes first, a slice per frame.
            if let Some(decoder) = this.decoder.as_mut() {
                if this.since.is_some_and(|since| since.elapsed() >= RUN) {
                    *this.since = None;
                    yield_now(cx);
                    return Poll::Pending;
                }
                this.since.get_or_insert_with(Instant::now);
                if let Some(e) = this.encoder.as_mut() {
                    e.follow(decoder);
                }
                match decoder.next_slice() {
                    Ok(Some(html)) => match Self::transform(this.rewriter, this.encoder, html) {
                        Ok(out) if out.is_empty() => continue,
                        Ok(out) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                        Err(e) => {
                            *this.phase = Phase::Done;
                            return Poll::Ready(Some(Err(e)));
                        }
                    },
                    // It needs more of the app's body, or has given all of it.
                    Ok(None) => {}
                    Err(e) => {
                        *this.phase = Phase::Done;
                        return Poll::Ready(Some(Err(undecodable(e))));
                    }
                }
            }
            if let Phase::Ending(trailers) = this.phase {
                let trailers = trailers.take();
                *this.phase = Phase::Done;
                let tail = Self::finish(this.decoder, this.rewriter, this.encoder);
                if let Some(trailers) = trailers {
                    *this.phase = Phase::Trailers(trailers);
                }
                match tail {
                    Ok(tail) if tail.is_empty() => continue,
                    Ok(tail) => return Poll::Ready(Some(Ok(Frame::data(tail)))),
                    Err(e) => {
                        *this.phase = Phase::Done;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
            let frame = match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => {
                    *this.since = None;
                    return Poll::Pending;
                }
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(Some(Err(e))) => {
                    *this.phase = Phase::Done;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Ready(None) => {
                    *this.phase = Phase::Ending(None);
                    if let Some(d) = this.decoder.as_mut() {
                        d.end_input();
                    }
                    continue;
                }
            };
            match frame.into_data() {
                Ok(data) => {
                    if let Some(d) = this.decoder.as_mut() {
                        d.push(data);
                        continue;
                    }
                    match Self::pass(this.rewriter, this.encoder, data) {
                        Ok((out, rest)) => {
                            *this.pending = rest;
                            if !out.is_empty() {
                                return Poll::Ready(Some(Ok(Frame::data(out))));
                            }
                        }
                        Err(e) => {
                            *this.phase = Phase::Done;
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                }
                Err(frame) => {
                    *this.phase = Phase::Ending(frame.into_trailers().ok());
                    if let Some(d) = this.decoder.as_mut() {
                        d.end_input();
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && matches!(self.phase, Phase::Done)
    }
}
