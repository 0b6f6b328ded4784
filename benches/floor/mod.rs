//! The floor: the least work any layer that authorizes a gRPC call by its message must do, written
//! by hand for this one service with no generality, as a yardstick for Warden's per-call cost.
//!
//! Per call it looks the path up in a hash map, reads the first DATA frame inside `call()`
//! (the message came with the headers on loopback), scans the namespace, workflow id and signal
//! name straight from the wire without allocating, looks the bearer token up, runs the same 22
//! rules as the bench's Warden policy, inserts the caller's claims as one extension, and replays
//! the frame to the inner service. It has no audit event, no metrics, no clock reads, no panic
//! guard, no timeouts, no streams, no compression, no configurable responder and no map built at
//! run time: whatever Warden costs above this is the price of those and of its structure.

use std::{
    collections::HashMap,
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Either, Empty};
use tower::{Layer, Service};
use warden_core::{Claims, OperationKind};

use crate::Rule;

struct Config {
    methods: HashMap<String, OperationKind, foldhash::fast::RandomState>,
    tokens: HashMap<String, Arc<Claims>, foldhash::fast::RandomState>,
    rules: Vec<Rule>,
}

#[derive(Clone)]
pub(crate) struct FloorLayer(Arc<Config>);

impl FloorLayer {
    pub(crate) fn new(
        rules: Vec<Rule>,
        tokens: impl IntoIterator<Item = (&'static str, Claims)>,
    ) -> Self {
        let mut methods = HashMap::default();
        methods.insert(
            warden_example::path("SignalWorkflow"),
            OperationKind::Signal,
        );
        methods.insert(
            warden_example::path("StartWorkflow"),
            OperationKind::Execute,
        );
        let tokens = tokens
            .into_iter()
            .map(|(token, claims)| (token.to_owned(), Arc::new(claims)))
            .collect();
        Self(Arc::new(Config {
            methods,
            tokens,
            rules,
        }))
    }
}

impl<S> Layer<S> for FloorLayer {
    type Service = Floor<S>;

