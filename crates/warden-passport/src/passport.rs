//! Issuing and verifying passports; the format is in the [crate docs](crate#the-format).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use warden_core::{Claims, Operation, OperationKind, Roles};

use crate::{SigningKey, TYPE, TrustedKeys};

/// What a passport was issued for: the one operation it admits.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Binding {
    /// The namespace.
    pub namespace: String,
    /// The workflow id.
    pub workflow_id: String,
    /// The operation kind.
    pub kind: OperationKind,
    /// The signal name, query type or update name.
    pub name: Option<String>,
    /// The input digest ([`input_digest`](crate::input_digest)), when bound.
    pub input: Option<String>,
    /// Whether the passport also admits starting the workflow: a signal-with-start carries
    /// one header for both its start and its signal.
    pub start: bool,
}

impl Binding {
    /// A binding to `kind` on `workflow_id` in `namespace`.
    pub fn new(
        namespace: impl Into<String>,
        workflow_id: impl Into<String>,
        kind: OperationKind,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            workflow_id: workflow_id.into(),
            kind,
            name: None,
            input: None,
            start: false,
        }
    }

    /// Sets the signal name, query type or update name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Binds the input digest.
    #[must_use]
    pub fn with_input(mut self, digest: impl Into<String>) -> Self {
        self.input = Some(digest.into());
        self
    }

    /// Also admits starting the workflow (signal-with-start).
    #[must_use]
    pub fn with_start(mut self) -> Self {
        self.start = true;
        self
    }

    /// The binding of a classified `operation`: its namespace, workflow id, kind and name.
    /// `None` when it names no namespace or workflow, which no passport can be bound to.
    pub fn of(operation: &Operation) -> Option<Self> {
        let namespace = operation.namespace.as_deref().filter(|n| !n.is_empty())?;
        let workflow_id = operation.instance_id.as_deref().filter(|w| !w.is_empty())?;
        let mut binding = Self::new(namespace, workflow_id, operation.kind);
        binding.name = operation.name.as_deref().map(str::to_owned);
        Some(binding)
    }
}

/// Which of the caller's claims a passport carries besides the subject.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Forward {
    /// System and per-namespace roles.
    pub roles: bool,
    /// Privileges (scopes).
    pub privileges: bool,
    /// Groups.
    pub groups: bool,
    /// These attributes (by name).
    pub attributes: BTreeSet<String>,
}

impl Default for Forward {
    /// Roles, privileges and groups; no attributes.
    fn default() -> Self {
        Self {
            roles: true,
            privileges: true,
            groups: true,
            attributes: BTreeSet::new(),
        }
    }
}

impl Forward {
    /// Only the subject.
    pub fn subject_only() -> Self {
        Self {
            roles: false,
            privileges: false,
            groups: false,
            attributes: BTreeSet::new(),
        }
    }

