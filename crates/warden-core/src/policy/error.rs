use std::{fmt, time::Duration};

/// Why a policy could not decide. Enforcement denies the call (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct PolicyError {
    kind: PolicyErrorKind,
    message: String,
}

/// The class of a [`PolicyError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyErrorKind {
    /// The policy failed on its own terms.
    Failed,
    /// The policy did not answer in time.
    TimedOut,
    /// The policy panicked.
    Panicked,
    /// Something the policy depends on could not be reached.
    Unavailable,
}

impl fmt::Display for PolicyErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Failed => "policy failed",
            Self::TimedOut => "policy timed out",
            Self::Panicked => "policy panicked",
            Self::Unavailable => "policy backend unavailable",
        })
    }
}

impl PolicyError {
    /// A policy failure with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self::with_kind(PolicyErrorKind::Failed, message)
    }

    /// A failure of the given kind.
    pub fn with_kind(kind: PolicyErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The policy did not answer within `limit`.
    pub fn timed_out(limit: Duration) -> Self {
        Self::with_kind(
            PolicyErrorKind::TimedOut,
            format!("no decision within {limit:?}"),
        )
    }

    /// A dependency of the policy could not be reached.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::with_kind(PolicyErrorKind::Unavailable, message)
    }

    /// The policy panicked; `payload` is the panic's payload.
    pub fn panicked(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        Self::with_kind(PolicyErrorKind::Panicked, message)
    }

    /// The class of failure.
    pub fn kind(&self) -> PolicyErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }
}
