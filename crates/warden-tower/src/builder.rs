//! The usual stack in one line: [`WardenLayer::builder`].

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;
use warden_core::{Answer, BoxError, ClaimMapper, KindSet, OperationKind, Policy};

use crate::{
    AuthenticateLayer, ClassifiedBody, ClassifyLayer,
    authenticate::Credentials,
    body::ResponseBody,
    call::Call,
    classify::{self, Admitted, Classify, Decide, PeerFn},
    engine::{Engine, EngineBuilder, authenticator_rejection, kind_setters},
    map::{HttpOperationMap, OperationMap},
    rejection::{Code, Rejection, Respond},
};

/// Why a stack could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No claim mapper was given.
    #[error(
        "no claim mapper: call `authenticate` with one (StaticTokenMapper allows anonymous callers if asked)"
    )]
    NoClaimMapper,
}

/// Assembles classify → authenticate → authorize (per kind, then `otherwise`, deny by default)
/// → require-decision; see [`WardenLayer`].
#[must_use]
pub struct WardenBuilder {
    classify: ClassifyLayer,
    authenticate: Option<AuthenticateLayer>,
    engine: EngineBuilder,
}

impl fmt::Debug for WardenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WardenBuilder")
            .field("classify", &self.classify)
            .field("authenticate", &self.authenticate)
            .field("engine", &self.engine)
            .finish()
    }
}

impl WardenBuilder {
    /// Also classifies plain HTTP routes.
    pub fn http_routes(mut self, map: HttpOperationMap) -> Self {
        self.classify = self.classify.http_routes(map);
        self
    }

    /// How long a call may take to deliver its first message (default 30 s); see
    /// [`ClassifyLayer::first_message_timeout`].
    pub fn first_message_timeout(mut self, timeout: Duration) -> Self {
        self.classify = self.classify.first_message_timeout(timeout);
        self
    }

    /// The largest request message Warden reads (default 4 MiB).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.classify = self.classify.max_message_size(bytes);
        self
    }

    /// How refusals are answered.
    pub fn responder(mut self, responder: impl Respond) -> Self {
        self.classify = self.classify.responder(responder);
        self
    }

    /// Where the transport keeps what it knows about the peer; see
    /// [`ClassifyLayer::peer_from`].
    pub fn peer_from(mut self, peer: PeerFn) -> Self {
        self.classify = self.classify.peer_from(peer);
        self
    }

    /// Authenticates callers with `mapper`.
    pub fn authenticate(self, mapper: impl ClaimMapper) -> Self {
        self.authenticate_with(AuthenticateLayer::new(mapper))
    }

    /// Authenticates callers with a configured layer (API key header, metadata, timeout,
    /// anonymous callers).
    pub fn authenticate_with(mut self, layer: AuthenticateLayer) -> Self {
        self.authenticate = Some(layer);
        self
    }

    fn kind_policy(mut self, label: &'static str, kinds: KindSet, policy: impl Policy) -> Self {
        self.engine = self.engine.kind_policy(label, kinds, policy);
        self
    }

    kind_setters!();

    /// Decides calls no other policy decided (default: deny all).
    pub fn otherwise(mut self, policy: impl Policy) -> Self {
        self.engine = self.engine.otherwise(policy);
        self
    }

    /// How long any policy may take before the call is denied `UNAVAILABLE` (default 5 s).
    pub fn policy_timeout(mut self, timeout: Duration) -> Self {
        self.engine = self.engine.policy_timeout(timeout);
        self
    }

    /// Shadow (dry-run) mode for every policy: decisions are logged, calls go through.
    pub fn shadow(mut self) -> Self {
        self.engine = self.engine.shadow();
        self
    }

    /// Builds the layer.
    pub fn build(self) -> Result<WardenLayer, BuildError> {
        let authenticate = self.authenticate.ok_or(BuildError::NoClaimMapper)?;
        let config = authenticate.config();
        let engine = self.engine.authenticator(&config.authenticator).build();
        Ok(WardenLayer {
            classify: self.classify,
            decide: Arc::new(EngineStep {
                engine,
                credentials: config.credentials.clone(),
            }),
        })
    }
}

