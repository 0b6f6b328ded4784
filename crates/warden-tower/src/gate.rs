//! The future shared by the authenticate, authorize and require-decision services: wait for a
//! check, then either call the inner service or answer with the refusal.

use std::{
    future::{Future, IntoFuture},
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
    call::Call,
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

/// What an admitted request carries on: extensions to insert before the inner call.
pub(crate) type Admission<T> = Result<T, Rejection>;

/// Puts what a check proved into the call's [`Call`] extension.
pub trait Admit: Send + 'static {
    /// Records it.
    fn admit(self, extensions: &mut http::Extensions);
}

impl Admit for Arc<warden_core::Claims> {
    fn admit(self, extensions: &mut http::Extensions) {
        Call::in_mut(extensions).claims = Some(self);
    }
}

impl Admit for warden_core::Decision {
    fn admit(self, extensions: &mut http::Extensions) {
        Call::in_mut(extensions).decision = Some(self);
    }
}

impl Admit for (Arc<warden_core::Claims>, warden_core::Decision) {
    fn admit(self, extensions: &mut http::Extensions) {
        let call = Call::in_mut(extensions);
        call.claims = Some(self.0);
        call.decision = Some(self.1);
    }
}

pin_project! {
    /// Response future of Warden's authenticate, authorize and require-decision services.
    pub struct Gate<S, B, T>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: GateState<S, B, T>,
    }
}

pin_project! {
    #[project = GateProj]
    enum GateState<S, B, T>
    where
        S: Service<Request<B>>,
    {
        /// Waiting for the check.
        Checking {
            check: AnswerFuture<Admission<T>>,
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

impl<S, B, T> Gate<S, B, T>
where
    S: Service<Request<B>>,
{
    pub(crate) fn calling(future: S::Future) -> Self {
        Self {
            state: GateState::Calling { future },
        }
    }

    /// Refuses `request` without calling the inner service, answering the way the classify
    /// layer's responder says for the call's protocol.
    pub(crate) fn refused(request: &Request<B>, rejection: &Rejection) -> Self {
        let (responder, protocol) = refusal_context(request);
        Self {
            state: GateState::Refused {
                response: Some(responder.respond(rejection, protocol)),
            },
        }
    }

    /// Calls `service` with `request` once `check` admits it. The call happens later, so the
    /// ready service is taken and a clone left in its place, as the tower contract asks.
    pub(crate) fn deferred(
        service: &mut S,
        request: Request<B>,
        check: Answer<Admission<T>>,
    ) -> Self
    where
        S: Clone,
    {
        let clone = service.clone();
        let inner = mem::replace(service, clone);
        let (responder, protocol) = refusal_context(&request);
        Self {
            state: GateState::Checking {
                check: check.into_future(),
                pending: Some(Box::new((inner, request, responder, protocol))),
            },
        }
    }
}

impl<S, B, T, ResB> Future for Gate<S, B, T>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    T: Admit,
{
    type Output = Result<Response<ResponseBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                GateProj::Checking { check, pending } => {
                    let admission = ready!(Pin::new(check).poll(cx));
                    let Some(pending) = pending.take() else {
                        unreachable!("Gate polled after completion");
                    };
                    let (mut inner, mut request, responder, protocol) = *pending;
                    match admission {
                        Ok(extension) => {
                            extension.admit(request.extensions_mut());
                            let future = inner.call(request);
                            state.set(GateState::Calling { future });
                        }
                        Err(rejection) => {
                            return Poll::Ready(Ok(refuse(&responder, protocol, &rejection)));
                        }
                    }
                }
                GateProj::Calling { future } => {
                    return future.poll(cx).map_ok(|r| r.map(ResponseBody::inner));
                }
                GateProj::Refused { response } => {
                    let response = response.take().map(|r| r.map(ResponseBody::full));
                    return Poll::Ready(Ok(
                        response.unwrap_or_else(|| unreachable!("Gate polled after completion"))
                    ));
                }
            }
        }
    }
}

impl<S, B, T> std::fmt::Debug for Gate<S, B, T>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}
