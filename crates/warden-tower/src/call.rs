//! What Warden knows about a call, as one request extension.
//!
//! The classify layer inserts a [`Call`] holding the [`Operation`]; authentication adds the
//! [`Claims`], authorization the [`Decision`]. Handlers and later layers read them through
//! [`CallExt`], on `http::Extensions` (what `tonic::Request::extensions` returns too) or an
//! `http::Request`:
//!
//! ```
//! use warden_tower::CallExt;
//!
//! fn who_called<B>(request: &http::Request<B>) -> Option<&str> {
//!     request.claims()?.subject.as_deref()
//! }
//! # let _ = who_called::<()>;
//! ```
//!
//! One entry rather than one per value: every extension is a heap allocation and a map
//! insert, paid on every call.

use std::{fmt, sync::Arc};

use http::{Extensions, Request};
use warden_core::{Claims, Decision, Operation, RequestContext};

use crate::{classify::StreamChecks, rejection::SharedResponder};

/// What Warden knows about a call; see the [module docs](self).
#[derive(Clone, Default)]
pub struct Call {
    operation: Option<Arc<Operation>>,
    pub(crate) claims: Option<Arc<Claims>>,
    pub(crate) decision: Option<Decision>,
    pub(crate) context: RequestContext,
    /// How every Warden layer answers a refusal of this call.
    pub(crate) responder: Option<SharedResponder>,
    /// The checks of later messages of a client stream.
    pub(crate) checks: Option<Arc<StreamChecks>>,
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("operation", &self.operation)
            .field("claims", &self.claims)
            .field("decision", &self.decision)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Call {
    pub(crate) fn classified(
        operation: Arc<Operation>,
        context: RequestContext,
        responder: SharedResponder,
        checks: Option<Arc<StreamChecks>>,
    ) -> Self {
        Self {
            operation: Some(operation),
            context,
            responder: Some(responder),
            checks,
            ..Self::default()
        }
    }

    /// A call classified as `operation`, as the classify layer records it; with
    /// [`with_claims`](Self::with_claims) and [`with_decision`](Self::with_decision), what a
    /// handler's unit test puts in its request to stand in for Warden's layers.
    pub fn new(operation: impl Into<Arc<Operation>>) -> Self {
        Self {
            operation: Some(operation.into()),
            ..Self::default()
        }
    }

    /// This call authenticated as `claims`.
    #[must_use]
    pub fn with_claims(mut self, claims: impl Into<Arc<Claims>>) -> Self {
        self.claims = Some(claims.into());
        self
    }

    /// This call authorized by `decision`.
    #[must_use]
    pub fn with_decision(mut self, decision: Decision) -> Self {
        self.decision = Some(decision);
        self
    }

    /// The operation the classify layer decoded.
    pub fn operation(&self) -> Option<&Arc<Operation>> {
        self.operation.as_ref()
    }

    /// Who is calling, once authenticated.
    pub fn claims(&self) -> Option<&Arc<Claims>> {
        self.claims.as_ref()
    }

    /// The decision that let the call through, once authorized.
    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }

    /// Where the call came from.
    pub fn context(&self) -> &RequestContext {
        &self.context
    }

    /// The call in `extensions`, for a layer to record what it proved; created empty if the
    /// classify layer did not run.
    pub(crate) fn in_mut(extensions: &mut Extensions) -> &mut Self {
        extensions.get_or_insert_default()
    }
}

/// Reads Warden's [`Call`] from request extensions.
pub trait CallExt {
    /// Warden's record of the call, if a Warden layer saw it.
    fn warden_call(&self) -> Option<&Call>;

    /// The operation the classify layer decoded.
    fn operation(&self) -> Option<&Arc<Operation>> {
        self.warden_call()?.operation()
    }

    /// Who is calling, once authenticated.
    fn claims(&self) -> Option<&Arc<Claims>> {
        self.warden_call()?.claims()
    }

    /// The decision that let the call through, once authorized.
    fn decision(&self) -> Option<&Decision> {
        self.warden_call()?.decision()
    }
}

impl CallExt for Extensions {
    fn warden_call(&self) -> Option<&Call> {
        self.get::<Call>()
    }
}

impl<B> CallExt for Request<B> {
    fn warden_call(&self) -> Option<&Call> {
        self.extensions().get::<Call>()
    }
}

/// A call that arrives without HTTP — a worker's signal, query or update job — with Warden's
/// record of it, for the authorization layers to judge.
///
/// The per-kind layers and [`RequireDecisionLayer`](crate::RequireDecisionLayer) wrap any
/// `tower::Service<InProcess<T>>` whose error can hold a [`Rejection`](crate::Rejection): a
/// denied job never reaches the inner service, and the caller gets the rejection as the error.
///
/// ```
/// use std::convert::Infallible;
/// use tower::{Layer, ServiceExt, service_fn};
/// use warden_core::{Claims, Operation, OperationKind, policy::{AllowAll, DenyAll}};
/// use warden_tower::{Call, Code, InProcess, QueryLayer, Rejection, SignalLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handler = service_fn(|job: InProcess<&'static str>| async move {
///     Ok::<_, Rejection>(format!("handled {}", job.job()))
/// });
/// let service = SignalLayer::new(DenyAll::new()).layer(QueryLayer::new(AllowAll::new()).layer(handler));
///
/// let job = |kind| {
///     let call = Call::new(Operation::new(kind, "orders", "status"))
///         .with_claims(Claims::for_subject("ann"));
///     InProcess::new(call, "status")
/// };
/// let answered = service.clone().oneshot(job(OperationKind::Query)).await.unwrap();
/// assert_eq!(answered, "handled status");
/// let refused = service.oneshot(job(OperationKind::Signal)).await.unwrap_err();
/// assert_eq!(refused.code(), Code::PermissionDenied);
/// # }
/// ```
#[derive(Debug)]
pub struct InProcess<T> {
    call: Call,
    job: T,
}

impl<T> InProcess<T> {
    /// `job`, classified and authenticated as `call` says.
    pub fn new(call: Call, job: T) -> Self {
        Self { call, job }
    }

    /// Warden's record of the call.
    pub fn call(&self) -> &Call {
        &self.call
    }

    pub(crate) fn call_mut(&mut self) -> &mut Call {
        &mut self.call
    }

    /// The job itself.
    pub fn job(&self) -> &T {
        &self.job
    }

    /// The record and the job.
    pub fn into_parts(self) -> (Call, T) {
        (self.call, self.job)
    }
}

impl<T> CallExt for InProcess<T> {
    fn warden_call(&self) -> Option<&Call> {
        Some(&self.call)
    }
}
