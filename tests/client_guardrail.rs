//! Warden around a tonic *client* channel: a client-side guardrail. A denied call never leaves
//! the process; the real server behind loopback records nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use support::*;
use tonic::Code;
use tower::ServiceBuilder;
use tower_http::map_request_body::MapRequestBodyLayer;
use warden_core::policy::AllowAll;
use warden_example::{
    operation_map,
    pb::{TerminateWorkflowRequest, workflow_service_client::WorkflowServiceClient},
    policies,
};
use warden_tower::WardenLayer;

#[tokio::test]
async fn denied_calls_never_leave_the_client_process() {
    let (addr, log) = serve_bare().await;
    // This process may start, read and query anything, and signal as a writer; nothing else.
    let guardrail = WardenLayer::builder(operation_map())
        .authenticate(policies::identities())
        .execute(AllowAll::new())
        .query(AllowAll::new())
        .read(AllowAll::new())
        .signal(policies::writers())
        .build()
        .unwrap();
    let channel = ServiceBuilder::new()
        .layer(guardrail)
        .layer(MapRequestBodyLayer::new(tonic::body::Body::new))
        .service(channel(addr).await);
    let mut client = WorkflowServiceClient::new(channel);

    client
        .start_workflow(as_user("alice-token", start("orders", "o-1")))
        .await
        .unwrap();
    let denied = client
        .signal_workflow(as_user("bob-token", signal("orders", "o-1", "x")))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let terminate = TerminateWorkflowRequest {
        namespace: "orders".into(),
        execution: execution("o-1"),
        reason: String::new(),
    };
    let denied = client
        .terminate_workflow(as_user("root-token", terminate))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    client
        .signal_workflow(as_user("alice-token", signal("orders", "o-1", "x")))
        .await
        .unwrap();

    // The server is unguarded (it records the gRPC authorization header's caller as
    // `<unauthenticated>`): only the allowed calls reached it.
    assert_eq!(
        log.calls(),
        [
            "StartWorkflow by <unauthenticated>",
            "SignalWorkflow by <unauthenticated>"
        ]
    );
}
