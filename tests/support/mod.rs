//! Shared helpers for Warden's integration tests: real servers on loopback, clients, and raw
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly
//! HTTP/2 requests for malformed input.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::{convert::Infallible, net::SocketAddr};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{
    Request,
    body::Body,
    server::NamedService,
    transport::{Channel, Endpoint, Server},
};
use tower::{Layer, Service};
use warden_example::{
    CallLog, ExampleService,
    pb::{workflow_service_client::WorkflowServiceClient, *},
};

pub mod load;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves the example service behind `layer` with tonic on a free loopback port.
pub async fn serve<L, ResBody>(layer: L) -> (SocketAddr, CallLog)
where
    L: Layer<tonic::service::Routes> + Clone + Send + 'static,
    L::Service:
        Service<http::Request<Body>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    <L::Service as Service<http::Request<Body>>>::Future: Send,
    <L::Service as Service<http::Request<Body>>>::Error: Into<BoxError> + Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let service = ExampleService::new();
    let log = service.log();
    (serve_service(layer, service.into_server()).await, log)
}

/// Serves any tonic service behind `layer` on a free loopback port.
pub async fn serve_service<L, S, ResBody>(layer: L, service: S) -> SocketAddr
where
    L: Layer<tonic::service::Routes> + Clone + Send + 'static,
    L::Service:
        Service<http::Request<Body>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    <L::Service as Service<http::Request<Body>>>::Future: Send,
    <L::Service as Service<http::Request<Body>>>::Error: Into<BoxError> + Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
    S: Service<http::Request<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: axum::response::IntoResponse,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let router = Server::builder().layer(layer).add_service(service);
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    addr
}

/// Serves the example service with no Warden at all.
pub async fn serve_bare() -> (SocketAddr, CallLog) {
    serve(tower::layer::util::Identity::new()).await
}

pub async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to the test server")
}

pub async fn client(addr: SocketAddr) -> WorkflowServiceClient<Channel> {
    WorkflowServiceClient::new(channel(addr).await)
}

/// A request carrying `authorization: Bearer <token>`.
pub fn as_user<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("token is ASCII"),
    );
    request
}

/// `message` as alice, a writer of `orders`, to either kind of target: the demo stack reads her
/// bearer token, `example_proxy_config`'s proxy her API key.
pub fn as_alice<T>(message: T) -> Request<T> {
    let mut request = as_user("alice-token", message);
    request
        .metadata_mut()
        .insert("x-api-key", "alice-token".parse().expect("ASCII"));
    request
}

/// This process's resident memory, in KiB.
pub fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

pub fn execution(id: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: id.to_owned(),
        run_id: String::new(),
    })
}

pub fn start(namespace: &str, id: &str) -> StartWorkflowRequest {
    StartWorkflowRequest {
        namespace: namespace.into(),
        workflow_id: id.into(),
        workflow_type: "OrderWorkflow".into(),
        task_queue: "orders".into(),
        input: br#"{"customer":"c-1"}"#.to_vec(),
        identity: "test".into(),
    }
}

pub fn signal(namespace: &str, id: &str, name: &str) -> SignalWorkflowRequest {
    SignalWorkflowRequest {
        namespace: namespace.into(),
        execution: execution(id),
        signal_name: name.into(),
        input: Vec::new(),
        identity: "test".into(),
    }
}

pub fn query(namespace: &str, id: &str) -> QueryWorkflowRequest {
    QueryWorkflowRequest {
        namespace: namespace.into(),
        execution: execution(id),
        query_type: "status".into(),
        args: Vec::new(),
    }
}

