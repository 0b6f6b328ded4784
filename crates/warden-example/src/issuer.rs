//! A test identity provider: signing keys generated at run time, tokens, a real JWKS endpoint
//! over loopback HTTP, and a certificate authority for mTLS.
//!
//! Everything here is for tests, the demo and benchmarks: keys live in memory and die with
//! the process.

// Fixtures: a key or certificate that cannot be made is a broken test machine, said loudly.
#![allow(clippy::expect_used)]

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    jwk::{Jwk, JwkSet},
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use serde_json::Value;

/// A signing key with its `kid` and public JWK.
#[derive(Clone)]
pub struct SigningKey {
    /// The key id tokens carry.
    pub kid: String,
    /// The algorithm it signs with.
    pub alg: Algorithm,
    encoding: EncodingKey,
    /// The public half, as published in a JWKS.
    pub jwk: Jwk,
    /// The public key as PEM (SubjectPublicKeyInfo), for PEM-file key sources.
    pub public_pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn public_jwk(encoding: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(encoding, alg).expect("a public JWK of a fresh key");
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

impl SigningKey {
    /// A fresh RSA-2048 key signing RS256.
    pub fn rsa(kid: &str) -> Self {
        use rsa::{
            RsaPrivateKey,
            pkcs1::EncodeRsaPrivateKey,
            pkcs8::{EncodePublicKey, LineEnding},
        };
        let private =
            RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("an RSA key generates");
        let der = private.to_pkcs1_der().expect("an RSA key encodes");
        let encoding = EncodingKey::from_rsa_der(der.as_bytes());
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("an RSA public key encodes");
        Self {
            kid: kid.to_owned(),
            alg: Algorithm::RS256,
            jwk: public_jwk(&encoding, Algorithm::RS256, kid),
            encoding,
            public_pem,
        }
    }

    /// A fresh P-256 key signing ES256.
    pub fn ec(kid: &str) -> Self {
        let pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("an EC key");
        let encoding =
            EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("an EC key PEM");
        Self {
            kid: kid.to_owned(),
            alg: Algorithm::ES256,
            jwk: public_jwk(&encoding, Algorithm::ES256, kid),
            encoding,
            public_pem: pair.public_key_pem(),
        }
    }

    /// Signs `claims` with this key, `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("claims serialize")
    }

    /// Signs `claims` with no `kid` in the header.
    pub fn sign_without_kid(&self, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(self.alg), claims, &self.encoding)
            .expect("claims serialize")
    }
}

/// One token attack, and what a refusal must name.
#[derive(Clone, Debug)]
pub struct JwtAttack {
    /// What the attack is.
    pub name: &'static str,
    /// The token sent as `authorization: Bearer …`.
    pub token: String,
    /// A part of the reason every refusal must give.
    pub reason: &'static str,
}

