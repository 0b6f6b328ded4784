//! Passports signed and verified as the proxy and a worker would: real keys, every refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use warden_core::{Claims, OperationKind, Roles};
use warden_passport::{
    Binding, Forward, Issuer, KeyError, PayloadView, Refusal, SigningKey, TYPE, TrustedKeys,
    Verifier, input_digest, jwks,
};

const NOW: u64 = 1_800_000_000;

fn ed25519(kid: &str) -> (SigningKey, String) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let key = SigningKey::from_pem(pair.serialize_pem().as_bytes(), kid).unwrap();
    (key, pair.public_key_pem())
}

fn p256(kid: &str) -> (SigningKey, String) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let key = SigningKey::from_pem(pair.serialize_pem().as_bytes(), kid).unwrap();
    (key, pair.public_key_pem())
}

fn alice() -> Claims {
    Claims::for_subject("alice")
        .with_namespace_role("orders", Roles::WRITER)
        .with_privilege("orders.approve")
}

fn approve() -> Binding {
    Binding::new("orders", "order-1", OperationKind::Signal).with_name("approve")
}

fn verifier(key: &SigningKey) -> Verifier {
    Verifier::new(
        TrustedKeys::new().with_signing_key(key).unwrap(),
        "warden-proxy",
    )
}

/// The JWS's header and payload as JSON, read without verifying.
fn parts(token: &str) -> (Value, Value) {
    let mut segments = token.split('.');
    let mut next = || {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments.next().unwrap()).unwrap()).unwrap()
    };
    (next(), next())
}

#[test]
fn an_ed25519_passport_carries_the_caller_and_the_call_and_verifies() {
    let (key, public_pem) = ed25519("k1");
    let mut claims = alice().with_group("ops");
    claims.attributes.insert("team".into(), json!("payments"));
    claims
        .attributes
        .insert("email".into(), json!("alice@example.com"));
    let issuer =
        Issuer::new("warden-proxy", key.clone()).forward(Forward::default().with_attribute("team"));
    let binding = approve().with_input("sha256:abc");
    let token = issuer.issue_at(&claims, &binding, NOW).unwrap();

    let (header, payload) = parts(&token);
    assert_eq!(header, json!({"alg": "EdDSA", "kid": "k1", "typ": TYPE}));
    assert_eq!(
        payload,
        json!({
            "iss": "warden-proxy", "sub": "alice", "iat": NOW, "exp": NOW + 60,
            "op": {"ns": "orders", "wid": "order-1", "kind": "signal", "name": "approve", "input": "sha256:abc"},
            "cl": {"ns": {"orders": "writer"}, "priv": ["orders.approve"], "groups": ["ops"], "attr": {"team": "payments"}},
        }),
        "attributes are forwarded only when named"
    );

    // A worker that trusts the public key from a PEM file verifies it, and gets the caller.
    let keys = TrustedKeys::new()
        .with_public_pem(public_pem.as_bytes(), "k1")
        .unwrap();
    let passport = Verifier::new(keys, "warden-proxy")
        .verify(&token, &binding, NOW + 10)
        .unwrap();
    assert_eq!(passport.claims.subject.as_deref(), Some("alice"));
    assert_eq!(passport.claims.role_in(Some("orders")), Roles::WRITER);
    assert!(passport.claims.has_privilege("orders.approve"));
    assert_eq!(
        passport.claims.attributes.get("team"),
        Some(&json!("payments"))
    );
    assert!(!passport.claims.attributes.contains_key("email"));
    assert_eq!(passport.binding, binding);
    assert_eq!(
        (passport.key_id.as_str(), passport.expires_at),
        ("k1", NOW + 60)
    );

    // A stock JWT library verifies it with the published JWK alone.
    let set = jwks([&key]);
    let jwk = &set.keys[0];
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_exp = false;
    validation.set_issuer(&["warden-proxy"]);
    let stock = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap();
    assert_eq!(stock.claims["sub"], "alice");
}

