//! Identity: from the credentials a call carries ([`AuthInfo`]) to who the caller is
//! ([`Claims`]).
//!
//! A [`ClaimMapper`] proves credentials and maps them to claims, or fails with an
//! [`AuthError`] that enforcement answers with `UNAUTHENTICATED`. JWT, mTLS and API-key mappers
//! build on this trait; [`StaticTokenMapper`] serves tests and demos.
//!
//! ```
//! use warden_core::{AuthInfo, ClaimMapper, Claims, Roles, Secret};
//! use warden_core::identity::StaticTokenMapper;
//!
//! let mapper = StaticTokenMapper::new()
//!     .with_token("s3cret", Claims::for_subject("ann").with_system_role(Roles::READER));
//! let info = AuthInfo::new().with_bearer(Secret::new("s3cret"));
//! let claims = mapper.map(&info).now().unwrap().unwrap();
//! assert_eq!(claims.subject.as_deref(), Some("ann"));
//! // Secrets never print.
//! assert!(!format!("{info:?}").contains("s3cret"));
//! ```

mod auth_info;
mod static_tokens;

use std::sync::Arc;

pub use auth_info::{AuthInfo, Secret};
pub use static_tokens::StaticTokenMapper;

use crate::{Answer, Claims};

/// Why a caller could not be authenticated. Messages name the reason and never echo a
/// credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The call carried no credentials the mapper accepts.
    #[error("missing credentials")]
    Missing,
    /// The credentials were present but not valid.
    #[error("invalid credentials: {reason}")]
    Invalid {
        /// What was wrong (expired, wrong audience, unknown key, bad signature, malformed).
        reason: String,
    },
    /// The identity provider (a JWKS endpoint, a directory) could not be reached and no good
    /// keys are left; answered with `UNAVAILABLE`, never allowed.
    #[error("identity provider unavailable: {reason}")]
    Unavailable {
        /// What could not be reached.
        reason: String,
    },
}

impl AuthError {
    /// Invalid credentials, saying why.
    pub fn invalid(reason: impl Into<String>) -> Self {
        Self::Invalid {
            reason: reason.into(),
        }
    }

    /// The identity provider could not be reached.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::Unavailable {
            reason: reason.into(),
        }
    }
}

/// The answer of a claim mapper.
pub type Mapping = Answer<Result<Arc<Claims>, AuthError>>;

/// Turns the credentials of a call into claims.
pub trait ClaimMapper: Send + Sync + 'static {
    /// Maps `info` to claims. Mappers that decide from memory answer [`Answer::Ready`].
    fn map(&self, info: &AuthInfo) -> Mapping;
}

impl<M: ClaimMapper + ?Sized> ClaimMapper for Arc<M> {
    fn map(&self, info: &AuthInfo) -> Mapping {
        (**self).map(info)
    }
}

impl<M: ClaimMapper + ?Sized> ClaimMapper for Box<M> {
    fn map(&self, info: &AuthInfo) -> Mapping {
        (**self).map(info)
    }
}
