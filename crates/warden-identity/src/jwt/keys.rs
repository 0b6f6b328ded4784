//! Verification keys: what each key may verify, and sets of keys by `kid`.

use std::{collections::HashMap, fmt, str::FromStr, sync::Arc};

use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse},
};

/// One verification key and the algorithms it may verify.
pub(crate) struct Key {
    pub(crate) decoding: DecodingKey,
    family: AlgorithmFamily,
    /// The curve, where the key says (JWKs do; PEM files are checked by the verifier).
    curve: Option<EllipticCurve>,
    /// The JWK's own `alg`, which then is the only algorithm it verifies.
    alg: Option<Algorithm>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("family", &self.family)
            .field("curve", &self.curve)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Key {
    pub(crate) fn new(decoding: DecodingKey) -> Self {
        Self {
            family: decoding.family(),
            decoding,
            curve: None,
            alg: None,
        }
    }

    /// Whether this key may verify a token signed with `alg`: the key type must be the
    /// algorithm's (no HMAC with an RSA key's bytes), and the curve and any JWK `alg` agree.
    pub(crate) fn accepts(&self, alg: Algorithm) -> bool {
        let curve_ok = match (alg, &self.curve) {
            (_, None) => true,
            (Algorithm::ES256, Some(curve)) => *curve == EllipticCurve::P256,
            (Algorithm::ES384, Some(curve)) => *curve == EllipticCurve::P384,
            (Algorithm::EdDSA, Some(curve)) => *curve == EllipticCurve::Ed25519,
            _ => false,
        };
        alg.family() == self.family && curve_ok && self.alg.is_none_or(|own| own == alg)
    }

    /// A key from a JWK; `None` (with the reason) for keys that must not verify tokens:
    /// encryption keys, symmetric keys in a published set, unsupported key types.
    pub(crate) fn from_jwk(jwk: &Jwk) -> Result<Self, String> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return Err("an encryption key (`use: enc`)".into());
        }
        let curve = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => None,
            AlgorithmParameters::EllipticCurve(ec) => Some(ec.curve.clone()),
            AlgorithmParameters::OctetKeyPair(okp) => Some(okp.curve.clone()),
            AlgorithmParameters::OctetKey(_) => {
                return Err(
                    "a symmetric (`oct`) key; shared secrets come from a secret file".into(),
                );
            }
            _ => return Err("an unsupported key type".into()),
        };
        let alg = match jwk.common.key_algorithm {
            None => None,
            // `KeyAlgorithm`'s names are the JOSE names, which `Algorithm` parses.
            Some(alg) => Some(
                Algorithm::from_str(&format!("{alg:?}"))
                    .map_err(|_| format!("an unsupported `alg` {alg:?}"))?,
            ),
        };
        let decoding = DecodingKey::from_jwk(jwk).map_err(|e| format!("unreadable: {e}"))?;
        Ok(Self {
            family: decoding.family(),
            decoding,
            curve,
            alg,
        })
    }
}

/// Keys by `kid`, plus keys without one.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Arc<Key>>,
    unnamed: Vec<Arc<Key>>,
    /// Keys from a set (JWKS) are found by `kid` only.
    pub(crate) from_set: bool,
}

impl KeySet {
    pub(crate) fn set() -> Self {
        Self {
            from_set: true,
            ..Self::default()
        }
    }

    pub(crate) fn add(&mut self, kid: Option<String>, key: Key) {
        match kid {
            Some(kid) => {
                self.by_kid.insert(kid, Arc::new(key));
            }
            None => self.unnamed.push(Arc::new(key)),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_kid.is_empty() && self.unnamed.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_kid.len() + self.unnamed.len()
    }

    /// Adds the keys of a set (a JWKS file): tokens then must name a `kid`.
    pub(crate) fn merge_set(&mut self, set: KeySet) {
        self.by_kid.extend(set.by_kid);
        self.from_set = true;
    }

    /// The key for a token's `kid` and `alg`: by id, else the first key configured without one
    /// that fits `alg`.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        if let Some(kid) = kid
            && let Some(key) = self.by_kid.get(kid)
        {
            return if key.accepts(alg) {
                Lookup::Found(Arc::clone(key))
            } else {
                Lookup::WrongType
            };
        }
        match self.unnamed.iter().find(|key| key.accepts(alg)) {
            Some(key) => Lookup::Found(Arc::clone(key)),
            None if !self.unnamed.is_empty() && kid.is_none() => Lookup::WrongType,
            None => Lookup::Unknown,
        }
    }

    /// Builds a set from a JWKS document, skipping (and reporting) keys that must not verify.
    pub(crate) fn from_jwks(set: &JwkSet) -> (Self, Vec<String>) {
        let mut keys = Self::set();
        let mut skipped = Vec::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                skipped.push("a key without `kid`".to_owned());
                continue;
            };
            match Key::from_jwk(jwk) {
                Ok(key) => keys.add(Some(kid), key),
                Err(reason) => skipped.push(format!("key `{kid}`: {reason}")),
            }
        }
        (keys, skipped)
    }

    /// The `kid`s, for comparing sets across refreshes.
    #[cfg(feature = "jwks")]
    pub(crate) fn kids(&self) -> impl Iterator<Item = &str> {
        self.by_kid.keys().map(String::as_str)
    }
}

/// The outcome of a key lookup.
pub(crate) enum Lookup {
    Found(Arc<Key>),
    /// No key for this `kid`.
    Unknown,
    /// A key exists but its type cannot verify the token's algorithm.
    WrongType,
}
