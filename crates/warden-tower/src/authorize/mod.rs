//! Authorization: may this caller perform this operation?
//!
//! One layer per operation kind — [`ExecuteLayer`], [`SignalLayer`], [`QueryLayer`],
//! [`UpdateLayer`], [`CancelLayer`] (cancel and terminate), [`ReadLayer`], [`WorkerLayer`],
//! [`AdminLayer`] — each with its own policy, plus [`AuthorizeLayer`] for any set of kinds or as
//! the fallback for calls no other layer decided. They read the `Arc<Operation>` and
//! `Arc<Claims>` the classify and authenticate layers put in the request extensions, so
//! nothing is decoded twice. An allowed call carries the [`Decision`](warden_core::Decision) in its extensions; a
//! denied one is answered before the inner service is called. End a hand-built stack with
//! [`RequireDecisionLayer`] so that a kind no layer covers is denied, not let through.
//!
//! Policy errors, panics and timeouts (default 5 s) deny with `UNAVAILABLE`. Every decision
//! is one `tracing` event (target `warden::audit`) and updates the `warden_decisions_total`
//! counter and the `warden_decision_duration_seconds` histogram.
//!
//! ```
//! use tower::ServiceBuilder;
//! use warden_core::{Roles, policy::{AllowAll, DenyAll}};
//! use warden_tower::{AuthorizeLayer, QueryLayer, RequireDecisionLayer, SignalLayer};
//!
//! let layers = ServiceBuilder::new()
//!     // (ClassifyLayer and AuthenticateLayer come first.)
//!     .layer(QueryLayer::new(AllowAll::new()))
//!     .layer(SignalLayer::new(DenyAll::new()))
//!     .layer(AuthorizeLayer::otherwise(DenyAll::new()))
//!     .layer(RequireDecisionLayer::new());
//! # let _ = layers;
//! ```

use std::{
    fmt, mem,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;
use warden_core::{Answer, AuthzRequest, KindSet, Metadata, OperationKind, Policy};

pub use crate::engine::DEFAULT_POLICY_TIMEOUT;
use crate::{
    body::ResponseBody,
    call::{Call, CallExt, InProcess},
    engine::{Authorizer, PolicyTable, Require, no_policy_decides},
    future::{Admission, InProcessFuture, ResponseFuture},
    rejection::{Code, Rejection},
};

/// Authorizes calls of some operation kinds with one policy; see the [module docs](self).
#[derive(Clone, Debug)]
#[must_use]
pub struct AuthorizeLayer {
    policies: PolicyTable,
}

impl AuthorizeLayer {
    /// Authorizes calls whose operation is of any kind in `kinds` with `policy`.
    pub fn new(kinds: KindSet, policy: impl Policy) -> Self {
        Self::labelled("authorize", kinds, policy)
    }

    fn labelled(label: &'static str, kinds: KindSet, policy: impl Policy) -> Self {
        Self::from_authorizer(Authorizer::new(label, kinds, Arc::new(policy)))
    }

    /// Authorizes, with `policy`, every call that no layer before it decided. Put it after the
    /// per-kind layers so every kind is covered.
    pub fn otherwise(policy: impl Policy) -> Self {
        Self::from_authorizer(Authorizer::fallback(Arc::new(policy)))
    }

    fn from_authorizer(authorizer: Authorizer) -> Self {
        Self {
            policies: PolicyTable::new(vec![authorizer]),
        }
    }

    /// How long the policy may take before the call is denied `UNAVAILABLE` (default 5 s).
    pub fn policy_timeout(self, timeout: Duration) -> Self {
        Self {
            policies: self.policies.edit(|a| a.set_timeout(timeout)),
        }
    }

    /// Shadow (dry-run) mode: decisions are computed and logged with `shadow = true`, and
    /// calls go through whatever they say.
    pub fn shadow(self) -> Self {
        Self {
            policies: self.policies.edit(|a| a.set_shadow(true)),
        }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            policies: self.policies.clone(),
        }
    }
}

/// The service of [`AuthorizeLayer`] and the per-kind layers.
#[derive(Clone)]
pub struct Authorize<S> {
    inner: S,
    policies: PolicyTable,
}

impl<S> fmt::Debug for Authorize<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorize")
            .field("policies", &self.policies)
            .finish_non_exhaustive()
    }
}

impl<S, B, ResB> Service<Request<B>> for Authorize<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // Moved into the decision's context and back, as the engine does, for policies that
        // read it.
        let reads = request
            .operation()
            .is_some_and(|operation| self.policies.reads_metadata(operation));
        let answer = if reads {
            let metadata = Metadata::new(mem::take(request.headers_mut()));
            let answer = self.judge(request.warden_call(), Some(metadata.clone()));
            *request.headers_mut() = metadata.into_headers();
            answer
        } else {
            self.judge(request.warden_call(), None)
        };
        ResponseFuture::admit(&mut self.inner, request, answer)
    }
}

impl<S, T> Service<InProcess<T>> for Authorize<S>
where
    S: Service<InProcess<T>> + Clone,
    S::Error: From<Rejection>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = InProcessFuture<S, T>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: InProcess<T>) -> Self::Future {
        let answer = self.judge(Some(request.call()), None);
        InProcessFuture::admit(&mut self.inner, request, answer)
    }
}

