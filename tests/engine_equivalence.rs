//! One engine behind every door: the one-line `WardenLayer` and the same policies as separate
//! layers answer every call of one table identically — status, message, error details,
//! whether the handler ran, every audit event's fields, and the metrics.
//!
//! One test per binary: the audit events and metrics are process-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use bytes::Bytes;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use support::*;
use tower::ServiceBuilder;
use tracing_subscriber::layer::SubscriberExt;
use warden::temporal::TemporalResponder;
use warden_core::{
    KindSet, OperationKind, Policy, SharedPolicy,
    policy::{DenyAll, async_policy_fn, policy_fn},
};
use warden_example::{CallLog, operation_map, policies};
use warden_tower::{
    AuthenticateLayer, AuthorizeLayer, ClassifyLayer, ExecuteLayer, QueryLayer, ReadLayer,
    RequireDecisionLayer, SignalLayer, UpdateLayer, WardenLayer,
};

/// Every `warden::audit` event's fields, in order (latency left out: it is a measurement).
#[derive(Clone, Default)]
struct Audit(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Audit {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "warden::audit" {
            return;
        }
        struct Fields(BTreeMap<String, String>);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() != "latency_us" {
                    self.0.insert(field.name().to_owned(), format!("{value:?}"));
                }
            }
        }
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
}

fn observe() -> &'static (Audit, Snapshotter) {
    static ONCE: OnceLock<(Audit, Snapshotter)> = OnceLock::new();
    ONCE.get_or_init(|| {
        let audit = Audit::default();
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(audit.clone()))
            .unwrap();
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().unwrap();
        (audit, snapshotter)
    })
}

/// The decision counters, by their labels.
fn counters(snapshotter: &Snapshotter) -> BTreeMap<String, u64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) => {
                let key = key.key();
                let labels: Vec<_> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                Some((format!("{}{{{}}}", key.name(), labels.join(",")), n))
            }
            _ => None,
        })
        .collect()
}

/// What one call produced, everything a caller or an operator can see.
#[derive(Debug, PartialEq)]
struct Observed {
    status: u16,
    grpc_status: Option<i32>,
    grpc_message: String,
    details: Option<Bytes>,
    handler_calls: Vec<String>,
    audit: Vec<BTreeMap<String, String>>,
    metrics: BTreeMap<String, u64>,
}

struct Case {
    name: &'static str,
    path: String,
    body: Vec<u8>,
    headers: Vec<(&'static str, &'static str)>,
}

fn case(name: &'static str, path: impl Into<String>, body: Vec<u8>) -> Case {
    Case {
        name,
        path: path.into(),
        body,
        headers: Vec::new(),
    }
}

impl Case {
    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
}

fn path(method: &str) -> String {
    format!("/warden.example.v1.WorkflowService/{method}")
}

fn message<M: prost::Message>(message: &M) -> Vec<u8> {
    frame(false, &encode(message))
}

