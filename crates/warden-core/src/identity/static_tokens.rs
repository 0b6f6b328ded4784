use std::{collections::HashMap, fmt, sync::Arc};

use foldhash::fast::RandomState;

use super::{AuthError, AuthInfo, ClaimMapper, Mapping};
use crate::{Answer, Claims};

/// Maps fixed bearer tokens to fixed claims. For tests and demos: tokens live in memory as
/// given. Production deployments use the JWT, mTLS or hashed API-key mappers.
#[derive(Clone, Default)]
pub struct StaticTokenMapper {
    tokens: HashMap<String, Arc<Claims>, RandomState>,
    anonymous: Option<Arc<Claims>>,
}

impl StaticTokenMapper {
    /// A mapper that knows no token and refuses calls without one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `token` as proof of `claims`.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>, claims: Claims) -> Self {
        self.tokens.insert(token.into(), Arc::new(claims));
        self
    }

    /// Lets calls without any credential through as [`Claims::anonymous`], for policies to
    /// judge (Temporal leaves its health check open, for one).
    #[must_use]
    pub fn allow_anonymous(mut self) -> Self {
        self.anonymous = Some(Arc::new(Claims::anonymous()));
        self
    }
}

impl fmt::Debug for StaticTokenMapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticTokenMapper")
            .field("tokens", &self.tokens.len())
            .field("anonymous", &self.anonymous.is_some())
            .finish()
    }
}

impl ClaimMapper for StaticTokenMapper {
    fn map(&self, info: &AuthInfo) -> Mapping {
        Answer::Ready(match &info.bearer {
            Some(token) => self
                .tokens
                .get(token.expose())
                .cloned()
                .ok_or_else(|| AuthError::invalid("unknown bearer token")),
            None if info.has_credentials() => Err(AuthError::invalid("expected a bearer token")),
            None => self.anonymous.clone().ok_or(AuthError::Missing),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    #[test]
    fn unknown_token_is_invalid_and_missing_token_is_missing() {
        let mapper = StaticTokenMapper::new().with_token("t", Claims::for_subject("a"));
        let unknown = AuthInfo::new().with_bearer(Secret::new("nope"));
        assert_eq!(
            mapper.map(&unknown).now().unwrap().unwrap_err(),
            AuthError::invalid("unknown bearer token")
        );
        assert_eq!(
            mapper.map(&AuthInfo::new()).now().unwrap().unwrap_err(),
            AuthError::Missing
        );
    }

    #[test]
    fn anonymous_callers_get_anonymous_claims_only_when_allowed() {
        let mapper = StaticTokenMapper::new().allow_anonymous();
        let claims = mapper.map(&AuthInfo::new()).now().unwrap().unwrap();
        assert!(claims.is_anonymous());
    }
}
