//! The mTLS claim mapper: the TLS client certificate → [`Claims`].
//!
//! The subject is the certificate's first URI SAN, else its first DNS SAN, else its subject
//! DN (the order gRPC's own authorization uses). Configured identities, exact or a prefix
//! ending in `*`, grant roles and privileges; a certificate whose identity has no entry is
//! refused unless `allow_unmapped` is set.
//!
//! With `trust_anchors`, the mapper verifies every chain against its own CAs, on top of the
//! TLS handshake: a server whose TLS layer trusts a wider set (an organisation CA, optional
//! client auth) still admits only certificates these anchors issued. Verified certificates are
//! cached until they expire. On a tonic server, read the chain with
//! [`tonic::peer`](crate::tonic::peer) (feature `tonic`).
//!
//! ```toml
//! trust_anchors = "workers-ca.pem"
//! [[identities]]
//! identity = "spiffe://example.org/ns/orders/worker"
//! namespaces = { orders = "worker" }
//! [[identities]]
//! identity = "spiffe://example.org/ns/ops/*"
//! system = "admin"
//! ```

use std::{path::PathBuf, sync::Arc};

use rustls::{
    RootCertStore,
    pki_types::{CertificateDer, UnixTime, pem::PemObject},
    server::{WebPkiClientVerifier, danger::ClientCertVerifier},
};
use serde::Deserialize;
use warden_core::{Answer, AuthError, AuthInfo, ClaimMapper, Claims, identity::Mapping};
use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer};

use crate::{
    cache::{ExpiringCache, unix_now},
    grant::{GrantError, grant_fields},
};

grant_fields! {
    /// Claims for one certificate identity.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct MtlsIdentity {
        /// The identity: exact (`spiffe://example.org/worker`), or a prefix ending in `*`.
        pub identity: String,
    }
}

/// The configuration of an [`MtlsMapper`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MtlsConfig {
    /// A PEM file of the CAs this mapper accepts; unset, it relies on the TLS handshake alone.
    pub trust_anchors: Option<PathBuf>,
    /// Claims per certificate identity.
    pub identities: Vec<MtlsIdentity>,
    /// Whether a certificate whose identity has no entry authenticates, with no roles
    /// (default: refused).
    pub allow_unmapped: bool,
    /// Verified certificates kept (default 1,000); 0 turns the cache off.
    pub cache_capacity: usize,
}

impl Default for MtlsConfig {
    fn default() -> Self {
        Self {
            trust_anchors: None,
            identities: Vec::new(),
            allow_unmapped: false,
            cache_capacity: 1_000,
        }
    }
}

/// An [`MtlsConfig`] that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MtlsConfigError {
    /// The trust anchors file cannot be read.
    #[error("mtls: {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The trust anchors are not usable CA certificates.
    #[error("mtls: trust anchors: {reason}")]
    TrustAnchors {
        /// What is wrong with them.
        reason: String,
    },
    /// An identity grants a role that does not exist.
    #[error("mtls: identity `{identity}`: {source}")]
    Grant {
        /// The configured identity.
        identity: String,
        /// The unknown role.
        source: GrantError,
    },
}

fn anchors_error(reason: impl std::fmt::Display) -> MtlsConfigError {
    MtlsConfigError::TrustAnchors {
        reason: reason.to_string(),
    }
}

/// Maps TLS client certificates to claims; see the [module docs](self).
#[derive(Clone)]
pub struct MtlsMapper {
    inner: Arc<Inner>,
}

struct Inner {
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    exact: Vec<(String, Claims)>,
    /// Prefix entries, longest first.
    prefixes: Vec<(String, Claims)>,
    allow_unmapped: bool,
    cache: Option<ExpiringCache<Arc<Claims>>>,
}

impl std::fmt::Debug for MtlsMapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtlsMapper")
            .field("verifies_chains", &self.inner.verifier.is_some())
            .field(
                "identities",
                &(self.inner.exact.len() + self.inner.prefixes.len()),
            )
            .finish_non_exhaustive()
    }
}

