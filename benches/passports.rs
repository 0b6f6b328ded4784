//! Call passports, per call, in process: what the proxy adds to each start, signal, query or
//! update it forwards (signing a passport and writing it into the message), and what a
//! worker pays per inbound job to verify one, cold and from the verified-signature cache,
//! each beside its floor.
//!
//! `cargo bench --bench passports` (`-- --quick` for a short run). Each figure is the median
//! over interleaved rounds of the time per operation in a batch.
//!
//! - floor (sign): an Ed25519 signature over the passport's signing input with a key derived
//!   once, which any passport costs the edge; beside it `jsonwebtoken`'s signature, which
//!   derives the key again on every call (Warden signs Ed25519 passports directly for that
//!   reason);
//! - `Issuer::issue`: the passport's JSON, base64 and signature;
//! - `PassportWriter::write`: decoding the signal, the input digest, issuing, removing the
//!   caller's entry and appending the proxy's, every other byte kept;
//! - floor (verify): checking an Ed25519 signature with a key decoded once, which any worker
//!   must do at least once per passport; beside it `jsonwebtoken`'s check;
//! - `Verifier::verify`: cold, every check;
//! - `Verifier::verify` with `cache(..)`: the signature from the cache, every other check run;
//! - `PassportWriter::write` with an HS256 secret, for comparison (every worker then holds
//!   the signing secret).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::HashMap, hint::black_box, time::Instant};

use common::{args, median};
use prost::Message;
use temporalio_protos::temporal::api::{
    common::v1::{Payload, Payloads, WorkflowExecution},
    workflowservice::v1::SignalWorkflowExecutionRequest,
};
use warden_core::{Claims, OperationKind, Roles};
use warden_passport::{
    Binding, Issuer, PayloadView, SigningKey, TrustedKeys, Verifier, input_digest,
};
use warden_temporal::passport::PassportWriter;

const SIGNAL: &str = "/temporal.api.workflowservice.v1.WorkflowService/SignalWorkflowExecution";

fn time_per_op(batch: usize, mut op: impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..batch {
        op();
    }
    started.elapsed().as_secs_f64() * 1e6 / batch as f64
}

fn main() {
    let (_, quick) = args();
    let (rounds, batch) = if quick { (3, 50) } else { (15, 2_000) };

    let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
        .unwrap()
        .serialize_pem();
    let key = SigningKey::from_pem(pem.as_bytes(), "edge-1").unwrap();
    let issuer = Issuer::new("warden-proxy", key.clone());
    let writer = PassportWriter::new(issuer.clone());
    let hs256 = PassportWriter::new(Issuer::new(
        "warden-proxy",
        SigningKey::from_secret(&[7; 32], "edge-hs").unwrap(),
    ));
    let trusted = TrustedKeys::new().with_signing_key(&key).unwrap();
    let cold = Verifier::new(trusted.clone(), "warden-proxy");
    let cached = Verifier::new(trusted, "warden-proxy").cache(1_024);

    let claims = Claims::for_subject("alice").with_namespace_role("orders", Roles::WRITER);
    let input = Payloads {
        payloads: vec![Payload {
            metadata: HashMap::from([("encoding".to_owned(), b"json/plain".to_vec())]),
            data: br#"{"amount":250}"#.to_vec(),
            ..Default::default()
        }],
    };
    let digest = input_digest(input.payloads.iter().map(|p| PayloadView {
        metadata: p.metadata.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())),
        data: &p.data,
    }));
    let signal = SignalWorkflowExecutionRequest {
        namespace: "orders".into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: "order-1".into(),
            ..Default::default()
        }),
        signal_name: "approve".into(),
        input: Some(input),
        identity: "bench".into(),
        request_id: "r-1".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let binding = Binding::new("orders", "order-1", OperationKind::Signal)
        .with_name("approve")
        .with_input(digest);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = issuer.issue_at(&claims, &binding, now).unwrap();
    let expected = Binding::new("orders", "order-1", OperationKind::Signal).with_name("approve");
    assert!(cold.verify(&token, &expected, now).is_ok());
    assert!(
        writer
            .write(SIGNAL, &signal, Some(&claims))
            .unwrap()
            .is_some()
    );

    // The floors, with the same key and a message of the passport's size.
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let algorithm = key.algorithm();
    let encoding = jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()).unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_jwk(key.public_jwk().unwrap()).unwrap();
    assert!(
        jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), &decoding, algorithm)
            .unwrap()
    );

    use ed25519_dalek::{Signer, Verifier as _, pkcs8::DecodePrivateKey};
    let dalek = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap();
    let dalek_public = dalek.verifying_key();
    let dalek_signature = dalek.sign(signing_input.as_bytes());

    let names = [
        "jsonwebtoken sign (derives the key each time)",
        "Issuer::issue",
        "PassportWriter::write (signal)",
        "jsonwebtoken verify (decodes the key each time)",
        "Verifier::verify, cold",
        "Verifier::verify, cached",
        "floor (sign): Ed25519, key derived once",
        "floor (verify): Ed25519, key decoded once",
        "PassportWriter::write (signal), HS256",
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..rounds {
        samples[0].push(time_per_op(batch, || {
            black_box(
                jsonwebtoken::crypto::sign(
                    black_box(signing_input.as_bytes()),
                    &encoding,
                    algorithm,
                )
                .unwrap(),
            );
        }));
        samples[1].push(time_per_op(batch, || {
            black_box(issuer.issue(black_box(&claims), &binding).unwrap());
        }));
        samples[2].push(time_per_op(batch, || {
            black_box(
                writer
                    .write(SIGNAL, black_box(&signal), Some(&claims))
                    .unwrap(),
            );
        }));
        samples[3].push(time_per_op(batch, || {
            black_box(
                jsonwebtoken::crypto::verify(
                    signature,
                    black_box(signing_input.as_bytes()),
                    &decoding,
                    algorithm,
                )
                .unwrap(),
            );
        }));
        samples[4].push(time_per_op(batch, || {
            black_box(cold.verify(black_box(&token), &expected, now).unwrap());
        }));
        samples[5].push(time_per_op(batch, || {
            black_box(cached.verify(black_box(&token), &expected, now).unwrap());
        }));
        samples[6].push(time_per_op(batch, || {
            black_box(dalek.sign(black_box(signing_input.as_bytes())));
        }));
        samples[8].push(time_per_op(batch, || {
            black_box(
                hs256
                    .write(SIGNAL, black_box(&signal), Some(&claims))
                    .unwrap(),
            );
        }));
        samples[7].push(time_per_op(batch, || {
            dalek_public
                .verify(black_box(signing_input.as_bytes()), &dalek_signature)
                .unwrap();
        }));
    }
    println!(
        "passports, Ed25519, {rounds} interleaved rounds of {batch} (median µs per operation)"
    );
    println!();
    println!("| operation | µs |");
    println!("|---|---|");
    let medians: Vec<f64> = samples.into_iter().map(median).collect();
    for (name, value) in names.iter().zip(&medians) {
        println!("| {name} | {value:.2} |");
    }
    println!();
    println!(
        "write / sign floor: {:.2}×; cold verify / verify floor: {:.2}×; cached / cold: {:.3}",
        medians[2] / medians[6],
        medians[4] / medians[7],
        medians[5] / medians[4]
    );
}
