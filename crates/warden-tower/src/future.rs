//! The response future of the authenticate, authorize and require-decision services: wait for
//! the engine's answer, then either call the inner service or answer with the refusal.

use std::{
    future::Future,
    mem,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;
use warden_core::{Answer, AnswerFuture, Protocol};

use crate::{
    body::ResponseBody,
    call::{Call, InProcess},
    grpc::{GrpcContentType, classify_content_type},
    rejection::{DefaultResponder, Rejection, SharedResponder},
};

/// How to answer a refusal of `request`: its protocol and the installed responder.
fn refusal_context<B>(request: &Request<B>) -> (SharedResponder, Protocol) {
    let call = request.extensions().get::<Call>();
    match call.and_then(|c| Some((c.responder.as_ref()?, c.context.protocol))) {
        Some((responder, protocol)) => (Arc::clone(responder), protocol),
        None => {
            let protocol = match classify_content_type(request.headers()) {
                GrpcContentType::NotGrpc => Protocol::Http,
                _ => Protocol::Grpc,
            };
            (Arc::new(DefaultResponder), protocol)
        }
    }
}

pub(crate) fn refuse<B>(
    responder: &SharedResponder,
    protocol: Protocol,
    rejection: &Rejection,
) -> Response<ResponseBody<B>> {
    responder
        .respond(rejection, protocol)
        .map(ResponseBody::full)
}

/// Takes the ready `service` for a call made later, leaving a clone in its place: the clone
/// has not been polled ready, the taken one has, as the tower contract asks.
pub(crate) fn take_ready<S: Clone>(service: &mut S) -> S {
    let clone = service.clone();
    mem::replace(service, clone)
}

/// What a step proved about an admitted call, to record in its [`Call`] extension.
pub(crate) enum Admission {
    /// Who is calling (the authenticate step).
    Claims(Arc<warden_core::Claims>),
    /// The decision of an authorize step; `None` when none of its policies applied.
    Decision(Option<warden_core::Decision>),
}

impl Admission {
    fn admit(self, call: &mut Call) {
        match self {
            Self::Claims(claims) => call.claims = Some(claims),
            Self::Decision(None) => {}
            Self::Decision(Some(decision)) => call.decision = Some(decision),
        }
    }
}

pin_project! {
    /// Response future of Warden's authenticate, authorize and require-decision services.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        /// Waiting for the check.
        Checking {
            check: AnswerFuture<Result<Admission, Rejection>>,
            // Boxed: only calls that wait for a check pay for keeping the request, and the
            // future every call carries stays small.
            pending: Option<Box<(S, Request<B>, SharedResponder, Protocol)>>,
        },
        /// The inner service is answering.
        Calling { #[pin] future: S::Future },
        /// Refused without calling the inner service.
        Refused { response: Option<Response<Bytes>> },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn calling(future: S::Future) -> Self {
        Self {
            state: State::Calling { future },
        }
    }

    /// Refuses `request` without calling the inner service, answering the way the classify
    /// layer's responder says for the call's protocol.
    pub(crate) fn refused(request: &Request<B>, rejection: &Rejection) -> Self {
        let (responder, protocol) = refusal_context(request);
        Self {
            state: State::Refused {
                response: Some(responder.respond(rejection, protocol)),
            },
        }
    }

    /// Calls `service` with `request` once `check` admits it: at once when the answer is
    /// ready (the ready service is called directly), later otherwise, with the ready service
    /// taken and a clone left in its place, as the tower contract asks.
    pub(crate) fn admit(
        service: &mut S,
        mut request: Request<B>,
        check: Answer<Result<Admission, Rejection>>,
    ) -> Self
    where
        S: Clone,
    {
        match check {
            Answer::Ready(Ok(admission)) => {
                admission.admit(Call::in_mut(request.extensions_mut()));
                Self::calling(service.call(request))
            }
            Answer::Ready(Err(rejection)) => Self::refused(&request, &rejection),
            Answer::Pending(check) => {
                let inner = take_ready(service);
                let (responder, protocol) = refusal_context(&request);
                Self {
                    state: State::Checking {
                        check: AnswerFuture::Pending(check),
                        pending: Some(Box::new((inner, request, responder, protocol))),
                    },
                }
            }
        }
    }
}

impl<S, B, ResB> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResB>>,
{
    type Output = Result<Response<ResponseBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Checking { check, pending } => {
                    let admission = ready!(Pin::new(check).poll(cx));
                    let Some(pending) = pending.take() else {
                        unreachable!("ResponseFuture polled after completion");
                    };
                    let (mut inner, mut request, responder, protocol) = *pending;
                    match admission {
                        Ok(admission) => {
                            admission.admit(Call::in_mut(request.extensions_mut()));
                            let future = inner.call(request);
                            state.set(State::Calling { future });
                        }
                        Err(rejection) => {
                            return Poll::Ready(Ok(refuse(&responder, protocol, &rejection)));
                        }
                    }
                }
                StateProj::Calling { future } => {
                    return future.poll(cx).map_ok(|r| r.map(ResponseBody::inner));
                }
                StateProj::Refused { response } => {
                    let response = response.take().map(|r| r.map(ResponseBody::full));
                    return Poll::Ready(Ok(response.unwrap_or_else(|| {
                        unreachable!("ResponseFuture polled after completion")
                    })));
                }
            }
        }
    }
}