pub fn update(namespace: &str, id: &str, amount: u64) -> UpdateWorkflowRequest {
    UpdateWorkflowRequest {
        namespace: namespace.into(),
        execution: execution(id),
        update_name: "set-discount".into(),
        input: format!(r#"{{"amount":{amount}}}"#).into_bytes(),
        identity: "test".into(),
    }
}

/// A gRPC frame: the 5-byte prefix and the payload.
pub fn frame(compressed: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::from(compressed)];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// What a raw request got back: HTTP status, headers (with trailers merged in) and body.
#[derive(Debug)]
pub struct RawResponse {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl RawResponse {
    pub fn grpc_status(&self) -> Option<i32> {
        self.headers.get("grpc-status")?.to_str().ok()?.parse().ok()
    }

    pub fn grpc_message(&self) -> String {
        let raw = self
            .headers
            .get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .into_owned()
    }
}

/// Sends one raw request over HTTP/2 (prior knowledge) or HTTP/1.1, with any body (a
/// streaming one can stall on purpose).
pub async fn raw<B>(request: http::Request<B>, http2: bool) -> RawResponse
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let client = Client::builder(TokioExecutor::new())
        .http2_only(http2)
        .build_http::<B>();
    let response = client.request(request).await.expect("raw request");
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.expect("read response body");
    let mut headers = parts.headers;
    if let Some(trailers) = collected.trailers() {
        headers.extend(trailers.clone());
    }
    RawResponse {
        status: parts.status,
        headers,
        body: collected.to_bytes(),
    }
}

/// A raw gRPC POST to `path` with `body` and extra headers.
pub fn grpc_request(
    addr: SocketAddr,
    path: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> http::Request<Full<Bytes>> {
    let mut builder = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", "Bearer alice-token");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(Bytes::from(body))).expect("request")
}

pub fn encode<M: prost::Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}

/// A `warden proxy` config in front of the example service at `upstream`: its methods by their
/// descriptors (written into `dir`), alice (API key `alice-token`) a writer of `orders`, the
/// demo stack's role model; `listen` adds settings to `[listen]`.
pub fn example_proxy_config(
    upstream: SocketAddr,
    dir: &std::path::Path,
    listen: &str,
) -> warden_proxy::ProxyConfig {
    example_proxy_config_with(upstream, dir, listen, EXAMPLE_IDENTITY, &example_policies())
}

/// The identity of [`example_proxy_config`]: alice, a writer of `orders`, by her API key
/// (`alice-token` in `x-api-key`).
pub const EXAMPLE_IDENTITY: &str = r#"
[identity]
api_key_header = "x-api-key"

[[identity.mappers]]
type = "api_key"
keys = [{ hash = "sha256:9c220f200955d76c0a38d308225e0ef10c5f971acaf2f8d1d8f732affa5bd1dc", subject = "alice", namespaces = { orders = "writer" } }]
"#;

/// The policies of [`example_proxy_config`]: writers of a namespace may call every method in
/// it.
pub fn example_policies() -> String {
    format!(
        r#"
[policies.roles]
type = "roles"
table = "empty"
methods = {{ "{SERVICE}/*" = {{ scope = "namespace", access = "write" }} }}

[authorize]
default = ["roles"]
"#
    )
}

const SERVICE: &str = "warden.example.v1.WorkflowService";

/// [`example_proxy_config`] with callers authenticated by `identity` (the `[identity]` tables)
/// and decided by `policies` (the `[policies.*]` and `[authorize]` tables) instead.
pub fn example_proxy_config_with(
    upstream: SocketAddr,
    dir: &std::path::Path,
    listen: &str,
    identity: &str,
    policies: &str,
) -> warden_proxy::ProxyConfig {
    std::fs::write(
        dir.join("example.binpb"),
        warden_example::FILE_DESCRIPTOR_SET,
    )
    .unwrap();
    let text = format!(
        r#"
[listen]
address = "127.0.0.1:0"
{listen}

[upstream]
address = "http://{upstream}"

[service]
preset = "none"
descriptor_set = "example.binpb"
method = [
    {{ path = "/{service}/StartWorkflow", kind = "execute", namespace = "namespace", instance = "workflow_id" }},
    {{ path = "/{service}/SignalWorkflow", kind = "signal", namespace = "namespace", instance = "execution.workflow_id", name = "signal_name" }},
    {{ path = "/{service}/QueryWorkflow", kind = "query", namespace = "namespace", instance = "execution.workflow_id", name = "query_type" }},
    {{ path = "/{service}/UpdateWorkflow", kind = "update", namespace = "namespace", instance = "execution.workflow_id", name = "update_name" }},
    {{ path = "/{service}/CancelWorkflow", kind = "cancel", namespace = "namespace", instance = "execution.workflow_id" }},
    {{ path = "/{service}/TerminateWorkflow", kind = "terminate", namespace = "namespace", instance = "execution.workflow_id" }},
    {{ path = "/{service}/DescribeWorkflow", kind = "read", namespace = "namespace", instance = "execution.workflow_id" }},
    {{ path = "/{service}/ListWorkflows", kind = "read", namespace = "namespace" }},
    {{ path = "/{service}/WatchWorkflow", kind = "read", namespace = "namespace", instance = "execution.workflow_id" }},
    {{ path = "/{service}/SignalWorkflowBatch", kind = "signal", namespace = "namespace", instance = "execution.workflow_id", name = "signal_name" }},
    {{ path = "/{service}/SignalWorkflowStream", kind = "signal", namespace = "namespace", instance = "execution.workflow_id", name = "signal_name" }},
]
{identity}
{policies}
"#,
        service = SERVICE
    );
    warden_proxy::ProxyConfig::parse(&dir.join("proxy.toml"), &text).unwrap()
}

/// Log output captured in memory: the test binary's process-wide `tracing` subscriber.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Installs a plain-text subscriber for `warden*` targets at `info` writing here; once per
    /// test binary.
    pub fn install() -> Self {
        let captured = Self::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_env_filter("warden=info")
            .with_ansi(false)
            .init();
        captured
    }

    /// How many bytes were written so far (an offset for [`Captured::since`]).
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Everything written from `offset` on.
    pub fn since(&self, offset: usize) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()[offset..]).into_owned()
    }

    /// Asserts that one line written from `offset` on holds every one of `parts`. Field
    /// values are quoted in the log (`kind="cancel"`); the parts are written bare.
    pub fn assert_logged_since(&self, offset: usize, parts: &[&str]) {
        let logged = self.since(offset);
        assert!(
            logged.lines().any(|line| {
                let bare = line.replace('"', "");
                parts.iter().all(|part| bare.contains(part))
            }),
            "no log line with {parts:?} in:\n{logged}"
        );
    }
}

