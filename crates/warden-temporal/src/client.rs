//! Client-side guardrails for the Rust SDK (`temporalio-client`): Warden's policies run inside
//! the client process, so a denied call never leaves it.
//!
//! `temporalio-client` has no public tower hook, but routes every call through
//! `ConnectionOptions::service_override` when one is set. [`Guardrail`] is such an override:
//! each call goes through a [`WardenLayer`] (built on [`operation_map`](crate::operation_map)
//! with the policies you choose), and only allowed calls are sent on, over a tonic
//! [`Channel`], to the real frontend. A denied call fails with the `PERMISSION_DENIED` status
//! the layer's responder builds — with [`TemporalResponder`](crate::TemporalResponder), the
//! same `Request unauthorized.` and `PermissionDeniedFailure` detail Temporal's frontend sends.
//!
//! ```no_run
//! # async fn run(layer: warden_tower::WardenLayer) -> Result<(), Box<dyn std::error::Error>> {
//! use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
//! use warden_temporal::client::Guardrail;
//!
//! let channel = tonic::transport::Channel::from_static("http://127.0.0.1:7233").connect_lazy();
//! let options = ConnectionOptions::new(temporalio_client::Url::parse("http://127.0.0.1:7233")?)
//!     .service_override(Guardrail::new(layer, channel).into_service_override())
//!     // The client refuses DNS load balancing with an override; the channel connects.
//!     .dns_load_balancing(None)
//!     .build();
//! let client = Client::new(Connection::connect(options).await?, ClientOptions::new("orders").build())?;
//! # let _ = client; Ok(()) }
//! ```
//!
//! The claims come from the layer's claim mapper, which sees the metadata the client sends
//! (`ConnectionOptions::api_key` becomes `authorization: Bearer …`), or from a mapper that
//! names the process's own identity.
//!
//! With the `passport` feature and [`Guardrail::with_passports`], the guardrail is an edge
//! like `warden proxy`: each start, signal, query and update it allows carries a call passport
//! ([`crate::passport`]) for the worker to check, and any passport the caller put in the
//! header is removed first.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, Full};
use temporalio_client::callback_based::{
    CallbackBasedGrpcService, GrpcRequest, GrpcSuccessResponse,
};
use tonic::{Status, transport::Channel};
use tower_layer::Layer;
use tower_service::Service;
use warden_tower::{ClassifiedBody, Warden, WardenLayer};

type Stack = Warden<Forward>;

/// Runs a Warden stack in the client; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Guardrail {
    stack: Stack,
}

impl Guardrail {
    /// Guards calls with `layer` and sends allowed ones on `channel`.
    pub fn new(layer: WardenLayer, channel: Channel) -> Self {
        Self {
            stack: layer.layer(Forward {
                channel,
                #[cfg(feature = "passport")]
                passports: None,
            }),
        }
    }

    /// Writes a passport signed by `writer`'s issuer into each allowed call that carries
    /// one, so workers can check it.
    #[cfg(feature = "passport")]
    #[must_use]
    pub fn with_passports(mut self, writer: crate::passport::PassportWriter) -> Self {
        self.stack.get_mut().passports = Some(Arc::new(writer));
        self
    }

    /// The override to put in `ConnectionOptions::service_override`.
    pub fn into_service_override(self) -> CallbackBasedGrpcService {
        let guardrail = Arc::new(self);
        CallbackBasedGrpcService {
            callback: Arc::new(move |request| {
                let guardrail = Arc::clone(&guardrail);
                Box::pin(async move { guardrail.call(request).await })
            }),
        }
    }

    /// Decides `request` and, when allowed, sends it and returns the frontend's answer.
    pub async fn call(&self, request: GrpcRequest) -> Result<GrpcSuccessResponse, Status> {
        let request = http_request(request)?;
        let mut stack = self.stack.clone();
        std::future::poll_fn(|cx| stack.poll_ready(cx))
            .await
            .map_err(|e| Status::unavailable(format!("connecting to the frontend: {e}")))?;
        let response = match stack.call(request).await {
            Ok(response) => response,
            Err(error) => return Err(Status::from_error(error)),
        };
        grpc_response(response).await
    }
}