    fn layer(&self, inner: S) -> Floor<S> {
        Floor {
            inner,
            config: Arc::clone(&self.0),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Floor<S> {
    inner: S,
    config: Arc<Config>,
}

/// The targets of a request, borrowed from its encoding.
#[derive(Default)]
struct Targets<'a> {
    namespace: &'a [u8],
    instance: &'a [u8],
    name: &'a [u8],
}

fn varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in 0..10 {
        let byte = *buf.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << (shift * 7);
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

/// Fields 1 (namespace), 2.1 (`SignalWorkflow`'s workflow id; `StartWorkflow`'s field 2 is the
/// id itself) and 3 (signal name); every other field skipped.
fn scan<'a>(
    buf: &'a [u8],
    kind: OperationKind,
    nested: bool,
    targets: &mut Targets<'a>,
) -> Option<()> {
    let mut at = 0;
    while at < buf.len() {
        let key = varint(buf, &mut at)?;
        match key & 7 {
            0 => {
                varint(buf, &mut at)?;
            }
            1 => at += 8,
            5 => at += 4,
            2 => {
                let len = usize::try_from(varint(buf, &mut at)?).ok()?;
                let value = buf.get(at..at.checked_add(len)?)?;
                at += len;
                match (nested, key >> 3) {
                    (false, 1) => targets.namespace = value,
                    (false, 2) if kind == OperationKind::Signal => {
                        scan(value, kind, true, targets)?
                    }
                    (false, 2) => targets.instance = value,
                    (false, 3) if kind == OperationKind::Signal => targets.name = value,
                    (true, 1) => targets.instance = value,
                    _ => {}
                }
            }
            _ => return None,
        }
    }
    (at == buf.len()).then_some(())
}

impl Config {
    /// The caller's claims when `token` may perform `kind` on the message `frame` (prefix
    /// included), else the gRPC status code of the refusal.
    fn allows(
        &self,
        kind: OperationKind,
        token: Option<&str>,
        frame: &[u8],
    ) -> Result<Arc<Claims>, u8> {
        const UNAUTHENTICATED: u8 = 16;
        const PERMISSION_DENIED: u8 = 7;
        const INVALID_ARGUMENT: u8 = 3;
        let message = frame.get(5..).ok_or(INVALID_ARGUMENT)?;
        let claims = token
            .and_then(|t| self.tokens.get(t))
            .ok_or(UNAUTHENTICATED)?;
        let mut targets = Targets::default();
        scan(message, kind, false, &mut targets).ok_or(INVALID_ARGUMENT)?;
        let namespace = std::str::from_utf8(targets.namespace).map_err(|_| INVALID_ARGUMENT)?;
        let name = std::str::from_utf8(targets.name).map_err(|_| INVALID_ARGUMENT)?;
        std::str::from_utf8(targets.instance).map_err(|_| INVALID_ARGUMENT)?;
        let role = claims.role_in(Some(namespace));
        for rule in &self.rules {
            if rule.kind == kind
                && namespace == rule.namespace
                && rule.name.is_none_or(|n| n == name)
            {
                return if role.bits() >= rule.min_role.bits() {
                    Ok(Arc::clone(claims))
                } else {
                    Err(PERMISSION_DENIED)
                };
            }
        }
        Err(PERMISSION_DENIED)
    }

    /// The request for the inner service, with the caller's claims and the frame put back,
    /// when the call may proceed; else the gRPC status code of the refusal.
    fn admit<B>(
        &self,
        kind: OperationKind,
        mut parts: http::request::Parts,
        frame: Bytes,
        body: B,
    ) -> Result<Request<Replay<B>>, u8> {
        let claims = self.allows(kind, bearer(&parts.headers), &frame)?;
        parts.extensions.insert(claims);
        let body = Replay {
            first: Some(frame),
            inner: body,
        };
        Ok(Request::from_parts(parts, body))
    }
}

fn refusal<B>(code: u8) -> Response<Either<B, Empty<Bytes>>> {
    Response::builder()
        .header("content-type", "application/grpc")
        .header("grpc-status", code.to_string())
        .body(Either::Right(Empty::new()))
        .unwrap()
}

/// The request body with its first frame put back in front.
pub(crate) struct Replay<B> {
    first: Option<Bytes>,
    inner: B,
}

impl<B> Body for Replay<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.first.take() {
            Some(first) => Poll::Ready(Some(Ok(Frame::data(first)))),
            None => Pin::new(&mut self.inner).poll_frame(cx),
        }
    }
}

type Slow<ResB> = Pin<
    Box<
        dyn std::future::Future<Output = Result<Response<Either<ResB, Empty<Bytes>>>, Infallible>>
            + Send,
    >,
>;

pin_project_lite::pin_project! {
    /// The response future: the inner call, a refusal, or (rarely) the wait for a late message.
    #[project = FloorProj]
    pub(crate) enum FloorFuture<F, ResB> {
        Calling { #[pin] future: F },
        Refused { response: Option<Response<Either<ResB, Empty<Bytes>>>> },
        Waiting { future: Slow<ResB> },
    }
}

impl<F, ResB> std::future::Future for FloorFuture<F, ResB>
where
    F: std::future::Future<Output = Result<Response<ResB>, Infallible>>,
{
    type Output = Result<Response<Either<ResB, Empty<Bytes>>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            FloorProj::Calling { future } => future.poll(cx).map_ok(|r| r.map(Either::Left)),
            FloorProj::Refused { response } => Poll::Ready(Ok(response.take().unwrap())),
            FloorProj::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

impl<S, ResB> Service<Request<tonic::body::Body>> for Floor<S>
where
    S: Service<Request<Replay<tonic::body::Body>>, Response = Response<ResB>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ResB: Body<Data = Bytes> + Send + 'static,
{
    type Response = Response<Either<ResB, Empty<Bytes>>>;
    type Error = Infallible;
    type Future = FloorFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        let refused = |code| FloorFuture::Refused {
            response: Some(refusal(code)),
        };
        let Some(&kind) = self.config.methods.get(request.uri().path()) else {
            return refused(12);
        };
        let (parts, mut body) = request.into_parts();
        let mut cx = Context::from_waker(Waker::noop());
        let first = match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => frame.into_data().ok(),
            _ => None,
        };
        if let Some(frame) = first {
            return match self.config.admit(kind, parts, frame, body) {
                Ok(request) => FloorFuture::Calling {
                    future: self.inner.call(request),
                },
                Err(code) => refused(code),
            };
        }
        // The message did not come with the headers: wait for it (rare on loopback).
        let config = Arc::clone(&self.config);
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        FloorFuture::Waiting {
            future: Box::pin(async move {
                let frame = match body.frame().await {
                    Some(Ok(frame)) => frame.into_data().ok(),
                    _ => None,
                };
                let Some(frame) = frame else {
                    return Ok(refusal(3));
                };
                match config.admit(kind, parts, frame, body) {
                    Ok(request) => Ok(inner.call(request).await?.map(Either::Left)),
                    Err(code) => Ok(refusal(code)),
                }
            }),
        }
    }
}