/// A snapshot of the `metrics` debugging recorder.
pub type MetricsSnapshot = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    metrics_util::debugging::DebugValue,
)>;

/// The sum of the counters named `name` whose labels include `labels`.
pub fn counter(snapshot: &MetricsSnapshot, name: &str, labels: &[(&str, &str)]) -> u64 {
    snapshot
        .iter()
        .filter(|(key, _, _, _)| {
            let key = key.key();
            key.name() == name
                && labels
                    .iter()
                    .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
        })
        .map(|(_, _, _, value)| match value {
            metrics_util::debugging::DebugValue::Counter(n) => *n,
            _ => 0,
        })
        .sum()
}

/// Callers by their bare names as tokens: alice, bob and mallory write `orders`; root is a
/// system admin. Who started an instance, not the role, tells these writers apart.
pub fn instance_identities() -> warden_core::identity::StaticTokenMapper {
    use warden_core::{Claims, Roles};
    let writer =
        |name: &str| Claims::for_subject(name).with_namespace_role("orders", Roles::WRITER);
    warden_core::identity::StaticTokenMapper::new()
        .with_token("alice", writer("alice"))
        .with_token("bob", writer("bob"))
        .with_token("mallory", writer("mallory"))
        .with_token(
            "root",
            Claims::for_subject("root").with_system_role(Roles::ADMIN),
        )
}
