//! Fuzz targets: each function takes arbitrary bytes and must return without panicking,
//! whatever they are. libFuzzer drives them through `fuzz/` (`cargo +nightly fuzz run NAME`);
//! `tests/mutations.rs` drives them on stable in every test run, from seeds shaped like real
//! input (the hostile corpus's frames, example configs, valid tokens and passports).

#![allow(clippy::unwrap_used, clippy::expect_used)] // fixtures built once from constants

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use warden_core::{AuthInfo, ClaimMapper, Claims, OperationKind, Secret};
use warden_passport::{Binding, Issuer, SigningKey, TrustedKeys, Verifier};
use warden_tower::map::{OperationMap, ReflectConfig};

/// A fuzz target: arbitrary bytes in, no panic out.
pub type Target = fn(&[u8]);

/// The targets, by name: what `fuzz/fuzz_targets/NAME.rs` runs.
pub const TARGETS: [(&str, Target); 8] = [
    ("frame", frame),
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