#[test]
fn es256_and_hs256_passports_verify_with_their_own_keys_and_an_anonymous_caller_has_no_subject() {
    let (ec, _) = p256("ec-1");
    let token = Issuer::new("warden-proxy", ec.clone())
        .issue_at(&alice(), &approve(), NOW)
        .unwrap();
    assert_eq!(parts(&token).0["alg"], "ES256");
    verifier(&ec).verify(&token, &approve(), NOW).unwrap();

    let secret = SigningKey::from_secret(&[7; 32], "shared").unwrap();
    assert!(secret.public_jwk().is_none(), "a secret is never published");
    assert!(jwks([&secret]).keys.is_empty());
    let start = Binding::new("orders", "order-9", OperationKind::Execute);
    let token = Issuer::new("warden-proxy", secret.clone())
        .forward(Forward::subject_only())
        .issue_at(&Claims::anonymous(), &start, NOW)
        .unwrap();
    assert_eq!(parts(&token).0["alg"], "HS256");
    assert_eq!(parts(&token).1.get("sub"), None);
    let passport = verifier(&secret).verify(&token, &start, NOW).unwrap();
    assert!(passport.claims.is_anonymous());
}

#[test]
fn forged_tampered_untrusted_rebound_and_expired_passports_are_refused_with_the_reason() {
    let (key, _) = ed25519("k1");
    let verifier = verifier(&key);
    let issuer = Issuer::new("warden-proxy", key.clone());
    let token = issuer.issue_at(&alice(), &approve(), NOW).unwrap();

    // Forged: another key that claims the trusted key's id.
    let (impostor, _) = ed25519("k1");
    let forged = Issuer::new("warden-proxy", impostor)
        .issue_at(&alice(), &approve(), NOW)
        .unwrap();
    assert_eq!(
        verifier.verify(&forged, &approve(), NOW),
        Err(Refusal::Signature)
    );

    // Tampered: the payload changed to make bob an admin, the signature kept.
    let tampered = common::tampered(&token, |payload| {
        payload["sub"] = json!("bob");
        payload["cl"]["system"] = json!("admin");
    });
    assert_eq!(
        verifier.verify(&tampered, &approve(), NOW),
        Err(Refusal::Signature)
    );

    // Signed by a key the worker does not trust.
    let (other, _) = ed25519("k2");
    let untrusted = Issuer::new("warden-proxy", other)
        .issue_at(&alice(), &approve(), NOW)
        .unwrap();
    assert_eq!(
        verifier.verify(&untrusted, &approve(), NOW),
        Err(Refusal::UntrustedKey {
            kid: Some("k2".into())
        })
    );

    // Algorithm confusion: HS256 with the trusted key's id.
    let secret = SigningKey::from_secret(&[1; 32], "k1").unwrap();
    let confused = Issuer::new("warden-proxy", secret)
        .issue_at(&alice(), &approve(), NOW)
        .unwrap();
    assert!(matches!(
        verifier.verify(&confused, &approve(), NOW),
        Err(Refusal::Algorithm { .. })
    ));

    // Unsigned (`alg: none`) and not a JWS at all.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"warden-passport+jwt","kid":"k1"}"#),
        token.split('.').nth(1).unwrap()
    );
    assert!(matches!(
        verifier.verify(&none, &approve(), NOW),
        Err(Refusal::Malformed(_))
    ));
    assert!(matches!(
        verifier.verify("not-a-passport", &approve(), NOW),
        Err(Refusal::Malformed(_))
    ));

    // Issued for another workflow, another signal, another kind, another namespace, other
    // input.
    let refusal = |expected: &Binding| verifier.verify(&token, expected, NOW).unwrap_err();
    assert_eq!(
        refusal(&Binding::new("orders", "order-2", OperationKind::Signal).with_name("approve")),
        Refusal::Binding {
            field: "workflow id",
            issued: "order-1".into(),
            call: "order-2".into()
        }
    );
    assert!(matches!(
        refusal(&Binding::new("orders", "order-1", OperationKind::Signal).with_name("cancel")),
        Refusal::Binding { field: "name", .. }
    ));
    assert!(matches!(
        refusal(&Binding::new("orders", "order-1", OperationKind::Update).with_name("approve")),
        Refusal::Binding { field: "kind", .. }
    ));
    assert!(matches!(
        refusal(&Binding::new("billing", "order-1", OperationKind::Signal).with_name("approve")),
        Refusal::Binding {
            field: "namespace",
            ..
        }
    ));
    assert!(matches!(
        refusal(&approve().with_input("sha256:other")),
        Refusal::Binding { field: "input", .. }
    ));

    // Out of its lifetime (5 s of leeway either side), and from an untrusted issuer.
    assert_eq!(
        verifier.verify(&token, &approve(), NOW + 65),
        Err(Refusal::Expired {
            expires_at: NOW + 60,
            now: NOW + 65
        })
    );
    verifier.verify(&token, &approve(), NOW + 64).unwrap();
    assert!(matches!(
        verifier.verify(&token, &approve(), NOW - 6),
        Err(Refusal::NotYetValid { .. })
    ));
    let elsewhere = Issuer::new("someone-else", key)
        .issue_at(&alice(), &approve(), NOW)
        .unwrap();
    assert_eq!(
        verifier.verify(&elsewhere, &approve(), NOW),
        Err(Refusal::Issuer("someone-else".into()))
    );
    // No refusal repeats the passport.
    for refusal in [
        Refusal::Signature,
        refusal(&approve().with_input("sha256:x")),
    ] {
        assert!(!refusal.to_string().contains(&token[..20]));
    }
}

