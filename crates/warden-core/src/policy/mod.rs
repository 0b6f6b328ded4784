//! Policies: what turns an [`AuthzRequest`] into a [`Decision`].
//!
//! Implement [`Policy`] for your own type, or use a closure ([`policy_fn`],
//! [`async_policy_fn`]), any `tower::Service<AuthzRequest>` ([`ServicePolicy`]), the built-ins
//! ([`AllowAll`], [`DenyAll`]) and the combinators ([`AllOf`], [`AnyOf`], [`FirstApplicable`]).
//!
//! A policy that decides from memory answers [`Answer::Ready`]: no allocation, no extra poll.
//! One that must wait on I/O answers [`Answer::Pending`]. Errors deny: enforcement never lets a
//! call through on an error, a timeout or a panic.
//!
//! ```
//! use warden_core::{AuthzRequest, Claims, Effect, Operation, OperationKind, Policy};
//! use warden_core::policy::{AllowAll, AnyOf, DenyAll, FirstApplicable};
//!
//! let policy = FirstApplicable::new("first", vec![DenyAll::new().shared(), AllowAll::new().shared()]);
//! let request = AuthzRequest::new(Claims::anonymous(), Operation::new(OperationKind::Read, "s", "m"));
//! assert_eq!(policy.evaluate(&request).now().unwrap().unwrap().effect(), Effect::Deny);
//! ```

mod basic;
mod combine;
mod error;
mod func;
mod service;

use std::sync::Arc;

pub use basic::{AllowAll, DenyAll};
pub use combine::{AllOf, AnyOf, FirstApplicable, Shadow};
pub use error::{PolicyError, PolicyErrorKind};
pub use func::{AsyncPolicyFn, PolicyFn, async_policy_fn, policy_fn};
pub use service::ServicePolicy;

use crate::{Answer, AuthzRequest, Decision};

/// The answer of a policy: a decision, or an error that enforcement turns into a denial.
pub type Evaluation = Answer<Result<Decision, PolicyError>>;

/// A policy shared between layers and tasks.
pub type SharedPolicy = Arc<dyn Policy>;

/// Decides whether a subject may perform an operation.
pub trait Policy: Send + Sync + 'static {
    /// Evaluates `request`. Cheap policies answer [`Answer::Ready`].
    fn evaluate(&self, request: &AuthzRequest) -> Evaluation;

    /// Whether the policy reads the request metadata (`request.context.metadata`). Warden
    /// moves the call's headers into the context only for policies that do; the others see
    /// [`Metadata`](crate::Metadata) that holds none. Answer `false` only when the decision
    /// never looks at metadata; the default is `true`.
    fn reads_metadata(&self) -> bool {
        true
    }

    /// Whether the decision is a pure function of the request: made at once
    /// ([`Answer::Ready`]), with no I/O, no clock and no state kept outside the request. Only
    /// such policies may decide inside a workflow, whose code must decide the same way every
    /// time its history is replayed. The default is `false`; the built-in role, privilege,
    /// rules, allow and deny policies, closures made with [`policy_fn`] and combinations of
    /// such policies say `true`.
    fn deterministic(&self) -> bool {
        false
    }

    /// Wraps the policy for sharing.
    fn shared(self) -> SharedPolicy
    where
        Self: Sized,
    {
        Arc::new(self)
    }
}

impl<P: Policy + ?Sized> Policy for Arc<P> {
    fn evaluate(&self, request: &AuthzRequest) -> Evaluation {
        (**self).evaluate(request)
    }

    fn reads_metadata(&self) -> bool {
        (**self).reads_metadata()
    }

    fn deterministic(&self) -> bool {
        (**self).deterministic()
    }
}

impl<P: Policy + ?Sized> Policy for Box<P> {
    fn evaluate(&self, request: &AuthzRequest) -> Evaluation {
        (**self).evaluate(request)
    }

    fn reads_metadata(&self) -> bool {
        (**self).reads_metadata()
    }

    fn deterministic(&self) -> bool {
        (**self).deterministic()
    }
}
