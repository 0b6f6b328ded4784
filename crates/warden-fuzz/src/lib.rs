//! Fuzz targets: each function takes arbitrary bytes and must return without panicking,
//! whatever they are. libFuzzer drives them through `fuzz/` (`cargo +nightly fuzz run NAME`);
//! `tests/mutations.rs` drives them on stable in every test run, from seeds shaped like real
//! input (the hostile corpus's frames, example configs, valid tokens and passports).

#![allow(clippy::unwrap_used, clippy::expect_used)] // fixtures built once from constants

use std::{
    io::Write,
    sync::{Arc, OnceLock},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use warden_core::{AuthInfo, ClaimMapper, Claims, OperationKind, Secret};
use warden_example::pb;
use warden_passport::{Binding, Issuer, SigningKey, TrustedKeys, Verifier};
use warden_tower::map::{OperationMap, ReflectConfig};

/// A fuzz target: arbitrary bytes in, no panic out.
pub type Target = fn(&[u8]);

/// The targets, by name: what `fuzz/fuzz_targets/NAME.rs` runs.
pub const TARGETS: [(&str, Target); 9] = [
    ("frame", frame),
    ("method_path", method_path),
    ("fields", fields),
    ("reflect", reflect),
    ("jwt", jwt),
    ("passport", passport),
    ("rules", rules),
    ("proxy_config", proxy_config),
    ("pdp_model", pdp_model),
];

/// The frame reader and decompression: the first byte picks the `grpc-encoding`.
pub fn frame(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    if let Some(encoding) = ["gzip", "deflate", "zstd", "identity", "br"].get(usize::from(pick % 6))
    {
        headers.insert("grpc-encoding", HeaderValue::from_static(encoding));
    }
    let _ = warden_tower::message::unframe(&headers, &Bytes::copy_from_slice(rest), 64 * 1024);
}

/// The method-path parser, on any bytes a `:path` can hold: a path it accepts is exactly
/// `/service/method` again, and the map finds only paths it would accept.
pub fn method_path(data: &[u8]) {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    match warden_tower::map::split_method_path(path) {
        Ok((service, method)) => assert_eq!(format!("/{service}/{method}"), path),
        Err(_) => assert!(example_map().get(path).is_none(), "{path:?} is mapped"),
    }
    // As a request target too: what `http` accepts as a path goes through the same parser.
    if let Ok(uri) = http::Uri::try_from(data) {
        let _ = warden_tower::map::split_method_path(uri.path());
    }
}

fn example_map() -> &'static OperationMap {
    static MAP: OnceLock<OperationMap> = OnceLock::new();
    MAP.get_or_init(warden_example::operation_map)
}

/// The field-number extractors of the example service's map: the first byte picks the
/// method, the rest is its message.
pub fn fields(data: &[u8]) {
    decode(example_map(), data);
}

fn decode(map: &OperationMap, data: &[u8]) {
    let Some((&pick, message)) = data.split_first() else {
        return;
    };
    let paths: Vec<&str> = map.paths().collect();
    let path = paths[usize::from(pick) % paths.len()];
    if let Some(spec) = map.get(path) {
        let _ = spec.decode(&Bytes::copy_from_slice(message));
    }
}

/// The descriptor-driven extractors (field paths resolved through `prost-reflect`).
pub fn reflect(data: &[u8]) {
    static MAP: OnceLock<OperationMap> = OnceLock::new();
    let map = MAP.get_or_init(|| {
        let config: ReflectConfig = toml_config(
            r#"
method = [
  { path = "/warden.example.v1.WorkflowService/StartWorkflow", kind = "execute", namespace = "namespace", instance = "workflow_id", args = "input" },
  { path = "/warden.example.v1.WorkflowService/SignalWorkflow", kind = "signal", namespace = "namespace", instance = "execution.workflow_id", name = "signal_name", args = "input" },
  { path = "/warden.example.v1.WorkflowService/UpdateWorkflow", kind = "update", namespace = "namespace", instance = "execution.workflow_id", name = "update_name", args = "input" },
]
"#,
        );
        config.build(warden_example::FILE_DESCRIPTOR_SET).unwrap()
    });
    decode(map, data);
}

fn toml_config<T: serde::de::DeserializeOwned>(text: &str) -> T {
    toml::from_str(text).unwrap()
}

/// The secret both the JWT mapper and the passport verifier use (HS256: no key files).
pub const SECRET: &[u8] = b"fuzzing-secret-fuzzing-secret-32b!";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    })
}

