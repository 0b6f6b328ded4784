//! The JWT claim mapper: `authorization: Bearer <jwt>` → [`Claims`].
//!
//! - **Algorithms** come from an explicit allow-list (RS*, PS*, ES256/384 and EdDSA by default;
//!   HS* only when a shared secret is configured). `none` can never be allowed.
//! - **The key's type must match the token's `alg`**: an HMAC token is never checked against an
//!   RSA key's bytes, and a JWK that names its own `alg` verifies only that algorithm.
//! - **`kid`** is required when keys come from a set (a JWKS file or URL).
//! - **Claims**: `exp` is required; `nbf` is checked; `iss` and `aud` when configured; all with
//!   a configurable leeway.
//! - **Keys** come from PEM files, JWK/JWKS files, a shared-secret file and JWKS URLs, which
//!   are cached, refreshed in the background and, rate-limited, when an unknown `kid` arrives.
//!   A failed refresh keeps the last good keys; with no usable key at all, calls are denied
//!   `UNAVAILABLE`, never allowed.
//! - **Verified tokens are cached** (bounded), never past their `exp` and never across a change
//!   of keys.
//!
//! Failures name the reason (expired, wrong audience, unknown key, bad signature, malformed)
//! and never echo the token.

#[cfg(feature = "jwks")]
mod jwks;
mod keys;

#[cfg(feature = "jwks")]
use std::time::Duration;
use std::{path::PathBuf, str::FromStr, sync::Arc};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind, jwk::JwkSet};
use serde::Deserialize;
use serde_json::{Map, Value};
use warden_core::{Answer, AuthError, AuthInfo, ClaimMapper, Claims, identity::Mapping};

use self::keys::{Key, KeySet, Lookup};
use crate::{
    cache::{ExpiringCache, unix_now},
    claim_rules::{ClaimRules, ClaimRulesConfig, ClaimRulesError},
};

/// Where verification keys come from.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeySource {
    /// A PEM public key (RSA, EC or Ed25519) or certificate.
    Pem {
        /// The file.
        path: PathBuf,
        /// The `kid` tokens signed with it carry; without one, any token whose algorithm the
        /// key fits.
        #[serde(default)]
        kid: Option<String>,
    },
    /// A JWK, or a JWKS document (then tokens must name a `kid`).
    Jwk {
        /// The file.
        path: PathBuf,
    },
    /// A shared secret for HS256/384/512: the file's bytes, trailing newline trimmed.
    Secret {
        /// The file.
        path: PathBuf,
        /// The `kid` tokens signed with it carry, if any.
        #[serde(default)]
        kid: Option<String>,
    },
    /// A JWKS URL, fetched over HTTP(S).
    #[cfg(feature = "jwks")]
    Jwks {
        /// The URL.
        url: String,
        /// Background refresh interval in seconds (default 300).
        #[serde(default = "default_refresh")]
        refresh_seconds: u64,
        /// Least time between refreshes forced by unknown `kid`s, in seconds (default 30).
        #[serde(default = "default_min_refresh")]
        min_refresh_seconds: u64,
        /// Fetch timeout in seconds (default 10).
        #[serde(default = "default_fetch_timeout")]
        timeout_seconds: u64,
        /// A PEM file of CAs to trust instead of the system's, for a private identity provider.
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
}

#[cfg(feature = "jwks")]
fn default_refresh() -> u64 {
    300
}
#[cfg(feature = "jwks")]
fn default_min_refresh() -> u64 {
    30
}
#[cfg(feature = "jwks")]
fn default_fetch_timeout() -> u64 {
    10
}

