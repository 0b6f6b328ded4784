//! A passport verified by PyJWT, a stock JWT library, as a Python worker would: the format is
//! standard, not Warden's own. Needs the project's `.venv` with PyJWT (the test command
//! installs it); fails loudly without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::{Value, json};
use warden_core::{Claims, OperationKind, Roles};
use warden_passport::{Binding, Issuer, SigningKey, jwks};

fn python() -> PathBuf {
    let python = std::env::var_os("WARDEN_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"),
        PathBuf::from,
    );
    assert!(
        python.exists(),
        "{} is missing: run ./scripts/test.sh, which installs PyJWT into .venv (or set WARDEN_PYTHON)",
        python.display()
    );
    python
}

/// Runs the PyJWT verifier; `Ok(verified header and claims)` or `Err(PyJWT's error class)`.
fn pyjwt(jwks_file: &Path, token: &str) -> Result<Value, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/verify.py");
    let out = Command::new(python())
        .arg(script)
        .arg(jwks_file)
        .arg(token)
        .arg("warden-proxy")
        .output()
        .expect("python runs");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8(out.stderr).unwrap().trim().to_owned())
    }
}

#[test]
fn pyjwt_verifies_ed25519_and_es256_passports_from_the_published_jwks_and_refuses_tampered_ones() {
    let dir = std::env::temp_dir().join(format!("warden-passport-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ed = SigningKey::from_pem(ed.serialize_pem().as_bytes(), "ed-1").unwrap();
    let ec = SigningKey::from_pem(ec.serialize_pem().as_bytes(), "ec-1").unwrap();
    let jwks_file = dir.join("jwks.json");
    std::fs::write(&jwks_file, serde_json::to_vec(&jwks([&ed, &ec])).unwrap()).unwrap();

    let claims = Claims::for_subject("alice").with_namespace_role("orders", Roles::WRITER);
    let binding = Binding::new("orders", "order-1", OperationKind::Update)
        .with_name("set-discount")
        .with_input("sha256:pi756KK668cvWIcOc4RWlDwD83GOj2-ryGi6UTUen6U");
    for (key, alg) in [(&ed, "EdDSA"), (&ec, "ES256")] {
        let token = Issuer::new("warden-proxy", key.clone())
            .issue(&claims, &binding)
            .unwrap();
        let verified = pyjwt(&jwks_file, &token).unwrap();
        assert_eq!(verified["header"]["alg"], alg);
        assert_eq!(verified["header"]["kid"], key.kid());
        assert_eq!(verified["claims"]["sub"], "alice");
        assert_eq!(
            verified["claims"]["op"],
            json!({"ns": "orders", "wid": "order-1", "kind": "update", "name": "set-discount",
                   "input": "sha256:pi756KK668cvWIcOc4RWlDwD83GOj2-ryGi6UTUen6U"})
        );
        assert_eq!(verified["claims"]["cl"]["ns"]["orders"], "writer");

        // The same passport with its subject changed: PyJWT refuses the signature.
        let tampered = common::tampered(&token, |payload| payload["sub"] = json!("mallory"));
        assert_eq!(
            pyjwt(&jwks_file, &tampered),
            Err("InvalidSignatureError".into())
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
