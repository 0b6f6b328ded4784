//! `warden proxy` in front of a real Temporal dev server, driven by the real `temporal` CLI,
//! the real Rust client (`temporalio-client`) and a real Rust worker (`temporalio-sdk`)
//! polling through the proxy — and the client-side guardrail in a client process.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/sdk.rs"]
mod sdk;
mod support;
#[path = "support/workflow.rs"]
mod workflow;

use std::{collections::HashMap, time::Duration};

use sdk::{WorkerThread, connect};
use support::{Issuer, ProxyProcess, eventually, sample, temporal, unique};
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowDescribeOptions,
    WorkflowExecuteUpdateOptions, WorkflowQueryOptions, WorkflowSignalOptions,
    WorkflowStartOptions, WorkflowTerminateOptions,
};
use temporalio_sdk::WorkerOptions;
use warden_example::temporal_server::temporal_bin;
use workflow::{Discount, OrderWorkflow};

const RULES: &str = r#"
[[rule]]
id = "discount-limit"
effect = "deny"
reason = "discounts over 1000 need approval"
kinds = ["update"]
names = ["set-discount"]
args = [{ pointer = "/0/amount", gt = 1000 }]

[[rule]]
id = "updates"
effect = "allow"
kinds = ["update"]
"#;

/// Temporal's roles everywhere; terminate only by the initiator; updates by the rules above.
/// `identity` goes in the `[identity]` table, before the mapper.
fn proxy_config(issuer: &Issuer, upstream: &str, identity: &str) -> String {
    format!(
        r#"
[listen]
address = "127.0.0.1:0"
drain_seconds = 2

[upstream]
address = "http://{upstream}"

[instances]
type = "memory"

[policies.roles]
type = "roles"

[policies.owner]
type = "initiator"

[policies.amounts]
type = "rules"
path = "rules.toml"

[authorize]
default = ["roles"]
terminate = ["roles", "owner"]
update = ["roles", "amounts"]

[limits]
max_message_bytes = 65536

[metrics]
address = "127.0.0.1:0"

[log]
format = "json"

[identity]
{identity}
{mapper}
"#,
        mapper = issuer.mapper_toml()
    )
}

fn start_proxy(name: &str, issuer: &Issuer) -> ProxyProcess {
    start_proxy_with(name, issuer, "")
}

fn start_proxy_with(name: &str, issuer: &Issuer, identity: &str) -> ProxyProcess {
    ProxyProcess::start(
        name,
        &[
            (
                "proxy.toml",
                proxy_config(issuer, &temporal().address, identity),
            ),
            ("rules.toml", RULES.to_owned()),
        ],
    )
}

/// Options for a worker of `OrderWorkflow` on `task_queue`.
fn order_worker(task_queue: &str) -> impl FnOnce() -> WorkerOptions + Send + 'static {
    let task_queue = task_queue.to_owned();
    move || {
        WorkerOptions::new(task_queue)
            .register_workflow::<OrderWorkflow>()
            .unwrap()
            .build()
    }
}

