//! Recording who started an instance, for instance-level policies.
//!
//! [`RecordInitiatorLayer`] goes inside Warden's stack (it reads the `Arc<Operation>` and
//! `Arc<Claims>` Warden put in the request extensions). When an `Execute` call that names an
//! instance *succeeds* — HTTP 2xx and, for gRPC, `grpc-status: 0` — it records the caller as
//! the instance's initiator before the caller sees the success, so a signal sent right after
//! the start already finds it. A failed start records nothing.
//!
//! ```
//! use tower::ServiceBuilder;
//! use warden_core::instances::MemoryInstanceStore;
//! use warden_tower::record::RecordInitiatorLayer;
//!
//! let store = std::sync::Arc::new(MemoryInstanceStore::new());
//! # let warden = tower::layer::util::Identity::new();
//! let stack = ServiceBuilder::new()
//!     .layer(warden)                                  // classify, authenticate, authorize
//!     .layer(RecordInitiatorLayer::new(store.clone()));
//! # let _ = stack;
//! ```

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;
use warden_core::{
    Claims, Operation, OperationKind,
    instances::{InstanceKey, SharedInstanceStore, StoreWrite},
};

use crate::CallExt;

/// Records initiators of successful starts; see the [module docs](self).
#[derive(Clone)]
pub struct RecordInitiatorLayer {
    config: Arc<Config>,
}

struct Config {
    store: SharedInstanceStore,
    on_behalf_of: Option<(String, String)>,
}

impl fmt::Debug for RecordInitiatorLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordInitiatorLayer")
            .field("on_behalf_of", &self.config.on_behalf_of)
            .finish_non_exhaustive()
    }
}

impl RecordInitiatorLayer {
    /// Records into `store`.
    pub fn new(store: SharedInstanceStore) -> Self {
        Self {
            config: Arc::new(Config {
                store,
                on_behalf_of: None,
            }),
        }
    }

    /// Starts on someone's behalf: a caller holding `privilege` may name the initiator in the
    /// argument at JSON `pointer` (e.g. `/on_behalf_of`); anyone else is recorded themselves.
    #[must_use]
    pub fn on_behalf_of(self, pointer: &str, privilege: &str) -> Self {
        Self {
            config: Arc::new(Config {
                store: Arc::clone(&self.config.store),
                on_behalf_of: Some((pointer.to_owned(), privilege.to_owned())),
            }),
        }
    }
}

impl<S> Layer<S> for RecordInitiatorLayer {
    type Service = RecordInitiator<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecordInitiator {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service of [`RecordInitiatorLayer`].
#[derive(Clone)]
pub struct RecordInitiator<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> fmt::Debug for RecordInitiator<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordInitiator").finish_non_exhaustive()
    }
}

impl Config {
    /// The instance and initiator a start would record.
    fn pending(&self, op: &Operation, claims: &Claims) -> Option<(InstanceKey, String)> {
        if op.kind != OperationKind::Execute {
            return None;
        }
        let instance = op.instance_id.as_deref().filter(|i| !i.is_empty())?;
        let mut initiator = claims.subject.clone()?;
        if let Some((pointer, privilege)) = &self.on_behalf_of
            && claims.has_privilege(privilege)
            && let Some(named) = op.args.get().and_then(|a| a.pointer(pointer)?.as_str())
        {
            initiator = named.to_owned();
        }
        let key = InstanceKey::new(op.namespace.clone().unwrap_or_default(), instance);
        Some((key, initiator))
    }

    fn write(&self, (key, subject): &(InstanceKey, String)) -> StoreWrite {
        self.store.record_initiator(key, subject)
    }
}

type Pending = ((InstanceKey, String), Arc<Config>);

impl<S, B, ResB> Service<Request<B>> for RecordInitiator<S>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    ResB: Body<Data = Bytes>,
{
    type Response = Response<RecordBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let pending = match (request.operation(), request.claims()) {
            (Some(op), Some(claims)) => self.config.pending(op, claims),
            _ => None,
        };
        ResponseFuture {
            inner: self.inner.call(request),
            pending: pending.map(|p| (p, Arc::clone(&self.config))),
            waiting: None,
        }
    }
}

pin_project! {
    /// Response future of [`RecordInitiator`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
        // A success whose status is already known waits here for its record.
        waiting: Option<(StoreWrite, InstanceKey, Response<B>)>,
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get("grpc-status").map(|v| v.as_bytes())
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

fn finish(result: Result<(), warden_core::instances::StoreError>, key: &InstanceKey) {
    if let Err(error) = result {
        // The start itself succeeded; without a record only admins can touch the instance,
        // which fails closed. Say so loudly.
        tracing::error!(instance = %key, %error, "could not record the initiator of a started instance");
    }
}

impl<F, ResB, E> Future for ResponseFuture<F, ResB>
where
    F: Future<Output = Result<Response<ResB>, E>>,
    ResB: Body<Data = Bytes>,
{
    type Output = Result<Response<RecordBody<ResB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let Some((write, key, _)) = this.waiting.as_mut() {
                let result = ready!(write.as_mut().poll(cx));
                finish(result, key);
                if let Some((_, _, response)) = this.waiting.take() {
                    return Poll::Ready(Ok(response.map(RecordBody::plain)));
                }
            }
            let response = ready!(this.inner.as_mut().poll(cx))?;
            let Some((pending, config)) = this.pending.take() else {
                return Poll::Ready(Ok(response.map(RecordBody::plain)));
            };
            if !response.status().is_success() {
                return Poll::Ready(Ok(response.map(RecordBody::plain)));
            }
            if is_grpc(response.headers()) {
                match grpc_status(response.headers()) {
                    // Trailers-only: the status is here, and only `0` records.
                    Some(b"0") => {}
                    Some(_) => return Poll::Ready(Ok(response.map(RecordBody::plain))),
                    // The status comes in the trailers: record when it does.
                    None => {
                        return Poll::Ready(Ok(
                            response.map(|body| RecordBody::on_success(body, (pending, config)))
                        ));
                    }
                }
            }
            *this.waiting = Some((config.write(&pending), pending.0, response));
        }
    }
}