/// The JWT verifier (an HS256 mapper): the bytes as a bearer token.
pub fn jwt(data: &[u8]) {
    static MAPPER: OnceLock<Arc<dyn ClaimMapper>> = OnceLock::new();
    let mapper = MAPPER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("warden-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("secret");
        std::fs::write(&secret, SECRET).unwrap();
        let config: warden_identity::jwt::JwtConfig = toml_config(&format!(
            "issuers = [\"https://issuer.example/\"]\naudiences = [\"warden\"]\nkeys = [{{ type = \"secret\", path = \"{}\", kid = \"k1\" }}]\n",
            secret.display()
        ));
        Arc::new(runtime().block_on(config.build()).unwrap())
    });
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let info = AuthInfo::new().with_bearer(Secret::new(text));
    let _ = runtime().block_on(async { mapper.map(&info).await });
}

/// The passport fixtures: a verifier trusting `SECRET`, the binding it expects.
pub fn passport_fixture() -> &'static (Issuer, Verifier, Binding) {
    static FIXTURE: OnceLock<(Issuer, Verifier, Binding)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = SigningKey::from_secret(SECRET, "edge").unwrap();
        let keys = TrustedKeys::new().with_secret(SECRET, "edge").unwrap();
        let binding = Binding::new("orders", "o-1", OperationKind::Signal).with_name("approve");
        (
            Issuer::new("warden-proxy", key),
            Verifier::new(keys, "warden-proxy"),
            binding,
        )
    })
}

/// The passport verifier: the bytes as a passport for a signal.
pub fn passport(data: &[u8]) {
    let (_, verifier, binding) = passport_fixture();
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = verifier.verify(token, binding, 1_800_000_000);
    }
}

/// A valid passport, as a seed.
pub fn valid_passport() -> String {
    let (issuer, _, binding) = passport_fixture();
    issuer
        .issue(&Claims::for_subject("alice"), binding)
        .unwrap()
}

/// The rules-file parser.
pub fn rules(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = warden_policy::rules::RuleSet::parse(std::path::Path::new("fuzz.toml"), text);
    }
}

/// The proxy-config parser.
pub fn proxy_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = warden_proxy::ProxyConfig::parse(std::path::Path::new("fuzz.toml"), text);
    }
}

/// The decision point's model parser, as TOML and as JSON.
pub fn pdp_model(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = warden_pdp::Model::parse(text, false, "fuzz.toml");
        let _ = warden_pdp::Model::parse(text, true, "fuzz.json");
    }
}

fn encode<M: prost::Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}

fn framed(compressed: bool, payload: &[u8]) -> Vec<u8> {
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

/// The seeds of `target`: inputs shaped like real ones — the hostile corpus's frames in every
/// encoding, the example service's messages, valid tokens and passports, the example configs,
/// and the corpus's method paths and path tricks. The mutation test starts from them, and
/// `fuzz-seeds DIR` writes them for libFuzzer.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let text = |s: &str| s.as_bytes().to_vec();
    match target {
        "frame" => {
            let mut seeds = Vec::new();
            for message in messages() {
                seeds.push([vec![3], framed(false, &message)].concat());
                let mut gzip =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gzip.write_all(&message).unwrap();
                seeds.push([vec![0], framed(true, &gzip.finish().unwrap())].concat());
                let mut zlib =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                zlib.write_all(&message).unwrap();
                seeds.push([vec![1], framed(true, &zlib.finish().unwrap())].concat());
                seeds.push(
                    [
                        vec![2],
                        framed(true, &zstd::encode_all(&message[..], 1).unwrap()),
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
            text(&valid_passport()),
            text(
                "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSIsImlzcyI6Imh0dHBzOi8vaXNzdWVyLmV4YW1wbGUvIn0.c2ln",
            ),
            text("eyJhbGciOiJub25lIn0.e30."),
        ],
        "passport" => vec![text(&valid_passport())],
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
        "method_path" => method_paths().into_iter().map(String::into_bytes).collect(),
        other => unreachable!("no seeds for {other}"),
    }
}

/// Every method of the example service, and the hostile corpus's tricks on each.
fn method_paths() -> Vec<String> {
    let mut paths = Vec::new();
    for path in example_map().paths() {
        let (service, method) = path[1..].split_once('/').unwrap();
        let lower = method.to_ascii_lowercase();
        let encoded = format!("%{:02X}{}", method.as_bytes()[0], &method[1..]);
        paths.extend([
            path.to_owned(),
            format!("{path}/extra"),
            format!("/{service}//{method}"),
            format!("{path}/"),
            format!("/{path}"),
            format!("/{service}/./{method}"),
            format!("/x/../{service}/{method}"),
            format!("/{service}/{lower}"),
            format!("/{service}/{encoded}"),
            format!("/{service}/{method}?q=1"),
            format!("/{service}/{}", "M".repeat(4096)),
        ]);
    }
    paths
}