struct CliOutcome {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs the real `temporal` CLI against `address` with `token` as gRPC metadata.
async fn cli(address: &str, token: &str, namespace: &str, args: &[&str]) -> CliOutcome {
    run_cli(address, Some(token), namespace, args).await
}

/// Runs the real `temporal` CLI against `address`, with `token` as gRPC metadata when given.
async fn run_cli(address: &str, token: Option<&str>, namespace: &str, args: &[&str]) -> CliOutcome {
    let mut command = tokio::process::Command::new(temporal_bin());
    command
        .args(args)
        .args(["--address", address, "--namespace", namespace]);
    if let Some(token) = token {
        command
            .arg("--grpc-meta")
            .arg(format!("authorization=Bearer {token}"));
    }
    let output = command
        .args([
            "--disable-config-file",
            "--disable-config-env",
            "--command-timeout",
            "60s",
            "--output",
            "json",
        ])
        .output()
        .await
        .unwrap();
    CliOutcome {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[track_caller]
fn assert_allowed(what: &str, outcome: &CliOutcome) {
    assert!(
        outcome.success,
        "{what} should be allowed; stderr: {}",
        outcome.stderr
    );
}

#[track_caller]
fn assert_permission_error(what: &str, outcome: &CliOutcome) {
    assert!(
        !outcome.success,
        "{what} should be denied: {}",
        outcome.stdout
    );
    assert!(
        outcome.stderr.contains("Request unauthorized"),
        "{what}: the CLI should report Temporal's permission error, got: {}",
        outcome.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporal_cli_through_the_proxy_is_allowed_and_denied_by_role_initiator_and_argument() {
    let issuer = Issuer::start().await;
    let proxy = start_proxy("cli", &issuer);
    let queue = unique("cli-queue");
    let _worker = WorkerThread::start(
        proxy.url(),
        issuer.token("order-worker", &["orders:writer"]),
        "orders",
        order_worker(&queue),
    );
    let alice = issuer.token("alice", &["orders:writer"]);
    let dave = issuer.token("dave", &["orders:writer"]);
    let bob = issuer.token("bob", &["orders:reader"]);
    let carol = issuer.token("carol", &["billing:writer"]);
    let id = unique("cli-order");
    let at = proxy.address.as_str();

    let start = [
        "workflow",
        "start",
        "--type",
        "Order",
        "--task-queue",
        &queue,
        "--workflow-id",
        &id,
        "--input",
        "100",
    ];
    assert_permission_error("a reader starting", &cli(at, &bob, "orders", &start).await);
    assert_permission_error(
        "a writer of billing starting in orders",
        &cli(at, &carol, "orders", &start).await,
    );
    assert_allowed(
        "a writer starting",
        &cli(at, &alice, "orders", &start).await,
    );

    let signal = [
        "workflow",
        "signal",
        "--workflow-id",
        &id,
        "--name",
        "add",
        "--input",
        "5",
    ];
    assert_permission_error(
        "a reader signalling",
        &cli(at, &bob, "orders", &signal).await,
    );
    assert_allowed(
        "a writer signalling",
        &cli(at, &alice, "orders", &signal).await,
    );

    let query = ["workflow", "query", "--workflow-id", &id, "--name", "total"];
    let answer = cli(at, &bob, "orders", &query).await;
    assert_allowed("a reader querying", &answer);
    // The signal is applied by the worker's next workflow task; wait for it.
    let signalled = eventually(Duration::from_secs(20), async || {
        cli(at, &bob, "orders", &query).await.stdout.contains("105")
    })
    .await;
    assert!(
        signalled,
        "the worker answered the query through the proxy, signal applied"
    );
    let describe = ["workflow", "describe", "--workflow-id", &id];
    assert_allowed(
        "a reader describing",
        &cli(at, &bob, "orders", &describe).await,
    );
    assert_permission_error(
        "a writer of billing describing in orders",
        &cli(at, &carol, "orders", &describe).await,
    );

    let update = |amount: &'static str| {
        [
            "workflow",
            "update",
            "execute",
            "--workflow-id",
            &id,
            "--name",
            "set-discount",
            "--input",
            amount,
        ]
    };
    let small = cli(at, &alice, "orders", &update(r#"{"amount": 500}"#)).await;
    assert_allowed("a discount of 500", &small);
    assert!(
        small.stdout.contains("-395"),
        "the update ran: {}",
        small.stdout
    );
    assert_permission_error(
        "a discount of 5000",
        &cli(at, &alice, "orders", &update(r#"{"amount": 5000}"#)).await,
    );

    let terminate = [
        "workflow",
        "terminate",
        "--workflow-id",
        &id,
        "--reason",
        "test",
    ];
    assert_permission_error(
        "a writer who did not start it terminating",
        &cli(at, &dave, "orders", &terminate).await,
    );
    assert_permission_error(
        "a reader terminating",
        &cli(at, &bob, "orders", &terminate).await,
    );
    assert_allowed(
        "the initiator terminating",
        &cli(at, &alice, "orders", &terminate).await,
    );
    let described = cli(at, &bob, "orders", &describe).await;
    assert!(
        described.stdout.contains("TERMINATED"),
        "terminated upstream: {}",
        described.stdout
    );

    let metrics = proxy.metrics().await;
    assert!(
        sample(
            &metrics,
            r#"warden_decisions_total{kind="terminate",outcome="deny"}"#
        ) >= 2.0,
        "denials are counted: {metrics}"
    );
    assert!(
        sample(
            &metrics,
            r#"warden_decisions_total{kind="worker",outcome="allow"}"#
        ) >= 1.0,
        "the worker's polls went through the proxy: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporal_cli_without_a_token_passes_the_connection_check_and_gets_request_unauthorized() {
    let issuer = Issuer::start().await;
    let proxy = start_proxy_with("anonymous", &issuer, "anonymous = true");
    let at = proxy.address.as_str();
    let id = unique("anonymous-order");
    let describe = ["workflow", "describe", "--workflow-id", &id];

    // The CLI's connection check (GetSystemInfo) is open to anonymous callers; the describe
    // that follows is what the role policy denies, with Temporal's own message.
    let anonymous = run_cli(at, None, "orders", &describe).await;
    assert_permission_error("an anonymous describe", &anonymous);
    assert!(
        !anonymous.stderr.to_lowercase().contains("unauthenticated"),
        "an absent credential is not an authentication failure: {}",
        anonymous.stderr
    );

    // A credential that is present but bad is still refused as such.
    let forged = run_cli(at, Some("not-a-jwt"), "orders", &describe).await;
    assert!(!forged.success, "a bad token is refused: {}", forged.stdout);
    assert!(
        forged.stderr.to_lowercase().contains("unauthenticated"),
        "a bad token is UNAUTHENTICATED: {}",
        forged.stderr
    );

    let metrics = proxy.metrics().await;
    assert!(
        sample(
            &metrics,
            r#"warden_decisions_total{kind="read",outcome="deny"}"#
        ) >= 1.0,
        "the anonymous describe was decided by the policy: {metrics}"
    );
}

/// The `tonic::Status` inside any client error, by its `Debug` form.
fn permission_denied(error: &dyn std::fmt::Debug) -> bool {
    let text = format!("{error:?}");
    text.contains("PermissionDenied") && text.contains("Request unauthorized.")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_and_worker_through_the_proxy_get_the_same_answers() {
    let issuer = Issuer::start().await;
    let proxy = start_proxy("client", &issuer);
    let queue = unique("client-queue");
    let _worker = WorkerThread::start(
        proxy.url(),
        issuer.token("order-worker", &["orders:writer"]),
        "orders",
        order_worker(&queue),
    );
    let alice = connect(
        &proxy.url(),
        Some(&issuer.token("alice", &["orders:writer"])),
        "orders",
    )
    .await;
    let dave = connect(
        &proxy.url(),
        Some(&issuer.token("dave", &["orders:writer"])),
        "orders",
    )
    .await;
    let bob = connect(
        &proxy.url(),
        Some(&issuer.token("bob", &["orders:reader"])),
        "orders",
    )
    .await;
    let carol = connect(
        &proxy.url(),
        Some(&issuer.token("carol", &["billing:writer"])),
        "orders",
    )
    .await;
    let id = unique("client-order");
    let options = || WorkflowStartOptions::new(queue.clone(), id.clone()).build();

    let denied = carol
        .start_workflow(OrderWorkflow::run, 100, options())
        .await;
    let Err(denied) = denied else {
        panic!("a writer of billing cannot start in orders")
    };
    assert!(
        permission_denied(&denied),
        "a writer of billing cannot start in orders"
    );
    let handle = alice
        .start_workflow(OrderWorkflow::run, 100, options())
        .await
        .unwrap();

    let as_bob = bob.get_workflow_handle::<OrderWorkflow>(&id);
    let denied = as_bob
        .signal(OrderWorkflow::add, 5, WorkflowSignalOptions::default())
        .await;
    assert!(
        permission_denied(&denied.unwrap_err()),
        "a reader cannot signal"
    );
    handle
        .signal(OrderWorkflow::add, 5, WorkflowSignalOptions::default())
        .await
        .unwrap();
    // The signal is applied by the worker's next workflow task; wait for it.
    let signalled = eventually(Duration::from_secs(20), async || {
        let total = as_bob
            .query(OrderWorkflow::total, (), WorkflowQueryOptions::default())
            .await
            .unwrap();
        total == 105
    })
    .await;
    assert!(
        signalled,
        "a reader queries; the worker answers through the proxy"
    );
    let described = as_bob
        .describe(WorkflowDescribeOptions::default())
        .await
        .unwrap();
    assert_eq!(described.workflow_type(), "Order");

    let after = handle
        .execute_update(
            OrderWorkflow::set_discount,
            Discount { amount: 1000 },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(after, -895, "a discount at the limit is allowed and runs");
    let denied = handle
        .execute_update(
            OrderWorkflow::set_discount,
            Discount { amount: 1001 },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await;
    assert!(
        permission_denied(&denied.unwrap_err()),
        "a discount over the limit is denied"
    );

    let as_dave = dave.get_workflow_handle::<OrderWorkflow>(&id);
    let denied = as_dave.terminate(WorkflowTerminateOptions::default()).await;
    assert!(
        permission_denied(&denied.unwrap_err()),
        "only the initiator terminates"
    );
    handle
        .signal(
            OrderWorkflow::close,
            "done".to_owned(),
            WorkflowSignalOptions::default(),
        )
        .await
        .unwrap();
    let completed = eventually(Duration::from_secs(30), async || {
        let described = as_bob
            .describe(WorkflowDescribeOptions::default())
            .await
            .unwrap();
        described.close_time().is_some()
    })
    .await;
    assert!(
        completed,
        "the worker completed the workflow through the proxy"
    );
}

/// The guardrail in a client process that acts as a reader of `orders`.
async fn guarded_reader(frontend: &str) -> Client {
    use warden_core::{Claims, Roles, identity::StaticTokenMapper};
    use warden_policy::roles::{MethodTable, RolePolicy};
    use warden_temporal::{TemporalResponder, client::Guardrail};
    use warden_tower::WardenLayer;

    let mapper = StaticTokenMapper::new().with_token(
        "reader-token",
        Claims::for_subject("reporting-job").with_namespace_role("orders", Roles::READER),
    );
    let layer = WardenLayer::builder(warden_temporal::operation_map())
        .responder(TemporalResponder)
        .authenticate(mapper)
        .otherwise(RolePolicy::new(MethodTable::temporal()))
        .build()
        .unwrap();
    let channel = tonic::transport::Channel::from_shared(format!("http://{frontend}"))
        .unwrap()
        .connect_lazy();
    let options = ConnectionOptions::new(Url::parse(&format!("http://{frontend}")).unwrap())
        .headers(HashMap::from([(
            "authorization".to_owned(),
            "Bearer reader-token".to_owned(),
        )]))
        .service_override(Guardrail::new(layer, channel).into_service_override())
        .dns_load_balancing(None)
        .build();
    let connection = Connection::connect(options).await.unwrap();
    Client::new(connection, ClientOptions::new("orders").build()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_guardrail_denies_in_process_so_denied_calls_never_reach_the_server() {
    let frontend = temporal().address.clone();
    let direct = connect(&format!("http://{frontend}"), None, "orders").await;
    let guarded = guarded_reader(&frontend).await;
    let queue = unique("guardrail-queue");

    let existing = unique("guardrail-existing");
    direct
        .start_workflow(
            OrderWorkflow::run,
            1,
            WorkflowStartOptions::new(queue.clone(), existing.clone()).build(),
        )
        .await
        .unwrap();
    let before = direct
        .get_workflow_handle::<OrderWorkflow>(&existing)
        .describe(WorkflowDescribeOptions::default())
        .await
        .unwrap()
        .history_length();

    // Reads are allowed and answered by the server.
    let as_reader = guarded.get_workflow_handle::<OrderWorkflow>(&existing);
    let described = as_reader
        .describe(WorkflowDescribeOptions::default())
        .await
        .unwrap();
    assert_eq!(described.workflow_type(), "Order");

    // A signal and a start are denied in the process.
    let denied = as_reader
        .signal(OrderWorkflow::add, 5, WorkflowSignalOptions::default())
        .await;
    assert!(
        permission_denied(&denied.unwrap_err()),
        "a reader cannot signal"
    );
    let never = unique("guardrail-never");
    let denied = guarded
        .start_workflow(
            OrderWorkflow::run,
            1,
            WorkflowStartOptions::new(queue.clone(), never.clone()).build(),
        )
        .await;
    let Err(denied) = denied else {
        panic!("a reader cannot start a workflow")
    };
    assert!(permission_denied(&denied));

    // The server saw neither: no such workflow, and no signal in the other's history.
    let missing = direct
        .get_workflow_handle::<OrderWorkflow>(&never)
        .describe(WorkflowDescribeOptions::default())
        .await;
    assert!(
        format!("{:?}", missing.unwrap_err()).contains("NotFound"),
        "the denied start never reached the server"
    );
    let after = direct
        .get_workflow_handle::<OrderWorkflow>(&existing)
        .describe(WorkflowDescribeOptions::default())
        .await
        .unwrap()
        .history_length();
    assert_eq!(before, after, "the denied signal never reached the server");
}
