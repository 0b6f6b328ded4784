//! Every fuzz target, on stable, in every test run: seeds shaped like real input, then
//! `WARDEN_FUZZ_ITERATIONS` (default 5,000) seeded mutations each — byte flips, random bytes,
//! insertions, deletions, duplicated and spliced ranges, truncations. A panic fails the test
//! and prints the input that caused it. Not coverage-guided: libFuzzer runs (`fuzz/`) are.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use rand::{Rng, SeedableRng, rngs::StdRng};
use warden_example::pb;

fn encode<M: prost::Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}

fn frame(compressed: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::from(compressed)];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn messages() -> Vec<Vec<u8>> {
    let execution = Some(pb::WorkflowExecution {
        workflow_id: "o-1".into(),
        run_id: String::new(),
    });
    vec![
        encode(&pb::StartWorkflowRequest {
            namespace: "orders".into(),
            workflow_id: "o-1".into(),
            workflow_type: "OrderWorkflow".into(),
            task_queue: "orders".into(),
            input: br#"{"customer":"c-1"}"#.to_vec(),
            identity: "fuzz".into(),
        }),
        encode(&pb::SignalWorkflowRequest {
            namespace: "orders".into(),
            execution: execution.clone(),
            signal_name: "approve".into(),
            input: br#"{"amount":5}"#.to_vec(),
            identity: "fuzz".into(),
        }),
        encode(&pb::UpdateWorkflowRequest {
            namespace: "orders".into(),
            execution,
            update_name: "set-discount".into(),
            input: br#"{"amount":500}"#.to_vec(),
            identity: "fuzz".into(),
        }),
    ]
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let text = |s: &str| s.as_bytes().to_vec();
    match target {
        "frame" => {
            let mut seeds = Vec::new();
            for message in messages() {
                seeds.push([vec![3], frame(false, &message)].concat());
                let mut gzip =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gzip.write_all(&message).unwrap();
                seeds.push([vec![0], frame(true, &gzip.finish().unwrap())].concat());
                let mut zlib =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                zlib.write_all(&message).unwrap();
                seeds.push([vec![1], frame(true, &zlib.finish().unwrap())].concat());
                seeds.push(
                    [
                        vec![2],
                        frame(true, &zstd::encode_all(&message[..], 1).unwrap()),
                    ]
                    .concat(),
                );
            }
            seeds
        }
        "fields" | "reflect" => messages()
            .into_iter()
            .enumerate()
            .map(|(i, m)| [vec![i as u8], m].concat())
            .collect(),
        "jwt" => vec![
            text(&warden_fuzz::valid_passport()),
            text(
                "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSIsImlzcyI6Imh0dHBzOi8vaXNzdWVyLmV4YW1wbGUvIn0.c2ln",
            ),
            text("eyJhbGciOiJub25lIn0.e30."),
        ],
        "passport" => vec![text(&warden_fuzz::valid_passport())],
        "rules" => vec![
            text(include_str!("../../../examples/proxy/rules.toml")),
            text(include_str!("../../../examples/policies/rules.toml")),
        ],
        "proxy_config" => vec![text(include_str!("../../../examples/proxy/temporal.toml"))],
        "pdp_model" => vec![
            text(
                r#"
[[attributes]]
namespace = "example.com"
name = "classification"
rule = "hierarchy"
values = ["secret", "public"]
obligations = { secret = ["https://example.com/obl/audit/value/log"] }

[[subject_mappings]]
attribute_value = "https://example.com/attr/classification/value/secret"
actions = ["read"]
condition_groups = [{ operator = "or", conditions = [{ selector = ".groups[]", operator = "in", values = ["cleared"] }, { selector = ".attributes.email", operator = "in_contains", values = ["@example.com"] }] }]
"#,
            ),
            text(
                r#"{"attributes": [{"namespace": "n.io", "name": "a", "rule": "any_of", "values": ["x"]}], "subject_mappings": []}"#,
            ),
        ],
        other => unreachable!("no seeds for {other}"),
    }
}

fn mutate(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.gen_range(0..seeds.len())].clone();
    for _ in 0..rng.gen_range(1..5) {
        let len = data.len();
        match rng.gen_range(0..7) {
            0 if len > 0 => {
                let at = rng.gen_range(0..len);
                data[at] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let at = rng.gen_range(0..len);
                data[at] = rng.r#gen();
            }
            2 => {
                let at = rng.gen_range(0..=len);
                let extra: Vec<u8> = (0..rng.gen_range(1..16)).map(|_| rng.r#gen()).collect();
                data.splice(at..at, extra);
            }
            3 if len > 1 => {
                let from = rng.gen_range(0..len);
                let to = rng.gen_range(from..=len.min(from + 32));
                data.drain(from..to);
            }
            4 if len > 1 => {
                let from = rng.gen_range(0..len);
                let to = rng.gen_range(from..=len.min(from + 32));
                let copy = data[from..to].to_vec();
                let at = rng.gen_range(0..=len);
                data.splice(at..at, copy);
            }
            5 if len > 0 => data.truncate(rng.gen_range(0..len)),
            _ => {
                let other = &seeds[rng.gen_range(0..seeds.len())];
                let cut = rng.gen_range(0..=data.len());
                let from = rng.gen_range(0..=other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
        }
    }
    data
}

#[test]
fn every_fuzz_target_survives_its_seeds_and_their_mutations() {
    let iterations: usize = std::env::var("WARDEN_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    for (name, target) in warden_fuzz::TARGETS {
        let seeds = seeds(name);
        let mut rng = StdRng::seed_from_u64(name.len() as u64 * 7919);
        let inputs = seeds
            .iter()
            .cloned()
            .chain((0..iterations).map(|_| mutate(&mut rng, &seeds)));
        for input in inputs {
            if std::panic::catch_unwind(|| target(&input)).is_err() {
                panic!(
                    "fuzz target `{name}` panicked on {} bytes: {:02x?}",
                    input.len(),
                    input
                );
            }
        }
        println!(
            "fuzz target {name}: {} seeds and {iterations} mutations",
            seeds.len()
        );
    }
}
