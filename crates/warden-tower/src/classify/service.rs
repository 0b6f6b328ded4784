//! The service: routes each request from its head, reads what it must, hands it on.

use super::*;

/// The service of [`ClassifyLayer`].
#[derive(Clone)]
pub struct Classify<S> {
    pub(super) inner: S,
    pub(super) config: Arc<Config>,
    /// The engine, when this is the inside of a [`Warden`](crate::Warden) service.
    pub(super) decide: Option<Arc<dyn Decide>>,
}

impl<S> fmt::Debug for Classify<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classify").finish_non_exhaustive()
    }
}

/// What to do with a request, decided from its head alone.
enum Route {
    /// Read the first message, then decode it.
    GrpcMessage {
        spec: Arc<MethodSpec>,
        encoding: Result<Encoding, String>,
    },
    /// Classified without reading the body.
    Ready {
        operation: Operation,
        protocol: Protocol,
    },
    /// Read the whole (HTTP) body as JSON arguments.
    HttpJson { operation: Operation },
    Refuse {
        rejection: Rejection,
        protocol: Protocol,
    },
}

impl<S> Classify<S> {
    /// The service calls go on to.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The service calls go on to, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn route<B>(&self, request: &Request<B>) -> Route {
        let path = request.uri().path();
        let grpc = |rejection| Route::Refuse {
            rejection,
            protocol: Protocol::Grpc,
        };
        match classify_content_type(request.headers()) {
            GrpcContentType::OtherCodec(codec) => grpc(Rejection::new(
                Code::Unimplemented,
                format!(
                    "content-type application/grpc+{codec} is not supported: warden decodes protobuf messages only"
                ),
            )),
            GrpcContentType::Proto => {
                if request.version() != Version::HTTP_2 {
                    return grpc(
                        Rejection::new(Code::InvalidArgument, "gRPC requires HTTP/2")
                            .with_http_status(StatusCode::UPGRADE_REQUIRED),
                    );
                }
                if request.method() != Method::POST {
                    return grpc(
                        Rejection::new(Code::InvalidArgument, "gRPC calls use POST")
                            .with_http_status(StatusCode::METHOD_NOT_ALLOWED),
                    );
                }
                // Every mapped path was parsed strictly when the map was built, so an exact
                // hit is well-formed; only the others are parsed here.
                let spec = match self.config.grpc.get(path) {
                    Some(spec) => Arc::clone(spec),
                    None => match MethodPath::parse(path) {
                        Ok(parsed) => Arc::new(MethodSpec::unknown(parsed)),
                        Err(reason) => {
                            return grpc(Rejection::new(
                                Code::InvalidArgument,
                                format!("malformed gRPC method path: {reason}"),
                            ));
                        }
                    },
                };
                if !spec.decodes_payload() {
                    return Route::Ready {
                        operation: spec.operation(),
                        protocol: Protocol::Grpc,
                    };
                }
                Route::GrpcMessage {
                    encoding: Encoding::from_headers(request.headers()),
                    spec,
                }
            }
            GrpcContentType::NotGrpc => {
                let grpc_route = self.config.grpc.get(path).is_some()
                    || MethodPath::parse(path)
                        .is_ok_and(|p| self.config.grpc.knows_service(p.service));
                match &self.config.http {
                    Some(http) if !grpc_route => match http.classify(request.method(), path) {
                        Some((operation, true)) => Route::HttpJson { operation },
                        Some((operation, false)) => Route::Ready {
                            operation,
                            protocol: Protocol::Http,
                        },
                        None => Route::Ready {
                            operation: Operation::new(
                                OperationKind::Other,
                                "http",
                                format!("{} {path}", request.method()),
                            ),
                            protocol: Protocol::Http,
                        },
                    },
                    _ => Route::Refuse {
                        rejection: Rejection::new(
                            Code::InvalidArgument,
                            "unsupported content-type: gRPC calls must use application/grpc or application/grpc+proto",
                        )
                        .with_http_status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                        protocol: Protocol::Http,
                    },
                }
            }
        }
    }
}

