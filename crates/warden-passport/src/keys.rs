//! The issuer's signing key and the keys a verifier trusts, by key id.

use std::{collections::HashMap, fmt, path::Path, sync::Arc};

use ed25519_dalek::pkcs8::DecodePrivateKey;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey,
    jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse},
};

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a private key Warden signs with: PKCS#8 Ed25519 or P-256 in PEM.
    #[error("not an Ed25519 or P-256 private key in PKCS#8 PEM: {reason}")]
    NotAPrivateKey {
        /// What the parser said.
        reason: String,
    },
    /// Not a public key Warden verifies with: Ed25519 or P-256 in SPKI PEM.
    #[error("not an Ed25519 or P-256 public key in PEM: {reason}")]
    NotAPublicKey {
        /// What the parser said.
        reason: String,
    },
    /// A shared secret under 32 bytes.
    #[error("an HS256 secret needs at least 32 bytes")]
    ShortSecret,
    /// A JWK that is not an Ed25519, P-256 or (symmetric) HS256 key, or has no `kid`.
    #[error("JWK `{kid}`: {reason}")]
    Jwk {
        /// Its `kid`, or `?` when it has none.
        kid: String,
        /// What is wrong.
        reason: String,
    },
    /// No trusted key has this key id.
    #[error("no trusted key has the key id `{0}`")]
    UnknownKeyId(String),
    /// Two trusted keys share a key id.
    #[error("two trusted keys have the key id `{0}`")]
    DuplicateKeyId(String),
}

fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The key an issuer signs passports with, and its key id.
#[derive(Clone)]
pub struct SigningKey {
    pub(crate) kid: Arc<str>,
    pub(crate) algorithm: Algorithm,
    pub(crate) encoding: EncodingKey,
    /// An Ed25519 key, derived once: every passport is signed with it directly.
    pub(crate) ed25519: Option<Arc<ed25519_dalek::SigningKey>>,
    /// The public half, as a JWK (asymmetric keys only).
    public: Option<Jwk>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A PKCS#8 PEM private key: Ed25519 (`EdDSA`, the default kind) or P-256 (`ES256`).
    pub fn from_pem(pem: &[u8], kid: impl Into<Arc<str>>) -> Result<Self, KeyError> {
        let (algorithm, encoding) = match EncodingKey::from_ed_pem(pem) {
            Ok(key) => (Algorithm::EdDSA, ed25519_v1(key)?),
            Err(ed) => match EncodingKey::from_ec_pem(pem) {
                Ok(key) => (Algorithm::ES256, key),
                Err(ec) => {
                    return Err(KeyError::NotAPrivateKey {
                        reason: format!("as Ed25519: {ed}; as P-256: {ec}"),
                    });
                }
            },
        };
        let kid = kid.into();
        let mut public =
            Jwk::from_encoding_key(&encoding, algorithm).map_err(|e| KeyError::NotAPrivateKey {
                reason: e.to_string(),
            })?;
        public.common.key_id = Some(kid.to_string());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            kid,
            algorithm,
            ed25519: match algorithm {
                Algorithm::EdDSA => Some(Arc::new(
                    ed25519_dalek::SigningKey::from_pkcs8_der(encoding.as_bytes()).map_err(
                        |e| KeyError::NotAPrivateKey {
                            reason: e.to_string(),
                        },
                    )?,
                )),
                _ => None,
            },
            encoding,
            public: Some(public),
        })
    }

    /// [`from_pem`](Self::from_pem), from a file.
    pub fn from_pem_file(path: &Path, kid: impl Into<Arc<str>>) -> Result<Self, KeyError> {
        Self::from_pem(&read(path)?, kid)
    }

    /// A private JWK: `OKP`/`Ed25519` or `EC`/`P-256` with its `d` (and the public part,
    /// which must match it), or `oct` with `k` (HS256). The key id is the JWK's `kid`, or
    /// `kid` when it has none; the two must agree when both are given.
    pub fn from_jwk(json: &[u8], kid: Option<&str>) -> Result<Self, KeyError> {
        use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
        use ed25519_dalek::pkcs8::{EncodePrivateKey, spki::der::pem::LineEnding};

        let jwk: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(json)
            .map_err(|e| KeyError::Jwk {
                kid: "?".into(),
                reason: format!("not a JSON object: {e}"),
            })?;
        let text = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
        let kid = match (text("kid"), kid) {
            (Some(own), Some(given)) if own != given => {
                return Err(KeyError::Jwk {
                    kid: own.into(),
                    reason: format!("its `kid` is not the configured key id `{given}`"),
                });
            }
            (Some(own), _) => own.to_owned(),
            (None, Some(given)) => given.to_owned(),
            (None, None) => {
                return Err(KeyError::Jwk {
                    kid: "?".into(),
                    reason: "a signing key needs a key id".into(),
                });
            }
        };
        let refuse = |reason: String| KeyError::Jwk {
            kid: kid.clone(),
            reason,
        };
        let bytes = |name: &str| {
            text(name)
                .and_then(|value| URL_SAFE_NO_PAD.decode(value).ok())
                .ok_or_else(|| refuse(format!("`{name}` is missing or not base64url")))
        };
        let pem = match (text("kty"), text("crv")) {
            (Some("OKP"), Some("Ed25519")) => {
                let d = <[u8; 32]>::try_from(bytes("d")?)
                    .map_err(|_| refuse("`d` is not 32 bytes".into()))?;
                ed25519_dalek::SigningKey::from_bytes(&d)
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| refuse(e.to_string()))?
                    .to_string()
            }
            (Some("EC"), Some("P-256")) => p256::SecretKey::from_slice(&bytes("d")?)
                .map_err(|e| refuse(e.to_string()))?
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| refuse(e.to_string()))?
                .to_string(),
            (Some("oct"), _) => return Self::from_secret(&bytes("k")?, kid),
            _ => return Err(refuse("only OKP Ed25519, EC P-256 and oct keys".into())),
        };
        let key = Self::from_pem(pem.as_bytes(), kid.as_str())?;
        // The public part given must be the one `d` makes: a mismatch is a key mix-up.
        let derived = serde_json::to_value(key.public_jwk()).map_err(|e| refuse(e.to_string()))?;
        for name in ["x", "y"] {
            if let Some(given) = text(name)
                && derived.get(name).and_then(serde_json::Value::as_str) != Some(given)
            {
                return Err(refuse(format!("`{name}` does not belong to `d`")));
            }
        }
        Ok(key)
    }

    /// [`from_jwk`](Self::from_jwk), from a file.
    pub fn from_jwk_file(path: &Path, kid: Option<&str>) -> Result<Self, KeyError> {
        Self::from_jwk(&read(path)?, kid)
    }

    /// An HS256 shared secret (at least 32 bytes). Every verifier then holds the signing key:
    /// prefer an asymmetric key where workers are not as trusted as the edge.
    pub fn from_secret(secret: &[u8], kid: impl Into<Arc<str>>) -> Result<Self, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::ShortSecret);
        }
        Ok(Self {
            kid: kid.into(),
            algorithm: Algorithm::HS256,
            encoding: EncodingKey::from_secret(secret),
            ed25519: None,
            public: None,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS algorithm it signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public key as a JWK, for a JWKS that workers fetch; `None` for a shared secret,
    /// which is never published.
    pub fn public_jwk(&self) -> Option<&Jwk> {
        self.public.as_ref()
    }
}

/// An Ed25519 key as PKCS#8 v1 (seed only), the form the public half is derived from; keys
/// written as v2 (seed and public key, as ring and rcgen write them) are rewritten.
fn ed25519_v1(key: EncodingKey) -> Result<EncodingKey, KeyError> {
    /// The DER of a v1 Ed25519 PrivateKeyInfo up to the 32-byte seed.
    const V1_PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let der = key.as_bytes();
    if der.len() == V1_PREFIX.len() + 32 {
        return Ok(key);
    }
    // The seed is the OCTET STRING inside the privateKey OCTET STRING: `04 22 04 20 <32>`.
    let seed = der
        .windows(4)
        .position(|w| w == [0x04, 0x22, 0x04, 0x20])
        .and_then(|at| der.get(at + 4..at + 36))
        .ok_or_else(|| KeyError::NotAPrivateKey {
            reason: "an Ed25519 key without its seed".into(),
        })?;
    let mut v1 = V1_PREFIX.to_vec();
    v1.extend_from_slice(seed);
    Ok(EncodingKey::from_ed_der(&v1))
}

/// The keys a verifier accepts passports from, by key id, each for exactly one algorithm.
///
/// A key that is rotated out is [retired](Self::retire) rather than removed: passports it
/// signed before its retirement still verify, so a workflow history that carries them replays
/// with the decisions it was first given, while a passport it signs afterwards is refused.
#[derive(Clone, Default)]
pub struct TrustedKeys {
    keys: HashMap<String, TrustedKey>,
}

#[derive(Clone)]
pub(crate) struct TrustedKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
    /// An Ed25519 public key, decoded once: passports are verified with it directly.
    pub(crate) ed25519: Option<ed25519_dalek::VerifyingKey>,
    /// Passports issued at or after this time (seconds since the Unix epoch) are refused.
    pub(crate) retired_at: Option<u64>,
}

impl fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("TrustedKeys").field("kids", &kids).finish()
    }
}

