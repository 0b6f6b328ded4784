//! Claim mappers for [Warden](https://docs.rs/warden): who is calling, proven from the
//! credentials a call carries, in Temporal's role taxonomy plus privileges and attributes.
//!
//! - [`jwt::JwtMapper`]: `authorization: Bearer <jwt>`, keys from PEM/JWK files, a shared
//!   secret or JWKS URLs; Temporal's `permissions` claim, OAuth scopes, configurable paths.
//! - [`mtls::MtlsMapper`]: the TLS client certificate's URI SAN, DNS SAN or subject DN.
//! - [`api_key::ApiKeyMapper`]: keys stored only as SHA-256 hashes, compared in constant time.
//! - [`FirstOf`]: try mappers in order (mTLS for workers, JWT for people).
//!
//! Each is a `warden_core::ClaimMapper` for Warden's authenticate layer. Every
//! failure is a `warden_core::AuthError` — `UNAUTHENTICATED` with a message that
//! names the reason and never echoes the credential, or `UNAVAILABLE` when no keys can be had.
//!
//! [`IdentityConfig`] builds the chain from a config file:
//!
//! ```toml
//! [[mappers]]
//! type = "mtls"
//! trust_anchors = "workers-ca.pem"
//! identities = [{ identity = "spiffe://example.org/worker", namespaces = { orders = "worker" } }]
//!
//! [[mappers]]
//! type = "jwt"
//! issuers = ["https://id.example.com/"]
//! audiences = ["temporal"]
//! keys = [{ type = "jwks", url = "https://id.example.com/.well-known/jwks.json" }]
//! ```

pub mod api_key;
mod cache;
mod chain;
pub mod claim_rules;
mod grant;
pub mod jwt;
#[cfg(feature = "mtls")]
pub mod mtls;
#[cfg(feature = "tonic")]
pub mod tonic;

use std::sync::Arc;

pub use chain::FirstOf;
pub use grant::{Grant, GrantError};
use serde::Deserialize;
use warden_core::ClaimMapper;

/// One mapper of an [`IdentityConfig`].
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MapperConfig {
    /// A [`jwt::JwtMapper`].
    Jwt(Box<jwt::JwtConfig>),
    /// An [`mtls::MtlsMapper`].
    #[cfg(feature = "mtls")]
    Mtls(mtls::MtlsConfig),
    /// An [`api_key::ApiKeyMapper`].
    ApiKey(api_key::ApiKeyConfig),
}

/// Mappers tried in order; see the [crate docs](crate).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// The mappers, in the order they are tried.
    pub mappers: Vec<MapperConfig>,
    /// The metadata header that carries API keys (e.g. `x-api-key`), for whoever builds the
    /// authenticate layer (`warden proxy` does); without it, API-key mappers see no key.
    #[serde(default)]
    pub api_key_header: Option<String>,
    /// Authenticate a call that carries no credential at all (no bearer token, API key or
    /// client certificate) as an anonymous caller and leave it to the policies, as Temporal
    /// does: its role policy opens the health check and `GetSystemInfo` to anyone and denies
    /// the rest with `Request unauthorized.`. A credential that is present but bad is still
    /// `UNAUTHENTICATED`. Default `false`: such calls are refused `UNAUTHENTICATED` at the
    /// edge, so a policy that forgets to check for a subject cannot admit a stranger.
    #[serde(default)]
    pub anonymous: bool,
}

/// An [`IdentityConfig`] that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityConfigError {
    /// No mapper configured.
    #[error("identity: no mappers configured")]
    Empty,
    /// A JWT mapper's config.
    #[error(transparent)]
    Jwt(#[from] jwt::JwtConfigError),
    /// An mTLS mapper's config.
    #[cfg(feature = "mtls")]
    #[error(transparent)]
    Mtls(#[from] mtls::MtlsConfigError),
    /// An API-key mapper's config.
    #[error("api_key: {0}")]
    ApiKey(#[from] api_key::ApiKeyConfigError),
}

impl IdentityConfig {
    /// Makes the relative file paths in this config (key files, CA files, trust anchors)
    /// relative to `base`, usually the directory of the file the config came from.
    #[must_use]
    pub fn rebased(mut self, base: &std::path::Path) -> Self {
        let rebase = |path: &mut std::path::PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        for mapper in &mut self.mappers {
            match mapper {
                MapperConfig::Jwt(config) => {
                    for key in &mut config.keys {
                        match key {
                            jwt::KeySource::Pem { path, .. }
                            | jwt::KeySource::Jwk { path }
                            | jwt::KeySource::Secret { path, .. } => rebase(path),
                            #[cfg(feature = "jwks")]
                            jwt::KeySource::Jwks { ca_file, .. } => {
                                ca_file.iter_mut().for_each(rebase);
                            }
                        }
                    }
                }
                #[cfg(feature = "mtls")]
                MapperConfig::Mtls(config) => config.trust_anchors.iter_mut().for_each(rebase),
                MapperConfig::ApiKey(_) => {}
            }
        }
        self
    }

    /// Builds every mapper (fetching JWKS URLs once, so inside a Tokio runtime) into one
    /// [`FirstOf`].
    pub async fn build(self) -> Result<FirstOf, IdentityConfigError> {
        if self.mappers.is_empty() {
            return Err(IdentityConfigError::Empty);
        }
        let mut mappers: Vec<Arc<dyn ClaimMapper>> = Vec::new();
        for config in self.mappers {
            mappers.push(match config {
                MapperConfig::Jwt(config) => Arc::new(config.build().await?),
                #[cfg(feature = "mtls")]
                MapperConfig::Mtls(config) => Arc::new(mtls::MtlsMapper::new(&config)?),
                MapperConfig::ApiKey(config) => Arc::new(api_key::ApiKeyMapper::new(&config)?),
            });
        }
        Ok(FirstOf::new(mappers))
    }
}