/// Warden's usual stack as one layer: classify, authenticate, authorize per kind, require a
/// decision — the same [`Engine`] as [`ClassifyLayer`], [`AuthenticateLayer`], the
/// authorization layers and [`RequireDecisionLayer`](crate::RequireDecisionLayer) stacked,
/// run inside one service with one response future and one body wrapper.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tower::{Layer, ServiceExt, service_fn};
/// use warden_core::{Claims, OperationKind, identity::StaticTokenMapper, policy::AllowAll};
/// use warden_tower::{WardenLayer, map::OperationMap};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let map = OperationMap::builder()
///     .method("/shop.Orders/Get", OperationKind::Query)
///     .method("/shop.Orders/Cancel", OperationKind::Cancel)
///     .build()
///     .unwrap();
/// let warden = WardenLayer::builder(map)
///     .authenticate(StaticTokenMapper::new().with_token("t", Claims::for_subject("ann")))
///     .query(AllowAll::new())
///     .build()
///     .unwrap();
/// let service = warden.layer(service_fn(|_request: Request<_>| async {
///     Ok::<_, Infallible>(Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
/// }));
///
/// let call = |path: &str| {
///     Request::post(path)
///         .version(http::Version::HTTP_2)
///         .header("content-type", "application/grpc")
///         .header("authorization", "Bearer t")
///         .body(http_body_util::Empty::<bytes::Bytes>::new())
///         .unwrap()
/// };
/// let allowed = service.clone().oneshot(call("/shop.Orders/Get")).await.unwrap();
/// assert!(allowed.headers().get("grpc-status").is_none());
/// // No policy covers cancellation: denied before the handler runs.
/// let denied = service.oneshot(call("/shop.Orders/Cancel")).await.unwrap();
/// assert_eq!(denied.headers()["grpc-status"], "7");
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct WardenLayer {
    classify: ClassifyLayer,
    decide: Arc<EngineStep>,
}

impl WardenLayer {
    /// Starts a stack that classifies gRPC calls with `map`.
    pub fn builder(map: OperationMap) -> WardenBuilder {
        WardenBuilder {
            classify: ClassifyLayer::new(map),
            authenticate: None,
            engine: Engine::builder(),
        }
    }
}

impl<S> Layer<S> for WardenLayer {
    type Service = Warden<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Warden {
            inner: self
                .classify
                .layer_deciding(inner, Arc::clone(&self.decide) as _),
        }
    }
}

/// The service of a [`WardenLayer`].
#[derive(Clone, Debug)]
pub struct Warden<S> {
    inner: Classify<S>,
}

impl<S> Warden<S> {
    /// The service Warden guards.
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref()
    }

    /// The service Warden guards, mutably: for settings made after the stack is built.
    pub fn get_mut(&mut self) -> &mut S {
        self.inner.get_mut()
    }

    /// The guarded service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner.into_inner()
    }
}

impl<S, B, ResB> Service<Request<B>> for Warden<S>
where
    S: Service<Request<ClassifiedBody<B>>, Response = Response<ResB>> + Clone,
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
    ResB: Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = classify::ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.inner.call(request)
    }
}

/// The engine as the step a classified call goes through inside [`Warden`].
struct EngineStep {
    engine: Engine,
    credentials: Credentials,
}

impl fmt::Debug for EngineStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineStep")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl Decide for EngineStep {
    fn reads_metadata(&self, operation: &warden_core::Operation) -> bool {
        self.engine.reads_metadata(operation)
    }

    fn decide(&self, headers: &HeaderMap, call: &Call) -> Answer<Result<Admitted, Rejection>> {
        let Some(operation) = call.operation() else {
            return Answer::Ready(Err(Rejection::new(
                Code::Internal,
                "warden misconfigured: no operation in the request",
            )));
        };
        let info = match self.credentials.auth_info(headers, &call.context) {
            Ok(info) => info,
            Err(error) => return Answer::Ready(Err(authenticator_rejection(&error))),
        };
        let verdict = self.engine.decide_registering(
            &info,
            Arc::clone(operation),
            call.context.clone(),
            call.checks.as_ref(),
        );
        match verdict {
            Answer::Ready(result) => Answer::Ready(result.map(|v| (v.claims, v.decision))),
            Answer::Pending(check) => {
                Answer::pending(async move { check.await.map(|v| (v.claims, v.decision)) })
            }
        }
    }
}
