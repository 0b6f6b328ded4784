//! The one decision engine behind every door.
//!
//! Every place Warden sits — the one-line [`WardenLayer`](crate::WardenLayer), the separate
//! [`AuthenticateLayer`](crate::AuthenticateLayer) and authorization layers, `warden proxy`,
//! `warden check`, and in-process callers such as a worker's signal dispatch — reaches a
//! decision through this code: the caller's credentials mapped to [`Claims`] (under a timeout
//! and a panic guard), the [`AuthzRequest`] built, the policies of the operation's kind run in
//! order (each under a timeout and a panic guard, deny overrides, nothing decided → deny),
//! every outcome recorded as one `warden::audit` event and in the `warden_decisions_total` and
//! `warden_decision_duration_seconds` metrics. The doors differ only in how they read a call
//! and how they answer a [`Rejection`].
//!
//! An [`Engine`] needs no HTTP: a caller that already has an [`Operation`] and credentials
//! ([`Engine::decide`]) or claims ([`Engine::authorize`]) gets the same decision and the same
//! audit event. Where every mapper and policy is synchronous, the answer is
//! [`Answer::Ready`], so synchronous hooks (a worker's query handler) can use it without a
//! runtime.
//!
//! ```
//! use std::sync::Arc;
//! use warden_core::{
//!     AuthInfo, Claims, Operation, OperationKind, RequestContext, Roles, Secret,
//!     identity::StaticTokenMapper, policy::AllowAll,
//! };
//! use warden_tower::{Code, engine::Engine};
//!
//! let engine = Engine::builder()
//!     .authenticate(StaticTokenMapper::new().with_token("t", Claims::for_subject("ann")))
//!     .query(AllowAll::new())
//!     .build();
//!
//! let query = Arc::new(Operation::new(OperationKind::Query, "shop.Orders", "Status"));
//! let signal = Arc::new(Operation::new(OperationKind::Signal, "shop.Orders", "Cancel"));
//! let ann = AuthInfo::new().with_bearer(Secret::new("t"));
//!
//! // Synchronous policies answer at once: no runtime needed.
//! let allowed = engine.decide(&ann, query, RequestContext::default()).now().unwrap().unwrap();
//! assert_eq!(allowed.claims.subject.as_deref(), Some("ann"));
//!
//! // No policy covers signals: denied, as every door denies it.
//! let denied = engine.decide(&ann, signal, RequestContext::default()).now().unwrap().unwrap_err();
//! assert_eq!(denied.code(), Code::PermissionDenied);
//! ```

mod authenticator;
mod policies;

use std::{fmt, sync::Arc, time::Duration};

pub use authenticator::DEFAULT_MAPPER_TIMEOUT;
pub(crate) use authenticator::{Authenticator, rejection as authenticator_rejection};
pub use policies::DEFAULT_POLICY_TIMEOUT;
pub(crate) use policies::{Authorizer, PolicyTable};
use warden_core::{
    Answer, AuthInfo, AuthzRequest, ClaimMapper, Claims, Decision, KindSet, Operation,
    OperationKind, Policy, RequestContext, SharedPolicy, policy::DenyAll,
};

use crate::{
    classify::{StreamCheck, StreamChecks},
    rejection::{Code, Rejection},
};

/// What a call that passed proved: who called, and the decision that let it through.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Verdict {
    /// Who is calling.
    pub claims: Arc<Claims>,
    /// The decision that allowed the call (in shadow mode, possibly a denial let through).
    pub decision: Decision,
}

/// Authentication and the policies per operation kind; see the [module docs](self).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    authenticator: Option<Authenticator>,
    policies: PolicyTable,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("authenticator", &self.inner.authenticator)
            .field("policies", &self.inner.policies)
            .finish()
    }
}

impl Engine {
    /// Starts an engine; without policies it denies everything.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Who the caller bringing `info` is. With no claim mapper, every caller is refused
    /// `UNAUTHENTICATED`.
    pub fn authenticate(&self, info: &AuthInfo) -> Answer<Result<Arc<Claims>, Rejection>> {
        match &self.inner.authenticator {
            Some(authenticator) => authenticator.authenticate(info),
            None => Answer::Ready(Err(Rejection::new(
                Code::Unauthenticated,
                "unauthenticated: no claim mapper is configured",
            ))),
        }
    }

    /// Whether any policy that may decide `operation` reads the request metadata: only then
    /// do the layers move the call's headers into its context.
    pub fn reads_metadata(&self, operation: &Operation) -> bool {
        self.inner.policies.reads_metadata(operation)
    }

