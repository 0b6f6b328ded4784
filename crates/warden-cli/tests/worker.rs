//! Worker-side authorization against a real Temporal dev server: `warden proxy` writes call
//! passports, a real `temporalio-sdk` worker with `warden-worker`'s interceptors checks them
//! before any handler runs, and calls that bypass the proxy or carry forged, tampered,
//! misbound, untrusted or expired passports never reach a handler. The history it records
//! replays after the keys rotated and the policy changed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/guarded.rs"]
mod guarded;
#[path = "support/sdk.rs"]
mod sdk;
mod support;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, atomic::Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use guarded::{Billing, CHARGES, GuardedOrder};
use sdk::{WorkerThread, connect};
use support::{
    Issuer, ProxyProcess, ed25519_pem, eventually, http_get, passport_proxy_config, temporal,
    unique,
};
use temporalio_client::{
    Client, WorkflowExecuteUpdateOptions, WorkflowGetResultOptions, WorkflowQueryOptions,
    WorkflowSignalOptions, WorkflowStartOptions,
};
use temporalio_protos::temporal::api::{
    common::v1::{Header, Payload, Payloads, WorkflowExecution},
    history::v1::history_event::Attributes,
    workflowservice::v1::{
        GetWorkflowExecutionHistoryRequest, SignalWorkflowExecutionRequest,
        workflow_service_client::WorkflowServiceClient,
    },
};
use temporalio_sdk::{
    WorkerOptions,
    workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions},
};
use warden_core::{Claims, Decision, OperationKind, Roles, policy::policy_fn};
use warden_passport::{Binding, Issuer as PassportIssuer, SigningKey, TrustedKeys, Verifier};
use warden_policy::roles::RolePolicy;
use warden_worker::WorkerGuard;

const KEY_ID: &str = "edge-1";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The process's log lines, captured for the audit events the worker writes.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures every `warden::audit` event of this process from now on.
    fn capture() -> Self {
        let logs = Self::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_env_filter("warden::audit=warn")
            .with_ansi(false)
            .init();
        logs
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn is_admin(claims: &Claims) -> bool {
    claims
        .namespaces
        .get("orders")
        .is_some_and(|roles| roles.at_least(Roles::ADMIN))
}

/// The worker's policies: Temporal's roles, as the proxy's; approvals only by an admin of
/// `orders` (unless `approvals_for_all`); `charge` only on behalf of an admin.
fn guard(verifier: Verifier, since_approvals_for_all: Option<u64>) -> WorkerGuard {
    let approvals = |everyone: bool| {
        policy_fn("approvals", move |request| {
            let approve = request.operation.name.as_deref() == Some("approve");
            if approve && !everyone && !is_admin(&request.subject) {
                Decision::deny("approvals", "only an admin of orders approves")
            } else {
                Decision::allow("approvals")
            }
        })
    };
    let mut builder = WorkerGuard::builder(verifier)
        .policy_for_all(RolePolicy::temporal())
        .signal(approvals(since_approvals_for_all == Some(0)))
        .activity(policy_fn("billing", |request| {
            if is_admin(&request.subject) {
                Decision::allow("billing")
            } else {
                Decision::deny("billing", "only admins are charged")
            }
        }));
    if let Some(since) = since_approvals_for_all.filter(|since| *since > 0) {
        builder = builder
            .version_since(since)
            .policy_for_all(RolePolicy::temporal())
            .signal(approvals(true));
    }
    builder.build().unwrap()
}

/// Options for a worker of `GuardedOrder` and `Billing` on `task_queue`, behind `guard`.
fn guarded_worker(
    task_queue: &str,
    guard: WorkerGuard,
) -> impl FnOnce() -> WorkerOptions + Send + 'static {
    let task_queue = task_queue.to_owned();
    move || {
        WorkerOptions::new(task_queue)
            .register_workflow::<GuardedOrder>()
            .unwrap()
            .register_activities(Billing)
            .workflow_interceptor(guard.workflow_interceptor())
            .activity_inbound_interceptor(guard.activity_interceptor())
            .build()
    }
}

