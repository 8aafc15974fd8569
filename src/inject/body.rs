//! The body of every response that passes the layer: the inner service's own, untouched
//! (the identity variant, or a page load that passed, with why), the same page with the
//! snippet in, or a short body the layer wrote itself (the token endpoint's JSON). The body
//! also tells what became of its page ([`InjectBody::injection`]): it travels with the
//! response at no cost, where an extension would allocate a map per page.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::BoxError;

use super::outcome::{Injection, PassReason};
use super::stream::RewriteBody;

pin_project! {
    /// A response body after [`Inject`](super::Inject): see the [module docs](self).
    #[project = InjectBodyProj]
    #[allow(missing_docs)] // pin_project_lite cannot carry docs on variant fields
    pub enum InjectBody<B> {
        /// The inner service's body, untouched.
        Identity {
            #[pin]
            inner: B,
        },
        /// The inner service's body, untouched: a page load that did not get the snippet.
        Passed {
            #[pin]
            inner: B,
            reason: PassReason,
        },
        /// The page with the snippet inserted. Boxed: the rewriter's state is over a
        /// kilobyte, and a response is moved several times on its way out.
        Rewritten {
            inner: Pin<Box<RewriteBody<B>>>,
        },
        /// A body the layer wrote itself.
        Full {
            data: Option<Bytes>,
        },
    }
}

impl<B> InjectBody<B> {
    /// The page, rewritten as it streams.
    pub(super) fn rewritten(inner: RewriteBody<B>) -> Self {
        InjectBody::Rewritten {
            inner: Box::pin(inner),
        }
    }

    /// The inner body, passed through.
    pub fn identity(inner: B) -> Self {
        InjectBody::Identity { inner }
    }

    /// A page load's body, passed through for `reason`.
    pub(super) fn passed(inner: B, reason: PassReason) -> Self {
        InjectBody::Passed { inner, reason }
    }

    /// What became of the page this body belongs to: `None` when the request was no page
    /// load (an asset, an API call, the token endpoint). A rewritten page's outcome is
    /// settled as its body streams: read it once the body is done.
    pub fn injection(&self) -> Option<Injection> {
        match self {
            InjectBody::Identity { .. } | InjectBody::Full { .. } => None,
            InjectBody::Passed { reason, .. } => Some(Injection::decided(Err(*reason))),
            InjectBody::Rewritten { inner } => Some(Injection::by_body(inner.result())),
        }
    }

    /// A body of the layer's own.
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        InjectBody::Full {
            data: (!data.is_empty()).then_some(data),
        }
    }
}

impl<B> Body for InjectBody<B>
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
        match self.project() {
            InjectBodyProj::Identity { inner } | InjectBodyProj::Passed { inner, .. } => {
                inner.poll_frame(cx).map_err(Into::into)
            }
            InjectBodyProj::Rewritten { inner } => inner.as_mut().poll_frame(cx),
            InjectBodyProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            InjectBody::Identity { inner } | InjectBody::Passed { inner, .. } => {
                inner.is_end_stream()
            }
            InjectBody::Rewritten { inner } => inner.is_end_stream(),
            InjectBody::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            InjectBody::Identity { inner } | InjectBody::Passed { inner, .. } => inner.size_hint(),
            InjectBody::Rewritten { inner } => inner.size_hint(),
            InjectBody::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}
