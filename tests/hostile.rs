//! The hostile-request corpus: every case is sent raw over HTTP/2 to two targets — a tonic
//! server behind Warden's full stack, and `warden proxy` (the same code the binary runs) in
//! front of an upstream that records every call reaching it — and must get exactly the
//! expected answer while reaching neither the handler nor the upstream. Token attacks go to
//! both again, verifying JWTs against a real JWKS endpoint, and must name their reason. A
//! positive control first proves each target would have recorded a call.
//!
//! Prints `hostile corpus: N cases (…) on 4 targets, M reached a handler or upstream`; fails
//! loudly if M is not 0.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use std::{io::Write, net::SocketAddr, path::PathBuf};

use bytes::Bytes;
use http_body_util::Full;
use rand::{Rng, SeedableRng, rngs::StdRng};
use support::*;
use warden_example::{
    CallLog,
    issuer::{self, JwksServer, SigningKey},
    path, pb,
    policies::{demo_layer, demo_layer_with},
};

const OK: i32 = 0;
const INVALID_ARGUMENT: i32 = 3;
const PERMISSION_DENIED: i32 = 7;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNIMPLEMENTED: i32 = 12;
const UNAUTHENTICATED: i32 = 16;
/// What the proxy answers any HTTP/1.1 call to a gRPC method: 426 Upgrade Required (to
/// HTTP/2; an h2c upgrade request is not taken up).
const HTTP1_REFUSAL: u16 = 426;

const SERVICE: &str = "warden.example.v1.WorkflowService";
const METHODS: [&str; 11] = [
    "StartWorkflow",
    "SignalWorkflow",
    "QueryWorkflow",
    "UpdateWorkflow",
    "CancelWorkflow",
    "TerminateWorkflow",
    "DescribeWorkflow",
    "ListWorkflows",
    "WatchWorkflow",
    "SignalWorkflowBatch",
    "SignalWorkflowStream",
];

/// What a case must be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// HTTP 200 with this `grpc-status`.
    Grpc(i32),
    /// This HTTP status (a refusal of a non-gRPC request).
    Http(u16),
}

#[derive(Clone, Debug)]
struct Case {
    name: String,
    path: String,
    /// `None`: no `content-type` header.
    content_type: Option<String>,
    /// Extra headers; credentials are added unless `credentials` is false.
    headers: Vec<(String, String)>,
    credentials: bool,
    body: Vec<u8>,
    expect: Expect,
    /// Sent over HTTP/1.1 instead of HTTP/2, to the proxy only: tonic's own server refuses
    /// HTTP/1.1 at the connection, before any response.
    http1: bool,
    /// A token attack, sent to the targets that verify JWTs only.
    jwt: bool,
    /// A part the `grpc-message` must hold.
    message: Option<&'static str>,
}

impl Case {
    fn new(
        name: impl Into<String>,
        path: impl Into<String>,
        body: Vec<u8>,
        expect: Expect,
    ) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            content_type: Some("application/grpc".to_owned()),
            headers: Vec::new(),
            credentials: true,
            body,
            expect,
            http1: false,
            jwt: false,
            message: None,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn content_type(mut self, value: Option<&str>) -> Self {
        self.content_type = value.map(str::to_owned);
        self
    }

    fn http1(mut self) -> Self {
        self.http1 = true;
        self
    }

    fn anonymous(mut self) -> Self {
        self.credentials = false;
        self
    }

    /// For the JWT-verifying targets, carrying `token` as its only credential.
    fn jwt(mut self, token: &str) -> Self {
        self.jwt = true;
        self.anonymous()
            .header("authorization", &format!("Bearer {token}"))
    }

    fn message(mut self, part: &'static str) -> Self {
        self.message = Some(part);
        self
    }

    /// Whether `target` gets this case.
    fn for_target(&self, target: &Target) -> bool {
        self.jwt == target.jwt && (!self.http1 || target.proxy)
    }