impl<S> Authorize<S> {
    /// Runs this layer's policies over `call` (with the request's `metadata`, when it came
    /// over HTTP), after registering them for a client stream's later messages.
    fn judge(
        &self,
        call: Option<&Call>,
        metadata: Option<Metadata>,
    ) -> Answer<Result<Admission, Rejection>> {
        let Some((call, operation)) = call.and_then(|c| Some((c, c.operation()?))) else {
            return Answer::Ready(Err(misconfigured("operation", "ClassifyLayer")));
        };
        let Some(claims) = call.claims() else {
            return Answer::Ready(Err(misconfigured("claims", "AuthenticateLayer")));
        };
        if let Some(checks) = &call.checks {
            checks.register(Arc::new(self.policies.clone()), Arc::clone(claims));
        }
        let decided = call.decision().is_some();
        let mut context = call.context.clone();
        if let Some(metadata) = metadata {
            context.metadata = metadata;
        }
        let authz =
            AuthzRequest::new(Arc::clone(claims), Arc::clone(operation)).with_context(context);
        match self.policies.check(&authz, decided) {
            Answer::Ready(result) => Answer::Ready(result.map(Admission::Decision)),
            Answer::Pending(check) => {
                Answer::pending(async move { check.await.map(Admission::Decision) })
            }
        }
    }
}

/// The refusal of a call that reached authorization without what `layer` records.
#[cold]
fn misconfigured(missing: &str, layer: &str) -> Rejection {
    Rejection::new(
        Code::Internal,
        format!(
            "authorization misconfigured: no {missing} in the request; put {layer} before the authorization layers"
        ),
    )
}

macro_rules! kind_layer {
    ($(#[$doc:meta])* $name:ident, $label:literal, [$($kind:ident),+]) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        #[must_use]
        pub struct $name(AuthorizeLayer);

        impl $name {
            /// The kinds this layer authorizes.
            pub const KINDS: KindSet = KindSet::EMPTY$(.with(OperationKind::$kind))+;

            /// Authorizes these calls with `policy`.
            pub fn new(policy: impl Policy) -> Self {
                Self(AuthorizeLayer::labelled($label, Self::KINDS, policy))
            }

            /// How long the policy may take before the call is denied `UNAVAILABLE`
            /// (default 5 s).
            pub fn policy_timeout(self, timeout: Duration) -> Self {
                Self(self.0.policy_timeout(timeout))
            }

            /// Shadow (dry-run) mode: decisions are logged, calls go through.
            pub fn shadow(self) -> Self {
                Self(self.0.shadow())
            }
        }

        impl<S> Layer<S> for $name {
            type Service = Authorize<S>;

            fn layer(&self, inner: S) -> Self::Service {
                self.0.layer(inner)
            }
        }
    };
}

kind_layer!(
    /// Authorizes calls that start or create an instance.
    ExecuteLayer, "execute", [Execute]
);
kind_layer!(
    /// Authorizes signals (including signal-with-start, which is also a signal).
    SignalLayer, "signal", [Signal]
);
kind_layer!(
    /// Authorizes queries.
    QueryLayer, "query", [Query]
);
kind_layer!(
    /// Authorizes updates.
    UpdateLayer, "update", [Update]
);
kind_layer!(
    /// Authorizes cancellation and termination.
    CancelLayer, "cancel", [Cancel, Terminate]
);
kind_layer!(
    /// Authorizes describe, list and history reads.
    ReadLayer, "read", [Read]
);
kind_layer!(
    /// Authorizes workers' polls and responses.
    WorkerLayer, "worker", [Worker]
);
kind_layer!(
    /// Authorizes administration.
    AdminLayer, "admin", [Admin]
);

/// Denies every call that no authorization layer decided, so a kind nobody thought of is never
/// let through. The last layer of a hand-built stack.
#[derive(Clone, Copy, Debug, Default)]
#[must_use]
pub struct RequireDecisionLayer;

impl RequireDecisionLayer {
    /// The layer.
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for RequireDecisionLayer {
    type Service = RequireDecision<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireDecision { inner }
    }
}

/// The service of [`RequireDecisionLayer`].
#[derive(Clone, Debug)]
pub struct RequireDecision<S> {
    inner: S,
}

impl<S, B, ResB> Service<Request<B>> for RequireDecision<S>
where
    S: Service<Request<B>, Response = Response<ResB>>,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match require(request.warden_call()) {
            Ok(()) => ResponseFuture::calling(self.inner.call(request)),
            Err(rejection) => ResponseFuture::refused(&request, &rejection),
        }
    }
}

impl<S, T> Service<InProcess<T>> for RequireDecision<S>
where
    S: Service<InProcess<T>>,
    S::Error: From<Rejection>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = InProcessFuture<S, T>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: InProcess<T>) -> Self::Future {
        match require(Some(request.call())) {
            Ok(()) => InProcessFuture::calling(self.inner.call(request)),
            Err(rejection) => InProcessFuture::refused(rejection),
        }
    }
}

/// The require-decision step over `call`: registered for a client stream's later messages,
/// then passed only when some layer decided.
fn require(call: Option<&Call>) -> Result<(), Rejection> {
    if let Some(call) = call
        && let (Some(checks), Some(claims)) = (&call.checks, call.claims())
    {
        checks.register(Arc::new(Require), Arc::clone(claims));
    }
    match call {
        Some(call) if call.decision().is_some() => Ok(()),
        _ => Err(no_policy_decides(
            call.and_then(Call::operation)
                .map_or(OperationKind::Other, |op| op.kind),
        )),
    }
}