/// A client whose guardrail authenticates it as `claims` and writes passports signed by
/// `pem` (the proxy's key), straight to `server`.
async fn guardrail_client(server: &str, pem: &str, claims: &Claims) -> Client {
    use temporalio_client::{ClientOptions, Connection, ConnectionOptions, Url};
    use warden_core::identity::StaticTokenMapper;
    use warden_temporal::{TemporalResponder, client::Guardrail, passport::PassportWriter};
    use warden_tower::WardenLayer;

    let layer = WardenLayer::builder(warden_temporal::operation_map())
        .responder(TemporalResponder)
        .authenticate(StaticTokenMapper::new().with_token("alice-token", claims.clone()))
        .otherwise(RolePolicy::temporal())
        .build()
        .unwrap();
    let channel = tonic::transport::Channel::from_shared(server.to_owned())
        .unwrap()
        .connect_lazy();
    let key = SigningKey::from_pem(pem.as_bytes(), KEY_ID).unwrap();
    let guardrail = Guardrail::new(layer, channel).with_passports(PassportWriter::new(
        PassportIssuer::new("warden-proxy", key),
    ));
    let options = ConnectionOptions::new(Url::parse(server).unwrap())
        .headers(HashMap::from([(
            "authorization".to_owned(),
            "Bearer alice-token".to_owned(),
        )]))
        .service_override(guardrail.into_service_override())
        .dns_load_balancing(None)
        .build();
    let connection = Connection::connect(options).await.unwrap();
    Client::new(connection, ClientOptions::new("orders").build()).unwrap()
}

async fn events(client: &Client, id: &str) -> Vec<String> {
    client
        .get_workflow_handle::<GuardedOrder>(id)
        .query(GuardedOrder::events, (), WorkflowQueryOptions::default())
        .await
        .unwrap()
}

/// Waits until the workflow's events include `wanted`, and returns them.
async fn events_with(client: &Client, id: &str, wanted: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let found = eventually(Duration::from_secs(30), async || {
        seen = events(client, id).await;
        seen.iter().any(|e| e == wanted)
    })
    .await;
    assert!(found, "`{wanted}` never showed in {id}'s events: {seen:?}");
    seen
}

fn json_payload(value: &str) -> Payloads {
    Payloads {
        payloads: vec![Payload {
            metadata: HashMap::from([("encoding".to_owned(), b"json/plain".to_vec())]),
            data: value.as_bytes().to_vec(),
            ..Default::default()
        }],
    }
}

