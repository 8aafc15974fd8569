//! [`ResponseFuture`]: waits for the session's identity (when the page could get the
//! snippet), then for the inner service's response head, then hands the response to the
//! response half (`respond.rs`). Nothing is boxed but the identification and the token
//! answer, which need their own future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower::{BoxError, Service};

use super::InjectBody;
use super::layer::{Plan, Shared, forward};
use super::respond::respond;
use super::token::TokenAnswer;
use crate::identity::Resolution;

/// The identification of a request's session: gives back the request and what it needs to
/// go on.
type Identifying<S, ReqB> =
    Pin<Box<dyn Future<Output = (Request<ReqB>, Resolution, S, Plan)> + Send>>;

pin_project! {
    #[project = StateProj]
    enum State<S, ReqB, F> {
        Identifying { identifying: Identifying<S, ReqB> },
        Calling { #[pin] future: F, plan: Plan },
        Token { answer: TokenAnswer },
        Done,
    }
}

pin_project! {
    /// The response future of [`Inject`](super::Inject).
    pub struct ResponseFuture<S, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        #[pin]
        state: State<S, ReqB, S::Future>,
        shared: Arc<Shared>,
    }
}

impl<S, ReqB> ResponseFuture<S, ReqB>
where
    S: Service<Request<ReqB>>,
{
    pub(super) fn identifying(identifying: Identifying<S, ReqB>, shared: Arc<Shared>) -> Self {
        ResponseFuture {
            state: State::Identifying { identifying },
            shared,
        }
    }

    pub(super) fn calling((future, plan): (S::Future, Plan), shared: Arc<Shared>) -> Self {
        ResponseFuture {
            state: State::Calling { future, plan },
            shared,
        }
    }

    pub(super) fn token(answer: TokenAnswer, shared: Arc<Shared>) -> Self {
        ResponseFuture {
            state: State::Token { answer },
            shared,
        }
    }
}

impl<S, ReqB, ResB> Future for ResponseFuture<S, ReqB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Body<Data = bytes::Bytes>,
    ResB::Error: Into<BoxError>,
{
    type Output = Result<Response<InjectBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Identifying { identifying } => {
                    let (request, resolution, inner, plan) = ready!(identifying.as_mut().poll(cx));
                    let (future, plan) = forward(this.shared, inner, request, plan, resolution);
                    this.state.set(State::Calling { future, plan });
                }
                StateProj::Calling { future, plan } => {
                    let response = match ready!(future.poll(cx)) {
                        Ok(response) => respond(this.shared, plan, response),
                        Err(e) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(e));
                        }
                    };
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                StateProj::Token { answer } => {
                    let response = ready!(answer.as_mut().poll(cx));
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(response.map(InjectBody::full)));
                }
                StateProj::Done => panic!("inject::ResponseFuture polled after completion"),
            }
        }
    }
}
