//! The response future: a request still being read, one waiting for its decision, the inner
//! service's call, or a refusal.

use super::*;

/// A request whose body is still being read when the inner service's call is due: kept
/// (boxed) across polls.
pub(super) struct Reading<S, B> {
    pub(super) inner: S,
    pub(super) parts: Parts,
    pub(super) body: B,
    pub(super) reader: Reader,
    pub(super) config: Arc<Config>,
    pub(super) decide: Option<Arc<dyn Decide>>,
}

/// A classified request waiting for its claims or decision (an asynchronous claim mapper or
/// policy): kept (boxed) across polls.
pub(super) struct Checking<S, B> {
    pub(super) check: AnswerFuture<Result<Admitted, Rejection>>,
    pub(super) inner: S,
    pub(super) request: Request<ClassifiedBody<B>>,
    pub(super) denial: Option<Arc<StreamDenial>>,
    pub(super) responder: SharedResponder,
    pub(super) protocol: Protocol,
}

pin_project! {
    /// Response future of [`Classify`].
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<ClassifiedBody<B>>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<ClassifiedBody<B>>>,
    {
        Reading { reading: Option<Box<Reading<S, B>>> },
        Checking { checking: Option<Box<Checking<S, B>>> },
        Calling { #[pin] future: S::Future, denial: Option<(Arc<StreamDenial>, SharedResponder)> },
        Refused { response: Option<Response<Bytes>> },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<ClassifiedBody<B>>>,
{
    pub(super) fn reading(reading: Reading<S, B>) -> Self {
        Self {
            state: State::Reading {
                reading: Some(Box::new(reading)),
            },
        }
    }

    pub(super) fn checking(checking: Checking<S, B>) -> Self {
        Self {
            state: State::Checking {
                checking: Some(Box::new(checking)),
            },
        }
    }

    pub(super) fn calling_watching(
        future: S::Future,
        denial: Option<Arc<StreamDenial>>,
        responder: &SharedResponder,
    ) -> Self {
        Self {
            state: State::Calling {
                future,
                denial: denial.map(|d| (d, Arc::clone(responder))),
            },
        }
    }

    pub(super) fn refused(response: Response<Bytes>) -> Self {
        Self {
            state: State::Refused {
                response: Some(response),
            },
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<ClassifiedBody<B>>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<S, B, ResB> Future for ResponseFuture<S, B>
where
    S: Service<Request<ClassifiedBody<B>>, Response = Response<ResB>> + Clone,
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
    ResB: Body<Data = Bytes>,
{
    type Output = Result<Response<ResponseBody<ResB>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut state = self.as_mut().project().state;
            match state.as_mut().project() {
                StateProj::Reading { reading } => {
                    let Some(current) = reading.as_mut() else {
                        unreachable!("ResponseFuture polled after completion");
                    };
                    let Reading {
                        body,
                        reader,
                        config,
                        ..
                    } = &mut **current;
                    let read = std::task::ready!(reader.poll_read(body, config, cx));
                    let Some(current) = reading.take() else {
                        unreachable!("reading state lost");
                    };
                    let Reading {
                        mut inner,
                        parts,
                        body,
                        reader,
                        config,
                        decide,
                    } = *current;
                    match read {
                        Read::Proceed {
                            operation,
                            replay,
                            done,
                        } => {
                            let (body, call, denial) = reader
                                .into_classified(&parts, body, &config, operation, replay, done);
                            let next = hand_on(
                                &mut inner,
                                &config,
                                decide.as_deref(),
                                parts,
                                body,
                                call,
                                denial,
                            );
                            state.set(next.state);
                        }
                        Read::Refuse(rejection, protocol) => {
                            let response = config.responder.respond(&rejection, protocol);
                            state.set(State::Refused {
                                response: Some(response),
                            });
                        }
                    }
                }
                StateProj::Checking { checking } => {
                    let Some(current) = checking.as_mut() else {
                        unreachable!("ResponseFuture polled after completion");
                    };
                    let admission = std::task::ready!(Pin::new(&mut current.check).poll(cx));
                    let Some(current) = checking.take() else {
                        unreachable!("checking state lost");
                    };
                    let Checking {
                        mut inner,
                        mut request,
                        denial,
                        responder,
                        protocol,
                        ..
                    } = *current;
                    match admission {
                        Ok((claims, decision)) => {
                            let call = Call::in_mut(request.extensions_mut());
                            call.claims = Some(claims);
                            call.decision = Some(decision);
                            let future = inner.call(request);
                            state.set(State::Calling {
                                future,
                                denial: denial.map(|d| (d, responder)),
                            });
                        }
                        Err(rejection) => {
                            let response = responder.respond(&rejection, protocol);
                            return Poll::Ready(Ok(response.map(ResponseBody::full)));
                        }
                    }
                }
                StateProj::Calling { future, denial } => {
                    let response = std::task::ready!(future.poll(cx))?;
                    let Some((denial, responder)) = denial.take() else {
                        return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                    };
                    // A later stream message was denied before the handler answered: the whole
                    // call ends with that denial, whatever the handler made of it.
                    if let Some(rejection) = denial.get() {
                        let refused = responder.respond(rejection, Protocol::Grpc);
                        return Poll::Ready(Ok(refused.map(ResponseBody::full)));
                    }
                    return Poll::Ready(Ok(
                        response.map(|b| ResponseBody::inner(b).watching(denial, responder))
                    ));
                }
                StateProj::Refused { response } => {
                    let Some(response) = response.take() else {
                        unreachable!("ResponseFuture polled after completion");
                    };
                    return Poll::Ready(Ok(response.map(ResponseBody::full)));
                }
            }
        }
    }
}