impl MtlsMapper {
    /// Builds the mapper, reading `trust_anchors` if set.
    pub fn new(config: &MtlsConfig) -> Result<Self, MtlsConfigError> {
        let anchors = match &config.trust_anchors {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| MtlsConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                Some(pem)
            }
        };
        Self::with_anchors_pem(config, anchors.as_deref())
    }

    /// Builds the mapper with trust anchors given as PEM (overriding `config.trust_anchors`).
    pub fn with_anchors_pem(
        config: &MtlsConfig,
        anchors_pem: Option<&[u8]>,
    ) -> Result<Self, MtlsConfigError> {
        let verifier = anchors_pem.map(verifier).transpose()?;
        let mut exact = Vec::new();
        let mut prefixes = Vec::new();
        for entry in &config.identities {
            let claims = entry
                .grant()
                .claims(Claims::anonymous())
                .map_err(|source| MtlsConfigError::Grant {
                    identity: entry.identity.clone(),
                    source,
                })?;
            match entry.identity.strip_suffix('*') {
                Some(prefix) => prefixes.push((prefix.to_owned(), claims)),
                None => exact.push((entry.identity.clone(), claims)),
            }
        }
        prefixes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Ok(Self {
            inner: Arc::new(Inner {
                verifier,
                exact,
                prefixes,
                allow_unmapped: config.allow_unmapped,
                cache: (config.cache_capacity > 0)
                    .then(|| ExpiringCache::new(config.cache_capacity)),
            }),
        })
    }

    /// Verifies `chain` (leaf first, DER) and maps it to claims.
    pub fn verify(&self, chain: &[Vec<u8>]) -> Result<Arc<Claims>, AuthError> {
        let Some(leaf) = chain.first() else {
            return Err(AuthError::Missing);
        };
        let inner = &self.inner;
        if let Some(cache) = &inner.cache
            && let Some(claims) = cache.get(leaf, unix_now(), 0)
        {
            return Ok(claims);
        }
        if let Some(verifier) = &inner.verifier {
            let end_entity = CertificateDer::from(leaf.as_slice());
            let intermediates: Vec<_> = chain[1..]
                .iter()
                .map(|c| CertificateDer::from(c.as_slice()))
                .collect();
            verifier
                .verify_client_cert(&end_entity, &intermediates, UnixTime::now())
                .map_err(|e| {
                    AuthError::invalid(format!("the client certificate is not trusted: {e}"))
                })?;
        }
        let (_, cert) = X509Certificate::from_der(leaf)
            .map_err(|_| AuthError::invalid("the client certificate is malformed"))?;
        let not_after = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
        if inner.verifier.is_none() && !cert.validity().is_valid() {
            return Err(AuthError::invalid(
                "the client certificate has expired or is not valid yet",
            ));
        }
        let identity = identity_of(&cert);
        let claims = Arc::new(inner.claims_for(identity)?);
        if let Some(cache) = &inner.cache {
            cache.insert(leaf, Arc::clone(&claims), not_after, 0);
        }
        Ok(claims)
    }
}

impl Inner {
    fn claims_for(&self, identity: String) -> Result<Claims, AuthError> {
        let granted = self
            .exact
            .iter()
            .find(|(id, _)| *id == identity)
            .or_else(|| {
                self.prefixes
                    .iter()
                    .find(|(prefix, _)| identity.starts_with(prefix.as_str()))
            })
            .map(|(_, claims)| claims);
        let mut claims = match granted {
            Some(claims) => claims.clone(),
            None if self.allow_unmapped => Claims::anonymous(),
            None => {
                return Err(AuthError::invalid(format!(
                    "the certificate identity `{identity}` is not mapped"
                )));
            }
        };
        claims.subject = Some(identity);
        Ok(claims)
    }
}

/// The certificate's identity: first URI SAN, else first DNS SAN, else the subject DN.
pub fn identity_of(cert: &X509Certificate<'_>) -> String {
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        let names = &san.value.general_names;
        let uri = names.iter().find_map(|n| match n {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        });
        let dns = names.iter().find_map(|n| match n {
            GeneralName::DNSName(dns) => Some(*dns),
            _ => None,
        });
        if let Some(name) = uri.or(dns) {
            return name.to_owned();
        }
    }
    cert.subject().to_string()
}

fn verifier(pem: &[u8]) -> Result<Arc<dyn ClientCertVerifier>, MtlsConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots
            .add(cert.map_err(anchors_error)?)
            .map_err(anchors_error)?;
    }
    if roots.is_empty() {
        return Err(anchors_error("no certificate in the PEM"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(anchors_error)
}

impl ClaimMapper for MtlsMapper {
    fn map(&self, info: &AuthInfo) -> Mapping {
        Answer::Ready(match &info.peer_certificates {
            Some(chain) => self.verify(chain),
            None => Err(AuthError::Missing),
        })
    }
}
