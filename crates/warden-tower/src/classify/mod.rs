//! Classification: what does this call do?
//!
//! [`ClassifyLayer`] parses the method path strictly, reads the first request message (bounded,
//! decompressed when `grpc-encoding` says so), decodes it through the [`OperationMap`] and puts
//! the resulting [`Operation`] (as `Arc<Operation>`) and a [`RequestContext`] in the request
//! extensions for the layers below. The bytes it read are replayed unchanged to the inner
//! service. For client streams, every later message is decoded and authorized as it arrives.
//!
//! Calls it cannot classify are refused here, before any handler runs: a malformed path or
//! frame (`INVALID_ARGUMENT`), a message over the limit (`RESOURCE_EXHAUSTED`), an encoding or
//! codec it cannot read (`UNIMPLEMENTED`), HTTP/1.1 or a non-gRPC content type on a gRPC route
//! (HTTP 426 or 415).
//!
//! ```
//! use warden_core::OperationKind;
//! use warden_tower::{ClassifyLayer, map::OperationMap};
//!
//! let map = OperationMap::builder()
//!     .method("/pkg.Jobs/Cancel", OperationKind::Cancel)
//!     .build()
//!     .unwrap();
//! let layer = ClassifyLayer::new(map).max_message_size(1 << 20);
//! # let _ = layer;
//! ```

mod body;
mod deadline;
mod decode;
pub mod peer;
mod stream;

use std::{
    fmt,
    future::{Future, IntoFuture},
    mem,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::Duration,
};

pub use body::ClassifiedBody;
use bytes::{Bytes, BytesMut};
use http::{Extensions, HeaderMap, Method, Request, Response, StatusCode, Version, request::Parts};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;
use warden_core::{
    Answer, AnswerFuture, BoxError, Claims, Decision, Metadata, Operation, OperationKind, Protocol,
    RequestContext,
};

pub use self::peer::{Peer, PeerAddr, PeerCertificates, PeerFn, Transport};
pub(crate) use self::stream::{StreamCheck, StreamChecks};
use self::{
    body::Inspector,
    deadline::{Deadlines, Wait},
    decode::{announced_too_large, decode_frame, too_large, truncated},
};
use crate::{
    body::{ResponseBody, StreamDenial},
    call::Call,
    future::take_ready,
    grpc::{Encoding, FrameHeader, GrpcContentType, MethodPath, classify_content_type},
    map::{HttpOperationMap, MethodSpec, OperationMap},
    rejection::{Code, DefaultResponder, Rejection, Respond, SharedResponder},
};

/// The default limit of one request message: 4 MiB, gRPC's own default.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// The step a classified call goes through before the inner service, when this is the service
/// of a [`WardenLayer`](crate::WardenLayer): its engine. Later steps implement it, so
/// classification never depends on them.
pub(crate) trait Decide: Send + Sync + 'static {
    /// Authenticates and authorizes the classified `call`, whose context holds the request's
    /// metadata.
    fn decide(&self, call: &Call) -> Answer<Result<Admitted, Rejection>>;
}

/// What a call that passed proved: who called, and the decision that let it through.
pub(crate) type Admitted = (Arc<Claims>, Decision);

#[derive(Clone)]
struct Config {
    grpc: OperationMap,
    http: Option<HttpOperationMap>,
    max_message_size: usize,
    /// The first-message deadline.
    deadlines: Arc<Deadlines>,
    responder: SharedResponder,
    peer: PeerFn,
}

/// How long Warden waits for a call's first message (or an HTTP body) by default.
pub const DEFAULT_FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Classifies each call; see the [module docs](self).
#[derive(Clone)]
#[must_use]
pub struct ClassifyLayer {
    config: Arc<Config>,
}

impl fmt::Debug for ClassifyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassifyLayer")
            .field("grpc", &self.config.grpc)
            .field("http", &self.config.http)
            .field("max_message_size", &self.config.max_message_size)
            .finish_non_exhaustive()
    }
}

