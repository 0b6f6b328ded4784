//! Authorization: may this caller perform this operation?
//!
//! One layer per operation kind — [`ExecuteLayer`], [`SignalLayer`], [`QueryLayer`],
//! [`UpdateLayer`], [`CancelLayer`] (cancel and terminate), [`ReadLayer`], [`WorkerLayer`],
//! [`AdminLayer`] — each with its own policy, plus [`AuthorizeLayer`] for any set of kinds or as
//! the fallback for calls no other layer decided. They read the `Arc<Operation>` and
//! `Arc<Claims>` the classify and authenticate layers put in the request extensions, so
//! nothing is decoded twice. An allowed call carries the [`Decision`] in its extensions; a
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

mod engine;

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

pub use engine::DEFAULT_POLICY_TIMEOUT;
pub(crate) use engine::{Authorizer, check_all};
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;
use warden_core::{Answer, AuthzRequest, Decision, KindSet, OperationKind, Policy};

use crate::{
    body::ResponseBody,
    call::{Call, CallExt},
    classify::stream::no_layer_decides,
    gate::{Admit, Gate},
    rejection::{Code, Rejection},
};

/// Authorizes calls of some operation kinds with one policy; see the [module docs](self).
#[derive(Clone, Debug)]
#[must_use]
pub struct AuthorizeLayer {
    authorizers: Arc<[Authorizer]>,
}

impl AuthorizeLayer {
    /// Authorizes calls whose operation is of any kind in `kinds` with `policy`.
    pub fn new(kinds: KindSet, policy: impl Policy) -> Self {
        Self::labelled("authorize", kinds, policy)
    }

    fn labelled(label: &'static str, kinds: KindSet, policy: impl Policy) -> Self {
        Self::from_authorizers(vec![Authorizer::new(label, kinds, Arc::new(policy))])
    }

    /// Authorizes, with `policy`, every call that no layer before it decided. Put it after the
    /// per-kind layers so every kind is covered.
    pub fn otherwise(policy: impl Policy) -> Self {
        Self::from_authorizers(vec![Authorizer::fallback(Arc::new(policy))])
    }

    pub(crate) fn from_authorizers(authorizers: Vec<Authorizer>) -> Self {
        Self {
            authorizers: authorizers.into(),
        }
    }

    fn edit(self, f: impl Fn(&mut Authorizer)) -> Self {
        let mut authorizers = self.authorizers.to_vec();
        authorizers.iter_mut().for_each(f);
        Self::from_authorizers(authorizers)
    }

    /// How long the policy may take before the call is denied `UNAVAILABLE` (default 5 s).
    pub fn timeout(self, timeout: Duration) -> Self {
        self.edit(|a| a.set_timeout(timeout))
    }

    /// Shadow (dry-run) mode: decisions are computed and logged with `shadow = true`, and
    /// calls go through whatever they say.
    pub fn shadow(self) -> Self {
        self.edit(|a| a.set_shadow(true))
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            authorizers: Arc::clone(&self.authorizers),
        }
    }
}

/// The service of [`AuthorizeLayer`] and the per-kind layers.
#[derive(Clone)]
pub struct Authorize<S> {
    inner: S,
    authorizers: Arc<[Authorizer]>,
}

impl<S> fmt::Debug for Authorize<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorize")
            .field("authorizers", &self.authorizers)
            .finish_non_exhaustive()
    }
}

impl<S, B, ResB> Service<Request<B>> for Authorize<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = Gate<S, B, Decision>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let call = request.extensions().get::<Call>();
        let Some(operation) = call.and_then(Call::operation).cloned() else {
            let rejection = Rejection::new(
                Code::Internal,
                "authorization misconfigured: no operation in the request; put ClassifyLayer before the authorization layers",
            );
            return Gate::refused(&request, &rejection);
        };
        let claims = call.and_then(Call::claims).cloned();
        if let (Some(checks), Some(claims)) = (call.and_then(|c| c.checks.as_ref()), &claims) {
            checks.register(Arc::clone(&self.authorizers), Arc::clone(claims));
        }
        let Some(claims) = claims else {
            let rejection = Rejection::new(
                Code::Internal,
                "authorization misconfigured: no claims in the request; put AuthenticateLayer before the authorization layers",
            );
            return Gate::refused(&request, &rejection);
        };
        let decided = call.and_then(Call::decision).is_some();
        let context = call.map(|c| c.context.clone()).unwrap_or_default();
        let authz = AuthzRequest::new(claims, operation).with_context(context);
        match check_all(&self.authorizers, &authz, decided) {
            Answer::Ready(Ok(Some(decision))) => {
                decision.admit(request.extensions_mut());
                // The inner service was polled ready: call it directly, no clone needed.
                Gate::calling(self.inner.call(request))
            }
            Answer::Ready(Ok(None)) => Gate::calling(self.inner.call(request)),
            Answer::Ready(Err(rejection)) => Gate::refused(&request, &rejection),
            Answer::Pending(check) => {
                let kind = authz.operation.kind;
                let check =
                    Answer::pending(
                        async move { check.await?.ok_or_else(|| no_layer_decides(kind)) },
                    );
                Gate::deferred(&mut self.inner, request, check)
            }
        }
    }
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

            /// How long the policy may take (default 5 s).
            pub fn timeout(self, timeout: Duration) -> Self {
                Self(self.0.timeout(timeout))
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
    type Future = Gate<S, B, Decision>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.decision().is_some() {
            return Gate::calling(self.inner.call(request));
        }
        let kind = request
            .operation()
            .map_or(OperationKind::Other, |op| op.kind);
        Gate::refused(&request, &no_layer_decides(kind))
    }
}
