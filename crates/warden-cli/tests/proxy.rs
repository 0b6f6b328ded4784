//! `warden proxy` on bad input and in its life cycle: an unreachable upstream, an oversized
//! message, a forged namespace header, a caller that disconnects mid-call, health, graceful
//! shutdown and config errors — against a real Temporal dev server where one is needed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use prost::Message;
use support::{Issuer, ProxyProcess, eventually, sample, temporal, unique};
use temporalio_protos::{
    google::rpc::Status as RpcStatus,
    temporal::api::{
        common::v1::{Payload, Payloads, WorkflowExecution, WorkflowType},
        errordetails::v1::PermissionDeniedFailure,
        taskqueue::v1::TaskQueue,
        workflowservice::v1::{
            DescribeWorkflowExecutionRequest, PollWorkflowTaskQueueRequest,
            StartWorkflowExecutionRequest, workflow_service_client::WorkflowServiceClient,
        },
    },
};
use tonic::{Code, metadata::MetadataValue, transport::Channel};
use warden_example::temporal_server::{with_bearer, workflow_client};

fn config(issuer: &Issuer, upstream: &str) -> String {
    format!(
        r#"
[listen]
address = "127.0.0.1:0"
drain_seconds = 1

[upstream]
address = "http://{upstream}"
connect_timeout_ms = 2000

[instances]
type = "memory"

[policies.roles]
type = "roles"

[authorize]
default = ["roles"]

[limits]
max_message_bytes = 65536

[metrics]
address = "127.0.0.1:0"
{mapper}
"#,
        mapper = issuer.mapper_toml()
    )
}

fn start_request(namespace: &str, id: &str, input: Vec<u8>) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: namespace.to_owned(),
        workflow_id: id.to_owned(),
        workflow_type: Some(WorkflowType {
            name: "Order".to_owned(),
        }),
        task_queue: Some(TaskQueue {
            name: "nobody-polls".to_owned(),
            ..TaskQueue::default()
        }),
        input: Some(Payloads {
            payloads: vec![Payload {
                metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into(),
                data: input,
                ..Payload::default()
            }],
        }),
        request_id: unique("request"),
        identity: "proxy-tests".to_owned(),
        ..StartWorkflowExecutionRequest::default()
    }
}

/// An issuer, a proxy named `name` with [`config`] in front of the dev server, and a client.
async fn default_proxy(name: &str) -> (Issuer, ProxyProcess, WorkflowServiceClient<Channel>) {
    let issuer = Issuer::start().await;
    let proxy = ProxyProcess::start(
        name,
        &[("proxy.toml", config(&issuer, &temporal().address))],
    );
    let grpc = workflow_client(&proxy.address).await;
    (issuer, proxy, grpc)
}

/// Starts `id` in `orders` through the proxy at `address` as the bearer of `token`.
async fn start_via(address: &str, token: &str, id: &str) -> Result<(), tonic::Status> {
    workflow_client(address)
        .await
        .start_workflow_execution(with_bearer(
            start_request("orders", id, b"1".to_vec()),
            token,
        ))
        .await
        .map(drop)
}