    fn request(&self, addr: SocketAddr) -> http::Request<Full<Bytes>> {
        let mut builder = http::Request::post(format!("http://{addr}{}", self.path));
        if !self.http1 {
            builder = builder.header("te", "trailers");
        }
        if let Some(content_type) = &self.content_type {
            builder = builder.header("content-type", content_type);
        }
        if self.credentials {
            // The stack reads the bearer token, the proxy the API key: the same caller, alice,
            // a writer of `orders`.
            builder = builder
                .header("authorization", "Bearer alice-token")
                .header("x-api-key", "alice-token");
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(Full::new(Bytes::from(self.body.clone())))
            .unwrap()
    }
}

/// A start alice may make: what reaches the handler when nothing is wrong.
fn allowed_start() -> Vec<u8> {
    encode(&start("orders", "corpus-1"))
}

/// A valid message for `method`, addressed to what alice may change.
fn message_for(method: &str) -> Vec<u8> {
    match method {
        "StartWorkflow" => allowed_start(),
        "SignalWorkflow" | "SignalWorkflowBatch" | "SignalWorkflowStream" => {
            encode(&signal("orders", "corpus-1", "approve"))
        }
        "QueryWorkflow" => encode(&query("orders", "corpus-1")),
        "UpdateWorkflow" => encode(&update("orders", "corpus-1", 5)),
        "CancelWorkflow" => encode(&pb::CancelWorkflowRequest {
            namespace: "orders".into(),
            execution: execution("corpus-1"),
            reason: "corpus".into(),
        }),
        "TerminateWorkflow" => encode(&pb::TerminateWorkflowRequest {
            namespace: "orders".into(),
            execution: execution("corpus-1"),
            reason: "corpus".into(),
        }),
        "DescribeWorkflow" => encode(&pb::DescribeWorkflowRequest {
            namespace: "orders".into(),
            execution: execution("corpus-1"),
        }),
        "ListWorkflows" => encode(&pb::ListWorkflowsRequest {
            namespace: "orders".into(),
        }),
        "WatchWorkflow" => encode(&pb::WatchWorkflowRequest {
            namespace: "orders".into(),
            execution: execution("corpus-1"),
        }),
        other => unreachable!("no message for {other}"),
    }
}

fn bomb(encoding: &str) -> Vec<u8> {
    let zeros = vec![0u8; 16 * 1024 * 1024];
    match encoding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(&zeros).unwrap();
            e.finish().unwrap()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(&zeros).unwrap();
            e.finish().unwrap()
        }
        "zstd" => zstd::encode_all(&zeros[..], 19).unwrap(),
        other => unreachable!("no bomb for {other}"),
    }
}