/// Every token attack against a verifier that trusts `key` (an RSA key, RS256) for
/// [`ISSUER`] and [`AUDIENCE`]: each on the otherwise valid `good` claims. The oversized token
/// is a valid one with `oversize` bytes appended (over the verifier's 8 KiB limit, and within
/// the transport's header limit).
pub fn jwt_attacks(key: &SigningKey, good: &Value, oversize: usize) -> Vec<JwtAttack> {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
    use serde_json::json;

    let b64 = |value: &Value| B64.encode(value.to_string());
    let forged = |header: Value, claims: &Value, signature: &str| {
        format!("{}.{}.{signature}", b64(&header), b64(claims))
    };
    let with = |patch: Value| {
        let mut claims = good.clone();
        if let (Some(claims), Some(patch)) = (claims.as_object_mut(), patch.as_object()) {
            for (k, v) in patch {
                claims.insert(k.clone(), v.clone());
            }
        }
        claims
    };
    let hs256_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        let secret = EncodingKey::from_secret(key.public_pem.as_bytes());
        jsonwebtoken::encode(&header, good, &secret).expect("claims serialize")
    };
    let valid = key.sign(good);
    let signature = valid.rsplit('.').next().unwrap_or_default().to_owned();
    let attack = |name, token, reason| JwtAttack {
        name,
        token,
        reason,
    };
    vec![
        attack(
            "alg none",
            forged(json!({"alg": "none", "typ": "JWT"}), good, ""),
            "alg `none`",
        ),
        attack(
            "HS256 signed with the RSA public key",
            hs256_with_public_key,
            "algorithm HS256 is not allowed",
        ),
        attack(
            "expired",
            key.sign(&with(json!({"exp": now() - 3600}))),
            "token expired",
        ),
        attack(
            "nbf in the future",
            key.sign(&with(json!({"nbf": now() + 3600}))),
            "not valid yet",
        ),
        attack(
            "wrong issuer",
            key.sign(&with(json!({"iss": "https://evil.example/"}))),
            "wrong issuer",
        ),
        attack(
            "wrong audience",
            key.sign(&with(json!({"aud": "someone-else"}))),
            "wrong audience",
        ),
        attack(
            "bad signature",
            SigningKey::rsa(&key.kid).sign(good),
            "bad signature",
        ),
        attack(
            "claims swapped under a valid signature",
            forged(
                json!({"alg": "RS256", "kid": key.kid}),
                &with(json!({"sub": "root"})),
                &signature,
            ),
            "bad signature",
        ),
        attack(
            "unknown kid",
            SigningKey::ec("nobody").sign(good),
            "unknown signing key",
        ),
        attack("missing kid", key.sign_without_kid(good), "has no `kid`"),
        attack("malformed base64", "%%%.@@@.!!!".into(), "malformed token"),
        attack(
            "malformed JSON",
            format!("{}.{}.{signature}", B64.encode("{not json"), b64(good)),
            "malformed token",
        ),
        attack(
            "an oversized token",
            format!("{valid}{}", "A".repeat(oversize)),
            "token too large",
        ),
        attack(
            "permissions of the wrong JSON type",
            key.sign(&with(json!({"permissions": "orders:admin"}))),
            "`permissions` claim must be an array of strings",
        ),
    ]
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The claims of a valid token for `subject` from [`ISSUER`] to [`AUDIENCE`], valid for an
/// hour, with Temporal `permissions`.
pub fn claims(subject: &str, permissions: &[&str]) -> Value {
    serde_json::json!({
        "sub": subject,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now(),
        "exp": now() + 3600,
        "permissions": permissions,
    })
}

/// A JWT mapper config that trusts [`ISSUER`] for [`AUDIENCE`] with the keys served at the
/// JWKS `url` (refreshed hourly in the background; forced refreshes at most every
/// `min_refresh_seconds`).
pub fn jwks_config(url: &str, min_refresh_seconds: u64) -> warden_identity::jwt::JwtConfig {
    use warden_identity::jwt::{JwtConfig, KeySource};
    JwtConfig {
        issuers: vec![ISSUER.into()],
        audiences: vec![AUDIENCE.into()],
        keys: vec![KeySource::Jwks {
            url: url.into(),
            refresh_seconds: 3600,
            min_refresh_seconds,
            timeout_seconds: 5,
            ca_file: None,
        }],
        ..JwtConfig::default()
    }
}

/// The `[[identity.mappers]]` table of a `warden proxy` config that trusts [`ISSUER`] for
/// [`AUDIENCE`] with the keys served at the JWKS `url` — [`jwks_config`] as TOML.
pub fn jwks_mapper_toml(url: &str) -> String {
    format!(
        r#"
[[identity.mappers]]
type = "jwt"
issuers = ["{ISSUER}"]
audiences = ["{AUDIENCE}"]
keys = [{{ type = "jwks", url = "{url}" }}]
"#
    )
}

/// The issuer of [`claims`].
pub const ISSUER: &str = "https://id.warden.test/";
/// The audience of [`claims`].
pub const AUDIENCE: &str = "warden-tests";

/// A JWKS endpoint on loopback whose key set can change while it runs.
#[derive(Clone, Debug)]
pub struct JwksServer {
    /// Where the set is served (`http://127.0.0.1:PORT/.well-known/jwks.json`).
    pub url: String,
    state: Arc<JwksState>,
}

#[derive(Debug, Default)]
struct JwksState {
    keys: Mutex<Vec<Jwk>>,
    fetches: AtomicUsize,
    failing: std::sync::atomic::AtomicBool,
    garbage: std::sync::atomic::AtomicBool,
}

impl JwksServer {
    /// Serves `keys` over plain HTTP on a free loopback port until the runtime stops.
    pub async fn start(keys: &[&SigningKey]) -> Self {
        Self::serve(keys, None).await
    }