#[test]
fn the_input_digest_matches_the_documented_bytes_and_ignores_only_metadata_order() {
    let payloads = |first: Vec<(&'static str, &'static [u8])>, data: &'static [u8]| {
        vec![
            PayloadView {
                metadata: first,
                data,
            },
            PayloadView {
                metadata: vec![],
                data: b"",
            },
        ]
    };
    let digest = input_digest(payloads(
        vec![("encoding", b"json/plain"), ("a", b"x")],
        br#"{"amount":250}"#,
    ));
    // Computed independently (Python's hashlib over the bytes the crate docs list).
    assert_eq!(digest, "sha256:pi756KK668cvWIcOc4RWlDwD83GOj2-ryGi6UTUen6U");
    let reordered = input_digest(payloads(
        vec![("a", b"x"), ("encoding", b"json/plain")],
        br#"{"amount":250}"#,
    ));
    assert_eq!(reordered, digest, "a map's order does not matter");
    let other_amount = input_digest(payloads(
        vec![("encoding", b"json/plain"), ("a", b"x")],
        br#"{"amount":5000}"#,
    ));
    assert_ne!(other_amount, digest);
    // Bytes moved from a key into its value change the digest (lengths are hashed).
    let shifted = input_digest(payloads(
        vec![("encoding", b"json/plain"), ("ax", b"")],
        br#"{"amount":250}"#,
    ));
    assert_ne!(shifted, digest);
    // An SDK's own map type works as it is.
    let metadata: HashMap<String, Vec<u8>> = HashMap::from([
        ("encoding".into(), b"json/plain".to_vec()),
        ("a".into(), b"x".to_vec()),
    ]);
    let from_map = input_digest([
        PayloadView {
            metadata: &metadata,
            data: br#"{"amount":250}"#,
        },
        PayloadView {
            metadata: &HashMap::new(),
            data: b"",
        },
    ]);
    assert_eq!(from_map, digest);
}

#[test]
fn keys_rotate_by_id_through_a_jwks_and_bad_keys_are_refused() {
    let (old, _) = ed25519("2026-11");
    let (new, _) = p256("2026-12");
    let trusted = TrustedKeys::new().with_jwks(&jwks([&old, &new])).unwrap();
    assert_eq!(trusted.len(), 2);
    let verifier = Verifier::new(trusted, "warden-proxy");
    for key in [&old, &new] {
        let token = Issuer::new("warden-proxy", key.clone())
            .issue_at(&alice(), &approve(), NOW)
            .unwrap();
        verifier.verify(&token, &approve(), NOW).unwrap();
    }

    assert!(matches!(
        SigningKey::from_secret(b"short", "s"),
        Err(KeyError::ShortSecret)
    ));
    assert!(matches!(
        SigningKey::from_pem(
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "x"
        ),
        Err(KeyError::NotAPrivateKey { .. })
    ));
    assert!(matches!(
        TrustedKeys::new().with_signing_key(&old).unwrap().with_signing_key(&old),
        Err(KeyError::DuplicateKeyId(kid)) if kid == "2026-11"
    ));
    let mut anonymous = old.public_jwk().unwrap().clone();
    anonymous.common.key_id = None;
    assert!(matches!(
        TrustedKeys::new().with_jwk(&anonymous),
        Err(KeyError::Jwk { .. })
    ));
}