/// The call as it would go on the wire: `/service/rpc`, one uncompressed message.
fn http_request(request: GrpcRequest) -> Result<Request<Full<Bytes>>, Status> {
    let GrpcRequest {
        service,
        rpc,
        mut headers,
        proto,
    } = request;
    let length =
        u32::try_from(proto.len()).map_err(|_| Status::resource_exhausted("message over 4 GiB"))?;
    let mut frame = BytesMut::with_capacity(5 + proto.len());
    frame.put_u8(0);
    frame.put_u32(length);
    frame.put_slice(&proto);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    // The answer is read here, whole; an uncompressed one needs no codec.
    headers.remove("grpc-accept-encoding");
    headers.remove("grpc-encoding");
    let mut http = Request::new(Full::new(frame.freeze()));
    // As on the wire: gRPC is HTTP/2, and Warden refuses gRPC over anything else.
    *http.version_mut() = http::Version::HTTP_2;
    *http.method_mut() = http::Method::POST;
    *http.uri_mut() = format!("/{service}/{rpc}")
        .parse()
        .map_err(|_| Status::internal(format!("not a method path: /{service}/{rpc}")))?;
    *http.headers_mut() = headers;
    Ok(http)
}

/// The frontend's (or Warden's) answer: the single response message, or the status.
async fn grpc_response<B>(response: Response<B>) -> Result<GrpcSuccessResponse, Status>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        return Err(Status::unknown(format!(
            "HTTP {} instead of a gRPC response",
            parts.status
        )));
    }
    // Trailers-only: the status is in the headers.
    if parts.headers.contains_key("grpc-status")
        && let Some(status) = Status::from_header_map(&parts.headers)
        && status.code() != tonic::Code::Ok
    {
        return Err(status);
    }
    let collected = body
        .collect()
        .await
        .map_err(|e| Status::unavailable(format!("reading the response: {}", e.into())))?;
    let trailers = collected.trailers().cloned();
    let bytes = collected.to_bytes();
    if let Some(trailers) = &trailers
        && let Some(status) = Status::from_header_map(trailers)
        && status.code() != tonic::Code::Ok
    {
        return Err(status);
    }
    if trailers.is_none() && !parts.headers.contains_key("grpc-status") {
        return Err(Status::internal("the response ended without a gRPC status"));
    }
    if bytes.len() < 5 || bytes[0] != 0 {
        return Err(Status::internal(
            "the response is not one uncompressed gRPC message",
        ));
    }
    let length = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    if bytes.len() != 5 + length {
        return Err(Status::internal("the response message is truncated"));
    }
    let mut headers = parts.headers;
    headers.remove(header::CONTENT_TYPE);
    Ok(GrpcSuccessResponse {
        headers,
        proto: bytes.slice(5..).to_vec(),
    })
}

/// The inside of the stack: allowed calls go out on the channel.
#[derive(Clone, Debug)]
pub struct Forward {
    channel: Channel,
    #[cfg(feature = "passport")]
    passports: Option<Arc<crate::passport::PassportWriter>>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Service<Request<ClassifiedBody<Full<Bytes>>>> for Forward {
    type Response = Response<tonic::body::Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request<tonic::body::Body>>::poll_ready(&mut self.channel, cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ClassifiedBody<Full<Bytes>>>) -> Self::Future {
        #[cfg(feature = "passport")]
        if let Some(writer) = self
            .passports
            .clone()
            .filter(|_| crate::passport::PassportWriter::covers(request.uri().path()))
        {
            // The ready channel goes with the call; a fresh clone is not ready (tower's contract).
            let clone = self.channel.clone();
            let mut channel = std::mem::replace(&mut self.channel, clone);
            return Box::pin(async move {
                let request = with_passport(&writer, request).await?;
                Ok(channel.call(request).await?)
            });
        }
        let request = request.map(tonic::body::Body::new);
        let call = self.channel.call(request);
        Box::pin(async move { Ok(call.await?) })
    }
}

/// The allowed call with its message given a passport (the caller's removed).
#[cfg(feature = "passport")]
async fn with_passport(
    writer: &crate::passport::PassportWriter,
    request: Request<ClassifiedBody<Full<Bytes>>>,
) -> Result<Request<tonic::body::Body>, BoxError> {
    use warden_tower::{CallExt, message};

    let (parts, body) = request.into_parts();
    let framed = body.collect().await?.to_bytes();
    // The client framed this one message itself: its length is the limit.
    let message = message::unframe(&parts.headers, &framed, framed.len())?;
    let claims = parts
        .extensions
        .warden_call()
        .filter(|call| call.decision().is_some_and(|d| d.is_allowed()))
        .and_then(|call| call.claims());
    let written = writer
        .write(parts.uri.path(), &message, claims.map(Arc::as_ref))
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let framed = written.map_or(framed, |message| message::frame(&message));
    Ok(Request::from_parts(
        parts,
        tonic::body::Body::new(Full::new(framed)),
    ))
}