    /// Also forwards the attribute `name`.
    #[must_use]
    pub fn with_attribute(mut self, name: impl Into<String>) -> Self {
        self.attributes.insert(name.into());
        self
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Wire {
    iss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    iat: u64,
    exp: u64,
    op: WireOp,
    #[serde(default)]
    cl: WireClaims,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct WireOp {
    ns: String,
    wid: String,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    start: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct WireClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    ns: BTreeMap<String, String>,
    #[serde(default, rename = "priv", skip_serializing_if = "Vec::is_empty")]
    privileges: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    attr: Map<String, Value>,
}

/// Signs passports.
#[derive(Clone, Debug)]
pub struct Issuer {
    name: Arc<str>,
    key: SigningKey,
    lifetime: Duration,
    forward: Forward,
}

/// A passport that could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("passport: cannot sign: {0}")]
pub struct IssueError(String);

impl Issuer {
    /// An issuer called `name` (the `iss` verifiers check) signing with `key`; passports live
    /// 60 seconds and forward roles, privileges and groups.
    pub fn new(name: impl Into<Arc<str>>, key: SigningKey) -> Self {
        Self {
            name: name.into(),
            key,
            lifetime: Duration::from_secs(60),
            forward: Forward::default(),
        }
    }

    /// How long a passport is valid after it is issued (default 60 s): the window in which a
    /// captured passport could be replayed for the very same operation.
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Which claims passports carry.
    #[must_use]
    pub fn forward(mut self, forward: Forward) -> Self {
        self.forward = forward;
        self
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// A passport for `claims` to perform `binding`, issued now.
    pub fn issue(&self, claims: &Claims, binding: &Binding) -> Result<String, IssueError> {
        self.issue_at(claims, binding, unix_now())
    }

    /// A passport issued at `now` (seconds since the Unix epoch).
    pub fn issue_at(
        &self,
        claims: &Claims,
        binding: &Binding,
        now: u64,
    ) -> Result<String, IssueError> {
        let forward = &self.forward;
        let roles = |roles: Roles| (!roles.is_empty()).then(|| roles.to_string());
        let cl = WireClaims {
            system: if forward.roles {
                roles(claims.system)
            } else {
                None
            },
            ns: if forward.roles {
                claims
                    .namespaces
                    .iter()
                    .filter_map(|(ns, r)| Some((ns.clone(), roles(*r)?)))
                    .collect()
            } else {
                BTreeMap::new()
            },
            privileges: if forward.privileges {
                claims.privileges.iter().cloned().collect()
            } else {
                Vec::new()
            },
            groups: if forward.groups {
                claims.groups.iter().cloned().collect()
            } else {
                Vec::new()
            },
            attr: claims
                .attributes
                .iter()
                .filter(|(name, _)| forward.attributes.contains(*name))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        };
        let wire = Wire {
            iss: self.name.to_string(),
            sub: claims.subject.clone(),
            iat: now,
            exp: now.saturating_add(self.lifetime.as_secs().max(1)),
            op: WireOp {
                ns: binding.namespace.clone(),
                wid: binding.workflow_id.clone(),
                kind: binding.kind.as_str().to_owned(),
                name: binding.name.clone(),
                input: binding.input.clone(),
                start: binding.start,
            },
            cl,
        };
        let mut header = Header::new(self.key.algorithm);
        header.kid = Some(self.key.kid.to_string());
        header.typ = Some(TYPE.to_owned());
        match &self.key.ed25519 {
            Some(key) => ed25519_jws(key, &header, &wire),
            None => jsonwebtoken::encode(&header, &wire, &self.key.encoding)
                .map_err(|e| IssueError(e.to_string())),
        }
    }
}

/// The compact JWS of `payload` under `header`, signed with an Ed25519 key derived once:
/// what `jsonwebtoken::encode` writes, at half the cost.
fn ed25519_jws(
    key: &ed25519_dalek::SigningKey,
    header: &Header,
    payload: &Wire,
) -> Result<String, IssueError> {
    use ed25519_dalek::Signer;
    let json = |value: Result<Vec<u8>, serde_json::Error>| {
        value
            .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
            .map_err(|e| IssueError(e.to_string()))
    };
    let mut token = json(serde_json::to_vec(header))?;
    token.push('.');
    token.push_str(&json(serde_json::to_vec(payload))?);
    let signature = key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    Ok(token)
}

/// The payload of `token` if its Ed25519 signature verifies with `key`.
fn ed25519_verified(key: &ed25519_dalek::VerifyingKey, token: &str) -> Result<Wire, Refusal> {
    let malformed = || Refusal::Malformed("not a compact JWS".into());
    let (signing_input, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
    let (_, payload) = signing_input.split_once('.').ok_or_else(malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|bytes| ed25519_dalek::Signature::from_slice(&bytes).ok())
        .ok_or(Refusal::Signature)?;
    key.verify_strict(signing_input.as_bytes(), &signature)
        .map_err(|_| Refusal::Signature)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| malformed())?;
    serde_json::from_slice(&payload).map_err(|e| Refusal::Malformed(format!("payload: {e}")))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A verified passport: who, for what, signed by whom, valid when.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Passport {
    /// The issuer (`iss`).
    pub issuer: String,
    /// The key that signed it (`kid`).
    pub key_id: String,
    /// The caller's claims, as forwarded (anonymous when it has no `sub`).
    pub claims: Claims,
    /// The operation it was issued for.
    pub binding: Binding,
    /// Issued at, seconds since the Unix epoch.
    pub issued_at: u64,
    /// Expires at, seconds since the Unix epoch.
    pub expires_at: u64,
}

/// Why a passport was refused; each names what failed, never the passport itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The call carries no passport (it did not come through the edge).
    #[error("no passport: the call did not come through Warden")]
    Missing,
    /// Not a passport: not a compact JWS, the wrong `typ`, or a payload that is not the
    /// passport's.
    #[error("malformed passport: {0}")]
    Malformed(String),
    /// Signed by a key the verifier does not trust (or names no key).
    #[error("passport signed by an untrusted key{}", kid.as_ref().map(|k| format!(" `{k}`")).unwrap_or_default())]
    UntrustedKey {
        /// The `kid` it names.
        kid: Option<String>,
    },
    /// Signed by a retired key after it was retired.
    #[error(
        "passport signed by key `{kid}` at {issued_at}, after the key was retired at {retired_at}"
    )]
    RetiredKey {
        /// The key.
        kid: String,
        /// `iat`.
        issued_at: u64,
        /// When the key was retired.
        retired_at: u64,
    },
    /// The header's algorithm is not the one its key is for.
    #[error("passport algorithm {found} does not match key `{kid}`")]
    Algorithm {
        /// The key.
        kid: String,
        /// The algorithm the header names.
        found: String,
    },
    /// The signature does not verify: forged or tampered.
    #[error("passport signature does not verify (forged or tampered)")]
    Signature,
    /// Issued by an issuer the verifier does not accept.
    #[error("passport issued by `{0}`, which is not trusted")]
    Issuer(String),
    /// Issued in the future (beyond the leeway).
    #[error("passport issued at {issued_at}, after now ({now})")]
    NotYetValid {
        /// `iat`.
        issued_at: u64,
        /// The verifier's now.
        now: u64,
    },
    /// Expired.
    #[error("passport expired at {expires_at} (now {now})")]
    Expired {
        /// `exp`.
        expires_at: u64,
        /// The verifier's now.
        now: u64,
    },
    /// Issued for another operation.
    #[error("passport issued for another call: {field} is `{issued}`, the call's is `{call}`")]
    Binding {
        /// Which part differs: `namespace`, `workflow id`, `kind`, `name` or `input`.
        field: &'static str,
        /// What the passport says.
        issued: String,
        /// What the call is.
        call: String,
    },
}

/// Verifies passports against trusted keys and issuers, at a time the caller gives.
#[derive(Clone, Debug)]
pub struct Verifier {
    keys: TrustedKeys,
    issuers: Vec<String>,
    leeway: u64,
    cache: Option<Arc<SignatureCache>>,
}

/// Passports whose signature verified, by their text: the signature is the costly part of a
/// check, and the same passport is checked again when a workflow's history replays (after
/// an eviction, a restart, or a query). Everything but the signature is checked every time.
#[derive(Debug)]
struct SignatureCache {
    capacity: usize,
    verified: Mutex<HashMap<Box<str>, Signed>>,
}

/// A passport whose signature verified: the key that signed it, and its payload.
type Signed = (Arc<str>, Wire);

impl SignatureCache {
    fn get(&self, token: &str) -> Option<Signed> {
        self.verified.lock().ok()?.get(token).cloned()
    }

    fn insert(&self, token: &str, kid: Arc<str>, wire: &Wire) {
        if let Ok(mut verified) = self.verified.lock() {
            // Bounded: a full cache starts over rather than tracking recency on every hit.
            if verified.len() >= self.capacity {
                verified.clear();
            }
            verified.insert(token.into(), (kid, wire.clone()));
        }
    }
}

impl Verifier {
    /// Trusts `keys` for passports issued by `issuer`, with 5 seconds of leeway on the times.
    pub fn new(keys: TrustedKeys, issuer: impl Into<String>) -> Self {
        Self {
            keys,
            issuers: vec![issuer.into()],
            leeway: 5,
            cache: None,
        }
    }

    /// Also accepts passports issued by `issuer`.
    #[must_use]
    pub fn also_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Keeps up to `capacity` passports whose signature verified, so checking one again
    /// (a replayed history, a query burst) skips the signature; the lifetime, issuer, key
    /// retirement and binding are still checked every time. Off by default.
    #[must_use]
    pub fn cache(mut self, capacity: usize) -> Self {
        self.cache = (capacity > 0).then(|| {
            Arc::new(SignatureCache {
                capacity,
                verified: Mutex::new(HashMap::new()),
            })
        });
        self
    }

    /// Seconds of clock difference tolerated on `iat` and `exp` (default 5).
    #[must_use]
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = seconds;
        self
    }

    /// Verifies `token` for the call `expected` at `now` (seconds since the Unix epoch; a
    /// workflow passes its own time, so a replay decides as the first run did). The input
    /// digest is compared only when `expected` has one: pass it where the worker sees the
    /// call's payloads.
    pub fn verify(&self, token: &str, expected: &Binding, now: u64) -> Result<Passport, Refusal> {
        self.verify_with(token, expected, Some(now))
    }

    /// [`verify`](Self::verify) without the lifetime: for a check long after the call the
    /// passport was issued for — an activity, on behalf of the caller who started its
    /// workflow, whose passport was checked when the workflow started. Everything else is
    /// checked, the key's retirement included.
    pub fn verify_issued(&self, token: &str, expected: &Binding) -> Result<Passport, Refusal> {
        self.verify_with(token, expected, None)
    }

    fn verify_with(
        &self,
        token: &str,
        expected: &Binding,
        now: Option<u64>,
    ) -> Result<Passport, Refusal> {
        let (kid, wire) = match self.cache.as_ref().and_then(|cache| cache.get(token)) {
            Some(verified) => verified,
            None => {
                let (kid, wire) = self.signed(token)?;
                if let Some(cache) = &self.cache {
                    cache.insert(token, Arc::clone(&kid), &wire);
                }
                (kid, wire)
            }
        };
        let kid = kid.to_string();
        let retired_at = self.keys.get(&kid).and_then(|key| key.retired_at);
        if let Some(retired_at) = retired_at
            && wire.iat >= retired_at
        {
            return Err(Refusal::RetiredKey {
                kid,
                issued_at: wire.iat,
                retired_at,
            });
        }
        if !self.issuers.contains(&wire.iss) {
            return Err(Refusal::Issuer(wire.iss));
        }
        if let Some(now) = now {
            if wire.iat > now.saturating_add(self.leeway) {
                return Err(Refusal::NotYetValid {
                    issued_at: wire.iat,
                    now,
                });
            }
            if now >= wire.exp.saturating_add(self.leeway) {
                return Err(Refusal::Expired {
                    expires_at: wire.exp,
                    now,
                });
            }
        }
        let binding = binding(wire.op)?;
        check_binding(&binding, expected)?;
        Ok(Passport {
            issuer: wire.iss,
            key_id: kid,
            claims: claims(wire.sub, wire.cl)?,
            binding,
            issued_at: wire.iat,
            expires_at: wire.exp,
        })
    }
}

impl Verifier {
    /// The signature step: the header, the key it names, the algorithm, the signature and
    /// the payload's shape.
    fn signed(&self, token: &str) -> Result<Signed, Refusal> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Refusal::Malformed("not a compact JWS".into()))?;
        if header.typ.as_deref() != Some(TYPE) {
            return Err(Refusal::Malformed(format!("`typ` is not {TYPE}")));
        }
        let kid = header.kid.clone();
        let Some(trusted) = kid.as_deref().and_then(|kid| self.keys.get(kid)) else {
            return Err(Refusal::UntrustedKey { kid });
        };
        let kid = kid.unwrap_or_default();
        let algorithm = &trusted.algorithm;
        if header.alg != *algorithm {
            return Err(Refusal::Algorithm {
                kid,
                found: format!("{:?}", header.alg),
            });
        }
        if let Some(key) = &trusted.ed25519 {
            return Ok((kid.into(), ed25519_verified(key, token)?));
        }
        let mut validation = Validation::new(*algorithm);
        // Times are checked against the caller's clock, the rest against the binding.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        let wire = jsonwebtoken::decode::<Wire>(token, &trusted.key, &validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature => Refusal::Signature,
                ErrorKind::Json(e) => Refusal::Malformed(format!("payload: {e}")),
                _ => Refusal::Malformed(error.to_string()),
            })?
            .claims;
        Ok((kid.into(), wire))
    }
}