    /// Whether `request`'s caller may perform its operation: every policy of the operation's
    /// kinds must allow, and some policy must decide.
    pub fn authorize(&self, request: &AuthzRequest) -> Answer<Result<Decision, Rejection>> {
        let kind = request.operation.kind;
        match self.inner.policies.check(request, false) {
            Answer::Ready(result) => Answer::Ready(required(result, kind)),
            Answer::Pending(check) => Answer::pending(async move { required(check.await, kind) }),
        }
    }

    /// Authenticates `info`, then authorizes `operation` for that caller.
    pub fn decide(
        &self,
        info: &AuthInfo,
        operation: Arc<Operation>,
        context: RequestContext,
    ) -> Answer<Result<Verdict, Rejection>> {
        self.decide_registering(info, operation, context, None)
    }

    /// [`decide`](Self::decide), registering the engine with a client stream's checks so its
    /// later messages face the same policies.
    pub(crate) fn decide_registering(
        &self,
        info: &AuthInfo,
        operation: Arc<Operation>,
        context: RequestContext,
        stream: Option<&Arc<StreamChecks>>,
    ) -> Answer<Result<Verdict, Rejection>> {
        match self.authenticate(info) {
            Answer::Ready(Ok(claims)) => self.judge(claims, operation, context, stream),
            Answer::Ready(Err(rejection)) => Answer::Ready(Err(rejection)),
            Answer::Pending(mapping) => {
                let engine = self.clone();
                let stream = stream.cloned();
                Answer::pending(async move {
                    let claims = mapping.await?;
                    engine
                        .judge(claims, operation, context, stream.as_ref())
                        .await
                })
            }
        }
    }

    fn judge(
        &self,
        claims: Arc<Claims>,
        operation: Arc<Operation>,
        context: RequestContext,
        stream: Option<&Arc<StreamChecks>>,
    ) -> Answer<Result<Verdict, Rejection>> {
        if let Some(stream) = stream {
            stream.register(Arc::clone(&self.inner) as _, Arc::clone(&claims));
        }
        let request = AuthzRequest::new(claims, operation).with_context(context);
        match self.authorize(&request) {
            Answer::Ready(result) => Answer::Ready(result.map(|decision| Verdict {
                claims: request.subject,
                decision,
            })),
            Answer::Pending(check) => Answer::pending(async move {
                let decision = check.await?;
                Ok(Verdict {
                    claims: request.subject,
                    decision,
                })
            }),
        }
    }
}

impl StreamCheck for Inner {
    fn check(&self, request: &AuthzRequest, decided: bool) -> Answer<Result<bool, Rejection>> {
        let kind = request.operation.kind;
        match self.policies.check(request, decided) {
            Answer::Ready(result) => Answer::Ready(required(result, kind).map(|_| true)),
            Answer::Pending(check) => {
                Answer::pending(async move { required(check.await, kind).map(|_| true) })
            }
        }
    }
}

/// The require-decision step: a call no policy decided is denied, so a kind nobody thought of
/// is never let through.
fn required(
    result: Result<Option<Decision>, Rejection>,
    kind: OperationKind,
) -> Result<Decision, Rejection> {
    result?.ok_or_else(|| no_policy_decides(kind))
}

/// The require-decision step for a client stream's later messages.
pub(crate) struct Require;

impl StreamCheck for Require {
    fn check(&self, request: &AuthzRequest, decided: bool) -> Answer<Result<bool, Rejection>> {
        Answer::Ready(if decided {
            Ok(true)
        } else {
            Err(no_policy_decides(request.operation.kind))
        })
    }
}

#[cold]
pub(crate) fn no_policy_decides(kind: OperationKind) -> Rejection {
    Rejection::new(
        Code::PermissionDenied,
        format!("permission denied: no authorization layer decides {kind} operations"),
    )
}

/// Builds an [`Engine`]: the claim mapper, then the policies per operation kind. Every policy
/// whose kinds include a call's kind must allow it; a call that none covers is decided by
/// [`otherwise`](Self::otherwise) (default: denied).
#[derive(Default)]
#[must_use]
pub struct EngineBuilder {
    mapper: Option<Arc<dyn ClaimMapper>>,
    mapper_timeout: Option<Duration>,
    anonymous: bool,
    authorizers: Vec<Authorizer>,
    otherwise: Option<SharedPolicy>,
    policy_timeout: Option<Duration>,
    shadow: bool,
}

impl fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("authorizers", &self.authorizers)
            .field("anonymous", &self.anonymous)
            .field("shadow", &self.shadow)
            .finish_non_exhaustive()
    }
}

