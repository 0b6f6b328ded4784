use std::sync::Arc;

use super::{Evaluation, Policy};
use crate::{Answer, AuthzRequest, Decision};

/// Allows every call. For development, and as the last resort of a combinator.
#[derive(Clone, Debug)]
pub struct AllowAll {
    id: Arc<str>,
}

impl AllowAll {
    /// An allow-all policy with the id `allow-all`.
    pub fn new() -> Self {
        Self::with_id("allow-all")
    }

    /// An allow-all policy with its own id, for explain and audit.
    pub fn with_id(id: impl Into<Arc<str>>) -> Self {
        Self { id: id.into() }
    }
}

impl Default for AllowAll {
    fn default() -> Self {
        Self::new()
    }
}

impl Policy for AllowAll {
    fn evaluate(&self, _: &AuthzRequest) -> Evaluation {
        Answer::Ready(Ok(Decision::allow(Arc::clone(&self.id))))
    }

    fn reads_metadata(&self) -> bool {
        false
    }

    fn deterministic(&self) -> bool {
        true
    }
}

/// Denies every call. The safe default for kinds no one has thought about.
#[derive(Clone, Debug)]
pub struct DenyAll {
    id: Arc<str>,
    reason: Arc<str>,
}

impl DenyAll {
    /// A deny-all policy with the id `deny-all`.
    pub fn new() -> Self {
        Self::with_reason("deny-all", "denied by default")
    }

    /// A deny-all policy with its own id and reason.
    pub fn with_reason(id: impl Into<Arc<str>>, reason: impl Into<Arc<str>>) -> Self {
        Self {
            id: id.into(),
            reason: reason.into(),
        }
    }
}

impl Default for DenyAll {
    fn default() -> Self {
        Self::new()
    }
}

impl Policy for DenyAll {
    fn evaluate(&self, _: &AuthzRequest) -> Evaluation {
        Answer::Ready(Ok(Decision::deny(
            Arc::clone(&self.id),
            self.reason.to_string(),
        )))
    }

    fn reads_metadata(&self) -> bool {
        false
    }

    fn deterministic(&self) -> bool {
        true
    }
}