impl<S, B> std::fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseFuture")
    }
}

pin_project! {
    /// Response future of Warden's authorization services around an in-process service
    /// ([`InProcess`] requests): the inner service's answer, or the rejection as its error.
    pub struct InProcessFuture<S, T>
    where
        S: Service<InProcess<T>>,
    {
        #[pin]
        state: InProcessState<S, T>,
    }
}

pin_project! {
    #[project = InProcessProj]
    enum InProcessState<S, T>
    where
        S: Service<InProcess<T>>,
    {
        Checking {
            check: AnswerFuture<Result<Admission, Rejection>>,
            pending: Option<(S, InProcess<T>)>,
        },
        Calling { #[pin] future: S::Future },
        Refused { rejection: Option<Rejection> },
    }
}

impl<S, T> InProcessFuture<S, T>
where
    S: Service<InProcess<T>>,
{
    pub(crate) fn refused(rejection: Rejection) -> Self {
        Self {
            state: InProcessState::Refused {
                rejection: Some(rejection),
            },
        }
    }

    pub(crate) fn calling(future: S::Future) -> Self {
        Self {
            state: InProcessState::Calling { future },
        }
    }

    /// As [`ResponseFuture::admit`], for an in-process job.
    pub(crate) fn admit(
        service: &mut S,
        mut request: InProcess<T>,
        check: Answer<Result<Admission, Rejection>>,
    ) -> Self
    where
        S: Clone,
    {
        match check {
            Answer::Ready(Ok(admission)) => {
                admission.admit(request.call_mut());
                Self::calling(service.call(request))
            }
            Answer::Ready(Err(rejection)) => Self::refused(rejection),
            Answer::Pending(check) => {
                let inner = take_ready(service);
                Self {
                    state: InProcessState::Checking {
                        check: AnswerFuture::Pending(check),
                        pending: Some((inner, request)),
                    },
                }
            }
        }
    }
}

impl<S, T> Future for InProcessFuture<S, T>
where
    S: Service<InProcess<T>>,
    S::Error: From<Rejection>,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                InProcessProj::Checking { check, pending } => {
                    let admission = ready!(Pin::new(check).poll(cx));
                    let Some((mut inner, mut request)) = pending.take() else {
                        unreachable!("InProcessFuture polled after completion");
                    };
                    match admission {
                        Ok(admission) => {
                            admission.admit(request.call_mut());
                            let future = inner.call(request);
                            state.set(InProcessState::Calling { future });
                        }
                        Err(rejection) => return Poll::Ready(Err(rejection.into())),
                    }
                }
                InProcessProj::Calling { future } => return future.poll(cx),
                InProcessProj::Refused { rejection } => {
                    let Some(rejection) = rejection.take() else {
                        unreachable!("InProcessFuture polled after completion");
                    };
                    return Poll::Ready(Err(rejection.into()));
                }
            }
        }
    }
}

impl<S, T> std::fmt::Debug for InProcessFuture<S, T>
where
    S: Service<InProcess<T>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcessFuture")
    }
}