#[test]
fn a_retired_key_verifies_what_it_signed_before_retirement_and_nothing_after() {
    let (old, _) = ed25519("old");
    let (new, _) = ed25519("new");
    let keys = TrustedKeys::new()
        .with_signing_key(&old)
        .unwrap()
        .with_signing_key(&new)
        .unwrap()
        .retire("old", NOW)
        .unwrap();
    let verifier = Verifier::new(keys, "warden-proxy");
    let before = Issuer::new("warden-proxy", old.clone())
        .issue_at(&alice(), &approve(), NOW - 10)
        .unwrap();
    assert_eq!(
        verifier
            .verify(&before, &approve(), NOW - 5)
            .unwrap()
            .key_id,
        "old",
        "signed before the retirement: still good, as on replay"
    );
    let after = Issuer::new("warden-proxy", old)
        .issue_at(&alice(), &approve(), NOW)
        .unwrap();
    assert_eq!(
        verifier.verify(&after, &approve(), NOW).unwrap_err(),
        Refusal::RetiredKey {
            kid: "old".into(),
            issued_at: NOW,
            retired_at: NOW
        }
    );
    let current = Issuer::new("warden-proxy", new)
        .issue_at(&alice(), &approve(), NOW)
        .unwrap();
    assert!(verifier.verify(&current, &approve(), NOW).is_ok());
    assert!(matches!(
        TrustedKeys::new().retire("nobody", NOW),
        Err(KeyError::UnknownKeyId(kid)) if kid == "nobody"
    ));
}

#[test]
fn a_signal_with_start_passport_admits_its_start_and_no_other_workflow() {
    let (key, _) = ed25519("k1");
    let issuer = Issuer::new("warden-proxy", key.clone());
    let token = issuer
        .issue_at(&alice(), &approve().with_start(), NOW)
        .unwrap();
    assert_eq!(parts(&token).1["op"]["start"], json!(true));
    let verifier = verifier(&key);
    let start = Binding::new("orders", "order-1", OperationKind::Execute);
    assert!(verifier.verify(&token, &start, NOW).is_ok());
    assert!(verifier.verify(&token, &approve(), NOW).is_ok());
    let other = Binding::new("orders", "order-2", OperationKind::Execute);
    assert!(matches!(
        verifier.verify(&token, &other, NOW),
        Err(Refusal::Binding {
            field: "workflow id",
            ..
        })
    ));
    // A plain signal's passport admits no start.
    let plain = issuer.issue_at(&alice(), &approve(), NOW).unwrap();
    assert!(matches!(
        verifier.verify(&plain, &start, NOW),
        Err(Refusal::Binding { field: "kind", .. })
    ));
}

#[test]
fn verify_issued_skips_the_lifetime_and_nothing_else() {
    let (key, _) = ed25519("k1");
    let token = Issuer::new("warden-proxy", key.clone())
        .issue_at(&alice(), &approve(), NOW - 86_400)
        .unwrap();
    let verifier = verifier(&key);
    assert!(matches!(
        verifier.verify(&token, &approve(), NOW),
        Err(Refusal::Expired { .. })
    ));
    assert_eq!(
        verifier
            .verify_issued(&token, &approve())
            .unwrap()
            .claims
            .subject
            .as_deref(),
        Some("alice")
    );
    let other = Binding::new("orders", "order-9", OperationKind::Signal).with_name("approve");
    assert!(verifier.verify_issued(&token, &other).is_err());
}

#[test]
fn a_cached_signature_still_faces_every_other_check() {
    let (key, _) = ed25519("k1");
    let verifier = verifier(&key).cache(1);
    let token = Issuer::new("warden-proxy", key.clone())
        .issue_at(&alice(), &approve(), NOW)
        .unwrap();
    let first = verifier.verify(&token, &approve(), NOW).unwrap();
    assert_eq!(verifier.verify(&token, &approve(), NOW).unwrap(), first);
    // Cached, yet expired later, bound to another call, or beyond a retirement: refused.
    assert!(matches!(
        verifier.verify(&token, &approve(), NOW + 3_600),
        Err(Refusal::Expired { .. })
    ));
    let other = Binding::new("orders", "order-2", OperationKind::Signal).with_name("approve");
    assert!(matches!(
        verifier.verify(&token, &other, NOW),
        Err(Refusal::Binding { .. })
    ));
    // A second passport pushes the first out of a cache of one; both still verify.
    let second = Issuer::new("warden-proxy", key)
        .issue_at(&alice(), &approve(), NOW + 1)
        .unwrap();
    assert!(verifier.verify(&second, &approve(), NOW + 1).is_ok());
    assert_eq!(verifier.verify(&token, &approve(), NOW).unwrap(), first);
    // A tampered copy is not the cached text: its signature is checked, and fails.
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert!(verifier.verify(&tampered, &approve(), NOW).is_err());
}