fn corpus(key: &SigningKey) -> Vec<Case> {
    use Expect::*;
    let start_path = path("StartWorkflow");
    let start = allowed_start();
    let mut cases = Vec::new();

    // Frames cut short: every length of the payload, the prefix announcing the whole.
    let whole = frame(false, &start);
    for cut in 5..whole.len() {
        cases.push(Case::new(
            format!("frame cut at byte {cut} of {}", whole.len()),
            &start_path,
            whole[..cut].to_vec(),
            Grpc(INVALID_ARGUMENT),
        ));
    }
    for cut in 1..5 {
        cases.push(Case::new(
            format!("length prefix cut to {cut} bytes"),
            &start_path,
            whole[..cut].to_vec(),
            Grpc(INVALID_ARGUMENT),
        ));
    }
    // A prefix announcing more than the body brings.
    for extra in [1u32, 2, 3, 7, 100, 1000, 65_535] {
        let mut body = frame(false, &start);
        let announced = start.len() as u32 + extra;
        body[1..5].copy_from_slice(&announced.to_be_bytes());
        cases.push(Case::new(
            format!("prefix announces {extra} more bytes than sent"),
            &start_path,
            body,
            Grpc(INVALID_ARGUMENT),
        ));
    }
    // A prefix over the limit, refused before the body is read.
    for announced in [
        4 * 1024 * 1024 + 1,
        16 * 1024 * 1024,
        i32::MAX as u32,
        u32::MAX,
    ] {
        let mut body = vec![0u8];
        body.extend_from_slice(&announced.to_be_bytes());
        body.extend_from_slice(&start);
        cases.push(Case::new(
            format!("prefix announces {announced} bytes"),
            &start_path,
            body,
            Grpc(RESOURCE_EXHAUSTED),
        ));
    }
    // Flags other than 0 and 1.
    for flag in [2u8, 3, 0x7f, 0x80, 0xff] {
        let mut body = frame(false, &start);
        body[0] = flag;
        cases.push(Case::new(
            format!("compressed flag {flag:#04x}"),
            &start_path,
            body,
            Grpc(INVALID_ARGUMENT),
        ));
    }
    // Compression.
    cases.push(Case::new(
        "compressed flag without grpc-encoding",
        &start_path,
        frame(true, &start),
        Grpc(INVALID_ARGUMENT),
    ));
    for encoding in ["br", "snappy", "lz4", "x-custom", "compress", "gzip;q=1"] {
        cases.push(
            Case::new(
                format!("unknown grpc-encoding `{encoding}`"),
                &start_path,
                frame(true, &start),
                Grpc(UNIMPLEMENTED),
            )
            .header("grpc-encoding", encoding),
        );
    }
    for encoding in ["gzip", "deflate", "zstd"] {
        cases.push(
            Case::new(
                format!("{encoding} bomb (16 MiB of zeros)"),
                &start_path,
                frame(true, &bomb(encoding)),
                Grpc(RESOURCE_EXHAUSTED),
            )
            .header("grpc-encoding", encoding),
        );
        cases.push(
            Case::new(
                format!("corrupt {encoding} data"),
                &start_path,
                frame(true, b"\x1f\x8b\x08\x00garbage that does not inflate"),
                Grpc(INVALID_ARGUMENT),
            )
            .header("grpc-encoding", encoding),
        );
    }
    // Several messages where the method takes one: all but the client-streaming methods.
    for method in METHODS
        .into_iter()
        .filter(|m| !matches!(*m, "SignalWorkflowBatch" | "SignalWorkflowStream"))
    {
        for count in [2usize, 3] {
            let one = frame(false, &message_for(method));
            cases.push(Case::new(
                format!("{count} messages to unary or server-streaming {method}"),
                path(method),
                one.repeat(count),
                Grpc(INVALID_ARGUMENT),
            ));
        }
    }
    // Bytes that are no frame at all (the prefix always announces more than follows).
    let mut rng = StdRng::seed_from_u64(0x0c0de);
    for i in 0..30 {
        let len = rng.gen_range(5..64);
        let mut body: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
        body[0] = 0;
        let announced = len as u32 + rng.gen_range(1..1000);
        body[1..5].copy_from_slice(&announced.to_be_bytes());
        cases.push(Case::new(
            format!("garbage body {i}"),
            &start_path,
            body,
            Grpc(INVALID_ARGUMENT),
        ));
    }
    cases.push(Case::new(
        "empty body to a unary method",
        &start_path,
        Vec::new(),
        Grpc(INVALID_ARGUMENT),
    ));

    // Path tricks on every method, each with a message alice could otherwise send.
    for method in METHODS {
        let body = frame(false, &message_for(method));
        let lower = method.to_ascii_lowercase();
        let encoded = format!("%{:02X}{}", method.as_bytes()[0], &method[1..]);
        for (trick, trick_path, expect) in [
            (
                "an extra segment",
                format!("/{SERVICE}/{method}/extra"),
                Grpc(INVALID_ARGUMENT),
            ),
            (
                "an empty segment",
                format!("/{SERVICE}//{method}"),
                Grpc(INVALID_ARGUMENT),
            ),
            (
                "a trailing slash",
                format!("/{SERVICE}/{method}/"),
                Grpc(INVALID_ARGUMENT),
            ),
            (
                "a leading double slash",
                format!("//{SERVICE}/{method}"),
                Grpc(INVALID_ARGUMENT),
            ),
            (
                "a dot segment",
                format!("/{SERVICE}/./{method}"),
                Grpc(INVALID_ARGUMENT),
            ),
            (
                "a dot-dot segment",
                format!("/x/../{SERVICE}/{method}"),
                Grpc(INVALID_ARGUMENT),
            ),
            (
                "the method in lower case",
                format!("/{SERVICE}/{lower}"),
                Grpc(PERMISSION_DENIED),
            ),
            (
                "the service in upper case",
                format!("/{}/{method}", SERVICE.to_ascii_uppercase()),
                Grpc(PERMISSION_DENIED),
            ),
            (
                "a percent-encoded letter",
                format!("/{SERVICE}/{encoded}"),
                Grpc(INVALID_ARGUMENT),
            ),
            (
                "an empty method",
                format!("/{SERVICE}/"),
                Grpc(INVALID_ARGUMENT),
            ),
            (
                "a very long method",
                format!("/{SERVICE}/{method}{}", "A".repeat(2000)),
                Grpc(PERMISSION_DENIED),
            ),
        ] {
            cases.push(Case::new(
                format!("{method}: {trick}"),
                trick_path,
                body.clone(),
                expect,
            ));
        }
    }

    // Content types that are not gRPC's protobuf.
    for (content_type, expect) in [
        (Some("application/grpc+json"), Grpc(UNIMPLEMENTED)),
        (Some("application/grpc+thrift"), Grpc(UNIMPLEMENTED)),
        (Some("application/json"), Http(415)),
        (Some("text/plain"), Http(415)),
        (Some("application/grpc-web"), Http(415)),
        (Some("application/grpcx"), Http(415)),
        (None, Http(415)),
    ] {
        cases.push(
            Case::new(
                format!("content-type {content_type:?}"),
                &start_path,
                frame(false, &start),
                expect,
            )
            .content_type(content_type),
        );
    }

    // Credentials.
    cases.push(
        Case::new(
            "no credentials",
            &start_path,
            frame(false, &start),
            Grpc(UNAUTHENTICATED),
        )
        .anonymous(),
    );
    for (what, authorization) in [
        ("an unknown bearer token", "Bearer mallory-token"),
        ("a bearer token with a space in it", "Bearer alice token"),
        (
            "a JWT with alg none",
            "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.",
        ),
        (
            "a very long bearer token",
            &format!("Bearer {}", "t".repeat(8000)),
        ),
    ] {
        cases.push(
            Case::new(
                format!("authorization: {what}"),
                &start_path,
                frame(false, &start),
                Grpc(UNAUTHENTICATED),
            )
            .anonymous()
            .header("authorization", authorization)
            .header("x-api-key", "mallory-key"),
        );
    }
    // Two credentials where one is expected: never "the first that works".
    cases.push(
        Case::new(
            "a second, unknown bearer token beside alice's",
            &start_path,
            frame(false, &start),
            Grpc(UNAUTHENTICATED),
        )
        .header("authorization", "Bearer mallory-token")
        .header("x-api-key", "mallory-key"),
    );
    // Forged context: headers cannot change what the message asks.
    let billing = frame(false, &encode(&support::start("billing", "corpus-forged")));
    for (name, value) in [
        ("temporal-namespace", "orders"),
        ("x-namespace", "orders"),
        ("x-warden-subject", "root"),
        ("warden-passport", "eyJhbGciOiJFZERTQSJ9.e30.c2ln"),
    ] {
        cases.push(
            Case::new(
                format!("forged `{name}` on a start in billing"),
                &start_path,
                billing.clone(),
                Grpc(PERMISSION_DENIED),
            )
            .header(name, value),
        );
    }
    // HTTP/1.1 to the proxy, which listens for it only to refuse it clearly: plain, asking
    // to upgrade to h2c, and with a body that would otherwise be allowed.
    let upgrade = [
        ("connection", "Upgrade, HTTP2-Settings"),
        ("upgrade", "h2c"),
        ("http2-settings", "AAMAAABkAAQAAP__"),
    ];
    for method in METHODS {
        cases.push(
            Case::new(
                format!("HTTP/1.1 to {method}"),
                path(method),
                frame(false, &message_for(method)),
                Http(HTTP1_REFUSAL),
            )
            .http1(),
        );
        let mut upgraded = Case::new(
            format!("HTTP/1.1 with an h2c upgrade to {method}"),
            path(method),
            frame(false, &message_for(method)),
            Http(HTTP1_REFUSAL),
        )
        .http1();
        for (name, value) in upgrade {
            upgraded = upgraded.header(name, value);
        }
        cases.push(upgraded);
    }
    // Every token attack, on a start and a signal alice's valid token would be allowed, to
    // the targets that verify JWTs against a real JWKS endpoint: refused with the reason.
    let good = issuer::claims("alice", &["orders:write"]);
    for method in ["StartWorkflow", "SignalWorkflow"] {
        for attack in issuer::jwt_attacks(key, &good, 10_000) {
            cases.push(
                Case::new(
                    format!("JWT: {} on {method}", attack.name),
                    path(method),
                    frame(false, &message_for(method)),
                    Grpc(UNAUTHENTICATED),
                )
                .jwt(&attack.token)
                .message(attack.reason),
            );
        }
    }
    cases
}

