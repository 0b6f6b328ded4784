//! Warden's layers in a real tonic server over loopback TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use std::time::Duration;

use support::*;
use tonic::{Code, codec::CompressionEncoding, transport::Channel};
use tower::ServiceBuilder;
use warden_core::{
    Decision, PolicyError,
    policy::{AllowAll, DenyAll, async_policy_fn, policy_fn},
};
use warden_example::{
    DECIDER_HEADER, operation_map,
    pb::{
        DescribeWorkflowRequest, WatchWorkflowRequest,
        workflow_service_client::WorkflowServiceClient,
    },
    policies::{self, demo_layer, identities, readers, writers},
};
use warden_tower::{
    AuthenticateLayer, AuthorizeLayer, ClassifyLayer, ExecuteLayer, QueryLayer,
    RequireDecisionLayer, SignalLayer, UpdateLayer, WardenLayer,
};

/// The issue's example: broad query access for readers, signal access only for writers of the
/// namespace, on the same service, each kind with its own layer.
macro_rules! per_kind_stack {
    () => {
        ServiceBuilder::new()
            .layer(ClassifyLayer::new(operation_map()))
            .layer(AuthenticateLayer::new(identities()))
            .layer(QueryLayer::new(readers()))
            .layer(SignalLayer::new(writers()))
            .layer(ExecuteLayer::new(writers()))
            .layer(AuthorizeLayer::otherwise(DenyAll::new()))
            .layer(RequireDecisionLayer::new())
    };
}

#[tokio::test]
async fn readers_query_but_only_writers_of_the_namespace_signal() {
    let (addr, log) = serve(per_kind_stack!()).await;
    let mut client = client(addr).await;

    client
        .start_workflow(as_user("alice-token", start("orders", "o-1")))
        .await
        .unwrap();
    let answer = client
        .query_workflow(as_user("bob-token", query("orders", "o-1")))
        .await
        .unwrap();
    assert_eq!(answer.metadata().get(DECIDER_HEADER).unwrap(), "readers");

    for token in ["bob-token", "carol-token"] {
        let denied = client
            .signal_workflow(as_user(token, signal("orders", "o-1", "approve")))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert_eq!(
            denied.message(),
            "permission denied: needs the writer role in this namespace"
        );
    }
    client
        .signal_workflow(as_user("alice-token", signal("orders", "o-1", "approve")))
        .await
        .unwrap();

    // Cancel has no layer but the deny-all fallback.
    let cancel = warden_example::pb::CancelWorkflowRequest {
        namespace: "orders".into(),
        execution: execution("o-1"),
        reason: String::new(),
    };
    let denied = client
        .cancel_workflow(as_user("alice-token", cancel))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    assert_eq!(
        log.calls(),
        [
            "StartWorkflow by alice",
            "QueryWorkflow by bob",
            "SignalWorkflow by alice"
        ],
        "denied calls must never reach a handler"
    );
}

#[tokio::test]
async fn a_kind_no_layer_covers_is_denied_by_require_decision() {
    let stack = ServiceBuilder::new()
        .layer(ClassifyLayer::new(operation_map()))
        .layer(AuthenticateLayer::new(identities()))
        .layer(QueryLayer::new(AllowAll::new()))
        .layer(RequireDecisionLayer::new());
    let (addr, log) = serve(stack).await;
    let denied = client(addr)
        .await
        .start_workflow(as_user("root-token", start("orders", "o-1")))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        denied.message(),
        "permission denied: no authorization layer decides execute operations"
    );
    assert!(log.is_empty());
}

type StartResult =
    Result<tonic::Response<warden_example::pb::StartWorkflowResponse>, tonic::Status>;