macro_rules! kind_setters {
    () => {
        /// Authorizes start/create calls with `policy`.
        pub fn execute(self, policy: impl Policy) -> Self {
            self.kind_policy("execute", KindSet::one(OperationKind::Execute), policy)
        }

        /// Authorizes signals (signal-with-start included) with `policy`.
        pub fn signal(self, policy: impl Policy) -> Self {
            self.kind_policy("signal", KindSet::one(OperationKind::Signal), policy)
        }

        /// Authorizes queries with `policy`.
        pub fn query(self, policy: impl Policy) -> Self {
            self.kind_policy("query", KindSet::one(OperationKind::Query), policy)
        }

        /// Authorizes updates with `policy`.
        pub fn update(self, policy: impl Policy) -> Self {
            self.kind_policy("update", KindSet::one(OperationKind::Update), policy)
        }

        /// Authorizes cancel and terminate calls with `policy`.
        pub fn cancel(self, policy: impl Policy) -> Self {
            let kinds = KindSet::one(OperationKind::Cancel).with(OperationKind::Terminate);
            self.kind_policy("cancel", kinds, policy)
        }

        /// Authorizes describe, list and history reads with `policy`.
        pub fn read(self, policy: impl Policy) -> Self {
            self.kind_policy("read", KindSet::one(OperationKind::Read), policy)
        }

        /// Authorizes workers' polls and responses with `policy`.
        pub fn worker(self, policy: impl Policy) -> Self {
            self.kind_policy("worker", KindSet::one(OperationKind::Worker), policy)
        }

        /// Authorizes administration with `policy`.
        pub fn admin(self, policy: impl Policy) -> Self {
            self.kind_policy("admin", KindSet::one(OperationKind::Admin), policy)
        }

        /// Authorizes calls of any kind in `kinds` with `policy`, in addition to the per-kind
        /// policies: every policy that applies must allow.
        pub fn kinds(self, kinds: KindSet, policy: impl Policy) -> Self {
            self.kind_policy("authorize", kinds, policy)
        }
    };
}
pub(crate) use kind_setters;

impl EngineBuilder {
    /// Authenticates callers with `mapper`.
    pub fn authenticate(mut self, mapper: impl ClaimMapper) -> Self {
        self.mapper = Some(Arc::new(mapper));
        self
    }

    /// How long an asynchronous claim mapper may take (default 5 s).
    pub fn mapper_timeout(mut self, timeout: Duration) -> Self {
        self.mapper_timeout = Some(timeout);
        self
    }

    /// Authenticates a call that carries no credential at all (no bearer token, API key or
    /// peer certificate) as an anonymous caller, for the policies to judge, as Temporal's
    /// default claim mapper does; a credential that is present but bad is still refused
    /// `UNAUTHENTICATED`. Off by default: such calls are refused `UNAUTHENTICATED`.
    pub fn anonymous(mut self, anonymous: bool) -> Self {
        self.anonymous = anonymous;
        self
    }

    pub(crate) fn authenticator(mut self, authenticator: &Authenticator) -> Self {
        self.mapper_timeout = Some(authenticator.timeout());
        self.anonymous = authenticator.anonymous();
        self.mapper = Some(authenticator.mapper());
        self
    }

    pub(crate) fn kind_policy(
        mut self,
        label: &'static str,
        kinds: KindSet,
        policy: impl Policy,
    ) -> Self {
        self.authorizers
            .push(Authorizer::new(label, kinds, Arc::new(policy)));
        self
    }

    kind_setters!();

    /// Decides calls no other policy decided (default: deny all).
    pub fn otherwise(mut self, policy: impl Policy) -> Self {
        self.otherwise = Some(Arc::new(policy));
        self
    }

    /// How long any policy may take before the call is denied `UNAVAILABLE` (default 5 s).
    pub fn policy_timeout(mut self, timeout: Duration) -> Self {
        self.policy_timeout = Some(timeout);
        self
    }

    /// Shadow (dry-run) mode for every policy: decisions are logged, calls go through.
    pub fn shadow(mut self) -> Self {
        self.shadow = true;
        self
    }

    /// Builds the engine.
    pub fn build(self) -> Engine {
        let mut authorizers = self.authorizers;
        let otherwise = self.otherwise.unwrap_or_else(|| {
            Arc::new(DenyAll::with_reason(
                "otherwise",
                "no policy covers this operation",
            ))
        });
        authorizers.push(Authorizer::fallback(otherwise));
        for authorizer in &mut authorizers {
            if let Some(timeout) = self.policy_timeout {
                authorizer.set_timeout(timeout);
            }
            authorizer.set_shadow(self.shadow);
        }
        let authenticator = self.mapper.map(|mapper| {
            let mut authenticator = Authenticator::new(mapper);
            if let Some(timeout) = self.mapper_timeout {
                authenticator.set_timeout(timeout);
            }
            authenticator.set_anonymous(self.anonymous);
            authenticator
        });
        Engine {
            inner: Arc::new(Inner {
                authenticator,
                policies: PolicyTable::new(authorizers),
            }),
        }
    }
}