/// `add amount` on `id`, sent as raw gRPC to `target` with `passport` in the header.
async fn raw_signal(target: &str, token: Option<&str>, id: &str, amount: i64, passport: &str) {
    let mut client = WorkflowServiceClient::connect(target.to_owned())
        .await
        .unwrap();
    let request = SignalWorkflowExecutionRequest {
        namespace: "orders".into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: id.into(),
            ..Default::default()
        }),
        signal_name: "add".into(),
        input: Some(json_payload(&amount.to_string())),
        identity: "raw".into(),
        request_id: unique("signal"),
        header: Some(Header {
            fields: HashMap::from([(
                "warden-passport".to_owned(),
                Payload {
                    metadata: HashMap::from([("encoding".to_owned(), b"binary/plain".to_vec())]),
                    data: passport.as_bytes().to_vec(),
                    ..Default::default()
                },
            )]),
        }),
        ..Default::default()
    };
    let request = match token {
        Some(token) => warden_example::temporal_server::with_bearer(request, token),
        None => tonic::Request::new(request),
    };
    client.signal_workflow_execution(request).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_runs_handlers_only_for_calls_the_proxy_vouched_for_and_replays_after_rotation() {
    let logs = Logs::capture();
    let issuer = Issuer::start().await;
    let pem = ed25519_pem();
    let proxy = ProxyProcess::start(
        "worker",
        &[
            ("proxy.toml", passport_proxy_config(&issuer, KEY_ID)),
            ("passport.pem", pem.clone()),
        ],
    );
    // The worker trusts the key the proxy publishes.
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(&http_get(&format!("{}/.well-known/jwks.json", proxy.url())).await)
            .unwrap();
    let trusted = TrustedKeys::new().with_jwks(&jwks).unwrap();
    let verifier = || Verifier::new(trusted.clone(), "warden-proxy").leeway(30);
    let queue = unique("guarded-queue");
    let _worker = WorkerThread::start(
        proxy.url(),
        issuer.token("order-worker", &["orders:writer"]),
        "orders",
        guarded_worker(&queue, guard(verifier(), None)),
    );
    let alice_token = issuer.token("alice", &["orders:admin"]);
    let alice = connect(&proxy.url(), Some(&alice_token), "orders").await;
    let bob = connect(
        &proxy.url(),
        Some(&issuer.token("bob", &["orders:writer"])),
        "orders",
    )
    .await;
    let direct = connect(&format!("http://{}", temporal().address), None, "orders").await;
    let start = |id: &str| WorkflowStartOptions::new(queue.clone(), id.to_owned()).build();

    // Starts through the proxy run, and their activities run on the starter's behalf.
    let charges = CHARGES.load(Ordering::SeqCst);
    let id = unique("guarded");
    alice
        .start_workflow(GuardedOrder::run, 10, start(&id))
        .await
        .unwrap();
    events_with(&alice, &id, "charged:10").await;
    assert_eq!(
        CHARGES.load(Ordering::SeqCst),
        charges + 1,
        "alice's charge ran"
    );
    let bobs = unique("guarded-bob");
    bob.start_workflow(GuardedOrder::run, 20, start(&bobs))
        .await
        .unwrap();
    let seen = events_with(&bob, &bobs, "charge-refused").await;
    assert!(!seen.contains(&"charged:20".to_owned()), "{seen:?}");
    assert_eq!(
        CHARGES.load(Ordering::SeqCst),
        charges + 1,
        "the activity never ran for bob, who may not be charged"
    );

    // Signals: alice's run; bob's approval passes the proxy (he is a writer) but not the
    // worker's policy, so its handler never runs.
    let handle = alice.get_workflow_handle::<GuardedOrder>(&id);
    handle
        .signal(GuardedOrder::add, 5, WorkflowSignalOptions::default())
        .await
        .unwrap();
    bob.get_workflow_handle::<GuardedOrder>(&id)
        .signal(
            GuardedOrder::approve,
            "bob".to_owned(),
            WorkflowSignalOptions::default(),
        )
        .await
        .unwrap();
    // A direct signal: no passport.
    direct
        .get_workflow_handle::<GuardedOrder>(&id)
        .signal(GuardedOrder::add, 100, WorkflowSignalOptions::default())
        .await
        .unwrap();

    // Forged, tampered, misbound, untrusted and expired passports, straight to the server.
    let server = format!("http://{}", temporal().address);
    let key = SigningKey::from_pem(pem.as_bytes(), KEY_ID).unwrap();
    let real = PassportIssuer::new("warden-proxy", key);
    let alice_claims = {
        let mut claims = Claims::for_subject("alice");
        claims
            .namespaces
            .insert("orders".into(), Roles::parse("admin").unwrap());
        claims
    };
    let add = Binding::new("orders", id.as_str(), OperationKind::Signal).with_name("add");
    let rogue_key = SigningKey::from_pem(ed25519_pem().as_bytes(), KEY_ID).unwrap();
    let forged = PassportIssuer::new("warden-proxy", rogue_key)
        .issue(&alice_claims, &add)
        .unwrap();
    let untrusted = PassportIssuer::new(
        "warden-proxy",
        SigningKey::from_pem(ed25519_pem().as_bytes(), "rogue").unwrap(),
    )
    .issue(&alice_claims, &add)
    .unwrap();
    let tampered = {
        let valid = real.issue(&Claims::for_subject("bob"), &add).unwrap();
        let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = String::from_utf8(engine.decode(&parts[1]).unwrap()).unwrap();
        parts[1] = engine.encode(payload.replace("\"bob\"", "\"alice\""));
        parts.join(".")
    };
    let misbound = real
        .issue(
            &alice_claims,
            &Binding::new("orders", "another-order", OperationKind::Signal).with_name("add"),
        )
        .unwrap();
    let wrong_name = real
        .issue(
            &alice_claims,
            &Binding::new("orders", id.as_str(), OperationKind::Signal).with_name("approve"),
        )
        .unwrap();
    let expired = real.issue_at(&alice_claims, &add, now() - 3_600).unwrap();
    for (amount, passport) in [
        (201, forged.as_str()),
        (202, untrusted.as_str()),
        (203, tampered.as_str()),
        (204, misbound.as_str()),
        (205, wrong_name.as_str()),
        (206, expired.as_str()),
    ] {
        raw_signal(&server, None, &id, amount, passport).await;
    }
    // The client guardrail is an edge too: with the key, its allowed calls carry passports.
    let guardrail = guardrail_client(&server, &pem, &alice_claims).await;
    guardrail
        .get_workflow_handle::<GuardedOrder>(&id)
        .signal(GuardedOrder::add, 9, WorkflowSignalOptions::default())
        .await
        .unwrap();
    // A forged passport sent through the proxy is replaced by the proxy's own.
    raw_signal(&proxy.url(), Some(&alice_token), &id, 7, &forged).await;

    // Signals are handled in order: once `add:7` shows, every one before it was judged.
    let seen = events_with(&alice, &id, "add:7").await;
    assert!(seen.contains(&"add:5".to_owned()), "{seen:?}");
    assert!(
        seen.contains(&"add:9".to_owned()),
        "the guardrail's signal carried a passport the worker accepted: {seen:?}"
    );
    for refused in [
        "approve", "add:100", "add:201", "add:202", "add:203", "add:204", "add:205", "add:206",
    ] {
        assert!(
            !seen.contains(&refused.to_owned()),
            "`{refused}` must never reach its handler: {seen:?}"
        );
    }

    // Each refusal's audit event says which check failed.
    let audit = logs.text();
    for reason in [
        "only an admin of orders approves",
        "no passport",
        "does not verify (forged or tampered)",
        "untrusted key `rogue`",
        "workflow id is `another-order`",
        "name is `approve`",
        "expired at",
    ] {
        assert!(
            audit.contains(reason),
            "an audit event says `{reason}`:\n{audit}"
        );
    }

    // Queries: through the proxy answered (above); straight to the server, refused.
    let denied = direct
        .get_workflow_handle::<GuardedOrder>(&id)
        .query(GuardedOrder::events, (), WorkflowQueryOptions::default())
        .await
        .unwrap_err();
    assert!(
        format!("{denied:?}").contains("no passport"),
        "a direct query is refused by the worker: {denied:?}"
    );

    // Updates with a validator: rejected in validation when direct, never in history.
    let discount = handle
        .execute_update(
            GuardedOrder::discount,
            3,
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(discount, 3);
    let rejected = direct
        .get_workflow_handle::<GuardedOrder>(&id)
        .execute_update(
            GuardedOrder::discount,
            4,
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        format!("{rejected:?}").contains("no passport"),
        "{rejected:?}"
    );
    // Without a validator: accepted, then failed; the handler never runs.
    let noted = handle
        .execute_update(
            GuardedOrder::note,
            "by-alice".to_owned(),
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(noted, "by-alice");
    let failed = direct
        .get_workflow_handle::<GuardedOrder>(&id)
        .execute_update(
            GuardedOrder::note,
            "direct".to_owned(),
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(format!("{failed:?}").contains("no passport"), "{failed:?}");
    let seen = events(&alice, &id).await;
    assert!(seen.contains(&"discount:3".to_owned()) && seen.contains(&"note:by-alice".to_owned()));
    assert!(
        !seen.contains(&"discount:4".to_owned()) && !seen.contains(&"note:direct".to_owned()),
        "refused updates never reach their handlers: {seen:?}"
    );

    // A start straight to the server fails before workflow code runs.
    let never = unique("guarded-direct");
    let started = direct
        .start_workflow(GuardedOrder::run, 30, start(&never))
        .await
        .unwrap();
    let failure = started
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap_err();
    let failure = format!("{failure:?}");
    assert!(
        failure.contains("PermissionDenied") && failure.contains("no passport"),
        "{failure}"
    );

    // Close; bob's approval was dropped, so the run ends `closed`.
    handle
        .signal(
            GuardedOrder::close,
            "done".to_owned(),
            WorkflowSignalOptions::default(),
        )
        .await
        .unwrap();
    let result = handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
    assert_eq!(result, "closed");

    // Replay the recorded history after a key rotation and a policy change.
    let mut raw = WorkflowServiceClient::connect(server.clone())
        .await
        .unwrap();
    let history = raw
        .get_workflow_execution_history(GetWorkflowExecutionHistoryRequest {
            namespace: "orders".into(),
            execution: Some(WorkflowExecution {
                workflow_id: id.clone(),
                ..Default::default()
            }),
            maximum_page_size: 1_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .history
        .unwrap();
    // The rejected update never entered history; the one without a validator did.
    let accepted: Vec<&str> = history
        .events
        .iter()
        .filter_map(|event| match &event.attributes {
            Some(Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(accepted)) => {
                let request = accepted.accepted_request.as_ref()?;
                Some(request.input.as_ref()?.name.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(accepted, ["discount", "note", "note"]);
    let replay = |guard: WorkerGuard| {
        let history = history.clone();
        async move {
            let options = WorkflowReplayerOptions::new()
                .namespace("orders")
                .workflow_interceptor(guard.workflow_interceptor())
                .register_workflow::<GuardedOrder>()
                .unwrap()
                .build();
            WorkflowReplayer::new(options)
                .unwrap()
                .replay_workflow(history.into())
                .await
        }
    };
    // After every passport of the history (issued within this second at the latest).
    let rotated_at = now() + 1;
    let next_key = SigningKey::from_pem(ed25519_pem().as_bytes(), "edge-2").unwrap();
    let rotated = TrustedKeys::new()
        .with_jwks(&jwks)
        .unwrap()
        .retire(KEY_ID, rotated_at)
        .unwrap()
        .with_signing_key(&next_key)
        .unwrap();
    let rotated = Verifier::new(rotated, "warden-proxy").leeway(30);
    // Approvals for everyone from now on: the history's events are older, so they are
    // judged as they first were.
    replay(guard(rotated.clone(), Some(rotated_at + 1)))
        .await
        .expect("the history replays after the keys rotated and the policy changed");
    // The same change made in place, as if it had always been so, decides bob's approval
    // differently, and the replay no longer matches the history.
    let diverged = replay(guard(rotated, Some(0))).await;
    assert!(
        diverged.is_err(),
        "a policy edited in place changes the replay"
    );
    // A removed key (rather than a retired one) refuses the start it signed.
    let removed = Verifier::new(
        TrustedKeys::new().with_signing_key(&next_key).unwrap(),
        "warden-proxy",
    );
    assert!(
        replay(guard(removed, None)).await.is_err(),
        "passports of a removed key are refused on replay too"
    );
}