/// Configuration of a [`JwtMapper`]; deserializes from the `jwt` table of a config file.
///
/// ```toml
/// issuers = ["https://id.example.com/"]
/// audiences = ["temporal"]
/// leeway_seconds = 30
/// keys = [{ type = "jwks", url = "https://id.example.com/.well-known/jwks.json" }]
/// claims = { permissions = "permissions" }
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    /// Accepted issuers (`iss`); empty: not checked.
    pub issuers: Vec<String>,
    /// Accepted audiences (`aud`); empty: not checked.
    pub audiences: Vec<String>,
    /// Allowed algorithms; empty: every asymmetric one, plus HS* when a secret is configured.
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds (default 60).
    pub leeway_seconds: u64,
    /// Where keys come from, all consulted.
    pub keys: Vec<KeySource>,
    /// How claims map to Warden claims.
    pub claims: ClaimRulesConfig,
    /// Verified tokens kept (default 10,000); 0 turns the cache off.
    pub cache_capacity: usize,
    /// Tokens longer than this are refused before parsing (default 8 KiB).
    pub max_token_bytes: usize,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            audiences: Vec::new(),
            algorithms: Vec::new(),
            leeway_seconds: 60,
            keys: Vec::new(),
            claims: ClaimRulesConfig::default(),
            cache_capacity: 10_000,
            max_token_bytes: 8 * 1024,
        }
    }
}

/// A [`JwtConfig`] that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtConfigError {
    /// A key or CA file cannot be read.
    #[error("jwt: {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key, JWK, JWKS, secret or CA file holds something unusable.
    #[error("jwt: {}: {reason}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A JWKS URL is not an http(s) URL.
    #[error("jwt: JWKS URL `{url}`: {reason}")]
    JwksUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `algorithms` names `none`.
    #[error("jwt: unsigned tokens (`none`) can never be allowed")]
    Unsigned,
    /// `algorithms` names an algorithm jsonwebtoken does not know.
    #[error("jwt: unknown algorithm `{0}`")]
    UnknownAlgorithm(String),
    /// `algorithms` names an HMAC algorithm without a `secret` key source.
    #[error("jwt: {0} needs a shared secret (a `secret` key source)")]
    NoSecret(String),
    /// No key source at all.
    #[error("jwt: no keys configured")]
    NoKeys,
    /// The claim rules.
    #[error("jwt: {0}")]
    ClaimRules(#[from] ClaimRulesError),
}