fn binding(op: WireOp) -> Result<Binding, Refusal> {
    let kind = op
        .kind
        .parse()
        .map_err(|_| Refusal::Malformed(format!("unknown operation kind `{}`", op.kind)))?;
    Ok(Binding {
        namespace: op.ns,
        workflow_id: op.wid,
        kind,
        name: op.name,
        input: op.input,
        start: op.start,
    })
}

fn check_binding(issued: &Binding, call: &Binding) -> Result<(), Refusal> {
    let differs = |field: &'static str, issued: &str, call: &str| {
        Err(Refusal::Binding {
            field,
            issued: issued.to_owned(),
            call: call.to_owned(),
        })
    };
    if issued.namespace != call.namespace {
        return differs("namespace", &issued.namespace, &call.namespace);
    }
    if issued.workflow_id != call.workflow_id {
        return differs("workflow id", &issued.workflow_id, &call.workflow_id);
    }
    // A signal-with-start's passport admits the start it carries, by namespace and id.
    if call.kind == OperationKind::Execute && issued.start {
        return Ok(());
    }
    if issued.kind != call.kind {
        return differs("kind", issued.kind.as_str(), call.kind.as_str());
    }
    if issued.name != call.name {
        let show = |name: &Option<String>| name.clone().unwrap_or_else(|| "(none)".into());
        return differs("name", &show(&issued.name), &show(&call.name));
    }
    if let Some(input) = &call.input
        && issued.input.as_ref() != Some(input)
    {
        let issued = issued.input.as_deref().unwrap_or("(none)");
        return differs("input", issued, input);
    }
    Ok(())
}

fn claims(subject: Option<String>, cl: WireClaims) -> Result<Claims, Refusal> {
    let roles = |spec: &str| {
        Roles::parse(spec).map_err(|e| Refusal::Malformed(format!("forwarded roles: {e}")))
    };
    let mut claims = match subject {
        Some(subject) => Claims::for_subject(subject),
        None => Claims::anonymous(),
    };
    if let Some(system) = &cl.system {
        claims.system = roles(system)?;
    }
    for (namespace, spec) in &cl.ns {
        claims.namespaces.insert(namespace.clone(), roles(spec)?);
    }
    claims.privileges = cl.privileges.into_iter().collect();
    claims.groups = cl.groups.into_iter().collect();
    claims.attributes = cl.attr;
    Ok(claims)
}