pin_project! {
    /// The response body of [`RecordInitiator`]: holds a gRPC success's trailers until the
    /// initiator is recorded.
    pub struct RecordBody<B> {
        #[pin]
        inner: B,
        on_success: Option<Pending>,
        writing: Option<(StoreWrite, InstanceKey, HeaderMap)>,
    }
}

impl<B> RecordBody<B> {
    fn plain(inner: B) -> Self {
        Self {
            inner,
            on_success: None,
            writing: None,
        }
    }

    fn on_success(inner: B, pending: Pending) -> Self {
        Self {
            inner,
            on_success: Some(pending),
            writing: None,
        }
    }
}

impl<B: fmt::Debug> fmt::Debug for RecordBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordBody")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<B: Body<Data = Bytes>> Body for RecordBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        loop {
            if let Some((write, key, _)) = this.writing.as_mut() {
                let result = ready!(write.as_mut().poll(cx));
                finish(result, key);
                if let Some((_, _, trailers)) = this.writing.take() {
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
            }
            let frame = ready!(this.inner.as_mut().poll_frame(cx));
            let Some(Ok(frame)) = frame else {
                return Poll::Ready(frame);
            };
            if !frame.is_trailers() || this.on_success.is_none() {
                return Poll::Ready(Some(Ok(frame)));
            }
            let trailers = match frame.into_trailers() {
                Ok(trailers) => trailers,
                Err(frame) => return Poll::Ready(Some(Ok(frame))),
            };
            match (grpc_status(&trailers), this.on_success.take()) {
                (Some(b"0"), Some((pending, config))) => {
                    *this.writing = Some((config.write(&pending), pending.0, trailers));
                }
                _ => return Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.writing.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::{BodyExt, Empty, Full, StreamBody};
    use tower::{ServiceExt, service_fn};
    use warden_core::instances::{InstanceStore, MemoryInstanceStore};

    use super::*;

    fn start_request(subject: &str) -> Request<Empty<Bytes>> {
        let op = Operation::new(OperationKind::Execute, "s.v1.S", "Start")
            .with_namespace("orders")
            .with_instance("o-1");
        let mut request = Request::new(Empty::new());
        request
            .extensions_mut()
            .insert(crate::Call::new(op).with_claims(Claims::for_subject(subject)));
        request
    }

    async fn initiator(store: &MemoryInstanceStore) -> Option<String> {
        store
            .get(&InstanceKey::new("orders", "o-1"))
            .await
            .unwrap()
            .initiator
    }

    #[tokio::test]
    async fn a_failed_start_records_nothing() {
        let store = MemoryInstanceStore::new();
        let service = RecordInitiatorLayer::new(Arc::new(store.clone())).layer(service_fn(
            |_req: Request<Empty<Bytes>>| async {
                let response = Response::builder()
                    .header("content-type", "application/grpc")
                    .header("grpc-status", "6")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                Ok::<_, Infallible>(response)
            },
        ));
        let response = service.oneshot(start_request("mallory")).await.unwrap();
        response.into_body().collect().await.unwrap();
        assert_eq!(initiator(&store).await, None);
    }

    #[tokio::test]
    async fn a_grpc_success_is_recorded_before_its_trailers_are_delivered() {
        let store = MemoryInstanceStore::new();
        let service = RecordInitiatorLayer::new(Arc::new(store.clone())).layer(service_fn(
            |_req: Request<Empty<Bytes>>| async {
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", "0".parse().unwrap());
                let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
                    Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
                    Ok(Frame::trailers(trailers)),
                ];
                let body = StreamBody::new(tokio_stream::iter(frames));
                let response = Response::builder()
                    .header("content-type", "application/grpc")
                    .body(body)
                    .unwrap();
                Ok::<_, Infallible>(response)
            },
        ));
        let response = service.oneshot(start_request("alice")).await.unwrap();
        // Nothing is recorded before the status is known…
        assert_eq!(initiator(&store).await, None);
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
        // …and it is once the trailers were delivered.
        assert_eq!(initiator(&store).await.as_deref(), Some("alice"));
    }

    #[tokio::test]
    async fn an_http_success_is_recorded_before_the_response_returns() {
        let store = MemoryInstanceStore::new();
        let service = RecordInitiatorLayer::new(Arc::new(store.clone())).layer(service_fn(
            |_req: Request<Empty<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
            },
        ));
        let _response = service.oneshot(start_request("alice")).await.unwrap();
        assert_eq!(initiator(&store).await.as_deref(), Some("alice"));
    }
}