impl ClassifyLayer {
    /// Classifies gRPC calls with `map`; other requests are refused with HTTP 415 unless HTTP
    /// routes are added.
    pub fn new(map: OperationMap) -> Self {
        Self {
            config: Arc::new(Config {
                grpc: map,
                http: None,
                max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
                deadlines: Deadlines::new(DEFAULT_FIRST_MESSAGE_TIMEOUT),
                responder: Arc::new(DefaultResponder),
                peer: peer::from_extensions,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Also classifies plain HTTP requests (those whose content type is not gRPC) with `map`;
    /// unmatched ones become [`OperationKind::Other`].
    pub fn http_routes(self, map: HttpOperationMap) -> Self {
        self.edit(|c| c.http = Some(map))
    }

    /// The largest request message, compressed or not, Warden reads (default 4 MiB).
    pub fn max_message_size(self, bytes: usize) -> Self {
        self.edit(|c| c.max_message_size = bytes)
    }

    /// How long a call may take to deliver its whole request message (HTTP routes: their
    /// whole JSON body) before it is refused `DEADLINE_EXCEEDED` (default 30 s). A client that
    /// opens calls and sends nothing cannot hold them open. For a unary or server-streaming
    /// method this covers the end of the request too, since its one message is judged only
    /// once no second one can follow.
    ///
    /// The deadline starts only when the message is not already there, so calls whose
    /// message came with their headers pay nothing. Waiting calls share one coarse timer per
    /// layer instead of a Tokio timer each: a call is refused at its deadline or up to 1/16 of
    /// the timeout later. Outside a Tokio runtime there is no timer.
    pub fn first_message_timeout(self, timeout: Duration) -> Self {
        self.edit(|c| c.deadlines = Deadlines::new(timeout))
    }

    /// How every Warden layer below answers refusals (default [`DefaultResponder`]).
    pub fn responder(self, responder: impl Respond) -> Self {
        self.edit(|c| c.responder = Arc::new(responder))
    }

    /// Where the transport keeps what it knows about the peer — its address, its TLS
    /// certificate chain, whether the connection is TLS — in request extensions (default
    /// [`peer::from_extensions`]). It goes in the call's [`RequestContext`], for the claim
    /// mapper and the policies; on a tonic server, `warden_identity::tonic::peer`.
    pub fn peer_from(self, peer: PeerFn) -> Self {
        self.edit(|c| c.peer = peer)
    }
}

impl<S> Layer<S> for ClassifyLayer {
    type Service = Classify<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Classify {
            inner,
            config: Arc::clone(&self.config),
            decide: None,
        }
    }
}

impl ClassifyLayer {
    /// The inside of a [`Warden`](crate::Warden) service: classifies, then authenticates and
    /// authorizes with `decide` before calling `inner`.
    pub(crate) fn layer_deciding<S>(&self, inner: S, decide: Arc<dyn Decide>) -> Classify<S> {
        Classify {
            inner,
            config: Arc::clone(&self.config),
            decide: Some(decide),
        }
    }
}

/// The service of [`ClassifyLayer`].
#[derive(Clone)]
pub struct Classify<S> {
    inner: S,
    config: Arc<Config>,
    /// The engine, when this is the inside of a [`Warden`](crate::Warden) service.
    decide: Option<Arc<dyn Decide>>,
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

impl Config {
    /// The context of a call arriving over `protocol`.
    fn context(&self, protocol: Protocol, extensions: &Extensions) -> RequestContext {
        RequestContext::new(protocol).with_peer((self.peer)(extensions))
    }

    /// Warden's record of a call classified as `operation`.
    fn call(
        &self,
        operation: Arc<Operation>,
        context: RequestContext,
        checks: Option<Arc<StreamChecks>>,
    ) -> Call {
        Call::classified(operation, context, Arc::clone(&self.responder), checks)
    }
}

/// Hands a classified request to the ready `inner` service, first through `decide` when this
/// is the inside of a [`Warden`](crate::Warden) service. A call decided at once gets its
/// complete [`Call`] extension in one insert and goes straight to `inner`; one whose claims or
/// decision are still to come waits in the returned future, with the ready service taken and
/// a clone left in its place, as the tower contract asks.
fn hand_on<S, B>(
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
        // The policies see the metadata: moved into the context, not copied, and taken back
        // once decided (copied only if an asynchronous decision still holds it).
        call.context.metadata = Metadata::new(mem::take(&mut parts.headers));
        let answer = decide.decide(&call);
        parts.headers = mem::take(&mut call.context.metadata).into_headers();
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

enum Target {
    FirstMessage {
        spec: Arc<MethodSpec>,
        encoding: Result<Encoding, String>,
    },
    // Boxed: HTTP routes with JSON arguments are the rare path; keep the gRPC state small.
    WholeJson {
        operation: Box<Operation>,
    },
}

/// A request whose body is still being read when the inner service's call is due: kept
/// (boxed) across polls.
struct Reading<S, B> {
    inner: S,
    parts: Parts,
    body: B,
    reader: Reader,
    config: Arc<Config>,
    decide: Option<Arc<dyn Decide>>,
}

/// A classified request waiting for its claims or decision (an asynchronous claim mapper or
/// policy): kept (boxed) across polls.
struct Checking<S, B> {
    check: AnswerFuture<Result<Admitted, Rejection>>,
    inner: S,
    request: Request<ClassifiedBody<B>>,
    denial: Option<Arc<StreamDenial>>,
    responder: SharedResponder,
    protocol: Protocol,
}

/// The refusal of a single-message call whose body carries more than one message.
#[cold]
fn second_message(operation: &Operation) -> Read {
    Read::Refuse(
        Rejection::new(
            Code::InvalidArgument,
            format!(
                "{}/{} takes one request message, but the request carries more than one",
                operation.service, operation.method
            ),
        ),
        Protocol::Grpc,
    )
}

/// What has been read of a request body so far, and what it is read for.
struct Reader {
    buf: BytesMut,
    trailers: Option<HeaderMap>,
    target: Target,
    /// The one message of a unary or server-streaming call, judged, until the body ends.
    judged: Option<(Arc<Operation>, Option<Bytes>)>,
    /// Listed the first time the body is not ready.
    wait: Option<Wait>,
}

/// What reading produced.
enum Read {
    Proceed {
        operation: Arc<Operation>,
        replay: Option<Bytes>,
        done: bool,
    },
    Refuse(Rejection, Protocol),
}

impl Reader {
    fn new(target: Target) -> Self {
        Self {
            buf: BytesMut::new(),
            trailers: None,
            target,
            judged: None,
            wait: None,
        }
    }

    fn poll_read<B>(&mut self, body: &mut B, config: &Config, cx: &mut Context<'_>) -> Poll<Read>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        let protocol = match self.target {
            Target::FirstMessage { .. } => Protocol::Grpc,
            Target::WholeJson { .. } => Protocol::Http,
        };
        let limit = config.max_message_size;
        loop {
            let mut done = false;
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Pending => return self.wait(config, cx, protocol),
                Poll::Ready(None) => done = true,
                Poll::Ready(Some(Err(error))) => {
                    let error: BoxError = error.into();
                    let rejection = Rejection::new(
                        Code::Cancelled,
                        format!("reading the request body failed: {error}"),
                    );
                    return Poll::Ready(Read::Refuse(rejection, protocol));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if self.judged.is_some() => {
                        if !data.is_empty()
                            && let Some((operation, _)) = &self.judged
                        {
                            return Poll::Ready(second_message(operation));
                        }
                    }
                    Ok(data) => {
                        // The common case: the first DATA frame holds the whole message, so
                        // it is decoded and replayed without a copy.
                        if let Some(read) = self.whole_first_message(&data, config) {
                            match self.settle(read, false) {
                                Some(read) => return Poll::Ready(read),
                                None => continue,
                            }
                        }
                        self.buf.extend_from_slice(&data);
                    }
                    Err(frame) => {
                        self.trailers = frame.into_trailers().ok();
                        done = true;
                    }
                },
            }
            if done && let Some((operation, replay)) = self.judged.take() {
                return Poll::Ready(Read::Proceed {
                    operation,
                    replay,
                    done: true,
                });
            }
            if self.judged.is_some() {
                continue;
            }
            match &self.target {
                Target::FirstMessage { .. } => {
                    let header = match FrameHeader::parse(&self.buf) {
                        Err(reason) => {
                            return Poll::Ready(Read::Refuse(
                                Rejection::new(Code::InvalidArgument, reason),
                                protocol,
                            ));
                        }
                        Ok(header) => header,
                    };
                    if let Some(header) = header {
                        if header.len > limit {
                            return Poll::Ready(Read::Refuse(
                                announced_too_large(header.len, limit),
                                protocol,
                            ));
                        }
                        if self.buf.len() >= header.frame_len() {
                            let read = self.first_message(header, done, config);
                            match self.settle(read, done) {
                                Some(read) => return Poll::Ready(read),
                                None => continue,
                            }
                        }
                    }
                    if done {
                        return Poll::Ready(self.ended_early(header));
                    }
                }
                Target::WholeJson { .. } => {
                    if self.buf.len() > limit {
                        return Poll::Ready(Read::Refuse(too_large(limit, "request "), protocol));
                    }
                    if done {
                        return Poll::Ready(self.whole_json());
                    }
                }
            }
        }
    }

    /// Decodes the first message straight from `data` when nothing is buffered yet and `data`
    /// holds all of it; `None` leaves every other case to the buffered path.
    fn whole_first_message(&mut self, data: &Bytes, config: &Config) -> Option<Read> {
        let Target::FirstMessage { .. } = self.target else {
            return None;
        };
        if !self.buf.is_empty() {
            return None;
        }
        let header = FrameHeader::parse(data).ok()??;
        if header.len > config.max_message_size || data.len() < header.frame_len() {
            return None;
        }
        // Whatever follows the first message (rare in one DATA frame) is replayed after it.
        if data.len() > header.frame_len() {
            self.buf.extend_from_slice(&data[header.frame_len()..]);
        }
        Some(self.decode_first(
            header,
            data.slice(..header.frame_len()),
            false,
            config.max_message_size,
        ))
    }

    /// What a decoded first message leads to. A client stream goes on at once, its later
    /// messages judged as they come. A unary or server-streaming call takes one message, so it
    /// goes on only once its body has ended with nothing after that message: a second one
    /// could ask for something else, and it would reach the handler unjudged.
    fn settle(&mut self, read: Read, done: bool) -> Option<Read> {
        let Target::FirstMessage { spec, .. } = &self.target else {
            return Some(read);
        };
        if spec.is_client_streaming() {
            return Some(read);
        }
        let Read::Proceed {
            operation, replay, ..
        } = read
        else {
            return Some(read);
        };
        if !self.buf.is_empty() {
            return Some(second_message(&operation));
        }
        if done {
            return Some(Read::Proceed {
                operation,
                replay,
                done: true,
            });
        }
        self.judged = Some((operation, replay));
        None
    }

    /// The body is not ready: start (or check) the first-message deadline.
    fn wait(&mut self, config: &Config, cx: &mut Context<'_>, protocol: Protocol) -> Poll<Read> {
        let deadlines = &config.deadlines;
        if deadlines.poll(&mut self.wait, cx).is_pending() {
            return Poll::Pending;
        }
        let what = match protocol {
            Protocol::Grpc => "the first message",
            _ => "the request body",
        };
        Poll::Ready(Read::Refuse(
            Rejection::new(
                Code::DeadlineExceeded,
                format!("{what} did not arrive within {:?}", deadlines.timeout()),
            ),
            protocol,
        ))
    }

    fn first_message(&mut self, header: FrameHeader, done: bool, config: &Config) -> Read {
        let frame = self.buf.split_to(header.frame_len()).freeze();
        self.decode_first(header, frame, done, config.max_message_size)
    }

    fn decode_first(&self, header: FrameHeader, frame: Bytes, done: bool, limit: usize) -> Read {
        let Target::FirstMessage { spec, encoding } = &self.target else {
            unreachable!("first_message on a non-gRPC read");
        };
        let operation = match decode_frame(spec, encoding, limit, &frame, header.compressed) {
            Ok(operation) => operation,
            Err(rejection) => return Read::Refuse(rejection, Protocol::Grpc),
        };
        Read::Proceed {
            operation,
            replay: Some(frame),
            done,
        }
    }

    fn ended_early(&mut self, header: Option<FrameHeader>) -> Read {
        let Target::FirstMessage { spec, .. } = &self.target else {
            unreachable!("ended_early on a non-gRPC read");
        };
        if !self.buf.is_empty() {
            return Read::Refuse(
                truncated(self.buf.len(), header.map(|h| h.frame_len())),
                Protocol::Grpc,
            );
        }
        if !spec.is_client_streaming() {
            let rejection = Rejection::new(
                Code::InvalidArgument,
                format!(
                    "the request has no message, but {}/{} needs one",
                    spec.service(),
                    spec.method()
                ),
            );
            return Read::Refuse(rejection, Protocol::Grpc);
        }
        // An empty client stream: authorize the method itself.
        let operation = Arc::new(spec.operation());
        Read::Proceed {
            operation,
            replay: None,
            done: true,
        }
    }

    fn whole_json(&mut self) -> Read {
        let Target::WholeJson { operation } = &mut self.target else {
            unreachable!("whole_json on a gRPC read");
        };
        let mut operation = mem::replace(
            &mut **operation,
            Operation::new(OperationKind::Other, "", ""),
        );
        if !self.buf.is_empty() {
            match serde_json::from_slice(&self.buf) {
                Ok(args) => operation.args = warden_core::Args::from_value(args),
                Err(error) => {
                    let rejection = Rejection::new(
                        Code::InvalidArgument,
                        format!("the request body is not valid JSON: {error}"),
                    );
                    return Read::Refuse(rejection, Protocol::Http);
                }
            }
        }
        Read::Proceed {
            operation: Arc::new(operation),
            replay: Some(self.buf.split().freeze()),
            done: true,
        }
    }

    /// The request's parts and replaying body with Warden's record of the call, and the
    /// shared stream-denial slot when later messages are checked.
    fn into_classified<B>(
        self,
        parts: &Parts,
        body: B,
        config: &Arc<Config>,
        operation: Arc<Operation>,
        replay: Option<Bytes>,
        done: bool,
    ) -> (ClassifiedBody<B>, Call, Option<Arc<StreamDenial>>) {
        let Self {
            buf,
            trailers,
            target,
            judged: _,
            wait: _,
        } = self;
        let (protocol, inspect) = match target {
            Target::FirstMessage { spec, encoding } => (
                Protocol::Grpc,
                spec.is_client_streaming().then_some((spec, encoding)),
            ),
            Target::WholeJson { .. } => (Protocol::Http, None),
        };
        let context = config.context(protocol, &parts.extensions);
        // A client stream's later messages are judged after the headers went on: its checks
        // keep a copy of the metadata, once per stream.
        let checks = inspect.as_ref().map(|_| {
            let metadata = Metadata::new(parts.headers.clone());
            Arc::new(StreamChecks::new(context.clone().with_metadata(metadata)))
        });
        let call = config.call(operation, context, checks.clone());
        let denial = checks.as_ref().map(|c| Arc::clone(&c.denial));
        let inspector = inspect.zip(checks).map(|((spec, encoding), checks)| {
            Inspector::new(spec, encoding, config.max_message_size, checks, 1)
        });
        let body = ClassifiedBody::new(body, replay, buf, trailers, done, inspector);
        (body, call, denial)
    }
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
    fn reading(reading: Reading<S, B>) -> Self {
        Self {
            state: State::Reading {
                reading: Some(Box::new(reading)),
            },
        }
    }

    fn checking(checking: Checking<S, B>) -> Self {
        Self {
            state: State::Checking {
                checking: Some(Box::new(checking)),
            },
        }
    }

    fn calling_watching(
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

    fn refused(response: Response<Bytes>) -> Self {
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

#[cfg(test)]
mod tests {
    use std::{
        convert::Infallible,
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
    };

    use bytes::Bytes;
    use http_body::Frame;
    use http_body_util::{BodyExt, Full, StreamBody};
    use tower::{ServiceExt, service_fn};
    use warden_core::OperationKind;

    use super::*;
    use crate::{CallExt, map::Fields};

    type Channel = tokio::sync::mpsc::Sender<Result<Frame<Bytes>, Infallible>>;

    fn map() -> OperationMap {
        OperationMap::builder()
            .fields(
                "/t.Svc/Signal",
                OperationKind::Signal,
                Fields::new().namespace(&[1]),
            )
            .build()
            .unwrap()
    }

    /// A gRPC frame holding a message whose field 1 is `namespace`.
    fn frame(namespace: &str) -> Bytes {
        let mut message = vec![0x0a, namespace.len() as u8];
        message.extend_from_slice(namespace.as_bytes());
        let mut frame = vec![0];
        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        frame.extend_from_slice(&message);
        Bytes::from(frame)
    }

    fn request<B>(body: B) -> Request<B> {
        Request::post("/t.Svc/Signal")
            .version(Version::HTTP_2)
            .header("content-type", "application/grpc")
            .body(body)
            .unwrap()
    }

    /// An inner service that counts its calls and answers with the namespace it was given.
    fn counting<B>(
        calls: Arc<AtomicUsize>,
    ) -> impl Service<
        Request<ClassifiedBody<B>>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
    where
        B: Send + 'static,
    {
        service_fn(move |request: Request<ClassifiedBody<B>>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let namespace = request
                .operation()
                .and_then(|op| op.namespace.clone())
                .unwrap_or_default();
            async move { Ok(Response::new(Full::new(Bytes::from(namespace.to_string())))) }
        })
    }

    #[tokio::test]
    async fn a_message_that_came_with_the_headers_is_decided_and_handed_on_within_call() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut service = ClassifyLayer::new(map()).layer(counting(Arc::clone(&calls)));
        let future = service
            .ready()
            .await
            .unwrap()
            .call(request(Full::new(frame("orders"))));
        // The inner service ran before the response future was first polled.
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let body = future.await.unwrap().into_body().collect().await.unwrap();
        assert_eq!(body.to_bytes(), "orders");
    }

    #[tokio::test]
    async fn a_message_that_arrives_after_the_call_wakes_the_task_and_is_classified() {
        let calls = Arc::new(AtomicUsize::new(0));
        let (tx, rx): (Channel, _) = tokio::sync::mpsc::channel(1);
        let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        let mut service = ClassifyLayer::new(map()).layer(counting(Arc::clone(&calls)));
        let future = service.ready().await.unwrap().call(request(body));
        assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing to decide on yet");
        let response = tokio::spawn(future);
        // Only the task's own waker can tell it the message came: the first read in `call`
        // had none.
        tokio::task::yield_now().await;
        tx.send(Ok(Frame::data(frame("billing")))).await.unwrap();
        drop(tx);
        let response = tokio::time::timeout(std::time::Duration::from_secs(5), response)
            .await
            .expect("the call was never woken")
            .unwrap()
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let body = response.into_body().collect().await.unwrap();
        assert_eq!(body.to_bytes(), "billing");
    }
}