/// Whether `id` exists in `namespace`, asked of the dev server directly.
async fn exists_upstream(namespace: &str, id: &str) -> bool {
    let mut direct = workflow_client(&temporal().address).await;
    let described = direct
        .describe_workflow_execution(DescribeWorkflowExecutionRequest {
            namespace: namespace.to_owned(),
            execution: Some(WorkflowExecution {
                workflow_id: id.to_owned(),
                run_id: String::new(),
            }),
        })
        .await;
    match described {
        Ok(_) => true,
        Err(status) if status.code() == Code::NotFound => false,
        Err(status) => panic!("describe failed: {status:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_answers_unavailable_quickly_and_is_counted() {
    let issuer = Issuer::start().await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = ProxyProcess::start(
        "down",
        &[("proxy.toml", config(&issuer, &closed.to_string()))],
    );
    let mut grpc = workflow_client(&proxy.address).await;
    let token = issuer.token("alice", &["orders:writer"]);

    let started = Instant::now();
    let status = grpc
        .start_workflow_execution(with_bearer(
            start_request("orders", "w", b"1".to_vec()),
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("upstream") && status.message().contains("unavailable"),
        "the message says the upstream is down: {}",
        status.message()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered, not hung: {:?}",
        started.elapsed()
    );
    let metrics = proxy.metrics().await;
    assert!(
        sample(
            &metrics,
            r#"warden_proxy_upstream_errors_total{reason="connect"}"#
        ) >= 1.0,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_limit_is_refused_before_it_is_forwarded() {
    let (issuer, _proxy, mut grpc) = default_proxy("limit").await;
    let token = issuer.token("alice", &["orders:writer"]);
    let id = unique("too-big");
    let input = format!("\"{}\"", "x".repeat(100_000)).into_bytes();

    let status = grpc
        .start_workflow_execution(with_bearer(start_request("orders", &id, input), &token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        !exists_upstream("orders", &id).await,
        "nothing was forwarded"
    );

    let id = unique("fits");
    grpc.start_workflow_execution(with_bearer(
        start_request("orders", &id, b"1".to_vec()),
        &token,
    ))
    .await
    .unwrap();
    assert!(
        exists_upstream("orders", &id).await,
        "a message under the limit goes through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_namespace_header_is_judged_and_forwarded_as_the_message_says() {
    let (issuer, proxy, mut grpc) = default_proxy("forged").await;

    // A writer of billing claims billing in the header but starts in orders.
    let carol = issuer.token("carol", &["billing:writer"]);
    let id = unique("forged");
    let mut request = with_bearer(start_request("orders", &id, b"1".to_vec()), &carol);
    request
        .metadata_mut()
        .insert("temporal-namespace", MetadataValue::from_static("billing"));
    let status = grpc.start_workflow_execution(request).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(status.message(), "Request unauthorized.");
    let details = RpcStatus::decode(status.details()).unwrap();
    let detail = details
        .details
        .first()
        .expect("a PermissionDeniedFailure detail");
    assert!(
        detail
            .type_url
            .ends_with("temporal.api.errordetails.v1.PermissionDeniedFailure")
    );
    let failure = PermissionDeniedFailure::decode(detail.value.as_slice()).unwrap();
    assert!(
        failure.reason.contains("orders"),
        "the reason names the message's namespace: {}",
        failure.reason
    );
    assert!(!exists_upstream("orders", &id).await);

    // A writer of orders with a header naming billing: judged and forwarded as orders.
    let alice = issuer.token("alice", &["orders:writer"]);
    let mut request = with_bearer(start_request("orders", &id, b"1".to_vec()), &alice);
    request
        .metadata_mut()
        .insert("temporal-namespace", MetadataValue::from_static("billing"));
    grpc.start_workflow_execution(request).await.unwrap();
    assert!(exists_upstream("orders", &id).await);
    assert!(
        proxy
            .logs
            .lock()
            .unwrap()
            .contains("temporal-namespace header differs"),
        "the mismatch is logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_disconnects_mid_call_frees_the_forwarded_call() {
    let issuer = Issuer::start().await;
    let proxy = ProxyProcess::start(
        "disconnect",
        &[("proxy.toml", config(&issuer, &temporal().address))],
    );
    let token = issuer.token("order-worker", &["orders:writer"]);
    let address = proxy.address.clone();
    // A long poll on a queue nobody feeds: it stays in flight upstream until the caller goes.
    let poll = tokio::spawn(async move {
        let mut grpc = workflow_client(&address).await;
        let request = PollWorkflowTaskQueueRequest {
            namespace: "orders".to_owned(),
            task_queue: Some(TaskQueue {
                name: unique("empty-queue"),
                ..TaskQueue::default()
            }),
            identity: "proxy-tests".to_owned(),
            ..PollWorkflowTaskQueueRequest::default()
        };
        let mut request = with_bearer(request, &token);
        // Temporal refuses a long poll without a deadline; the header is forwarded as is.
        request.set_timeout(Duration::from_secs(60));
        grpc.poll_workflow_task_queue(request).await
    });
    let in_flight = eventually(Duration::from_secs(10), async || {
        sample(&proxy.metrics().await, "warden_proxy_in_flight") == 1.0
    })
    .await;
    if !in_flight {
        let outcome = if poll.is_finished() {
            format!("{:?}", poll.await)
        } else {
            "still running".to_owned()
        };
        panic!(
            "the poll is not in flight; poll: {outcome}; metrics: {}; logs: {}",
            proxy.metrics().await,
            proxy.logs.lock().unwrap()
        );
    }
    assert!(!poll.is_finished(), "the poll is still waiting upstream");
    poll.abort();
    let freed = eventually(Duration::from_secs(10), async || {
        sample(&proxy.metrics().await, "warden_proxy_in_flight") == 0.0
    })
    .await;
    assert!(
        freed,
        "dropping the caller's stream frees the upstream call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_served_without_credentials_and_sigterm_shuts_down_gracefully() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };

    let issuer = Issuer::start().await;
    let proxy = ProxyProcess::start(
        "health",
        &[("proxy.toml", config(&issuer, &temporal().address))],
    );
    let channel = Channel::from_shared(proxy.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status(), ServingStatus::Serving);

    // HTTP/1.1 gets a refusal that says what is wrong, not a dropped connection.
    let answer = support::http_get_response(&format!(
        "{}/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo",
        proxy.url()
    ))
    .await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(
        answer.contains("application/grpc"),
        "the refusal says what a gRPC call needs: {answer}"
    );

    // Without credentials everything else is refused.
    let status = workflow_client(&proxy.address)
        .await
        .start_workflow_execution(start_request("orders", "w", b"1".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    let logs = std::sync::Arc::clone(&proxy.logs);
    let exit = proxy.terminate();
    assert!(exit.success(), "a graceful shutdown exits 0: {exit}");
    assert!(logs.lock().unwrap().contains("shutting down"));
}

fn run_check(files: &[(&str, &str)]) -> (i32, String) {
    let dir = support::scratch("check");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["proxy", "--check", "--config"])
        .arg(dir.join("proxy.toml"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const MINIMAL: &str = r#"
[listen]
address = "127.0.0.1:0"

[upstream]
address = "http://127.0.0.1:7233"

[identity]
api_key_header = "x-api-key"

[[identity.mappers]]
type = "api_key"
keys = [{ hash = "sha256:6ab9f1eb8f7d3388f4f9d586f66e99fd54080df2c446f0e58668b09c08a16dd0", subject = "ops", system = "admin" }]

[policies.roles]
type = "roles"

[authorize]
default = ["roles"]
"#;

#[test]
fn a_valid_config_passes_the_check_and_bad_ones_exit_2_naming_the_problem() {
    let (code, stderr) = run_check(&[("proxy.toml", MINIMAL)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("config OK"), "{stderr}");

    let cases: [(&str, String, &str); 7] = [
        (
            "service methods without a descriptor set",
            format!("{MINIMAL}\n[service]\nmethod = [{{ path = \"/a.B/C\", kind = \"read\" }}]\n"),
            "needs service.descriptor_set",
        ),
        (
            "an unknown key",
            MINIMAL.replace("[listen]", "[listen]\nport = 1"),
            "unknown field `port`",
        ),
        (
            "an upstream without a scheme",
            MINIMAL.replace("http://127.0.0.1:7233", "127.0.0.1:7233"),
            "upstream.address",
        ),
        (
            "a missing rules file",
            format!("{MINIMAL}\n[policies.file]\ntype = \"rules\"\npath = \"missing.toml\"\n"),
            "missing.toml",
        ),
        (
            "an authorize entry naming no policy",
            MINIMAL.replace("default = [\"roles\"]", "default = [\"nope\"]"),
            "no policy named `nope`",
        ),
        (
            "an instance policy without a store",
            format!("{MINIMAL}\n[policies.owner]\ntype = \"initiator\"\n"),
            "needs an instance store",
        ),
        (
            "TLS files that do not exist",
            MINIMAL.replace(
                "address = \"127.0.0.1:0\"",
                "address = \"127.0.0.1:0\"\ntls = { cert = \"cert.pem\", key = \"key.pem\" }",
            ),
            "listen.tls.cert",
        ),
    ];
    for (what, text, expected) in cases {
        let (code, stderr) = run_check(&[("proxy.toml", &text)]);
        assert_eq!(code, 2, "{what}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{what}: expected `{expected}` in: {stderr}"
        );
    }
}

#[test]
fn the_example_proxy_config_passes_the_check() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/proxy");
    let config = std::fs::read_to_string(format!("{example}/temporal.toml"))
        .unwrap()
        // Fixed ports may be taken on a test machine; the rest is checked as shipped.
        .replace("127.0.0.1:7243", "127.0.0.1:0")
        .replace("127.0.0.1:9464", "127.0.0.1:0");
    let rules = std::fs::read_to_string(format!("{example}/rules.toml")).unwrap();
    let (code, stderr) = run_check(&[("proxy.toml", &config), ("rules.toml", &rules)]);
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_upstream_is_reached_with_the_proxy_s_own_client_certificate() {
    use warden_example::issuer::{Name, TestCa};

    let issuer = Issuer::start().await;
    let ca = TestCa::new("chain-ca");
    let server = ca.server();
    let edge = ca.client(Name::Uri("spiffe://warden.test/edge-proxy"));
    // The inner proxy serves TLS, requires a client certificate from the CA, and authorizes
    // the edge proxy by its certificate's identity.
    let inner_config = format!(
        r#"
[listen]
address = "127.0.0.1:0"
tls = {{ cert = "server.pem", key = "server-key.pem", client_ca = "ca.pem" }}

[upstream]
address = "http://{upstream}"

[[identity.mappers]]
type = "mtls"
identities = [{{ identity = "spiffe://warden.test/edge-proxy", namespaces = {{ orders = "writer" }} }}]

[policies.roles]
type = "roles"

[authorize]
default = ["roles"]
"#,
        upstream = temporal().address
    );
    let inner = ProxyProcess::start(
        "tls-inner",
        &[
            ("proxy.toml", inner_config),
            ("server.pem", server.cert_pem.clone()),
            ("server-key.pem", server.key_pem.clone()),
            ("ca.pem", ca.cert_pem.clone()),
        ],
    );
    let edge_config = |client_cert: bool| {
        let certificate = if client_cert {
            "client_cert = \"edge.pem\"\nclient_key = \"edge-key.pem\"\n"
        } else {
            ""
        };
        format!(
            r#"
[listen]
address = "127.0.0.1:0"

[upstream]
address = "https://{inner}"
ca_file = "ca.pem"
server_name = "localhost"
{certificate}
[policies.roles]
type = "roles"

[authorize]
default = ["roles"]
{mapper}
"#,
            inner = inner.address,
            mapper = issuer.mapper_toml()
        )
    };
    let files = |client_cert: bool| {
        vec![
            ("proxy.toml", edge_config(client_cert)),
            ("ca.pem", ca.cert_pem.clone()),
            ("edge.pem", edge.cert_pem.clone()),
            ("edge-key.pem", edge.key_pem.clone()),
        ]
    };
    let with_certificate = ProxyProcess::start("tls-edge", &files(true));
    let without_certificate = ProxyProcess::start("tls-edge-nocert", &files(false));
    let alice = issuer.token("alice", &["orders:writer"]);

    let id = unique("through-tls");
    start_via(&with_certificate.address, &alice, &id)
        .await
        .unwrap();
    assert!(
        exists_upstream("orders", &id).await,
        "edge → TLS inner → frontend"
    );

    let id = unique("no-client-cert");
    let status = start_via(&without_certificate.address, &alice, &id)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(!exists_upstream("orders", &id).await);
}

/// The test config with initiators kept in Redis at `url`, and terminate allowed to the
/// initiator only.
fn owner_config(issuer: &Issuer, url: &str) -> String {
    let text = config(issuer, &temporal().address)
        .replace(
            "[instances]\ntype = \"memory\"",
            &format!("[instances]\ntype = \"redis\"\nurl = \"{url}\"\ntimeout_ms = 300"),
        )
        .replace(
            "[authorize]\ndefault = [\"roles\"]",
            "[policies.owner]\ntype = \"initiator\"\n\n[authorize]\ndefault = [\"roles\"]\nterminate = [\"roles\", \"owner\"]",
        );
    assert!(text.contains("type = \"redis\"") && text.contains("terminate = "));
    text
}

fn terminate_request(
    id: &str,
) -> temporalio_protos::temporal::api::workflowservice::v1::TerminateWorkflowExecutionRequest {
    temporalio_protos::temporal::api::workflowservice::v1::TerminateWorkflowExecutionRequest {
        namespace: "orders".to_owned(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: id.to_owned(),
            run_id: String::new(),
        }),
        reason: "test".to_owned(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sharing_redis_agree_on_who_started_a_workflow() {
    use warden_example::redis_server::RedisServer;

    let redis = RedisServer::start();
    let issuer = Issuer::start().await;
    let replica = |name: &str| {
        ProxyProcess::start(name, &[("proxy.toml", owner_config(&issuer, &redis.url))])
    };
    let first = replica("replica-1");
    let second = replica("replica-2");
    let alice = issuer.token("alice", &["orders:writer"]);
    let dave = issuer.token("dave", &["orders:writer"]);
    let id = unique("replicated");

    start_via(&first.address, &alice, &id).await.unwrap();
    let terminate = || terminate_request(&id);
    let mut on_second = workflow_client(&second.address).await;
    let status = on_second
        .terminate_workflow_execution(with_bearer(terminate(), &dave))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    on_second
        .terminate_workflow_execution(with_bearer(terminate(), &alice))
        .await
        .expect("the other replica knows alice started it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_starts_while_redis_is_down_refuses_what_needs_it_and_uses_it_once_up() {
    use warden_example::redis_server::RedisServer;

    let mut redis = RedisServer::start();
    redis.stop();
    let issuer = Issuer::start().await;
    let proxy = ProxyProcess::start(
        "redis-down",
        &[("proxy.toml", owner_config(&issuer, &redis.url))],
    );
    let alice = issuer.token("alice", &["orders:writer"]);
    let mut grpc = workflow_client(&proxy.address).await;

    // What needs no store is served; what needs it is refused, counted and logged.
    let id = unique("redis-down");
    start_via(&proxy.address, &alice, &id).await.unwrap();
    let status = grpc
        .terminate_workflow_execution(with_bearer(terminate_request(&id), &alice))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("instance store unavailable"),
        "{status:?}"
    );
    let metrics = proxy.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            r#"warden_decisions_total{kind="terminate",outcome="error"}"#
        ),
        1.0,
        "{metrics}"
    );

    // Redis comes up: the next start is recorded, and its initiator may terminate it.
    redis.restart();
    let id = unique("redis-up");
    assert!(
        eventually(Duration::from_secs(10), async || {
            start_via(&proxy.address, &alice, &id).await.is_ok()
        })
        .await
    );
    assert!(
        eventually(Duration::from_secs(10), async || {
            grpc.terminate_workflow_execution(with_bearer(terminate_request(&id), &alice))
                .await
                .is_ok()
        })
        .await,
        "the initiator terminates once Redis answers"
    );
    let logs = proxy.logs.lock().unwrap().clone();
    for expected in [
        "the instance store does not answer yet",
        "could not record the initiator",
        "instance store unavailable",
    ] {
        assert!(logs.contains(expected), "`{expected}` not logged:\n{logs}");
    }
}

/// The example workflow service (not Temporal), served bare on loopback.
async fn serve_example() -> (std::net::SocketAddr, warden_example::CallLog) {
    let service = warden_example::ExampleService::new();
    let log = service.log();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service.into_server())
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (address, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_grpc_service_is_proxied_with_a_descriptor_set_map_streaming_both_ways() {
    use tokio_stream::StreamExt;
    use warden_example::pb::{
        SignalWorkflowRequest, StartWorkflowRequest, UpdateWorkflowRequest, WatchWorkflowRequest,
        WorkflowExecution as Execution, workflow_service_client::WorkflowServiceClient as Example,
    };

    let (upstream, log) = serve_example().await;
    let issuer = Issuer::start().await;
    let text = format!(
        r#"
[listen]
address = "127.0.0.1:0"

[upstream]
address = "http://{upstream}"

[service]
preset = "none"
descriptor_set = "example.binpb"
method = [
    {{ path = "/warden.example.v1.WorkflowService/StartWorkflow", kind = "execute", namespace = "namespace", instance = "workflow_id", args = "input" }},
    {{ path = "/warden.example.v1.WorkflowService/SignalWorkflow", kind = "signal", namespace = "namespace", instance = "execution.workflow_id", name = "signal_name", args = "input" }},
    {{ path = "/warden.example.v1.WorkflowService/SignalWorkflowBatch", kind = "signal", namespace = "namespace", instance = "execution.workflow_id", name = "signal_name", args = "input" }},
    {{ path = "/warden.example.v1.WorkflowService/SignalWorkflowStream", kind = "signal", namespace = "namespace", instance = "execution.workflow_id", name = "signal_name", args = "input" }},
    {{ path = "/warden.example.v1.WorkflowService/UpdateWorkflow", kind = "update", namespace = "namespace", instance = "execution.workflow_id", name = "update_name", args = "input" }},
    {{ path = "/warden.example.v1.WorkflowService/WatchWorkflow", kind = "read", namespace = "namespace", instance = "execution.workflow_id" }},
]

[policies.roles]
type = "roles"
table = "empty"
methods = {{ "warden.example.v1.WorkflowService/*" = {{ scope = "namespace", access = "write" }}, "warden.example.v1.WorkflowService/WatchWorkflow" = {{ scope = "namespace", access = "read_only" }} }}

[policies.amounts]
type = "rules"
path = "rules.toml"

[authorize]
default = ["roles"]
update = ["roles", "amounts"]
{mapper}
"#,
        mapper = issuer.mapper_toml()
    );
    let rules = r#"
[[rule]]
id = "discount-limit"
effect = "deny"
reason = "discounts over 1000 need approval"
kinds = ["update"]
args = [{ pointer = "/amount", gt = 1000 }]

[[rule]]
id = "updates"
effect = "allow"
kinds = ["update"]
"#;
    let proxy = ProxyProcess::start(
        "generic",
        &[
            ("proxy.toml", text.into_bytes()),
            ("rules.toml", rules.as_bytes().to_vec()),
            (
                "example.binpb",
                warden_example::FILE_DESCRIPTOR_SET.to_vec(),
            ),
        ],
    );
    let channel = Channel::from_shared(proxy.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut example = Example::new(channel);
    let writer = issuer.token("alice", &["orders:writer"]);
    let reader = issuer.token("bob", &["orders:reader"]);
    let execution = || {
        Some(Execution {
            workflow_id: "generic-1".to_owned(),
            run_id: String::new(),
        })
    };
    let signal = |name: &str| SignalWorkflowRequest {
        namespace: "orders".to_owned(),
        execution: execution(),
        signal_name: name.to_owned(),
        ..SignalWorkflowRequest::default()
    };

    example
        .start_workflow(with_bearer(
            StartWorkflowRequest {
                namespace: "orders".to_owned(),
                workflow_id: "generic-1".to_owned(),
                workflow_type: "OrderWorkflow".to_owned(),
                input: b"{}".to_vec(),
                ..StartWorkflowRequest::default()
            },
            &writer,
        ))
        .await
        .unwrap();
    let status = example
        .signal_workflow(with_bearer(signal("approve"), &reader))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let update = |amount: u32| UpdateWorkflowRequest {
        namespace: "orders".to_owned(),
        execution: execution(),
        update_name: "set-discount".to_owned(),
        input: format!(r#"{{"amount":{amount}}}"#).into_bytes(),
        ..UpdateWorkflowRequest::default()
    };
    example
        .update_workflow(with_bearer(update(500), &writer))
        .await
        .unwrap();
    let status = example
        .update_workflow(with_bearer(update(5000), &writer))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("approval"),
        "{}",
        status.message()
    );

    // Client streaming: every message is judged; the reader's batch never reaches the handler.
    let batch = tokio_stream::iter(vec![signal("a"), signal("b"), signal("c")]);
    let accepted = example
        .signal_workflow_batch(with_bearer(batch, &writer))
        .await
        .unwrap()
        .into_inner()
        .accepted;
    assert_eq!(accepted, 3);
    let batch = tokio_stream::iter(vec![signal("a"), signal("b")]);
    let status = example
        .signal_workflow_batch(with_bearer(batch, &reader))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // Server streaming: the upstream's events arrive through the proxy, then its trailers.
    let events: Vec<_> = example
        .watch_workflow(with_bearer(
            WatchWorkflowRequest {
                namespace: "orders".to_owned(),
                execution: execution(),
            },
            &reader,
        ))
        .await
        .unwrap()
        .into_inner()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].detail, b"3", "three signals were applied");

    // A unary or server-streaming method takes one request message: a call that brings a
    // second one (for another namespace) is refused before anything is forwarded.
    let mut grpc = tonic::client::Grpc::new(
        Channel::from_shared(proxy.url())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let other_namespace = SignalWorkflowRequest {
        namespace: "billing".to_owned(),
        ..signal("a")
    };
    grpc.ready().await.unwrap();
    let status = grpc
        .client_streaming::<_, _, warden_example::pb::SignalWorkflowResponse, _>(
            with_bearer(tokio_stream::iter([signal("a"), other_namespace]), &writer),
            http::uri::PathAndQuery::from_static(
                "/warden.example.v1.WorkflowService/SignalWorkflow",
            ),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("more than one"),
        "{}",
        status.message()
    );
    let watch = |namespace: &str| WatchWorkflowRequest {
        namespace: namespace.to_owned(),
        execution: execution(),
    };
    grpc.ready().await.unwrap();
    let status = grpc
        .streaming::<_, _, warden_example::pb::WorkflowEvent, _>(
            with_bearer(
                tokio_stream::iter([watch("orders"), watch("billing")]),
                &reader,
            ),
            http::uri::PathAndQuery::from_static(
                "/warden.example.v1.WorkflowService/WatchWorkflow",
            ),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    let calls = log.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("SignalWorkflow"))
            .count(),
        1,
        "only the writer's batch reached the service: {calls:?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("WatchWorkflow"))
            .count(),
        1,
        "the two-message watch never reached the service: {calls:?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("UpdateWorkflow"))
            .count(),
        1,
        "{calls:?}"
    );

    // Streams whose first message is allowed and whose second is not: the second never
    // reaches the upstream, and the call ends PERMISSION_DENIED.
    let carol = issuer.token("carol", &["billing:writer"]);
    example
        .start_workflow(with_bearer(
            StartWorkflowRequest {
                namespace: "billing".to_owned(),
                workflow_id: "generic-1".to_owned(),
                workflow_type: "OrderWorkflow".to_owned(),
                input: b"{}".to_vec(),
                ..StartWorkflowRequest::default()
            },
            &carol,
        ))
        .await
        .unwrap();
    let orders_before = upstream_signals(upstream, "orders", "generic-1").await;
    let billing = SignalWorkflowRequest {
        namespace: "billing".to_owned(),
        ..signal("sneaked")
    };
    let status = example
        .signal_workflow_batch(with_bearer(
            tokio_stream::iter(vec![signal("first"), billing.clone()]),
            &writer,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(
        upstream_signals(upstream, "billing", "generic-1").await,
        0,
        "the batch's denied message never reached the upstream"
    );

    // Bidirectional: the next message is sent only once the previous one was answered.
    let (send, outbound) = tokio::sync::mpsc::channel(4);
    let before = upstream_signals(upstream, "orders", "generic-1").await;
    send.send(signal("streamed")).await.unwrap();
    let mut events = example
        .signal_workflow_stream(with_bearer(
            tokio_stream::wrappers::ReceiverStream::new(outbound),
            &writer,
        ))
        .await
        .unwrap()
        .into_inner();
    let first = events.message().await.unwrap().unwrap();
    assert_eq!(first.detail, b"streamed");
    send.send(billing).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), events.message())
        .await
        .expect("the call ends instead of waiting for more")
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    drop(send);
    assert_eq!(
        upstream_signals(upstream, "orders", "generic-1").await,
        before + 1,
        "the allowed first message reached the upstream"
    );
    assert_eq!(
        upstream_signals(upstream, "billing", "generic-1").await,
        0,
        "the stream's denied message never reached the upstream"
    );
    assert!(
        orders_before >= 3,
        "the earlier batch's signals were applied"
    );
}

/// How many signals the upstream applied to `namespace`/`id`, asked directly.
async fn upstream_signals(upstream: std::net::SocketAddr, namespace: &str, id: &str) -> u32 {
    use warden_example::pb::{
        DescribeWorkflowRequest, WorkflowExecution, workflow_service_client::WorkflowServiceClient,
    };
    let channel = Channel::from_shared(format!("http://{upstream}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    WorkflowServiceClient::new(channel)
        .describe_workflow(DescribeWorkflowRequest {
            namespace: namespace.to_owned(),
            execution: Some(WorkflowExecution {
                workflow_id: id.to_owned(),
                run_id: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .signal_count
}

#[test]
fn passport_keys_load_from_pem_or_jwk_and_bad_passport_settings_exit_2() {
    let pem = support::ed25519_pem();
    let jwk = r#"{"kty":"OKP","crv":"Ed25519","kid":"edge-jwk","d":"BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU"}"#;
    let passport =
        |table: &str| format!("{MINIMAL}\n[passport]\nissuer = \"warden-proxy\"\n{table}\n");
    for (what, table) in [
        (
            "a PEM key with its id",
            "key_file = \"key.pem\"\nkey_id = \"edge-1\"",
        ),
        ("a private JWK with its own kid", "key_file = \"key.jwk\""),
        ("a secret", "secret_file = \"secret\"\nkey_id = \"edge-hs\""),
    ] {
        let (code, stderr) = run_check(&[
            ("proxy.toml", &passport(table)),
            ("key.pem", &pem),
            ("key.jwk", jwk),
            ("secret", "0123456789abcdef0123456789abcdef\n"),
        ]);
        assert_eq!(code, 0, "{what}: {stderr}");
    }
    for (what, table, expected) in [
        (
            "a PEM key without an id",
            "key_file = \"key.pem\"",
            "passport.key_id",
        ),
        (
            "a JWK whose kid disagrees",
            "key_file = \"key.jwk\"\nkey_id = \"other\"",
            "configured key id `other`",
        ),
        (
            "both a key and a secret",
            "key_file = \"key.pem\"\nsecret_file = \"secret\"\nkey_id = \"k\"",
            "exactly one of key_file and secret_file",
        ),
        (
            "a short secret",
            "secret_file = \"short\"\nkey_id = \"k\"",
            "passport.secret_file",
        ),
        (
            "a missing key file",
            "key_file = \"nope.pem\"\nkey_id = \"k\"",
            "passport.key_file",
        ),
        (
            "a zero lifetime",
            "key_file = \"key.pem\"\nkey_id = \"k\"\nlifetime_seconds = 0",
            "passport.lifetime_seconds",
        ),
    ] {
        let (code, stderr) = run_check(&[
            ("proxy.toml", &passport(table)),
            ("key.pem", &pem),
            ("key.jwk", jwk),
            ("secret", "0123456789abcdef0123456789abcdef"),
            ("short", "too short"),
        ]);
        assert_eq!(code, 2, "{what}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{what}: expected `{expected}` in: {stderr}"
        );
    }
}