/// Every refusal of the README's table that a gRPC server can see, every kind, streams, a
/// panicking and a hanging policy.
fn table() -> Vec<Case> {
    let two = |a: Vec<u8>, b: Vec<u8>| [a, b].concat();
    vec![
        case(
            "a writer starts",
            path("StartWorkflow"),
            message(&start("orders", "o-1")),
        ),
        case(
            "a reader starts",
            path("StartWorkflow"),
            message(&start("orders", "o-1")),
        )
        .header("authorization", "Bearer bob-token"),
        case(
            "a reader queries",
            path("QueryWorkflow"),
            message(&query("orders", "o-1")),
        )
        .header("authorization", "Bearer bob-token"),
        case(
            "a writer signals",
            path("SignalWorkflow"),
            message(&signal("orders", "o-1", "approve")),
        ),
        case(
            "signal in another namespace",
            path("SignalWorkflow"),
            message(&signal("billing", "o-1", "approve")),
        ),
        case(
            "an update over the limit",
            path("UpdateWorkflow"),
            message(&update("orders", "o-1", 5000)),
        ),
        case(
            "an update within it",
            path("UpdateWorkflow"),
            message(&update("orders", "o-1", 10)),
        ),
        case(
            "describe",
            path("DescribeWorkflow"),
            message(&query("orders", "o-1")),
        )
        .header("authorization", "Bearer carol-token"),
        case(
            "a panicking policy",
            path("CancelWorkflow"),
            message(&query("orders", "o-1")),
        ),
        case(
            "a hanging policy",
            path("TerminateWorkflow"),
            message(&query("orders", "o-1")),
        ),
        case(
            "an unknown method",
            "/warden.example.v1.WorkflowService/Nope",
            message(&query("orders", "o-1")),
        ),
        case(
            "no token",
            path("StartWorkflow"),
            message(&start("orders", "o-1")),
        )
        .header("authorization", ""),
        case(
            "an unknown token",
            path("StartWorkflow"),
            message(&start("orders", "o-1")),
        )
        .header("authorization", "Bearer nobody"),
        case(
            "a malformed path",
            "/no-dot/Start",
            message(&start("orders", "o-1")),
        ),
        case("a malformed frame", path("StartWorkflow"), vec![0, 0, 0]),
        case(
            "a frame over the limit",
            path("StartWorkflow"),
            frame(false, &[0; 4096]),
        ),
        case(
            "an unknown encoding",
            path("StartWorkflow"),
            frame(true, b"x"),
        )
        .header("grpc-encoding", "snappy"),
        case("no message", path("StartWorkflow"), Vec::new()),
        case(
            "a unary call with a second message for another namespace",
            path("SignalWorkflow"),
            two(
                message(&signal("orders", "o-1", "a")),
                message(&signal("billing", "o-1", "a")),
            ),
        ),
        case(
            "a server stream with two request messages",
            path("WatchWorkflow"),
            two(
                message(&query("orders", "o-1")),
                message(&query("billing", "o-1")),
            ),
        )
        .header("authorization", "Bearer bob-token"),
        case(
            "a client stream whose second message is denied",
            path("SignalWorkflowBatch"),
            two(
                message(&signal("orders", "o-1", "a")),
                message(&signal("billing", "o-1", "b")),
            ),
        ),
        case(
            "a client stream all allowed",
            path("SignalWorkflowBatch"),
            two(
                message(&signal("orders", "o-1", "a")),
                message(&signal("orders", "o-1", "b")),
            ),
        ),
    ]
}

fn panicking() -> SharedPolicy {
    policy_fn(
        "panics",
        |_: &warden_core::AuthzRequest| -> warden_core::Decision { panic!("the policy has a bug") },
    )
    .shared()
}

fn hanging() -> SharedPolicy {
    async_policy_fn("hangs", |_| std::future::pending()).shared()
}

fn otherwise() -> DenyAll {
    DenyAll::with_reason("otherwise", "no policy covers this operation")
}

const TIMEOUT: Duration = Duration::from_millis(150);

fn one_line(shadow: bool) -> WardenLayer {
    let builder = WardenLayer::builder(operation_map())
        .responder(TemporalResponder)
        .max_message_size(1024)
        .authenticate(policies::identities())
        .query(policies::readers())
        .read(policies::readers())
        .execute(policies::writers())
        .signal(policies::writers())
        .kinds(KindSet::one(OperationKind::Cancel), panicking())
        .kinds(KindSet::one(OperationKind::Terminate), hanging())
        .update(policies::updates_up_to_1000())
        .otherwise(otherwise())
        .policy_timeout(TIMEOUT);
    let builder = if shadow { builder.shadow() } else { builder };
    builder.build().unwrap()
}

async fn serve_layers(shadow: bool) -> (SocketAddr, CallLog) {
    let kinds = |kind, policy| {
        let layer = AuthorizeLayer::new(KindSet::one(kind), policy).policy_timeout(TIMEOUT);
        if shadow { layer.shadow() } else { layer }
    };
    macro_rules! each {
        ($layer:expr) => {{
            let layer = $layer.policy_timeout(TIMEOUT);
            if shadow { layer.shadow() } else { layer }
        }};
    }
    let stack = ServiceBuilder::new()
        .layer(
            ClassifyLayer::new(operation_map())
                .responder(TemporalResponder)
                .max_message_size(1024),
        )
        .layer(AuthenticateLayer::new(policies::identities()))
        .layer(each!(QueryLayer::new(policies::readers())))
        .layer(each!(ReadLayer::new(policies::readers())))
        .layer(each!(ExecuteLayer::new(policies::writers())))
        .layer(each!(SignalLayer::new(policies::writers())))
        .layer(kinds(OperationKind::Cancel, panicking()))
        .layer(kinds(OperationKind::Terminate, hanging()))
        .layer(each!(UpdateLayer::new(policies::updates_up_to_1000())))
        .layer(each!(AuthorizeLayer::otherwise(otherwise())))
        .layer(RequireDecisionLayer::new())
        .into_inner();
    serve(stack).await
}

