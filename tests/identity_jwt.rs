//! JWT identity over real loopback servers: a JWKS endpoint served by the test, the example
//! tonic service behind Warden with the JWT mapper, and every bad token refused
//! `UNAUTHENTICATED` (or `UNAVAILABLE` without keys) before the handler runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{net::SocketAddr, time::Duration};

use serde_json::json;
use support::*;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Code, transport::Server};
use warden_core::AuthError;
use warden_example::{
    CallLog, ExampleService,
    issuer::{self, JwksServer, SigningKey, jwks_config},
    policies::demo_layer_with,
};
use warden_identity::jwt::{JwtConfig, JwtMapper, KeySource};

/// The example service behind the demo policies with `mapper`; headers up to 2 MiB reach
/// Warden, so Warden's own token limit is what a huge token meets.
async fn serve_with(mapper: JwtMapper) -> (SocketAddr, CallLog) {
    let service = ExampleService::new();
    let log = service.log();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Server::builder()
        .http2_max_header_list_size(Some(2 << 20))
        .layer(demo_layer_with(mapper))
        .add_service(service.into_server());
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    (addr, log)
}

struct Fixture {
    rsa: SigningKey,
    ec: SigningKey,
    jwks: JwksServer,
    addr: SocketAddr,
    log: CallLog,
}

async fn fixture() -> Fixture {
    let rsa = SigningKey::rsa("rsa-1");
    let ec = SigningKey::ec("ec-1");
    let jwks = JwksServer::start(&[&rsa, &ec]).await;
    let mapper = jwks_config(&jwks.url, 0).build().await.unwrap();
    let (addr, log) = serve_with(mapper).await;
    Fixture {
        rsa,
        ec,
        jwks,
        addr,
        log,
    }
}

async fn signal_as(addr: SocketAddr, token: &str) -> Result<(), tonic::Status> {
    client(addr)
        .await
        .signal_workflow(as_user(token, signal("orders", "o-1", "approve")))
        .await
        .map(drop)
}

/// Starts a fresh workflow in `orders` (writers may): Ok means authenticated and allowed.
async fn start_as(addr: SocketAddr, token: &str) -> Result<(), tonic::Status> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let id = format!(
        "w-{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    client(addr)
        .await
        .start_workflow(as_user(token, start("orders", &id)))
        .await
        .map(drop)
}

#[tokio::test]
async fn rs256_and_es256_tokens_map_temporal_permissions_to_roles() {
    let f = fixture().await;
    let writer = f.rsa.sign(&issuer::claims("alice", &["orders:write"]));
    let reader = f.ec.sign(&issuer::claims("bob", &["orders:read"]));
    let mut client = client(f.addr).await;
    client
        .start_workflow(as_user(&writer, start("orders", "o-1")))
        .await
        .unwrap();
    signal_as(f.addr, &writer).await.unwrap();
    client
        .query_workflow(as_user(&reader, query("orders", "o-1")))
        .await
        .unwrap();
    let denied = signal_as(f.addr, &reader).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let calls = f.log.calls();
    assert_eq!(
        calls,
        [
            "StartWorkflow by alice",
            "SignalWorkflow by alice",
            "QueryWorkflow by bob"
        ]
    );
}

#[tokio::test]
async fn every_bad_token_is_unauthenticated_with_its_reason_and_never_reaches_the_handler() {
    let f = fixture().await;
    let good = issuer::claims("mallory", &["orders:admin"]);
    for issuer::JwtAttack {
        name: case,
        token,
        reason,
    } in issuer::jwt_attacks(&f.rsa, &good, 1 << 20)
    {
        let status = signal_as(f.addr, &token).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        assert!(
            status.message().contains(reason),
            "{case}: `{}` should name `{reason}`",
            status.message()
        );
        // The message never echoes the token (a 1 MB one included).
        assert!(status.message().len() < 200, "{case}: {}", status.message());
        if token.len() > 16 {
            let middle = &token[token.len() / 2 - 8..token.len() / 2 + 8];
            assert!(
                !status.message().contains(middle),
                "{case} echoed the token"
            );
        }
    }
    assert!(f.log.calls().is_empty(), "handler ran: {:?}", f.log.calls());
}