struct Target {
    name: &'static str,
    address: SocketAddr,
    log: CallLog,
    /// `warden proxy` (which answers HTTP/1.1), not the stack in a tonic server.
    proxy: bool,
    /// Callers authenticate with JWTs, not static tokens or API keys.
    jwt: bool,
}

/// What the targets need kept alive.
struct Running {
    proxies: Vec<warden_proxy::Proxy>,
    _jwks: JwksServer,
    dir: PathBuf,
}

/// The stack and the proxy with static credentials, and both again verifying JWTs signed by
/// `key` against a JWKS endpoint.
async fn targets(key: &SigningKey) -> (Vec<Target>, Running) {
    let dir = std::env::temp_dir().join(format!("warden-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = JwksServer::start(&[key]).await;
    let (stack, stack_log) = serve(demo_layer()).await;
    let (upstream, upstream_log) = serve_bare().await;
    let proxy = warden_proxy::Proxy::start(example_proxy_config(upstream, &dir, ""), &dir)
        .await
        .unwrap();
    let mapper = issuer::jwks_config(&jwks.url, 0).build().await.unwrap();
    let (jwt_stack, jwt_stack_log) = serve(demo_layer_with(mapper)).await;
    let (jwt_upstream, jwt_upstream_log) = serve_bare().await;
    let jwt_proxy = warden_proxy::Proxy::start(
        example_proxy_config_with(
            jwt_upstream,
            &dir,
            "",
            &issuer::jwks_mapper_toml(&jwks.url),
            &example_policies(),
        ),
        &dir,
    )
    .await
    .unwrap();
    let target = |name, address, log, proxy, jwt| Target {
        name,
        address,
        log,
        proxy,
        jwt,
    };
    let targets = vec![
        target("stack", stack, stack_log, false, false),
        target("proxy", proxy.local_addr(), upstream_log, true, false),
        target("stack (JWT)", jwt_stack, jwt_stack_log, false, true),
        target(
            "proxy (JWT)",
            jwt_proxy.local_addr(),
            jwt_upstream_log,
            true,
            true,
        ),
    ];
    let running = Running {
        proxies: vec![proxy, jwt_proxy],
        _jwks: jwks,
        dir,
    };
    (targets, running)
}

fn answer(response: &RawResponse) -> Expect {
    if response.status == http::StatusCode::OK {
        Expect::Grpc(response.grpc_status().unwrap_or(-1))
    } else {
        Expect::Http(response.status.as_u16())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_request_is_refused_as_expected_and_reaches_no_handler_or_upstream() {
    let key = SigningKey::rsa("corpus-1");
    let (targets, running) = targets(&key).await;
    let cases = corpus(&key);
    assert!(cases.len() >= 250, "the corpus has {} cases", cases.len());
    let control = Case::new(
        "control",
        path("StartWorkflow"),
        frame(false, &allowed_start()),
        Expect::Grpc(OK),
    );
    let jwt_control = control
        .clone()
        .jwt(&key.sign(&issuer::claims("alice", &["orders:write"])));

    let mut wrong = Vec::new();
    let mut reached = Vec::new();
    for target in &targets {
        // The control reaches the handler or upstream: the log below can see a call.
        let control = if target.jwt { &jwt_control } else { &control };
        let response = raw(control.request(target.address), true).await;
        assert_eq!(
            answer(&response),
            Expect::Grpc(OK),
            "{}: the control call: {response:?}",
            target.name
        );
        assert_eq!(
            target.log.len(),
            1,
            "{}: the control was recorded",
            target.name
        );
        for case in cases.iter().filter(|c| c.for_target(target)) {
            let before = target.log.len();
            let response = raw(case.request(target.address), !case.http1).await;
            let got = answer(&response);
            let message = response.grpc_message();
            if let Some(part) = case.message.filter(|part| !message.contains(part)) {
                wrong.push(format!(
                    "{}: {}: the message `{message}` does not name `{part}`",
                    target.name, case.name
                ));
            }
            if got != case.expect {
                wrong.push(format!(
                    "{}: {}: expected {:?}, got {got:?} ({})",
                    target.name,
                    case.name,
                    case.expect,
                    response.grpc_message()
                ));
            }
            if target.log.len() != before {
                reached.push(format!("{}: {}", target.name, case.name));
            }
        }
    }
    println!(
        "hostile corpus: {} cases ({} of them HTTP/1.1, to the proxies only; {} token attacks, to the JWT-verifying targets only) on {} targets, {} reached a handler or upstream",
        cases.len(),
        cases.iter().filter(|c| c.http1).count(),
        cases.iter().filter(|c| c.jwt).count(),
        targets.len(),
        reached.len()
    );
    for proxy in &running.proxies {
        proxy.shutdown();
    }
    let _ = std::fs::remove_dir_all(&running.dir);
    assert!(
        reached.is_empty(),
        "reached a handler or upstream:\n{}",
        reached.join("\n")
    );
    assert!(
        wrong.is_empty(),
        "{} answers differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