fn file_error(path: &std::path::Path, reason: impl std::fmt::Display) -> JwtConfigError {
    JwtConfigError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
const HMAC: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

impl JwtConfig {
    /// Loads the keys, fetches every JWKS URL once and starts their background refresh (so it
    /// must run inside a Tokio runtime). A JWKS that cannot be fetched now is not an error:
    /// calls are denied `UNAVAILABLE` until a refresh succeeds.
    pub async fn build(self) -> Result<JwtMapper, JwtConfigError> {
        let mut keys = KeySet::default();
        let mut has_secret = false;
        #[cfg(feature = "jwks")]
        let mut sets = Vec::new();
        for source in &self.keys {
            match source {
                KeySource::Pem { path, kid } => {
                    let pem = read(path)?;
                    let key = DecodingKey::from_rsa_pem(&pem)
                        .or_else(|_| DecodingKey::from_ec_pem(&pem))
                        .or_else(|_| DecodingKey::from_ed_pem(&pem))
                        .map_err(|e| file_error(path, format!("not a public key PEM: {e}")))?;
                    keys.add(kid.clone(), Key::new(key));
                }
                KeySource::Jwk { path } => {
                    let json = read(path)?;
                    let value: Value = serde_json::from_slice(&json)
                        .map_err(|e| file_error(path, format!("not JSON: {e}")))?;
                    if value.get("keys").is_some() {
                        let set: JwkSet = serde_json::from_value(value)
                            .map_err(|e| file_error(path, format!("not a JWKS: {e}")))?;
                        let (from_file, skipped) = KeySet::from_jwks(&set);
                        if let Some(reason) = skipped.first() {
                            return Err(file_error(path, reason));
                        }
                        keys.merge_set(from_file);
                    } else {
                        let jwk = serde_json::from_value(value)
                            .map_err(|e| file_error(path, format!("not a JWK: {e}")))?;
                        let key = Key::from_jwk(&jwk).map_err(|reason| file_error(path, reason))?;
                        keys.add(jwk.common.key_id.clone(), key);
                    }
                }
                KeySource::Secret { path, kid } => {
                    let secret = read(path)?;
                    let secret = secret.trim_ascii_end();
                    if secret.len() < 32 {
                        return Err(file_error(path, "a shared secret needs at least 32 bytes"));
                    }
                    keys.add(kid.clone(), Key::new(DecodingKey::from_secret(secret)));
                    has_secret = true;
                }
                #[cfg(feature = "jwks")]
                KeySource::Jwks {
                    url,
                    refresh_seconds,
                    min_refresh_seconds,
                    timeout_seconds,
                    ca_file,
                } => {
                    let url_error = |reason: String| JwtConfigError::JwksUrl {
                        url: url.clone(),
                        reason,
                    };
                    let uri: http::Uri = url.parse().map_err(|e| url_error(format!("{e}")))?;
                    if !matches!(uri.scheme_str(), Some("http" | "https")) {
                        return Err(url_error("must be http or https".into()));
                    }
                    let tls = ca_file.as_deref().map(tls_with_roots).transpose()?;
                    let options = jwks::JwksOptions {
                        refresh: Duration::from_secs((*refresh_seconds).max(1)),
                        min_refresh: Duration::from_secs(*min_refresh_seconds),
                        timeout: Duration::from_secs((*timeout_seconds).max(1)),
                        tls,
                    };
                    let refresh = options.refresh;
                    let source = Arc::new(jwks::JwksSource::new(uri, options).map_err(url_error)?);
                    source.refresh().await;
                    jwks::spawn_refresher(&source, refresh);
                    sets.push(source);
                }
            }
        }
        let algorithms = self.algorithms(has_secret)?;
        #[cfg(feature = "jwks")]
        let no_sources = keys.is_empty() && sets.is_empty();
        #[cfg(not(feature = "jwks"))]
        let no_sources = keys.is_empty();
        if no_sources {
            return Err(JwtConfigError::NoKeys);
        }
        let rules = ClaimRules::new(&self.claims)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = self.leeway_seconds;
        validation.validate_nbf = true;
        validation.validate_aud = !self.audiences.is_empty();
        let mut required = vec!["exp"];
        if !self.issuers.is_empty() {
            validation.set_issuer(&self.issuers);
            required.push("iss");
        }
        if !self.audiences.is_empty() {
            validation.set_audience(&self.audiences);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        // One validation per allowed algorithm, made once: each token is checked against
        // exactly its own `alg`.
        let validations = algorithms
            .into_iter()
            .map(|alg| {
                let mut validation = validation.clone();
                validation.algorithms = vec![alg];
                (alg, validation)
            })
            .collect();
        Ok(JwtMapper {
            inner: Arc::new(Inner {
                validations,
                keys,
                #[cfg(feature = "jwks")]
                sets,
                rules,
                cache: (self.cache_capacity > 0).then(|| ExpiringCache::new(self.cache_capacity)),
                max_token_bytes: self.max_token_bytes,
            }),
        })
    }

    fn algorithms(&self, has_secret: bool) -> Result<Vec<Algorithm>, JwtConfigError> {
        if self.algorithms.is_empty() {
            let mut all = ASYMMETRIC.to_vec();
            if has_secret {
                all.extend(HMAC);
            }
            return Ok(all);
        }
        self.algorithms
            .iter()
            .map(|name| {
                if name.eq_ignore_ascii_case("none") {
                    return Err(JwtConfigError::Unsigned);
                }
                let alg = Algorithm::from_str(name)
                    .map_err(|_| JwtConfigError::UnknownAlgorithm(name.clone()))?;
                if HMAC.contains(&alg) && !has_secret {
                    return Err(JwtConfigError::NoSecret(name.clone()));
                }
                Ok(alg)
            })
            .collect()
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, JwtConfigError> {
    std::fs::read(path).map_err(|source| JwtConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(feature = "jwks")]
fn tls_with_roots(path: &std::path::Path) -> Result<rustls::ClientConfig, JwtConfigError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let err = |reason: String| file_error(path, reason);
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))? {
        roots
            .add(cert.map_err(|e| err(e.to_string()))?)
            .map_err(|e| err(e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Verifies bearer JWTs and maps their claims; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct JwtMapper {
    inner: Arc<Inner>,
}

struct Inner {
    /// The allowed algorithms, each with its validation.
    validations: Vec<(Algorithm, Validation)>,
    keys: KeySet,
    #[cfg(feature = "jwks")]
    sets: Vec<Arc<jwks::JwksSource>>,
    rules: ClaimRules,
    cache: Option<ExpiringCache<Arc<Claims>>>,
    max_token_bytes: usize,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("JwtMapper");
        let algorithms: Vec<_> = self.validations.iter().map(|(alg, _)| alg).collect();
        s.field("algorithms", &algorithms)
            .field("keys", &self.keys.len());
        #[cfg(feature = "jwks")]
        s.field("jwks", &self.sets);
        s.finish_non_exhaustive()
    }
}

/// Why a token could not be verified.
enum Failure {
    Rejected(AuthError),
    /// No key for the token's `kid` (a refresh may bring it).
    UnknownKey,
    /// No usable key at all.
    NoKeys,
}

impl Inner {
    /// The combined generation of every key set; any change invalidates cached tokens.
    fn generation(&self) -> u64 {
        #[cfg(feature = "jwks")]
        return self.sets.iter().map(|s| s.generation()).sum();
        #[cfg(not(feature = "jwks"))]
        0
    }

    fn verify(&self, token: &str, generation: u64) -> Result<Arc<Claims>, Failure> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| header_failure(token))?;
        let alg = header.alg;
        let Some((_, validation)) = self.validations.iter().find(|(allowed, _)| *allowed == alg)
        else {
            return Err(Failure::Rejected(AuthError::invalid(format!(
                "algorithm {alg:?} is not allowed"
            ))));
        };
        let key = self.find_key(header.kid.as_deref(), alg)?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, validation)
            .map_err(|e| Failure::Rejected(jwt_error(e.kind())))?;
        let claims = Arc::new(self.rules.apply(&data.claims).map_err(Failure::Rejected)?);
        if let Some(cache) = &self.cache
            && let Some(exp) = data.claims.get("exp").and_then(Value::as_u64)
        {
            cache.insert(token.as_bytes(), Arc::clone(&claims), exp, generation);
        }
        Ok(claims)
    }

    // Without JWKS there is no set to refresh, so the lookup state never changes.
    #[cfg_attr(not(feature = "jwks"), allow(unused_mut))]
    fn find_key(&self, kid: Option<&str>, alg: Algorithm) -> Result<Arc<Key>, Failure> {
        let mut wrong_type = false;
        let mut any_keys = !self.keys.is_empty();
        let mut from_set = self.keys.from_set;
        let mut consider = |lookup: Lookup| match lookup {
            Lookup::Found(key) => Some(key),
            Lookup::WrongType => {
                wrong_type = true;
                None
            }
            Lookup::Unknown => None,
        };
        if let Some(key) = consider(self.keys.find(kid, alg)) {
            return Ok(key);
        }
        #[cfg(feature = "jwks")]
        for set in &self.sets {
            let keys = set.keys();
            any_keys |= !keys.is_empty();
            from_set |= !keys.is_empty();
            if let Some(key) = consider(keys.find(kid, alg)) {
                return Ok(key);
            }
        }
        if wrong_type {
            return Err(Failure::Rejected(AuthError::invalid(format!(
                "the key cannot verify a {alg:?} token"
            ))));
        }
        if kid.is_none() && from_set {
            return Err(Failure::Rejected(AuthError::invalid(
                "the token has no `kid`, but keys come from a key set",
            )));
        }
        Err(if any_keys {
            Failure::UnknownKey
        } else {
            Failure::NoKeys
        })
    }

    /// The final answer for a token no key was found for.
    fn missing_key(&self, failure: Failure) -> AuthError {
        match failure {
            Failure::Rejected(error) => error,
            Failure::UnknownKey => AuthError::invalid("unknown signing key (`kid`)"),
            Failure::NoKeys => {
                #[cfg(feature = "jwks")]
                let why = self
                    .sets
                    .iter()
                    .find_map(|s| s.last_error().map(|e| format!("{}: {e}", s.url())))
                    .unwrap_or_else(|| "no signing keys loaded".into());
                #[cfg(not(feature = "jwks"))]
                let why = "no signing keys loaded".to_owned();
                AuthError::unavailable(format!("no usable signing keys ({why})"))
            }
        }
    }
}

/// A header that does not parse: say why without echoing it, and name `alg: none`.
fn header_failure(token: &str) -> Failure {
    use base64::Engine as _;
    let alg_none = token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .and_then(|h| {
            h.get("alg")?
                .as_str()
                .map(|a| a.eq_ignore_ascii_case("none"))
        })
        .unwrap_or(false);
    Failure::Rejected(AuthError::invalid(if alg_none {
        "unsigned tokens (alg `none`) are not accepted"
    } else {
        "malformed token"
    }))
}

fn jwt_error(kind: &ErrorKind) -> AuthError {
    AuthError::invalid(match kind {
        ErrorKind::ExpiredSignature => "token expired".to_owned(),
        ErrorKind::ImmatureSignature => "token not valid yet (`nbf` is in the future)".to_owned(),
        ErrorKind::InvalidIssuer => "wrong issuer".to_owned(),
        ErrorKind::InvalidAudience => "wrong audience".to_owned(),
        ErrorKind::InvalidSignature => "bad signature".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the `{claim}` claim is malformed"),
        ErrorKind::InvalidAlgorithm => "the algorithm does not match the key".to_owned(),
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidEddsaKey => {
            "the key cannot verify this token".to_owned()
        }
        _ => "malformed token".to_owned(),
    })
}

impl JwtMapper {
    /// Builds a mapper from `config`; see [`JwtConfig::build`].
    pub async fn new(config: JwtConfig) -> Result<Self, JwtConfigError> {
        config.build().await
    }

    /// Verifies `token` and maps its claims, consulting the cache first.
    pub fn verify(&self, token: &str) -> Mapping {
        let inner = &self.inner;
        if token.len() > inner.max_token_bytes {
            return Answer::Ready(Err(AuthError::invalid(format!(
                "token too large ({} bytes, limit {})",
                token.len(),
                inner.max_token_bytes
            ))));
        }
        let generation = inner.generation();
        if let Some(cache) = &inner.cache
            && let Some(claims) = cache.get(token.as_bytes(), unix_now(), generation)
        {
            return Answer::Ready(Ok(claims));
        }
        match inner.verify(token, generation) {
            Ok(claims) => Answer::Ready(Ok(claims)),
            Err(Failure::Rejected(error)) => Answer::Ready(Err(error)),
            Err(failure) => self.after_refresh(token, failure),
        }
    }

    /// No key for the token: refresh the key sets that may refresh now, then try once more.
    #[cfg(feature = "jwks")]
    fn after_refresh(&self, token: &str, failure: Failure) -> Mapping {
        // Each set with the generation this token missed in, so that callers queued behind one
        // refresh do not fetch again.
        let due: Vec<_> = self
            .inner
            .sets
            .iter()
            .filter(|s| s.may_refresh())
            .map(|s| (Arc::clone(s), s.generation()))
            .collect();
        if due.is_empty() {
            return Answer::Ready(Err(self.inner.missing_key(failure)));
        }
        let inner = Arc::clone(&self.inner);
        let token = token.to_owned();
        Answer::pending(async move {
            for (set, seen) in due {
                set.refresh_on_demand(seen).await;
            }
            inner
                .verify(&token, inner.generation())
                .map_err(|failure| inner.missing_key(failure))
        })
    }

    #[cfg(not(feature = "jwks"))]
    fn after_refresh(&self, _token: &str, failure: Failure) -> Mapping {
        Answer::Ready(Err(self.inner.missing_key(failure)))
    }
}

impl ClaimMapper for JwtMapper {
    fn map(&self, info: &AuthInfo) -> Mapping {
        match &info.bearer {
            Some(token) => self.verify(token.expose()),
            None => Answer::Ready(Err(AuthError::Missing)),
        }
    }
}
