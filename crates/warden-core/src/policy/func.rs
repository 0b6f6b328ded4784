use std::{fmt, future::Future, sync::Arc};

use super::{Evaluation, Policy, PolicyError};
use crate::{Answer, AuthzRequest, Decision};

/// A policy from a synchronous closure; see [`policy_fn`].
#[derive(Clone)]
pub struct PolicyFn<F> {
    id: Arc<str>,
    f: F,
    reads_metadata: bool,
}

impl<F> PolicyFn<F> {
    /// Declares that the closure never reads `request.context.metadata`, so the layers need
    /// not move the call's headers in for it (it sees metadata that holds none).
    #[must_use]
    pub fn ignoring_metadata(mut self) -> Self {
        self.reads_metadata = false;
        self
    }
}

/// Makes a policy of a synchronous closure. `id` names it in logs when the closure's decisions
/// do not name themselves.
pub fn policy_fn<F>(id: impl Into<Arc<str>>, f: F) -> PolicyFn<F>
where
    F: Fn(&AuthzRequest) -> Decision + Send + Sync + 'static,
{
    PolicyFn {
        id: id.into(),
        f,
        reads_metadata: true,
    }
}

impl<F> fmt::Debug for PolicyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyFn").field("id", &self.id).finish()
    }
}

impl<F> Policy for PolicyFn<F>
where
    F: Fn(&AuthzRequest) -> Decision + Send + Sync + 'static,
{
    fn evaluate(&self, request: &AuthzRequest) -> Evaluation {
        Answer::Ready(Ok((self.f)(request)))
    }

    fn reads_metadata(&self) -> bool {
        self.reads_metadata
    }

    fn deterministic(&self) -> bool {
        true
    }
}

/// A policy from an asynchronous closure; see [`async_policy_fn`].
#[derive(Clone)]
pub struct AsyncPolicyFn<F> {
    id: Arc<str>,
    f: F,
}

/// Makes a policy of an asynchronous closure, for policies that must look something up.
///
/// ```
/// use warden_core::{AuthzRequest, Decision, PolicyError, policy::async_policy_fn};
///
/// let policy = async_policy_fn("lookup", |request: AuthzRequest| async move {
///     // e.g. ask a directory whether the subject is on call
///     Ok::<_, PolicyError>(Decision::allow("lookup"))
/// });
/// # let _ = policy;
/// ```
pub fn async_policy_fn<F, Fut>(id: impl Into<Arc<str>>, f: F) -> AsyncPolicyFn<F>
where
    F: Fn(AuthzRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Decision, PolicyError>> + Send + 'static,
{
    AsyncPolicyFn { id: id.into(), f }
}

impl<F> fmt::Debug for AsyncPolicyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPolicyFn")
            .field("id", &self.id)
            .finish()
    }
}

impl<F, Fut> Policy for AsyncPolicyFn<F>
where
    F: Fn(AuthzRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Decision, PolicyError>> + Send + 'static,
{
    fn evaluate(&self, request: &AuthzRequest) -> Evaluation {
        Answer::pending((self.f)(request.clone()))
    }
}
