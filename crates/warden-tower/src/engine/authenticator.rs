//! Claim mapping under a timeout and a panic guard, with Temporal's treatment of callers that
//! bring no credential at all as an option.

use std::{
    fmt,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
    time::Duration,
};

use warden_core::{Answer, AuthError, AuthInfo, ClaimMapper, Claims};

use crate::rejection::{Code, Rejection};

/// How long an asynchronous claim mapper may take before the call is denied `UNAVAILABLE`.
pub const DEFAULT_MAPPER_TIMEOUT: Duration = Duration::from_secs(5);

/// Turns a call's credentials into claims.
#[derive(Clone)]
pub(crate) struct Authenticator {
    mapper: Arc<dyn ClaimMapper>,
    timeout: Duration,
    /// Calls with no credential at all are anonymous callers for the policies to judge.
    anonymous: bool,
    anonymous_claims: Arc<Claims>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("timeout", &self.timeout)
            .field("anonymous", &self.anonymous)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub(crate) fn new(mapper: Arc<dyn ClaimMapper>) -> Self {
        Self {
            mapper,
            timeout: DEFAULT_MAPPER_TIMEOUT,
            anonymous: false,
            anonymous_claims: Arc::new(Claims::anonymous()),
        }
    }

    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub(crate) fn set_anonymous(&mut self, anonymous: bool) {
        self.anonymous = anonymous;
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn anonymous(&self) -> bool {
        self.anonymous
    }

    pub(crate) fn mapper(&self) -> Arc<dyn ClaimMapper> {
        Arc::clone(&self.mapper)
    }

    /// Maps `info` to claims. A panicking mapper, a failure and an asynchronous mapper that
    /// does not answer within the timeout all become the rejection the caller gets.
    pub(crate) fn authenticate(&self, info: &AuthInfo) -> Answer<Result<Arc<Claims>, Rejection>> {
        if self.anonymous && !info.has_credentials() {
            return Answer::Ready(Ok(Arc::clone(&self.anonymous_claims)));
        }
        let answer = match catch_unwind(AssertUnwindSafe(|| self.mapper.map(info))) {
            Ok(answer) => answer,
            Err(_) => Answer::Ready(Err(AuthError::unavailable("the claim mapper panicked"))),
        };
        match answer {
            Answer::Ready(result) => Answer::Ready(result.map_err(|e| rejection(&e))),
            Answer::Pending(mapping) => {
                let limit = self.timeout;
                Answer::pending(async move {
                    match tokio::time::timeout(limit, mapping).await {
                        Ok(result) => result.map_err(|e| rejection(&e)),
                        Err(_) => Err(rejection(&AuthError::unavailable(format!(
                            "no answer within {limit:?}"
                        )))),
                    }
                })
            }
        }
    }
}

/// The refusal of a call whose caller could not be authenticated; counted and logged.
#[cold]
pub(crate) fn rejection(error: &AuthError) -> Rejection {
    crate::telemetry::record_authentication_failure();
    tracing::info!(target: "warden::audit", reason = %error, "authentication failed");
    let code = match error {
        AuthError::Unavailable { .. } => Code::Unavailable,
        _ => Code::Unauthenticated,
    };
    Rejection::new(code, format!("unauthenticated: {error}"))
}
