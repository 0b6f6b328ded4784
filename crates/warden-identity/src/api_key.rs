//! The API-key claim mapper: keys are configured only as SHA-256 hashes and compared in
//! constant time.
//!
//! The header that carries the key is the authenticate layer's
//! ([`AuthenticateLayer::api_key_header`](https://docs.rs/warden-tower), e.g. `x-api-key`).
//! Generate a config entry with [`hash_key`]:
//!
//! ```
//! use warden_identity::api_key::{ApiKeyConfig, ApiKeyEntry, ApiKeyMapper, hash_key};
//! use warden_core::{AuthInfo, ClaimMapper, Secret};
//!
//! let config: ApiKeyConfig = toml::from_str(&format!(r#"
//!     [[keys]]
//!     hash = "{}"
//!     subject = "ci-bot"
//!     namespaces = {{ orders = "writer" }}
//! "#, hash_key("k-123"))).unwrap();
//! let mapper = ApiKeyMapper::new(&config).unwrap();
//! let claims = mapper
//!     .map(&AuthInfo::new().with_api_key(Secret::new("k-123")))
//!     .now().unwrap().unwrap();
//! assert_eq!(claims.subject.as_deref(), Some("ci-bot"));
//! ```

use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use warden_core::{Answer, AuthError, AuthInfo, ClaimMapper, Claims, identity::Mapping};

use crate::grant::{GrantError, grant_fields};

/// The configuration of an [`ApiKeyMapper`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The accepted keys.
    pub keys: Vec<ApiKeyEntry>,
}

grant_fields! {
    /// One accepted key: its hash, who it is and what it may do.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ApiKeyEntry {
        /// `sha256:<64 hex digits>` of the key, as [`hash_key`] makes it.
        pub hash: String,
        /// The subject the key authenticates as.
        pub subject: String,
    }
}

/// A key's config hash: `sha256:<hex>`.
pub fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// An [`ApiKeyConfig`] that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyConfigError {
    /// A hash is not `sha256:<64 hex digits>`.
    #[error("api key #{index} ({subject}): the hash must be `sha256:` and 64 hex digits")]
    BadHash {
        /// The entry's position.
        index: usize,
        /// Its subject.
        subject: String,
    },
    /// Two entries share a hash.
    #[error("api keys #{first} and #{second} have the same hash")]
    Duplicate {
        /// One entry.
        first: usize,
        /// The other.
        second: usize,
    },
    /// A grant names an unknown role.
    #[error("api key #{index}: {source}")]
    Grant {
        /// The entry's position.
        index: usize,
        /// What was wrong.
        source: GrantError,
    },
}

/// Authenticates API keys; see the [module docs](self).
#[derive(Clone)]
pub struct ApiKeyMapper {
    keys: Arc<[([u8; 32], Arc<Claims>)]>,
}

impl std::fmt::Debug for ApiKeyMapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyMapper")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl ApiKeyMapper {
    /// Checks every entry and builds the mapper.
    pub fn new(config: &ApiKeyConfig) -> Result<Self, ApiKeyConfigError> {
        let mut keys: Vec<([u8; 32], Arc<Claims>)> = Vec::with_capacity(config.keys.len());
        for (index, entry) in config.keys.iter().enumerate() {
            let digest = parse_hash(&entry.hash).ok_or_else(|| ApiKeyConfigError::BadHash {
                index,
                subject: entry.subject.clone(),
            })?;
            if let Some(first) = keys.iter().position(|(d, _)| *d == digest) {
                return Err(ApiKeyConfigError::Duplicate {
                    first,
                    second: index,
                });
            }
            let claims = entry
                .grant()
                .claims(Claims::for_subject(&entry.subject))
                .map_err(|source| ApiKeyConfigError::Grant { index, source })?;
            keys.push((digest, Arc::new(claims)));
        }
        Ok(Self { keys: keys.into() })
    }
}

fn parse_hash(hash: &str) -> Option<[u8; 32]> {
    let hex = hash.strip_prefix("sha256:")?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl ClaimMapper for ApiKeyMapper {
    fn map(&self, info: &AuthInfo) -> Mapping {
        let Some(key) = &info.api_key else {
            return Answer::Ready(Err(AuthError::Missing));
        };
        let digest: [u8; 32] = Sha256::digest(key.expose().as_bytes()).into();
        // Every entry is compared, in constant time, so timing says nothing about which
        // stored hash (if any) is close to the presented one.
        let mut found = None;
        for (stored, claims) in self.keys.iter() {
            if bool::from(stored.ct_eq(&digest)) {
                found = Some(claims);
            }
        }
        Answer::Ready(match found {
            Some(claims) => Ok(Arc::clone(claims)),
            None => Err(AuthError::invalid("unknown API key")),
        })
    }
}

#[cfg(test)]
mod tests {
    use warden_core::{Roles, Secret};

    use super::*;

    fn mapper() -> ApiKeyMapper {
        ApiKeyMapper::new(&ApiKeyConfig {
            keys: vec![ApiKeyEntry {
                hash: hash_key("k-1"),
                subject: "ci".into(),
                system: Some("reader".into()),
                ..ApiKeyEntry::default()
            }],
        })
        .unwrap()
    }

    fn map(mapper: &ApiKeyMapper, key: Option<&str>) -> Result<Arc<Claims>, AuthError> {
        let mut info = AuthInfo::new();
        if let Some(key) = key {
            info = info.with_api_key(Secret::new(key));
        }
        mapper.map(&info).now().unwrap()
    }

    #[test]
    fn a_configured_key_authenticates_as_its_subject() {
        let claims = map(&mapper(), Some("k-1")).unwrap();
        assert_eq!(claims.subject.as_deref(), Some("ci"));
        assert_eq!(claims.system, Roles::READER);
    }

    #[test]
    fn unknown_and_missing_keys_do_not() {
        assert_eq!(
            map(&mapper(), Some("k-2")),
            Err(AuthError::invalid("unknown API key"))
        );
        assert_eq!(map(&mapper(), None), Err(AuthError::Missing));
    }

    #[test]
    fn hashes_must_be_sha256_hex_and_unique() {
        let entry = |hash: &str| ApiKeyEntry {
            hash: hash.into(),
            subject: "s".into(),
            ..ApiKeyEntry::default()
        };
        for bad in ["k-1", "sha256:abc", &format!("sha1:{}", "0".repeat(64))] {
            let config = ApiKeyConfig {
                keys: vec![entry(bad)],
            };
            assert!(matches!(
                ApiKeyMapper::new(&config),
                Err(ApiKeyConfigError::BadHash { .. })
            ));
        }
        let config = ApiKeyConfig {
            keys: vec![entry(&hash_key("a")), entry(&hash_key("a"))],
        };
        assert!(matches!(
            ApiKeyMapper::new(&config),
            Err(ApiKeyConfigError::Duplicate {
                first: 0,
                second: 1
            })
        ));
    }

    #[test]
    fn hash_key_is_sha256_hex() {
        assert_eq!(
            hash_key("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