#[test]
fn ed25519_passports_signed_by_a_stock_library_verify_and_ours_match_its_format() {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let key = SigningKey::from_pem(pair.serialize_pem().as_bytes(), "k1").unwrap();
    let verifier = verifier(&key);
    // Signed by jsonwebtoken itself, from the same PEM.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("k1".into());
    header.typ = Some(TYPE.into());
    let payload = json!({
        "iss": "warden-proxy", "sub": "alice", "iat": NOW, "exp": NOW + 60,
        "op": {"ns": "orders", "wid": "order-1", "kind": "signal", "name": "approve"},
    });
    let encoding = jsonwebtoken::EncodingKey::from_ed_pem(pair.serialize_pem().as_bytes()).unwrap();
    let stock = jsonwebtoken::encode(&header, &payload, &encoding).unwrap();
    assert!(verifier.verify(&stock, &approve(), NOW).is_ok());
    // And a passport Warden signed verifies with jsonwebtoken's own verification.
    let ours = Issuer::new("warden-proxy", key.clone())
        .issue_at(&alice(), &approve(), NOW)
        .unwrap();
    assert!(verifier.verify(&ours, &approve(), NOW).is_ok());
    let decoding = jsonwebtoken::DecodingKey::from_jwk(key.public_jwk().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(&ours, &decoding, &validation).unwrap();
}

#[test]
fn signing_keys_load_from_private_jwks_of_every_kind_and_refuse_mix_ups() {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);

    let ed = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let ed_jwk = json!({
        "kty": "OKP", "crv": "Ed25519", "kid": "ed-1",
        "d": b64(&[5; 32]), "x": b64(ed.verifying_key().as_bytes()),
    });
    let secret = p256::SecretKey::from_slice(&[9; 32]).unwrap();
    let point = secret.public_key().to_encoded_point(false);
    let ec_jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": "ec-1", "d": b64(&[9; 32]),
        "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
    });
    let oct_jwk = json!({"kty": "oct", "k": b64(&[4; 32])});

    for (jwk, kid, algorithm) in [
        (&ed_jwk, None, jsonwebtoken::Algorithm::EdDSA),
        (&ec_jwk, Some("ec-1"), jsonwebtoken::Algorithm::ES256),
        (&oct_jwk, Some("hs-1"), jsonwebtoken::Algorithm::HS256),
    ] {
        let key = SigningKey::from_jwk(jwk.to_string().as_bytes(), kid).unwrap();
        assert_eq!(key.algorithm(), algorithm);
        let token = Issuer::new("warden-proxy", key.clone())
            .issue_at(&alice(), &approve(), NOW)
            .unwrap();
        assert!(verifier(&key).verify(&token, &approve(), NOW).is_ok());
    }
    // The Ed25519 key from its JWK is the very key: the published JWK's `x` is the same.
    let key = SigningKey::from_jwk(ed_jwk.to_string().as_bytes(), None).unwrap();
    assert_eq!(key.kid(), "ed-1");
    let public = serde_json::to_value(key.public_jwk().unwrap()).unwrap();
    assert_eq!(public["x"], ed_jwk["x"]);

    let mut mixed = ed_jwk.clone();
    mixed["x"] = json!(b64(&[1; 32]));
    assert!(matches!(
        SigningKey::from_jwk(mixed.to_string().as_bytes(), None),
        Err(KeyError::Jwk { reason, .. }) if reason.contains("`x` does not belong to `d`")
    ));
    assert!(matches!(
        SigningKey::from_jwk(ed_jwk.to_string().as_bytes(), Some("other")),
        Err(KeyError::Jwk { reason, .. }) if reason.contains("configured key id `other`")
    ));
    assert!(matches!(
        SigningKey::from_jwk(oct_jwk.to_string().as_bytes(), None),
        Err(KeyError::Jwk { reason, .. }) if reason.contains("needs a key id")
    ));
    let rsa = json!({"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"});
    assert!(SigningKey::from_jwk(rsa.to_string().as_bytes(), None).is_err());
}
