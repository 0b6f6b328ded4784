//! Composition: try mappers in order.

use std::sync::Arc;

use warden_core::{Answer, AuthError, AuthInfo, ClaimMapper, identity::Mapping};

/// Tries each mapper in order: one that finds no credential of its kind
/// ([`AuthError::Missing`]) passes to the next; the first that accepts or refuses decides.
///
/// A refused credential never falls through to a weaker mapper: a worker's bad certificate
/// is not retried as an anonymous JWT caller.
#[derive(Clone)]
pub struct FirstOf {
    mappers: Arc<[Arc<dyn ClaimMapper>]>,
}

impl std::fmt::Debug for FirstOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstOf")
            .field("mappers", &self.mappers.len())
            .finish()
    }
}

impl FirstOf {
    /// Tries `mappers` in order.
    pub fn new(mappers: impl IntoIterator<Item = Arc<dyn ClaimMapper>>) -> Self {
        Self {
            mappers: mappers.into_iter().collect(),
        }
    }

    /// Adds a mapper after the others.
    #[must_use]
    pub fn then(self, mapper: impl ClaimMapper) -> Self {
        let mut mappers: Vec<_> = self.mappers.iter().cloned().collect();
        mappers.push(Arc::new(mapper));
        Self {
            mappers: mappers.into(),
        }
    }
}

impl ClaimMapper for FirstOf {
    fn map(&self, info: &AuthInfo) -> Mapping {
        for (index, mapper) in self.mappers.iter().enumerate() {
            match mapper.map(info) {
                Answer::Ready(Err(AuthError::Missing)) => {}
                Answer::Ready(decided) => return Answer::Ready(decided),
                Answer::Pending(pending) => {
                    let rest = Arc::clone(&self.mappers);
                    let info = info.clone();
                    return Answer::pending(async move {
                        match pending.await {
                            Err(AuthError::Missing) => {}
                            decided => return decided,
                        }
                        for mapper in &rest[index + 1..] {
                            match mapper.map(&info).await {
                                Err(AuthError::Missing) => {}
                                decided => return decided,
                            }
                        }
                        Err(AuthError::Missing)
                    });
                }
            }
        }
        Answer::Ready(Err(AuthError::Missing))
    }
}

#[cfg(test)]
mod tests {
    use warden_core::{Claims, Secret, identity::StaticTokenMapper};

    use super::*;
    use crate::api_key::{ApiKeyConfig, ApiKeyEntry, ApiKeyMapper, hash_key};

    fn chain() -> FirstOf {
        let keys = ApiKeyMapper::new(&ApiKeyConfig {
            keys: vec![ApiKeyEntry {
                hash: hash_key("key"),
                subject: "bot".into(),
                ..ApiKeyEntry::default()
            }],
        })
        .unwrap();
        let tokens = StaticTokenMapper::new().with_token("tok", Claims::for_subject("ann"));
        FirstOf::new([]).then(keys).then(tokens)
    }

    fn subject(info: AuthInfo) -> Result<Option<String>, AuthError> {
        chain()
            .map(&info)
            .now()
            .unwrap()
            .map(|claims| claims.subject.clone())
    }

    #[test]
    fn the_first_mapper_with_a_credential_decides() {
        let both = AuthInfo::new()
            .with_api_key(Secret::new("key"))
            .with_bearer(Secret::new("tok"));
        assert_eq!(subject(both), Ok(Some("bot".into())));
        let token_only = AuthInfo::new().with_bearer(Secret::new("tok"));
        assert_eq!(subject(token_only), Ok(Some("ann".into())));
        assert_eq!(subject(AuthInfo::new()), Err(AuthError::Missing));
    }

    #[test]
    fn a_refused_credential_does_not_fall_through() {
        let bad_key_good_token = AuthInfo::new()
            .with_api_key(Secret::new("wrong"))
            .with_bearer(Secret::new("tok"));
        assert_eq!(
            subject(bad_key_good_token),
            Err(AuthError::invalid("unknown API key"))
        );
    }
}
