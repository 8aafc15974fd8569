//! [`ResponseFuture`]: waits for the session's identity (when the page could get the
//! snippet), then for the inner service's response head, then hands the response to the
//! response half (`respond.rs`), which may ask for the session the page sets to be
//! identified first. Nothing is boxed but the identifications and the token answer, which
//! need their own future.

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
use super::respond::{Next, respond};
use super::token::TokenAnswer;
use crate::identity::{LookupResult, Resolution};

/// The identification of a request's session: gives back the request and what it needs to
/// go on.
type Identifying<S, ReqB> =
    Pin<Box<dyn Future<Output = (Request<ReqB>, (Resolution, LookupResult), S, Plan)> + Send>>;

/// The identification of the session a response sets.
type Reidentifying = Pin<Box<dyn Future<Output = (Resolution, LookupResult)> + Send>>;

pin_project! {
    #[project = StateProj]
    enum State<S, ReqB, F, R> {
        Identifying { identifying: Identifying<S, ReqB> },
        Calling { #[pin] future: F, plan: Plan },
        Reidentifying { reidentifying: Reidentifying, response: Option<R>, plan: Plan },
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
        state: State<S, ReqB, S::Future, S::Response>,
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
                        Ok(response) => response,
                        Err(e) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(e));
                        }
                    };
                    match respond(this.shared, plan, response) {
                        Next::Respond(response) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(response));
                        }
                        Next::Reidentify { response, cookies } => {
                            let plan = std::mem::take(plan);
                            let identity = this.shared.clone();
                            // In-process sessions (a JWT) need no future.
                            if let Some(resolution) =
                                identity.identity.identify_now_traced(&cookies)
                            {
                                let mut plan = plan;
                                plan.reidentified(this.shared, resolution);
                                let next = respond(this.shared, &plan, response);
                                this.state.set(State::Done);
                                return Poll::Ready(Ok(next.into_response()));
                            }
                            let reidentifying = Box::pin(async move {
                                identity.identity.identify_afresh_traced(&cookies).await
                            });
                            this.state.set(State::Reidentifying {
                                reidentifying,
                                response: Some(response),
                                plan,
                            });
                        }
                    }
                }
                StateProj::Reidentifying {
                    reidentifying,
                    response,
                    plan,
                } => {
                    let resolution = ready!(reidentifying.as_mut().poll(cx));
                    plan.reidentified(this.shared, resolution);
                    let next = match response.take() {
                        Some(response) => respond(this.shared, plan, response),
                        None => panic!("inject::ResponseFuture polled after completion"),
                    };
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(next.into_response()));
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