#[tokio::test]
async fn a_rotated_key_set_accepts_the_new_kid_and_refuses_the_removed_one() {
    let f = fixture().await;
    let old = f.rsa.sign(&issuer::claims("alice", &["orders:write"]));
    start_as(f.addr, &old).await.unwrap();
    let next = SigningKey::rsa("rsa-2");
    let new = next.sign(&issuer::claims("alice", &["orders:write"]));
    // Not published yet: refused even after the refresh it triggers.
    let status = start_as(f.addr, &new).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("unknown signing key"),
        "{status:?}"
    );

    // Rotate: rsa-2 in, rsa-1 out. The new kid triggers a refresh and is accepted.
    f.jwks.publish(&[&next, &f.ec]);
    start_as(f.addr, &new).await.unwrap();
    // The old token was verified (and cached) before; the removed key now refuses it.
    let status = start_as(f.addr, &old).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("unknown signing key"),
        "{status:?}"
    );
    assert_eq!(f.log.calls().len(), 2);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_last_good_keys() {
    let f = fixture().await;
    f.jwks.set_failing(true);
    // An unknown kid forces a refresh, which fails.
    let fetches = f.jwks.fetches();
    let unknown = SigningKey::ec("ec-9").sign(&issuer::claims("x", &[]));
    assert_eq!(
        start_as(f.addr, &unknown).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert!(
        f.jwks.fetches() > fetches,
        "the unknown kid forced a refresh"
    );
    let token = f.ec.sign(&issuer::claims("alice", &["orders:write"]));
    start_as(f.addr, &token).await.unwrap();
}

#[tokio::test]
async fn without_any_usable_key_calls_are_unavailable_never_allowed() {
    let rsa = SigningKey::rsa("rsa-1");
    let jwks = JwksServer::start(&[&rsa]).await;
    jwks.set_failing(true);
    let mapper = jwks_config(&jwks.url, 0).build().await.unwrap();
    let (addr, log) = serve_with(mapper).await;
    let token = rsa.sign(&issuer::claims("alice", &["orders:write"]));
    let status = start_as(addr, &token).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("no usable signing keys"),
        "{status:?}"
    );
    assert!(log.calls().is_empty());
    // Once the endpoint recovers, the next call's refresh brings the keys.
    jwks.set_failing(false);
    start_as(addr, &token).await.unwrap();
}