/// Starts a workflow as `token`'s caller on a server whose only authorization is `execute`.
async fn start_behind(
    execute: ExecuteLayer,
    token: &str,
) -> (StartResult, warden_example::CallLog) {
    let stack = ServiceBuilder::new()
        .layer(ClassifyLayer::new(operation_map()))
        .layer(AuthenticateLayer::new(identities()))
        .layer(execute)
        .layer(RequireDecisionLayer::new());
    let (addr, log) = serve(stack).await;
    let result = client(addr)
        .await
        .start_workflow(as_user(token, start("orders", "o-1")))
        .await;
    (result, log)
}

async fn status_under(
    policy: impl warden_core::Policy,
) -> (tonic::Status, warden_example::CallLog) {
    let execute = ExecuteLayer::new(policy).policy_timeout(Duration::from_millis(100));
    let (result, log) = start_behind(execute, "root-token").await;
    (result.unwrap_err(), log)
}

/// The call was refused `UNAVAILABLE`, the message names `cause`, and no handler ran.
fn assert_unavailable_before_handler(
    status: &tonic::Status,
    log: &warden_example::CallLog,
    cause: &str,
) {
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains(cause), "{}", status.message());
    assert!(log.is_empty());
}

#[tokio::test]
async fn a_policy_error_denies_with_unavailable() {
    let failing = async_policy_fn("remote-pdp", |_| async {
        Err(PolicyError::unavailable("connection refused"))
    });
    let (status, log) = status_under(failing).await;
    assert_unavailable_before_handler(&status, &log, "connection refused");
}

#[tokio::test]
async fn a_policy_that_times_out_denies_with_unavailable() {
    let slow = async_policy_fn("slow", |_| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(Decision::allow("slow"))
    });
    let (status, log) = status_under(slow).await;
    assert_unavailable_before_handler(&status, &log, "timed out");
}

#[tokio::test]
async fn a_panicking_policy_denies_with_unavailable() {
    let (status, log) = status_under(policy_fn("buggy", |_| panic!("index out of bounds"))).await;
    assert_unavailable_before_handler(&status, &log, "panicked");

    let panics_later = async_policy_fn("buggy-async", |_| async {
        tokio::task::yield_now().await;
        panic!("lost the connection pool")
    });
    let (status, log) = status_under(panics_later).await;
    assert_unavailable_before_handler(&status, &log, "lost the connection pool");
}

#[tokio::test]
async fn an_async_policy_that_allows_lets_the_call_through() {
    let lookup = async_policy_fn("directory", |_| async {
        tokio::task::yield_now().await;
        Ok(Decision::allow("directory"))
    });
    let (result, log) = start_behind(ExecuteLayer::new(lookup), "bob-token").await;
    let response = result.unwrap();
    assert_eq!(
        response.metadata().get(DECIDER_HEADER).unwrap(),
        "directory"
    );
    assert_eq!(log.calls(), ["StartWorkflow by bob"]);
}

#[tokio::test]
async fn compressed_update_arguments_are_decoded_and_judged() {
    let (addr, log) = serve(demo_layer()).await;
    for encoding in [
        CompressionEncoding::Gzip,
        CompressionEncoding::Zstd,
        CompressionEncoding::Deflate,
    ] {
        let mut client = WorkflowServiceClient::new(channel(addr).await).send_compressed(encoding);
        let id = format!("o-{encoding:?}");
        client
            .start_workflow(as_user("alice-token", start("orders", &id)))
            .await
            .unwrap();
        client
            .update_workflow(as_user("alice-token", update("orders", &id, 250)))
            .await
            .unwrap();
        let denied = client
            .update_workflow(as_user("alice-token", update("orders", &id, 5000)))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "{encoding:?}");
        assert_eq!(
            denied.message(),
            "permission denied: amount 5000 is over 1000"
        );
    }
    assert_eq!(log.len(), 6, "{:?}", log.calls());
}

