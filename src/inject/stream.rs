//! The body of an injected page: decode → rewrite → re-encode, driven from `poll_frame`.
//!
//! Nothing is spawned and nothing is collected: a chunk is pulled from the app only when the
//! client polls, and what the rewriter produced is handed on at once. Once the snippet is in,
//! the rewriter is ended and the rest passes through (still decoded and re-encoded for a
//! compressed page, since the stream itself changed; untouched and uncopied otherwise).

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use tracing::warn;

use super::codec::{Decoder, Encoder};
use super::rewrite::PageRewriter;
use super::scan::head_end_hint;
use tower::BoxError;

/// How much of a chunk the parser sees at a time: small enough that little is parsed past
/// `</head>`, large enough that the per-call cost stays negligible.
const FEED: usize = 512;

enum Phase {
    Streaming,
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
            rewriter: Some(rewriter),
            encoder,
            pending: None,
            phase: Phase::Streaming,
        }
    }
}

fn failed(what: &str, err: impl std::fmt::Display) -> BoxError {
    warn!(error = %err, "{what}; the page is cut off where the app's bytes stopped making sense");
    format!("{what}: {err}").into()
}

impl<B> RewriteBody<B> {
    fn process(
        decoder: &mut Option<Decoder>,
        rewriter: &mut Option<PageRewriter>,
        encoder: &mut Option<Encoder>,
        data: Bytes,
    ) -> Result<(Bytes, Option<Bytes>), BoxError> {
        if decoder.is_none() && rewriter.is_none() {
            // After the insertion point of an uncompressed page: zero-copy pass-through.
            return Ok((data, None));
        }
        let decoded = match decoder {
            Some(d) => {
                let decoded = d
                    .decode(&data)
                    .map_err(|e| failed("cannot decode the page", e))?;
                if let Some(e) = encoder.as_mut() {
                    e.follow(d);
                }
                Bytes::from(decoded)
            }
            None => data,
        };
        let (html, rest) = match rewriter {
            Some(_) => {
                let (out, used) = Self::rewrite(rewriter, &decoded)?;
                (Bytes::from(out), decoded.slice(used..))
            }
            None => (decoded, Bytes::new()),
        };
        match encoder {
            Some(e) => {
                let mut encoded = Vec::new();
                for part in [&html, &rest] {
                    if !part.is_empty() {
                        encoded.extend(
                            e.encode(part)
                                .map_err(|e| failed("cannot re-encode the page", e))?,
                        );
                    }
                }
                Ok((Bytes::from(encoded), None))
            }
            // The rest of the chunk goes out as it came, without a copy.
            None => Ok((html, (!rest.is_empty()).then_some(rest))),
        }
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

    /// The end of the app's body: end the rewriter (inserting at the document end if nothing
    /// came earlier), check the compressed stream was complete, finish the encoding.
    fn finish(
        decoder: &mut Option<Decoder>,
        rewriter: &mut Option<PageRewriter>,
        encoder: &mut Option<Encoder>,
    ) -> Result<Bytes, BoxError> {
        let mut html = match decoder.take() {
            Some(d) => d
                .finish()
                .map_err(|e| failed("the compressed page is truncated", e))?,
            None => Vec::new(),
        };
        if rewriter.is_some() {
            let (mut out, used) = Self::rewrite(rewriter, &html)?;
            out.extend_from_slice(&html[used..]);
            if let Some(rw) = rewriter.take() {
                rw.end(&mut out)
                    .map_err(|e| failed("cannot rewrite the page", e))?;
            }
            html = out;
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
                Phase::Streaming => *this.phase = Phase::Streaming,
            }
            let frame = match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => {
                    *this.phase = Phase::Done;
                    return Poll::Ready(Some(Err(e.into())));
                }
                None => {
                    *this.phase = Phase::Done;
                    let tail = Self::finish(this.decoder, this.rewriter, this.encoder)?;
                    return Poll::Ready((!tail.is_empty()).then(|| Ok(Frame::data(tail))));
                }
            };
            match frame.into_data() {
                Ok(data) => {
                    let out = match Self::process(this.decoder, this.rewriter, this.encoder, data) {
                        Ok((out, rest)) => {
                            *this.pending = rest;
                            out
                        }
                        Err(e) => {
                            *this.phase = Phase::Done;
                            return Poll::Ready(Some(Err(e)));
                        }
                    };
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                }
                Err(frame) => {
                    let tail = match Self::finish(this.decoder, this.rewriter, this.encoder) {
                        Ok(tail) => tail,
                        Err(e) => {
                            *this.phase = Phase::Done;
                            return Poll::Ready(Some(Err(e)));
                        }
                    };
                    *this.phase = match frame.into_trailers() {
                        Ok(trailers) => Phase::Trailers(trailers),
                        Err(_) => Phase::Done,
                    };
                    if !tail.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(tail))));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && matches!(self.phase, Phase::Done)
    }
}
