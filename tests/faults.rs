//! Every part Warden depends on, failing in each way it can, with the full stack in front of a
//! real tonic server: a policy that errors, panics or hangs; a decision point that is down,
//! hangs, then comes up; Redis down from the start and then up; a JWKS endpoint that refuses
//! connections or answers 503, then recovers. Each fault must give the caller the right
//! status, never reach the handler, be logged with its reason and counted in the metrics;
//! the next calls that do not need the part are served, and those that do are served once
//! it is back.
//!
//! One process-wide recorder and log capture serve the whole binary, so the tests take turns
//! (`turn`) and count from a drained recorder.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use metrics_util::debugging::{DebuggingRecorder, Snapshotter};
use support::*;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;
use warden_core::{
    KindSet, OperationKind, Policy, PolicyError, SharedPolicy,
    instances::SharedInstanceStore,
    policy::{async_policy_fn, policy_fn},
};
use warden_example::{
    issuer::{self, JwksServer, SigningKey, jwks_config},
    operation_map,
    pb::{CancelWorkflowRequest, TerminateWorkflowRequest},
    policies::{demo_layer_with, writers},
    redis_server::RedisServer,
};
use warden_pdp::{DecisionPoint, DecisionService, Model, ModelHandle, StandardResolver};
use warden_policy::instances::InstancePolicy;
use warden_redis::RedisInstanceStore;
use warden_tower::{WardenLayer, record::RecordInitiatorLayer};

struct Observed {
    logs: Captured,
    metrics: Snapshotter,
    turn: tokio::sync::Mutex<()>,
}

fn observed() -> &'static Observed {
    static ONCE: OnceLock<Observed> = OnceLock::new();
    ONCE.get_or_init(|| {
        let logs = Captured::install();
        let recorder = DebuggingRecorder::new();
        let metrics = recorder.snapshotter();
        recorder.install().unwrap();
        Observed {
            logs,
            metrics,
            turn: tokio::sync::Mutex::new(()),
        }
    })
}

/// Where the log stood when a fault began.
struct Mark {
    log_offset: usize,
}

impl Mark {
    fn now() -> Self {
        Self {
            log_offset: observed().logs.len(),
        }
    }

    /// The log lines written since the mark.
    fn logged(&self) -> String {
        observed().logs.since(self.log_offset)
    }

    /// Asserts one line since the mark holds every one of `parts`.
    fn assert_logged(&self, parts: &[&str]) {
        observed().logs.assert_logged_since(self.log_offset, parts);
    }
}

/// A snapshot drains the debugging recorder's counters: each look counts from the last one.
fn drain_counters() {
    drop(observed().metrics.snapshot());
}

/// The counters named `name` with `labels`, counted since the last look at any counter.
fn counter_now(name: &str, labels: &[(&str, &str)]) -> u64 {
    counter(&observed().metrics.snapshot().into_vec(), name, labels)
}

fn errors_of(kind: &str) -> u64 {
    counter_now(
        "warden_decisions_total",
        &[("kind", kind), ("outcome", "error")],
    )
}

fn authentication_failures() -> u64 {
    counter_now("warden_authentication_failures_total", &[])
}

fn cancel(id: &str) -> CancelWorkflowRequest {
    CancelWorkflowRequest {
        namespace: "orders".into(),
        execution: execution(id),
        reason: "test".into(),
    }
}

fn terminate(id: &str) -> TerminateWorkflowRequest {
    TerminateWorkflowRequest {
        namespace: "orders".into(),
        execution: execution(id),
        reason: "test".into(),
    }
}

/// Starts `id` in `orders` as `who`: the control call every fault leaves untouched.
async fn start_as(addr: SocketAddr, who: &str, id: &str) -> Result<(), tonic::Status> {
    client(addr)
        .await
        .start_workflow(as_user(who, start("orders", id)))
        .await
        .map(drop)
}

async fn signal_as(addr: SocketAddr, who: &str, id: &str) -> Result<(), tonic::Status> {
    client(addr)
        .await
        .signal_workflow(as_user(who, signal("orders", id, "approve")))
        .await
        .map(drop)
}

fn assert_status(result: Result<(), tonic::Status>, code: Code, message_part: &str) {
    let status = result.expect_err("the call must be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(message_part),
        "`{}` should name `{message_part}`",
        status.message()
    );
}