/// Starts `orders/o-1` as alice and `billing/inv-1` as carol: a stream of alice's that names
/// both may signal the first and not the second.
async fn start_orders_and_billing(client: &mut WorkflowServiceClient<Channel>) {
    client
        .start_workflow(as_user("alice-token", start("orders", "o-1")))
        .await
        .unwrap();
    client
        .start_workflow(as_user("carol-token", start("billing", "inv-1")))
        .await
        .unwrap();
}

/// How many signals the handler applied to `namespace/id`, as root sees it.
async fn signal_count(
    client: &mut WorkflowServiceClient<Channel>,
    namespace: &str,
    id: &str,
) -> u32 {
    client
        .describe_workflow(as_user(
            "root-token",
            DescribeWorkflowRequest {
                namespace: namespace.into(),
                execution: execution(id),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .signal_count
}

#[tokio::test]
async fn a_denied_message_in_a_client_stream_ends_the_call_and_never_reaches_the_handler() {
    let (addr, log) = serve(demo_layer()).await;
    let mut client = client(addr).await;
    start_orders_and_billing(&mut client).await;

    let batch = vec![
        signal("orders", "o-1", "approve"),
        signal("billing", "inv-1", "approve"),
    ];
    let denied = client
        .signal_workflow_batch(as_user("alice-token", tokio_stream::iter(batch)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        denied.message(),
        "permission denied: needs the writer role in this namespace"
    );

    assert_eq!(
        signal_count(&mut client, "orders", "o-1").await,
        1,
        "the allowed first message was delivered"
    );
    assert_eq!(
        signal_count(&mut client, "billing", "inv-1").await,
        0,
        "the denied second message never reached the handler"
    );
    assert!(
        log.calls()
            .contains(&"SignalWorkflowBatch by alice".to_owned())
    );
}

/// A bidirectional stream whose first message is allowed and whose second is not: the first
/// is applied and answered, the second never reaches the handler, and the call ends with
/// PERMISSION_DENIED. Each message is sent only after the previous one was answered, so what
/// reached the handler is not left to timing.
#[tokio::test]
async fn a_denied_message_in_a_bidirectional_stream_ends_the_call_and_never_reaches_the_handler() {
    let (addr, _log) = serve(demo_layer()).await;
    let mut client = client(addr).await;
    start_orders_and_billing(&mut client).await;
    let (send, outbound) = tokio::sync::mpsc::channel(4);
    send.send(signal("orders", "o-1", "approve")).await.unwrap();
    let mut events = client
        .signal_workflow_stream(as_user(
            "alice-token",
            tokio_stream::wrappers::ReceiverStream::new(outbound),
        ))
        .await
        .unwrap()
        .into_inner();
    let first = events.message().await.unwrap().unwrap();
    assert_eq!(
        (first.sequence, first.detail.as_slice()),
        (1, &b"approve"[..])
    );
    send.send(signal("billing", "inv-1", "approve"))
        .await
        .unwrap();
    let denied = tokio::time::timeout(Duration::from_secs(10), events.message())
        .await
        .expect("the call ends instead of waiting for more")
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert_eq!(
        denied.message(),
        "permission denied: needs the writer role in this namespace"
    );
    drop(send);

    assert_eq!(
        signal_count(&mut client, "orders", "o-1").await,
        1,
        "the allowed first message was applied"
    );
    assert_eq!(
        signal_count(&mut client, "billing", "inv-1").await,
        0,
        "the denied second message never reached the handler"
    );
}

#[tokio::test]
async fn every_message_of_an_allowed_client_stream_is_delivered() {
    let (addr, _log) = serve(demo_layer()).await;
    let mut client = client(addr).await;
    client
        .start_workflow(as_user("alice-token", start("orders", "o-1")))
        .await
        .unwrap();
    let batch: Vec<_> = (0..50)
        .map(|_| signal("orders", "o-1", "approve"))
        .collect();
    let accepted = client
        .signal_workflow_batch(as_user("alice-token", tokio_stream::iter(batch)))
        .await
        .unwrap()
        .into_inner()
        .accepted;
    assert_eq!(accepted, 50);
}

#[tokio::test]
async fn a_server_stream_is_authorized_before_it_starts() {
    let (addr, log) = serve(demo_layer()).await;
    let mut client = client(addr).await;
    client
        .start_workflow(as_user("alice-token", start("orders", "o-1")))
        .await
        .unwrap();
    let watch = || WatchWorkflowRequest {
        namespace: "orders".into(),
        execution: execution("o-1"),
    };
    let mut events = client
        .watch_workflow(as_user("bob-token", watch()))
        .await
        .unwrap()
        .into_inner();
    let mut kinds = Vec::new();
    while let Some(event) = events.message().await.unwrap() {
        kinds.push(event.kind);
    }
    assert_eq!(kinds, ["status", "signals"]);
    let denied = client
        .watch_workflow(as_user("wendy-token", watch()))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        log.calls(),
        ["StartWorkflow by alice", "WatchWorkflow by bob"]
    );
}

#[tokio::test]
async fn missing_and_forged_tokens_are_unauthenticated_before_the_handler() {
    let (addr, log) = serve(demo_layer()).await;
    let mut client = client(addr).await;
    let missing = client
        .start_workflow(tonic::Request::new(start("orders", "o-1")))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(missing.message(), "unauthenticated: missing credentials");
    let forged = client
        .start_workflow(as_user("forged-secret-token", start("orders", "o-1")))
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::Unauthenticated);
    assert!(
        !forged.message().contains("forged-secret-token"),
        "tokens are never echoed"
    );
    assert!(log.is_empty());
}

#[tokio::test]
async fn shadow_mode_lets_a_denied_call_through() {
    let layer = WardenLayer::builder(operation_map())
        .authenticate(identities())
        .signal(policies::writers())
        .shadow()
        .build()
        .unwrap();
    let (addr, log) = serve(layer).await;
    let mut client = client(addr).await;
    // Bob may not start or signal; in shadow mode both go through (and are logged as denials).
    client
        .start_workflow(as_user("bob-token", start("orders", "o-1")))
        .await
        .unwrap();
    client
        .signal_workflow(as_user("bob-token", signal("orders", "o-1", "x")))
        .await
        .unwrap();
    assert_eq!(log.len(), 2);
}

#[tokio::test]
async fn the_update_layer_alone_guards_updates() {
    let stack = ServiceBuilder::new()
        .layer(ClassifyLayer::new(operation_map()))
        .layer(AuthenticateLayer::new(identities()))
        .layer(UpdateLayer::new(policies::updates_up_to_1000()))
        .layer(AuthorizeLayer::otherwise(AllowAll::new()))
        .layer(RequireDecisionLayer::new());
    let (addr, log) = serve(stack).await;
    let mut client = client(addr).await;
    client
        .start_workflow(as_user("bob-token", start("orders", "o-1")))
        .await
        .unwrap();
    let denied = client
        .update_workflow(as_user("bob-token", update("orders", "o-1", 1)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(log.calls(), ["StartWorkflow by bob"]);
}

/// A claim mapper that answers asynchronously, or never.
struct SlowMapper {
    hang: bool,
}

impl warden_core::ClaimMapper for SlowMapper {
    fn map(&self, info: &warden_core::AuthInfo) -> warden_core::identity::Mapping {
        let hang = self.hang;
        let known = info
            .bearer
            .as_ref()
            .map(|t| t.expose() == "alice-token")
            .unwrap_or(false);
        warden_core::Answer::pending(async move {
            if hang {
                std::future::pending::<()>().await;
            }
            tokio::task::yield_now().await;
            if known {
                Ok(std::sync::Arc::new(warden_core::Claims::for_subject(
                    "alice",
                )))
            } else {
                Err(warden_core::AuthError::invalid("unknown token"))
            }
        })
    }
}

#[tokio::test]
async fn the_one_line_stack_handles_async_mappers_and_policies() {
    let directory = async_policy_fn(
        "directory",
        |request: warden_core::AuthzRequest| async move {
            tokio::task::yield_now().await;
            Ok(
                if request.operation.namespace.as_deref() == Some("orders") {
                    Decision::allow("directory")
                } else {
                    Decision::deny("directory", "not in the directory")
                },
            )
        },
    );
    let layer = WardenLayer::builder(operation_map())
        .authenticate(SlowMapper { hang: false })
        .execute(directory)
        .build()
        .unwrap();
    let (addr, log) = serve(layer).await;
    let mut client = client(addr).await;
    let allowed = client
        .start_workflow(as_user("alice-token", start("orders", "o-1")))
        .await
        .unwrap();
    assert_eq!(allowed.metadata().get(DECIDER_HEADER).unwrap(), "directory");
    let denied = client
        .start_workflow(as_user("alice-token", start("billing", "b-1")))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(denied.message(), "permission denied: not in the directory");
    let unknown = client
        .start_workflow(as_user("bob-token", start("orders", "o-2")))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);
    assert_eq!(log.calls(), ["StartWorkflow by alice"]);
}

#[tokio::test]
async fn a_claim_mapper_that_hangs_is_unavailable_after_its_timeout() {
    for separate_layers in [false, true] {
        let authenticate = AuthenticateLayer::new(SlowMapper { hang: true })
            .mapper_timeout(Duration::from_millis(50));
        let status = if separate_layers {
            let stack = ServiceBuilder::new()
                .layer(ClassifyLayer::new(operation_map()))
                .layer(authenticate)
                .layer(AuthorizeLayer::otherwise(AllowAll::new()));
            let (addr, log) = serve(stack).await;
            let status = client(addr)
                .await
                .start_workflow(as_user("alice-token", start("orders", "o")))
                .await
                .unwrap_err();
            assert!(log.is_empty());
            status
        } else {
            let layer = WardenLayer::builder(operation_map())
                .authenticate_with(authenticate)
                .otherwise(AllowAll::new())
                .build()
                .unwrap();
            let (addr, log) = serve(layer).await;
            let status = client(addr)
                .await
                .start_workflow(as_user("alice-token", start("orders", "o")))
                .await
                .unwrap_err();
            assert!(log.is_empty());
            status
        };
        assert_eq!(
            status.code(),
            Code::Unavailable,
            "separate layers: {separate_layers}"
        );
        assert!(
            status.message().contains("no answer within"),
            "{}",
            status.message()
        );
    }
}

/// Answers refusals with an extra header, as a Temporal-shaped responder would add details.
struct TaggedResponder;

impl warden_tower::rejection::Respond for TaggedResponder {
    fn respond(
        &self,
        rejection: &warden_tower::Rejection,
        protocol: warden_core::Protocol,
    ) -> http::Response<bytes::Bytes> {
        let mut response = warden_tower::rejection::DefaultResponder.respond(rejection, protocol);
        response
            .headers_mut()
            .insert("x-refused-by", "warden".parse().unwrap());
        response
    }
}

#[tokio::test]
async fn a_custom_responder_shapes_every_refusal() {
    let layer = WardenLayer::builder(operation_map())
        .authenticate(identities())
        .responder(TaggedResponder)
        .build()
        .unwrap();
    let (addr, log) = serve(layer).await;
    let denied = client(addr)
        .await
        .start_workflow(as_user("alice-token", start("orders", "o")))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(denied.metadata().get("x-refused-by").unwrap(), "warden");
    assert!(log.is_empty());
}

#[tokio::test]
async fn the_temporal_responder_denies_with_a_permission_denied_failure_a_tonic_client_can_read() {
    use prost::Message;
    use warden::temporal::{TemporalResponder, UNAUTHORIZED};

    let warden = warden_tower::WardenLayer::builder(warden_example::operation_map())
        .authenticate(warden_example::policies::identities())
        .signal(warden_example::policies::writers())
        .responder(TemporalResponder)
        .build()
        .unwrap();
    let (addr, log) = serve(warden).await;
    let status = client(addr)
        .await
        .signal_workflow(as_user("bob-token", signal("orders", "o-1", "approve")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(status.message(), UNAUTHORIZED);
    let details = google_status::Status::decode(status.details()).unwrap();
    assert_eq!(
        details.details[0].type_url,
        "type.googleapis.com/temporal.api.errordetails.v1.PermissionDeniedFailure"
    );
    let reason = google_status::reason(&details.details[0].value);
    assert!(reason.contains("needs the writer role"), "{reason}");
    assert!(log.is_empty());
}

/// `google.rpc.Status` and `PermissionDeniedFailure`, decoded as a client that knows only
/// their wire shape would.
mod google_status {
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Status {
        #[prost(int32, tag = "1")]
        pub(crate) code: i32,
        #[prost(string, tag = "2")]
        pub(crate) message: String,
        #[prost(message, repeated, tag = "3")]
        pub(crate) details: Vec<Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Any {
        #[prost(string, tag = "1")]
        pub(crate) type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub(crate) value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct PermissionDeniedFailure {
        #[prost(string, tag = "1")]
        reason: String,
    }

    pub(crate) fn reason(bytes: &[u8]) -> String {
        <PermissionDeniedFailure as prost::Message>::decode(bytes)
            .unwrap()
            .reason
    }
}

/// Queries for the `acme` tenant from loopback over plaintext; nothing with `x-debug`; starts
/// only from a network the test is not on.
const CONNECTION_RULES: &str = r#"
[[rule]]
id = "acme-from-loopback"
effect = "allow"
kinds = ["query"]
metadata = [{ name = "x-tenant", in = ["acme"] }]
transport = { tls = false, peer_in = ["127.0.0.0/8", "::1"] }

[[rule]]
id = "no-debug"
effect = "deny"
reason = "debug calls are closed"
metadata = [{ name = "x-debug", present = true }]

[[rule]]
id = "starts-from-the-pod-network"
effect = "allow"
kinds = ["execute"]
transport = { peer_in = ["10.0.0.0/8"] }
"#;

fn connection_rules() -> warden_policy::rules::RulesPolicy {
    let set = warden_policy::rules::RuleSet::parse(
        std::path::Path::new("connection.toml"),
        CONNECTION_RULES,
    )
    .unwrap();
    warden_policy::rules::RulesPolicy::new(set)
}

fn with_metadata<T>(
    mut request: tonic::Request<T>,
    pairs: &[(&'static str, &str)],
) -> tonic::Request<T> {
    for (name, value) in pairs {
        request.metadata_mut().append(*name, value.parse().unwrap());
    }
    request
}

/// Runs the connection rules' table against a server at `addr`.
async fn assert_connection_rules(addr: std::net::SocketAddr, log: &warden_example::CallLog) {
    let mut client = client(addr).await;
    let tenant = |name: &str| {
        with_metadata(
            as_user("bob-token", query("orders", "o-1")),
            &[("x-tenant", name)],
        )
    };
    // Allowed: the handler answers (no such workflow, since starts are denied here).
    let reached = client.query_workflow(tenant("acme")).await.unwrap_err();
    assert_eq!(reached.code(), Code::NotFound, "{reached:?}");

    let other = client.query_workflow(tenant("globex")).await.unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);
    assert_eq!(
        other.message(),
        "permission denied: no rule allows this call"
    );

    let two = with_metadata(tenant("acme"), &[("x-tenant", "globex")]);
    let two = client.query_workflow(two).await.unwrap_err();
    assert_eq!(
        two.code(),
        Code::PermissionDenied,
        "a second tenant cannot ride on the first"
    );

    let debug = with_metadata(tenant("acme"), &[("x-debug", "1")]);
    let debug = client.query_workflow(debug).await.unwrap_err();
    assert_eq!(debug.code(), Code::PermissionDenied);
    assert_eq!(debug.message(), "permission denied: debug calls are closed");

    let start = client
        .start_workflow(as_user("alice-token", start("orders", "o-2")))
        .await
        .unwrap_err();
    assert_eq!(
        start.code(),
        Code::PermissionDenied,
        "loopback is not the pod network"
    );
    assert_eq!(log.calls(), ["QueryWorkflow by bob"]);
}

#[tokio::test]
async fn metadata_and_transport_conditions_decide_calls_on_a_real_server() {
    let one_line = WardenLayer::builder(operation_map())
        .peer_from(warden_identity::tonic::peer)
        .authenticate(identities())
        .query(connection_rules())
        .execute(connection_rules())
        .build()
        .unwrap();
    let (addr, log) = serve(one_line).await;
    assert_connection_rules(addr, &log).await;

    let hand_assembled = ServiceBuilder::new()
        .layer(ClassifyLayer::new(operation_map()).peer_from(warden_identity::tonic::peer))
        .layer(AuthenticateLayer::new(identities()))
        .layer(QueryLayer::new(connection_rules()))
        .layer(ExecuteLayer::new(connection_rules()))
        .layer(RequireDecisionLayer::new());
    let (addr, log) = serve(hand_assembled).await;
    assert_connection_rules(addr, &log).await;
}

#[tokio::test]
async fn transport_conditions_fail_closed_when_the_server_does_not_say() {
    // Without `peer_from`, Warden cannot see tonic's connection info: the peer and transport
    // are unknown, so the loopback rule does not allow.
    let layer = WardenLayer::builder(operation_map())
        .authenticate(identities())
        .query(connection_rules())
        .build()
        .unwrap();
    let (addr, log) = serve(layer).await;
    let mut client = client(addr).await;
    let query = with_metadata(
        as_user("bob-token", query("orders", "o-1")),
        &[("x-tenant", "acme")],
    );
    let denied = client.query_workflow(query).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(log.calls().is_empty());
}

/// Records whether it was shown the call's metadata, and what `x-tenant` said.
struct MetadataProbe {
    reads: bool,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Option<String>>>>,
}

impl warden_core::Policy for MetadataProbe {
    fn evaluate(&self, request: &warden_core::AuthzRequest) -> warden_core::Evaluation {
        let metadata = &request.context.metadata;
        let tenant = metadata.headers().map(|_| {
            metadata
                .get_all("x-tenant")
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
                .join(",")
        });
        self.seen.lock().unwrap().push(tenant);
        warden_core::Answer::Ready(Ok(Decision::allow("probe")))
    }

    fn reads_metadata(&self) -> bool {
        self.reads
    }
}

#[tokio::test]
async fn metadata_is_shown_only_to_the_policies_that_read_it() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let probe = |reads| MetadataProbe {
        reads,
        seen: std::sync::Arc::clone(&seen),
    };
    // Queries go to a policy that reads metadata, starts to one that does not.
    let layer = WardenLayer::builder(operation_map())
        .authenticate(identities())
        .query(probe(true))
        .execute(probe(false))
        .build()
        .unwrap();
    let (addr, log) = serve(layer).await;
    let mut client = client(addr).await;
    let tenant = [("x-tenant", "acme")];
    client
        .start_workflow(with_metadata(
            as_user("alice-token", start("orders", "o-1")),
            &tenant,
        ))
        .await
        .unwrap();
    client
        .query_workflow(with_metadata(
            as_user("bob-token", query("orders", "o-1")),
            &tenant,
        ))
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [None, Some("acme".to_owned())]);
    // Both calls reached the handler, authenticated from the headers either way.
    assert_eq!(
        log.calls(),
        ["StartWorkflow by alice", "QueryWorkflow by bob"]
    );
}