impl<S, B, ResB> Service<Request<B>> for Classify<S>
where
    S: Service<Request<ClassifiedBody<B>>, Response = Response<ResB>> + Clone,
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
    ResB: Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let route = self.route(&request);
        let (parts, mut body) = request.into_parts();
        let target = match route {
            Route::Refuse {
                rejection,
                protocol,
            } => {
                return ResponseFuture::refused(
                    self.config.responder.respond(&rejection, protocol),
                );
            }
            Route::Ready {
                operation,
                protocol,
            } => {
                let context = self.config.context(protocol, &parts.extensions);
                let call = self.config.call(Arc::new(operation), context, None);
                // Classified from the head alone: the ready inner service is called directly.
                return hand_on(
                    &mut self.inner,
                    &self.config,
                    self.decide.as_deref(),
                    parts,
                    ClassifiedBody::passthrough(body),
                    call,
                    None,
                );
            }
            Route::GrpcMessage { spec, encoding } => Target::FirstMessage { spec, encoding },
            Route::HttpJson { operation } => {
                let declared = parts
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
                if declared.is_some_and(|len| len > self.config.max_message_size) {
                    let rejection = too_large(self.config.max_message_size, "request ");
                    return ResponseFuture::refused(
                        self.config.responder.respond(&rejection, Protocol::Http),
                    );
                }
                Target::WholeJson {
                    operation: Box::new(operation),
                }
            }
        };
        let mut reader = Reader::new(target);
        // The message usually arrived with the headers (h2 reads every frame the socket holds
        // before it hands out a request): read it now, and a call decided at once goes to the
        // ready inner service directly, with no state kept across polls. A waker that does
        // nothing is enough here: if the body is not ready, the future polls it again with
        // the task's own waker before anything waits on it.
        let mut cx = Context::from_waker(Waker::noop());
        match reader.poll_read(&mut body, &self.config, &mut cx) {
            Poll::Ready(Read::Proceed {
                operation,
                replay,
                done,
            }) => {
                let (body, call, denial) =
                    reader.into_classified(&parts, body, &self.config, operation, replay, done);
                hand_on(
                    &mut self.inner,
                    &self.config,
                    self.decide.as_deref(),
                    parts,
                    body,
                    call,
                    denial,
                )
            }
            Poll::Ready(Read::Refuse(rejection, protocol)) => {
                ResponseFuture::refused(self.config.responder.respond(&rejection, protocol))
            }
            Poll::Pending => {
                // The inner service is called once the body is read.
                let inner = take_ready(&mut self.inner);
                ResponseFuture::reading(Reading {
                    inner,
                    parts,
                    body,
                    reader,
                    config: Arc::clone(&self.config),
                    decide: self.decide.clone(),
                })
            }
        }
    }
}

/// Hands a classified request to the ready `inner` service, first through `decide` when this
/// is the inside of a [`Warden`](crate::Warden) service. A call decided at once gets its
/// complete [`Call`] extension in one insert and goes straight to `inner`; one whose claims or
/// decision are still to come waits in the returned future, with the ready service taken and
/// a clone left in its place, as the tower contract asks.
pub(super) fn hand_on<S, B>(
    inner: &mut S,
    config: &Arc<Config>,
    decide: Option<&dyn Decide>,
    mut parts: Parts,
    body: ClassifiedBody<B>,
    mut call: Call,
    denial: Option<Arc<StreamDenial>>,
) -> ResponseFuture<S, B>
where
    S: Service<Request<ClassifiedBody<B>>> + Clone,
{
    if let Some(decide) = decide {
        // Policies that read metadata see it: moved into the context, not copied, and taken
        // back once decided (copied only if an asynchronous decision still holds it).
        let moved = call
            .operation()
            .is_some_and(|operation| decide.reads_metadata(operation));
        if moved {
            call.context.metadata = Metadata::new(mem::take(&mut parts.headers));
        }
        let answer = {
            let headers = call.context.metadata.headers().unwrap_or(&parts.headers);
            decide.decide(headers, &call)
        };
        if moved {
            parts.headers = mem::take(&mut call.context.metadata).into_headers();
        }
        match answer {
            Answer::Ready(Ok((claims, decision))) => {
                call.claims = Some(claims);
                call.decision = Some(decision);
            }
            Answer::Ready(Err(rejection)) => {
                let protocol = call.context.protocol;
                return ResponseFuture::refused(config.responder.respond(&rejection, protocol));
            }
            Answer::Pending(check) => {
                let protocol = call.context.protocol;
                parts.extensions.insert(call);
                let inner = take_ready(inner);
                return ResponseFuture::checking(Checking {
                    check: Answer::Pending(check).into_future(),
                    inner,
                    request: Request::from_parts(parts, body),
                    denial,
                    responder: Arc::clone(&config.responder),
                    protocol,
                });
            }
        }
    }
    parts.extensions.insert(call);
    let future = inner.call(Request::from_parts(parts, body));
    ResponseFuture::calling_watching(future, denial, &config.responder)
}
