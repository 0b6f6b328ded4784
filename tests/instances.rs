//! Instance-level access end to end: the example tonic service behind Warden, the initiator
//! recorded on a successful start, and the *initiator* and *participants* policies deciding
//! signal, query and terminate — with the in-memory store and with a real Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{net::SocketAddr, sync::Arc};

use support::*;
use tonic::Code;
use tower::ServiceBuilder;
use warden_core::{
    KindSet, OperationKind,
    instances::{InstanceKey, InstanceStore, MemoryInstanceStore, SharedInstanceStore},
};
use warden_example::{
    CallLog, operation_map,
    pb::{TerminateWorkflowRequest, WorkflowExecution},
    policies::writers,
    redis_server::RedisServer,
};
use warden_policy::instances::InstancePolicy;
use warden_redis::RedisInstanceStore;
use warden_tower::{WardenLayer, record::RecordInitiatorLayer};

async fn serve_with(store: SharedInstanceStore, policy: InstancePolicy) -> (SocketAddr, CallLog) {
    let warden = WardenLayer::builder(operation_map())
        .authenticate(instance_identities())
        .execute(writers())
        .signal(policy.clone())
        .query(policy.clone())
        .update(policy.clone())
        .read(policy.clone())
        .kinds(
            KindSet::one(OperationKind::Cancel).with(OperationKind::Terminate),
            policy,
        )
        .build()
        .unwrap();
    serve(
        ServiceBuilder::new()
            .layer(warden)
            .layer(RecordInitiatorLayer::new(store)),
    )
    .await
}

fn terminate(id: &str) -> TerminateWorkflowRequest {
    TerminateWorkflowRequest {
        namespace: "orders".into(),
        execution: Some(WorkflowExecution {
            workflow_id: id.into(),
            run_id: String::new(),
        }),
        reason: "test".into(),
    }
}

struct Calls {
    addr: SocketAddr,
}

impl Calls {
    async fn start(&self, who: &str, id: &str) -> Result<(), tonic::Status> {
        client(self.addr)
            .await
            .start_workflow(as_user(who, start("orders", id)))
            .await
            .map(drop)
    }
    async fn signal(&self, who: &str, id: &str) -> Result<(), tonic::Status> {
        client(self.addr)
            .await
            .signal_workflow(as_user(who, signal("orders", id, "approve")))
            .await
            .map(drop)
    }
    async fn query(&self, who: &str, id: &str) -> Result<(), tonic::Status> {
        client(self.addr)
            .await
            .query_workflow(as_user(who, query("orders", id)))
            .await
            .map(drop)
    }
    async fn terminate(&self, who: &str, id: &str) -> Result<(), tonic::Status> {
        client(self.addr)
            .await
            .terminate_workflow(as_user(who, terminate(id)))
            .await
            .map(drop)
    }
}

fn denied(result: Result<(), tonic::Status>, reason: &str) {
    let status = result.expect_err("should be denied");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains(reason),
        "`{}` lacks `{reason}`",
        status.message()
    );
}

/// The initiator may terminate; a participant may signal and query but not terminate; a
/// stranger may do nothing; an admin may do all; an instance never started through Warden
/// admits only admins.
async fn initiator_policy_over(store: SharedInstanceStore) {
    let (addr, log) = serve_with(
        Arc::clone(&store),
        InstancePolicy::initiator(Arc::clone(&store)),
    )
    .await;
    let calls = Calls { addr };
    calls.start("alice", "o-1").await.unwrap();
    let key = InstanceKey::new("orders", "o-1");
    assert_eq!(
        store.get(&key).await.unwrap().initiator.as_deref(),
        Some("alice")
    );
    store.add_participant(&key, "bob").await.unwrap();

    calls.signal("bob", "o-1").await.unwrap();
    calls.query("bob", "o-1").await.unwrap();
    denied(
        calls.terminate("bob", "o-1").await,
        "only the initiator or an admin may terminate",
    );
    denied(
        calls.signal("mallory", "o-1").await,
        "only the initiator, a participant or an admin",
    );
    denied(
        calls.query("mallory", "o-1").await,
        "only the initiator, a participant or an admin",
    );
    denied(
        calls.terminate("mallory", "o-1").await,
        "only the initiator, a participant or an admin",
    );
    // A second start of the same id fails and takes nothing over.
    assert_eq!(
        calls.start("mallory", "o-1").await.unwrap_err().code(),
        Code::AlreadyExists
    );
    assert_eq!(
        store.get(&key).await.unwrap().initiator.as_deref(),
        Some("alice")
    );
    denied(
        calls.signal("bob", "never-started").await,
        "no initiator is recorded",
    );
    calls.terminate("alice", "o-1").await.unwrap();

    calls.start("alice", "o-2").await.unwrap();
    calls.terminate("root", "o-2").await.unwrap();
    assert_eq!(
        log.calls(),
        [
            "StartWorkflow by alice",
            "SignalWorkflow by bob",
            "QueryWorkflow by bob",
            "StartWorkflow by mallory",
            "TerminateWorkflow by alice",
            "StartWorkflow by alice",
            "TerminateWorkflow by root",
        ]
    );
}

#[tokio::test]
async fn initiator_policy_with_the_memory_store() {
    initiator_policy_over(Arc::new(MemoryInstanceStore::new())).await;
}

#[tokio::test]
async fn initiator_policy_with_redis() {
    let redis = RedisServer::start();
    let store = RedisInstanceStore::connect(&redis.url).await.unwrap();
    initiator_policy_over(Arc::new(store)).await;
}

#[tokio::test]
async fn under_the_participants_policy_a_participant_may_terminate() {
    let store: SharedInstanceStore = Arc::new(MemoryInstanceStore::new());
    let (addr, _log) = serve_with(
        Arc::clone(&store),
        InstancePolicy::participants(Arc::clone(&store)),
    )
    .await;
    let calls = Calls { addr };
    calls.start("alice", "o-1").await.unwrap();
    store
        .add_participant(&InstanceKey::new("orders", "o-1"), "bob")
        .await
        .unwrap();
    denied(
        calls.terminate("mallory", "o-1").await,
        "only the initiator, a participant or an admin",
    );
    calls.terminate("bob", "o-1").await.unwrap();
}

#[tokio::test]
async fn a_store_that_cannot_be_reached_denies_unavailable_before_the_handler_and_recovers_when_it_is_back()
 {
    let mut redis = RedisServer::start();
    let store: SharedInstanceStore = Arc::new(
        RedisInstanceStore::connect_with(
            &redis.url,
            "warden",
            std::time::Duration::from_millis(300),
        )
        .await
        .unwrap(),
    );
    let (addr, log) = serve_with(
        Arc::clone(&store),
        InstancePolicy::initiator(Arc::clone(&store)),
    )
    .await;
    let calls = Calls { addr };
    calls.start("alice", "o-1").await.unwrap();
    redis.stop();
    let status = calls.signal("alice", "o-1").await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("instance store unavailable"),
        "{status:?}"
    );
    assert_eq!(log.calls(), ["StartWorkflow by alice"]);

    // Redis comes back (empty): the store reconnects and calls are served again.
    redis.restart();
    let mut served = false;
    for _ in 0..50 {
        if calls.start("alice", "o-2").await.is_ok() {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(served, "calls are served once the store is back");
    calls.signal("alice", "o-2").await.unwrap();
    denied(calls.signal("mallory", "o-2").await, "only the initiator");
}
