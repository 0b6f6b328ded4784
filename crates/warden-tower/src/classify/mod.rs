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
pub(crate) mod decode;
mod future;
mod layer;
pub mod peer;
mod reader;
mod service;
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

pub(crate) use self::stream::{StreamCheck, StreamChecks};
use self::{
    body::Inspector,
    deadline::{Deadlines, Wait},
    decode::{announced_too_large, decode_frame, too_large, truncated},
    future::{Checking, Reading},
    layer::Config,
    reader::{Read, Reader, Target},
    service::hand_on,
};
pub use self::{
    future::ResponseFuture,
    layer::{ClassifyLayer, DEFAULT_FIRST_MESSAGE_TIMEOUT},
    peer::{Peer, PeerAddr, PeerCertificates, PeerFn, Transport},
    service::Classify,
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
    /// Whether deciding `operation` needs the request metadata in the call's context.
    fn reads_metadata(&self, operation: &Operation) -> bool;

    /// Authenticates and authorizes the classified `call`, whose request has `headers`.
    fn decide(&self, headers: &HeaderMap, call: &Call) -> Answer<Result<Admitted, Rejection>>;
}

/// What a call that passed proved: who called, and the decision that let it through.
pub(crate) type Admitted = (Arc<Claims>, Decision);

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