async fn observe_call(addr: SocketAddr, log: &CallLog, case: &Case) -> Observed {
    let (audit, snapshotter) = observe();
    let before_calls = log.calls().len();
    let before_audit = audit.0.lock().unwrap().len();
    let before_metrics = counters(snapshotter);
    let mut request = grpc_request(addr, &case.path, case.body.clone(), &[]);
    for (name, value) in &case.headers {
        if value.is_empty() {
            request.headers_mut().remove(*name);
        } else {
            request.headers_mut().insert(*name, value.parse().unwrap());
        }
    }
    let response = raw(request, true).await;
    let after_metrics = counters(snapshotter);
    let metrics = after_metrics
        .into_iter()
        .map(|(key, n)| {
            let delta = n - before_metrics.get(&key).copied().unwrap_or(0);
            (key, delta)
        })
        .filter(|(_, delta)| *delta > 0)
        .collect();
    Observed {
        status: response.status.as_u16(),
        grpc_status: response.grpc_status(),
        grpc_message: response.grpc_message(),
        details: response
            .headers
            .get("grpc-status-details-bin")
            .map(|v| Bytes::copy_from_slice(v.as_bytes())),
        handler_calls: log.calls()[before_calls..].to_vec(),
        audit: audit.0.lock().unwrap()[before_audit..].to_vec(),
        metrics,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_line_layer_and_the_separate_layers_answer_every_call_alike() {
    observe();
    let mut differences = String::new();
    let mut enforced = BTreeMap::new();
    for shadow in [false, true] {
        let (one_line_addr, one_line_log) = serve(one_line(shadow)).await;
        let (layers_addr, layers_log) = serve_layers(shadow).await;
        for case in table() {
            let one = observe_call(one_line_addr, &one_line_log, &case).await;
            let layered = observe_call(layers_addr, &layers_log, &case).await;
            if !shadow {
                enforced.insert(case.name, (one.grpc_status, !one.handler_calls.is_empty()));
            }
            if one != layered {
                writeln!(
                    differences,
                    "{} (shadow: {shadow}):\n  one line: {one:#?}\n  layers:   {layered:#?}",
                    case.name
                )
                .unwrap();
            }
        }
    }
    assert!(differences.is_empty(), "the doors differ:\n{differences}");

    // And what both answer is what the table means.
    let expect = |name: &str, status: i32, handler_ran: bool| {
        let (got, ran) = enforced[name];
        assert_eq!(got.unwrap_or(0), status, "{name}");
        assert_eq!(ran, handler_ran, "{name}: did the handler run?");
    };
    expect("a writer starts", 0, true);
    expect("a reader starts", 7, false);
    expect("a reader queries", 0, true);
    expect("a writer signals", 0, true);
    expect("signal in another namespace", 7, false);
    expect("an update over the limit", 7, false);
    expect("an update within it", 0, true);
    expect("describe", 7, false);
    expect("a panicking policy", 14, false);
    expect("a hanging policy", 14, false);
    expect("an unknown method", 7, false);
    expect("no token", 16, false);
    expect("an unknown token", 16, false);
    expect("a malformed path", 3, false);
    expect("a malformed frame", 3, false);
    expect("a frame over the limit", 8, false);
    expect("an unknown encoding", 12, false);
    expect("no message", 3, false);
    expect(
        "a unary call with a second message for another namespace",
        3,
        false,
    );
    expect("a server stream with two request messages", 3, false);
    expect("a client stream whose second message is denied", 7, true);
    expect("a client stream all allowed", 0, true);
    assert_eq!(enforced.len(), table().len());
}