/// Retries `call` for up to 5 s: a part that came back is used again within that.
async fn recovers<F, Fut>(mut call: F) -> Result<(), tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let result = call().await;
        if result.is_ok() || Instant::now() > deadline {
            return result;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const POLICY_TIMEOUT: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_errors_panics_or_hangs_is_unavailable_logged_and_counted() {
    let _turn = observed().turn.lock().await;
    let erring: SharedPolicy = async_policy_fn("erring", |_| async {
        Err::<warden_core::Decision, _>(PolicyError::unavailable("the directory is down"))
    })
    .shared();
    let panicking: SharedPolicy = policy_fn(
        "panicking",
        |_: &warden_core::AuthzRequest| -> warden_core::Decision { panic!("a bug in the policy") },
    )
    .shared();
    let hanging: SharedPolicy = async_policy_fn("hanging", |_| std::future::pending()).shared();
    let layer = WardenLayer::builder(operation_map())
        .authenticate(instance_identities())
        .execute(writers())
        .kinds(KindSet::one(OperationKind::Cancel), erring)
        .kinds(KindSet::one(OperationKind::Terminate), panicking)
        .update(hanging)
        .policy_timeout(POLICY_TIMEOUT)
        .build()
        .unwrap();
    let (addr, log) = serve(layer).await;
    let mut calls = client(addr).await;

    let mark = Mark::now();
    drain_counters();
    let result = calls.cancel_workflow(as_user("alice", cancel("o-1"))).await;
    assert_status(result.map(drop), Code::Unavailable, "the directory is down");
    assert_eq!(errors_of("cancel"), 1, "counted once");
    mark.assert_logged(&["decision=error", "kind=cancel", "the directory is down"]);

    let mark = Mark::now();
    drain_counters();
    let result = calls
        .terminate_workflow(as_user("alice", terminate("o-1")))
        .await;
    assert_status(result.map(drop), Code::Unavailable, "panicked");
    assert_eq!(errors_of("terminate"), 1, "counted once");
    mark.assert_logged(&[
        "decision=error",
        "kind=terminate",
        "policy panicked: a bug in the policy",
    ]);

    let mark = Mark::now();
    drain_counters();
    let started = Instant::now();
    let result = calls
        .update_workflow(as_user("alice", update("orders", "o-1", 5)))
        .await;
    assert_status(result.map(drop), Code::Unavailable, "no decision within");
    assert!(
        started.elapsed() >= POLICY_TIMEOUT && started.elapsed() < Duration::from_secs(5),
        "answered at the policy timeout, not before and not much after: {:?}",
        started.elapsed()
    );
    assert_eq!(errors_of("update"), 1, "counted once");
    mark.assert_logged(&["decision=error", "kind=update", "policy timed out"]);

    assert!(log.calls().is_empty(), "handler ran: {:?}", log.calls());
    // The service keeps serving what the failing policies do not decide.
    start_as(addr, "alice", "o-2").await.unwrap();
    assert_eq!(log.calls(), ["StartWorkflow by alice"]);
}

const MODEL: &str = r#"
[[attributes]]
namespace = "temporal.io"
name = "namespace"
rule = "any_of"
values = ["orders"]

[[subject_mappings]]
attribute_value = "https://temporal.io/attr/namespace/value/orders"
actions = ["signal"]
condition_groups = [{ conditions = [{ selector = ".roles.namespaces.orders", operator = "in", values = ["writer"] }] }]
"#;

async fn serve_decision_point(listener: TcpListener) {
    let point = DecisionPoint::new(
        ModelHandle::new(Model::parse(MODEL, false, "model.toml").unwrap()),
        StandardResolver::new(),
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(DecisionService::new(point).into_server())
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
}

fn remote_layer(endpoint: SocketAddr) -> WardenLayer {
    let config: warden_pdp::remote::RemoteConfig = toml::from_str(&format!(
        r#"
endpoint = "http://{endpoint}"
timeout_ms = 300
resource = ["https://temporal.io/attr/namespace/value/{{namespace}}"]
"#
    ))
    .unwrap();
    let remote = warden_pdp::remote::RemotePolicy::new("pdp", &config).unwrap();
    WardenLayer::builder(operation_map())
        .authenticate(instance_identities())
        .execute(writers())
        .signal(remote)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_point_that_is_down_or_hangs_is_unavailable_logged_counted_and_used_once_up() {
    let _turn = observed().turn.lock().await;
    // Down: nothing listens on the port yet.
    let vacant = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = vacant.local_addr().unwrap();
    drop(vacant);
    let (addr, log) = serve(remote_layer(endpoint)).await;
    let mark = Mark::now();
    drain_counters();
    assert_status(
        signal_as(addr, "alice", "o-1").await,
        Code::Unavailable,
        "authorization unavailable",
    );
    assert_eq!(errors_of("signal"), 1, "counted once");
    mark.assert_logged(&[
        "decision=error",
        "kind=signal",
        "policy backend unavailable",
    ]);
    start_as(addr, "alice", "o-1").await.unwrap();

    // It comes up on that port: the next calls are decided by it.
    serve_decision_point(TcpListener::bind(endpoint).await.unwrap()).await;
    recovers(|| signal_as(addr, "alice", "o-1")).await.unwrap();

    // A point that takes connections and never answers: refused at the policy's deadline.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_address = silent.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let holder = Arc::clone(&held);
    tokio::spawn(async move {
        while let Ok((socket, _)) = silent.accept().await {
            holder.lock().unwrap().push(socket);
        }
    });
    let (hung, hung_log) = serve(remote_layer(silent_address)).await;
    let mark = Mark::now();
    drain_counters();
    let started = Instant::now();
    let result = signal_as(hung, "alice", "o-1").await;
    assert!(started.elapsed() < Duration::from_secs(5), "bounded");
    assert_status(result, Code::Unavailable, "authorization unavailable");
    assert_eq!(errors_of("signal"), 1, "counted once");
    mark.assert_logged(&["decision=error", "kind=signal", "policy timed out"]);
    start_as(hung, "alice", "o-2").await.unwrap();

    assert_eq!(
        log.calls(),
        ["StartWorkflow by alice", "SignalWorkflow by alice"]
    );
    assert_eq!(hung_log.calls(), ["StartWorkflow by alice"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_from_the_start_is_unavailable_logged_counted_and_used_once_up() {
    let _turn = observed().turn.lock().await;
    let mut redis = RedisServer::start();
    redis.stop();
    let store: SharedInstanceStore = Arc::new(
        RedisInstanceStore::lazy(&redis.url, "faults", Duration::from_millis(300)).unwrap(),
    );
    let policy = InstancePolicy::initiator(Arc::clone(&store));
    let layer = WardenLayer::builder(operation_map())
        .authenticate(instance_identities())
        .execute(writers())
        .signal(policy)
        .build()
        .unwrap();
    let (addr, log) = serve(
        tower::ServiceBuilder::new()
            .layer(layer)
            .layer(RecordInitiatorLayer::new(store)),
    )
    .await;

    // A start needs no store to be allowed; recording its initiator fails, and says so.
    let mark = Mark::now();
    start_as(addr, "alice", "o-1").await.unwrap();
    mark.assert_logged(&["could not record the initiator", "orders"]);
    let mark = Mark::now();
    drain_counters();
    assert_status(
        signal_as(addr, "alice", "o-1").await,
        Code::Unavailable,
        "instance store unavailable",
    );
    assert_eq!(errors_of("signal"), 1, "counted once");
    mark.assert_logged(&[
        "decision=error",
        "kind=signal",
        "instance store unavailable",
    ]);

    // Redis comes up: starts are recorded again and their initiators decide.
    redis.restart();
    recovers(|| start_as(addr, "alice", "o-2")).await.unwrap();
    recovers(|| signal_as(addr, "alice", "o-2")).await.unwrap();
    let refused = signal_as(addr, "mallory", "o-2").await;
    assert_status(refused, Code::PermissionDenied, "initiator");
    assert!(
        !log.calls().iter().any(|c| c.contains("by mallory")),
        "{:?}",
        log.calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_endpoint_that_is_down_or_failing_is_unavailable_logged_counted_and_used_once_up() {
    let _turn = observed().turn.lock().await;
    let key = SigningKey::rsa("rsa-1");
    let token = key.sign(&issuer::claims("alice", &["orders:write"]));

    // Refusing connections: no key can be had.
    let vacant = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let vacant_address = vacant.local_addr().unwrap();
    drop(vacant);
    let mapper = jwks_config(&format!("http://{vacant_address}/jwks.json"), 0)
        .build()
        .await
        .unwrap();
    let (down, down_log) = serve(demo_layer_with(mapper)).await;
    let mark = Mark::now();
    drain_counters();
    assert_status(
        start_as(down, &token, "o-1").await,
        Code::Unavailable,
        "no usable signing keys",
    );
    assert_eq!(authentication_failures(), 1, "counted once");
    mark.assert_logged(&["authentication failed", "no usable signing keys"]);
    assert!(down_log.calls().is_empty());

    // Answering 503, then recovering: served from the next call's refresh on.
    let jwks = JwksServer::start(&[&key]).await;
    jwks.set_failing(true);
    let mapper = jwks_config(&jwks.url, 0).build().await.unwrap();
    let (addr, log) = serve(demo_layer_with(mapper)).await;
    let mark = Mark::now();
    drain_counters();
    assert_status(
        start_as(addr, &token, "o-1").await,
        Code::Unavailable,
        "no usable signing keys",
    );
    assert_eq!(authentication_failures(), 1, "counted once");
    mark.assert_logged(&["authentication failed", "no usable signing keys"]);
    assert!(!mark.logged().contains(&token), "the token was logged");
    assert!(log.calls().is_empty());
    jwks.set_failing(false);
    recovers(|| start_as(addr, &token, "o-1")).await.unwrap();
    assert_eq!(log.calls(), ["StartWorkflow by alice"]);
}