    /// Serves `keys` over HTTPS with a certificate for `localhost` and 127.0.0.1 from `ca`.
    pub async fn start_tls(keys: &[&SigningKey], ca: &TestCa) -> Self {
        Self::serve(keys, Some(ca.server())).await
    }

    async fn serve(keys: &[&SigningKey], tls: Option<IssuedCert>) -> Self {
        use axum::{
            Json, Router,
            http::StatusCode,
            response::{IntoResponse, Response},
            routing::get,
        };
        let state = Arc::new(JwksState::default());
        let route_state = Arc::clone(&state);
        let app = Router::new().route(
            "/.well-known/jwks.json",
            get(move || {
                let state = Arc::clone(&route_state);
                async move {
                    state.fetches.fetch_add(1, Ordering::SeqCst);
                    if state.failing.load(Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    if state.garbage.load(Ordering::SeqCst) {
                        let garbage: Response = (
                            [("content-type", "application/json")],
                            r#"{"keys": [{"kty": "RSA", "n": 7}"#,
                        )
                            .into_response();
                        return garbage;
                    }
                    let keys = state
                        .keys
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    Json(JwkSet { keys }).into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr: SocketAddr = listener.local_addr().expect("a bound address");
        let url = match tls {
            None => {
                tokio::spawn(async move { axum::serve(listener, app).await });
                format!("http://{addr}/.well-known/jwks.json")
            }
            Some(cert) => {
                let acceptor = tls_acceptor(&cert);
                tokio::spawn(async move {
                    while let Ok((tcp, _)) = listener.accept().await {
                        let (acceptor, app) = (acceptor.clone(), app.clone());
                        tokio::spawn(async move {
                            let Ok(stream) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let service = hyper_util::service::TowerToHyperService::new(app);
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                        });
                    }
                });
                format!("https://{addr}/.well-known/jwks.json")
            }
        };
        let server = Self { url, state };
        server.publish(keys);
        server
    }

    /// Replaces the published set.
    pub fn publish(&self, keys: &[&SigningKey]) {
        *self
            .state
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    /// Makes the endpoint answer 503 (or recover).
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    /// Makes the endpoint answer 200 with a body that is no key set (or recover).
    pub fn set_garbage(&self, garbage: bool) {
        self.state.garbage.store(garbage, Ordering::SeqCst);
    }

    /// How many times the set was fetched.
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
}

fn tls_acceptor(cert: &IssuedCert) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let chain = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("a PEM certificate");
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).expect("a PEM key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a server certificate");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A certificate authority for mTLS tests.
pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    /// The CA certificate, PEM.
    pub cert_pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A certificate and its private key, PEM.
#[derive(Clone, Debug)]
pub struct IssuedCert {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (test-only).
    pub key_pem: String,
}

/// What a leaf certificate names.
#[derive(Clone, Debug)]
pub enum Name {
    /// A URI SAN (SPIFFE-style).
    Uri(&'static str),
    /// A DNS SAN.
    Dns(&'static str),
    /// Only a subject common name.
    CommonName(&'static str),
}

impl TestCa {
    /// A fresh CA called `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("a CA key");
        let cert_pem = params.self_signed(&key).expect("a CA certificate").pem();
        Self {
            params,
            key,
            cert_pem,
        }
    }

    fn issue(&self, mut params: CertificateParams, usage: ExtendedKeyUsagePurpose) -> IssuedCert {
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("a leaf key");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("a leaf certificate");
        IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server(&self) -> IssuedCert {
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server params");
        self.issue(params, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate naming `name`.
    pub fn client(&self, name: Name) -> IssuedCert {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        match name {
            Name::Uri(uri) => {
                params.subject_alt_names = vec![SanType::URI(uri.try_into().expect("an IA5 URI"))];
                params
                    .distinguished_name
                    .push(DnType::CommonName, "uri-client");
            }
            Name::Dns(dns) => {
                params.subject_alt_names =
                    vec![SanType::DnsName(dns.try_into().expect("an IA5 name"))];
                params
                    .distinguished_name
                    .push(DnType::CommonName, "dns-client");
            }
            Name::CommonName(cn) => {
                params.distinguished_name.push(DnType::CommonName, cn);
                params
                    .distinguished_name
                    .push(DnType::OrganizationName, "Warden Tests");
            }
        }
        self.issue(params, ExtendedKeyUsagePurpose::ClientAuth)
    }
}