#[tokio::test]
async fn a_jwks_endpoint_serving_garbage_is_unavailable_without_keys_and_keeps_the_last_good_ones()
{
    // No good keys yet: unavailable, never allowed.
    let rsa = SigningKey::rsa("rsa-1");
    let jwks = JwksServer::start(&[&rsa]).await;
    jwks.set_garbage(true);
    let mapper = jwks_config(&jwks.url, 0).build().await.unwrap();
    let (addr, log) = serve_with(mapper).await;
    let token = rsa.sign(&issuer::claims("alice", &["orders:write"]));
    let status = start_as(addr, &token).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(log.calls().is_empty());
    // It recovers: the next call's refresh brings the keys.
    jwks.set_garbage(false);
    start_as(addr, &token).await.unwrap();
    // Garbage again: a refresh forced by an unknown kid fails, and the good keys stay.
    jwks.set_garbage(true);
    let fetches = jwks.fetches();
    let unknown = SigningKey::rsa("rsa-9").sign(&issuer::claims("x", &[]));
    assert_eq!(
        start_as(addr, &unknown).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert!(jwks.fetches() > fetches, "the unknown kid forced a refresh");
    let again = rsa.sign(&issuer::claims("alice", &["orders:write"]));
    start_as(addr, &again).await.unwrap();
}

#[tokio::test]
async fn unknown_kids_refresh_at_most_once_per_interval() {
    let rsa = SigningKey::rsa("rsa-1");
    let jwks = JwksServer::start(&[&rsa]).await;
    let mapper = jwks_config(&jwks.url, 3600).build().await.unwrap();
    let after_build = jwks.fetches();
    for i in 0..5 {
        let token = SigningKey::ec(&format!("ec-{i}")).sign(&issuer::claims("x", &[]));
        let error = mapper.verify(&token).await.unwrap_err();
        assert_eq!(error, AuthError::invalid("unknown signing key (`kid`)"));
    }
    assert_eq!(
        jwks.fetches(),
        after_build,
        "refreshes were not rate-limited"
    );
}

#[tokio::test]
async fn pem_and_shared_secret_files_verify_their_own_algorithms_only() {
    let dir = std::env::temp_dir().join(format!("warden-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rsa = SigningKey::rsa("pem-key");
    let pem = dir.join("rsa.pem");
    std::fs::write(&pem, &rsa.public_pem).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
    let mapper = JwtConfig {
        keys: vec![
            KeySource::Pem {
                path: pem,
                kid: None,
            },
            KeySource::Secret {
                path: secret,
                kid: None,
            },
        ],
        ..JwtConfig::default()
    }
    .build()
    .await
    .unwrap();
    let claims = issuer::claims("ann", &["orders:read"]);
    let from_pem = mapper.verify(&rsa.sign_without_kid(&claims)).await.unwrap();
    assert_eq!(from_pem.subject.as_deref(), Some("ann"));
    let hs = {
        use jsonwebtoken::{Algorithm, EncodingKey, Header};
        let key = EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
    };
    assert!(mapper.verify(&hs).await.is_ok());
    // An HMAC token over the RSA key's PEM is checked against the secret only: bad signature.
    let confused = {
        use jsonwebtoken::{Algorithm, EncodingKey, Header};
        let key = EncodingKey::from_secret(rsa.public_pem.as_bytes());
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
    };
    assert_eq!(
        mapper.verify(&confused).await.unwrap_err(),
        AuthError::invalid("bad signature")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_cached_token_is_not_served_past_its_exp() {
    let rsa = SigningKey::rsa("rsa-1");
    let jwks = JwksServer::start(&[&rsa]).await;
    let mapper = JwtConfig {
        leeway_seconds: 0,
        ..jwks_config(&jwks.url, 0)
    }
    .build()
    .await
    .unwrap();
    let mut claims = issuer::claims("ann", &[]);
    claims["exp"] = json!(issuer::now() + 1);
    let token = rsa.sign(&claims);
    assert!(mapper.verify(&token).await.is_ok());
    assert!(mapper.verify(&token).await.is_ok());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        mapper.verify(&token).await.unwrap_err(),
        AuthError::invalid("token expired")
    );
}

#[tokio::test]
async fn configs_that_could_admit_forged_tokens_do_not_build() {
    let rsa = SigningKey::rsa("rsa-1");
    let jwks = JwksServer::start(&[&rsa]).await;
    for (algorithms, reason) in [
        (vec!["none"], "`none`"),
        (vec!["HS256"], "needs a shared secret"),
        (vec!["RS257"], "unknown algorithm"),
    ] {
        let config = JwtConfig {
            algorithms: algorithms.into_iter().map(String::from).collect(),
            ..jwks_config(&jwks.url, 0)
        };
        let error = config.build().await.unwrap_err().to_string();
        assert!(error.contains(reason), "{error}");
    }
    let error = JwtConfig::default().build().await.unwrap_err().to_string();
    assert!(error.contains("no keys configured"), "{error}");
}

#[tokio::test]
async fn jwks_over_https_is_trusted_through_the_configured_ca_only() {
    use warden_example::issuer::TestCa;
    let dir = std::env::temp_dir().join(format!("warden-jwks-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, other) = (TestCa::new("JWKS CA"), TestCa::new("Other CA"));
    let (ca_file, other_file) = (dir.join("ca.pem"), dir.join("other.pem"));
    std::fs::write(&ca_file, &ca.cert_pem).unwrap();
    std::fs::write(&other_file, &other.cert_pem).unwrap();
    let rsa = SigningKey::rsa("rsa-1");
    let jwks = JwksServer::start_tls(&[&rsa], &ca).await;
    assert!(jwks.url.starts_with("https://"));
    let with_ca = |ca_file: &std::path::Path| {
        let mut config = jwks_config(&jwks.url, 0);
        if let KeySource::Jwks { ca_file: slot, .. } = &mut config.keys[0] {
            *slot = Some(ca_file.to_owned());
        }
        config
    };
    let token = rsa.sign(&issuer::claims("ann", &[]));
    let trusted = with_ca(&ca_file).build().await.unwrap();
    let claims = trusted.verify(&token).await.unwrap();
    assert_eq!(claims.subject.as_deref(), Some("ann"));
    // A server the configured CA did not certify is never a key source.
    let untrusted = with_ca(&other_file).build().await.unwrap();
    let error = untrusted.verify(&token).await.unwrap_err();
    assert!(
        matches!(&error, AuthError::Unavailable { reason } if reason.contains("no usable signing keys")),
        "{error:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_background_refresh_picks_up_new_keys_without_a_forced_refresh() {
    let rsa = SigningKey::rsa("rsa-1");
    let jwks = JwksServer::start(&[&rsa]).await;
    let mut config = jwks_config(&jwks.url, 3600);
    if let KeySource::Jwks {
        refresh_seconds, ..
    } = &mut config.keys[0]
    {
        *refresh_seconds = 1;
    }
    let mapper = config.build().await.unwrap();
    let next = SigningKey::ec("ec-2");
    jwks.publish(&[&rsa, &next]);
    let before = jwks.fetches();
    // Forced refreshes are rate-limited to once an hour here, so only the background task can
    // bring the new key; wait (bounded) for its next fetch.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while jwks.fetches() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "no background refresh"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = next.sign(&issuer::claims("ann", &[]));
    let mut accepted = mapper.verify(&token).await;
    // The fetch is counted when the request arrives; the keys land when its answer is read.
    while accepted.is_err() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        accepted = mapper.verify(&token).await;
    }
    assert_eq!(accepted.unwrap().subject.as_deref(), Some("ann"));
}