impl TrustedKeys {
    /// No keys: every passport is refused.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(
        &mut self,
        kid: &str,
        algorithm: Algorithm,
        key: DecodingKey,
        ed25519: Option<ed25519_dalek::VerifyingKey>,
    ) -> Result<(), KeyError> {
        if self.keys.contains_key(kid) {
            return Err(KeyError::DuplicateKeyId(kid.to_owned()));
        }
        self.keys.insert(
            kid.to_owned(),
            TrustedKey {
                algorithm,
                key,
                ed25519,
                retired_at: None,
            },
        );
        Ok(())
    }

    /// Retires the key `kid` at `at` (seconds since the Unix epoch): passports it signed
    /// before then still verify, later ones are refused.
    pub fn retire(mut self, kid: &str, at: u64) -> Result<Self, KeyError> {
        let key = self
            .keys
            .get_mut(kid)
            .ok_or_else(|| KeyError::UnknownKeyId(kid.to_owned()))?;
        key.retired_at = Some(at);
        Ok(self)
    }

    /// Trusts a public key in PEM (SPKI): Ed25519 for `EdDSA`, P-256 for `ES256`.
    pub fn with_public_pem(mut self, pem: &[u8], kid: &str) -> Result<Self, KeyError> {
        let (algorithm, key) = match DecodingKey::from_ed_pem(pem) {
            Ok(key) => {
                use ed25519_dalek::pkcs8::DecodePublicKey;
                let text = std::str::from_utf8(pem).map_err(|e| KeyError::NotAPublicKey {
                    reason: e.to_string(),
                })?;
                let ed25519 =
                    ed25519_dalek::VerifyingKey::from_public_key_pem(text).map_err(|e| {
                        KeyError::NotAPublicKey {
                            reason: e.to_string(),
                        }
                    })?;
                self.add(kid, Algorithm::EdDSA, key, Some(ed25519))?;
                return Ok(self);
            }
            Err(ed) => match DecodingKey::from_ec_pem(pem) {
                Ok(key) => (Algorithm::ES256, key),
                Err(ec) => {
                    return Err(KeyError::NotAPublicKey {
                        reason: format!("as Ed25519: {ed}; as P-256: {ec}"),
                    });
                }
            },
        };
        self.add(kid, algorithm, key, None)?;
        Ok(self)
    }

    /// [`with_public_pem`](Self::with_public_pem), from a file.
    pub fn with_public_pem_file(self, path: &Path, kid: &str) -> Result<Self, KeyError> {
        let pem = read(path)?;
        self.with_public_pem(&pem, kid)
    }

    /// Trusts an HS256 shared secret.
    pub fn with_secret(mut self, secret: &[u8], kid: &str) -> Result<Self, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::ShortSecret);
        }
        self.add(
            kid,
            Algorithm::HS256,
            DecodingKey::from_secret(secret),
            None,
        )?;
        Ok(self)
    }

    /// Trusts one JWK: an Ed25519 (`OKP`) or P-256 (`EC`) public key, or an `oct` HS256
    /// secret; it must have a `kid`.
    pub fn with_jwk(mut self, jwk: &Jwk) -> Result<Self, KeyError> {
        let kid = jwk.common.key_id.clone();
        let refuse = |reason: String| KeyError::Jwk {
            kid: kid.clone().unwrap_or_else(|| "?".to_owned()),
            reason,
        };
        let Some(kid) = kid.as_deref() else {
            return Err(refuse("a trusted key needs a `kid`".into()));
        };
        use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};
        let algorithm = match &jwk.algorithm {
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            AlgorithmParameters::OctetKey(_) => Algorithm::HS256,
            _ => return Err(refuse("only Ed25519, P-256 and oct (HS256) keys".into())),
        };
        if let Some(declared) = jwk.common.key_algorithm
            && declared != KeyAlgorithm::from(algorithm)
        {
            return Err(refuse(format!(
                "its `alg` {declared:?} does not fit its key type"
            )));
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| refuse(e.to_string()))?;
        let ed25519 = match &jwk.algorithm {
            AlgorithmParameters::OctetKeyPair(p) => {
                use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
                let x = URL_SAFE_NO_PAD
                    .decode(&p.x)
                    .ok()
                    .and_then(|x| <[u8; 32]>::try_from(x).ok())
                    .ok_or_else(|| refuse("`x` is not 32 bytes of base64url".into()))?;
                Some(
                    ed25519_dalek::VerifyingKey::from_bytes(&x)
                        .map_err(|e| refuse(e.to_string()))?,
                )
            }
            _ => None,
        };
        self.add(kid, algorithm, key, ed25519)?;
        Ok(self)
    }

    /// Trusts every key of a JWKS (as [`with_jwk`](Self::with_jwk)); one unusable key refuses
    /// the whole set, so a typo cannot silently shrink what is trusted.
    pub fn with_jwks(self, set: &JwkSet) -> Result<Self, KeyError> {
        set.keys.iter().try_fold(self, Self::with_jwk)
    }

    /// Trusts the public half of `key` (or its secret, for HS256): what an in-process
    /// verifier next to its issuer needs.
    pub fn with_signing_key(self, key: &SigningKey) -> Result<Self, KeyError> {
        match key.public_jwk() {
            Some(jwk) => self.with_jwk(jwk),
            None => {
                let mut this = self;
                this.add(
                    &key.kid,
                    Algorithm::HS256,
                    DecodingKey::from_secret(key.encoding.as_bytes()),
                    None,
                )?;
                Ok(this)
            }
        }
    }

    /// How many keys are trusted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&TrustedKey> {
        self.keys.get(kid)
    }
}

/// The public keys of `keys` as a JWKS document, for workers to fetch (shared secrets are
/// left out).
pub fn jwks<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> JwkSet {
    JwkSet {
        keys: keys
            .into_iter()
            .filter_map(|key| key.public_jwk().cloned())
            .collect(),
    }
}
