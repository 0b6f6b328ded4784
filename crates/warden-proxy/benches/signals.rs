//! Signals per second and signal latency against a real Temporal dev server, directly,
//! through `warden proxy`, and through `warden proxy` writing a call passport into each
//! signal, in one run.
//!
//! ```sh
//! cargo bench -p warden-proxy --bench signals            # 9 rounds of 3 s per side
//! cargo bench -p warden-proxy --bench signals -- --quick # 2 rounds of 2 s
//! ```
//!
//! The proxy runs the full stack a Temporal user would: JWT authentication (ES256 from a
//! JWKS endpoint, verified once then cached), Temporal's role policy, and the initiator
//! policy over an in-memory instance store for signals. Each round starts fresh workflows
//! for each side (through the proxy, so their initiator is recorded), then `CONCURRENCY` tasks
//! signal them for the round's duration over one HTTP/2 connection per side; which side goes
//! first rotates between rounds, so all see the same machine and none inherits another's
//! warm state. Needs the `temporal` CLI (`./scripts/test.sh` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use temporalio_protos::temporal::api::{
    common::v1::{Payload, Payloads, WorkflowExecution, WorkflowType},
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{
        SignalWorkflowExecutionRequest, StartWorkflowExecutionRequest,
        workflow_service_client::WorkflowServiceClient,
    },
};
use tonic::transport::Channel;
use warden_example::{
    issuer::{JwksServer, SigningKey, claims, jwks_mapper_toml},
    temporal_server::{TemporalDevServer, with_bearer, workflow_client},
};
use warden_proxy::{Proxy, ProxyConfig};

const CONCURRENCY: usize = 16;
const WORKFLOWS_PER_ROUND: usize = 16;

struct Round {
    signals: usize,
    seconds: f64,
    latencies_us: Vec<f64>,
    /// CPU this process (callers, and the proxy when in use) spent, in seconds.
    cpu_seconds: f64,
}

/// User + system CPU of this process so far, from `/proc/self/stat` (clock ticks of 10 ms).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn json(value: &str) -> Option<Payloads> {
    Some(Payloads {
        payloads: vec![Payload {
            metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into(),
            data: value.as_bytes().to_vec(),
            ..Payload::default()
        }],
    })
}

async fn start_workflows(
    client: &WorkflowServiceClient<Channel>,
    token: &str,
    round: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..WORKFLOWS_PER_ROUND {
        let id = format!("bench-{}-{round}-{i}", std::process::id());
        client
            .clone()
            .start_workflow_execution(with_bearer(
                StartWorkflowExecutionRequest {
                    namespace: "orders".to_owned(),
                    workflow_id: id.clone(),
                    workflow_type: Some(WorkflowType {
                        name: "Order".to_owned(),
                    }),
                    task_queue: Some(TaskQueue {
                        name: "bench-nobody-polls".to_owned(),
                        ..TaskQueue::default()
                    }),
                    input: json("1"),
                    request_id: format!("{id}-start"),
                    ..StartWorkflowExecutionRequest::default()
                },
                token,
            ))
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

async fn signal_round(
    client: &WorkflowServiceClient<Channel>,
    token: &Arc<str>,
    ids: &Arc<Vec<String>>,
    duration: Duration,
) -> Round {
    let started = Instant::now();
    let cpu_before = process_cpu_seconds();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let mut client = client.clone();
        let token = Arc::clone(token);
        let ids = Arc::clone(ids);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = worker;
            while Instant::now() < deadline {
                let id = &ids[n % ids.len()];
                n += CONCURRENCY;
                let sent = Instant::now();
                client
                    .signal_workflow_execution(with_bearer(
                        SignalWorkflowExecutionRequest {
                            namespace: "orders".to_owned(),
                            workflow_execution: Some(WorkflowExecution {
                                workflow_id: id.clone(),
                                run_id: String::new(),
                            }),
                            signal_name: "add".to_owned(),
                            input: json("5"),
                            request_id: format!("{id}-{n}"),
                            ..SignalWorkflowExecutionRequest::default()
                        },
                        &token,
                    ))
                    .await
                    .unwrap();
                latencies.push(sent.elapsed().as_secs_f64() * 1e6);
            }
            latencies
        }));
    }
    let mut latencies_us = Vec::new();
    for task in tasks {
        latencies_us.extend(task.await.unwrap());
    }
    Round {
        signals: latencies_us.len(),
        seconds: started.elapsed().as_secs_f64(),
        latencies_us,
        cpu_seconds: process_cpu_seconds() - cpu_before,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(&values, 0.5)
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, duration) = if quick {
        (2, Duration::from_secs(2))
    } else {
        (9, Duration::from_secs(3))
    };
    let server = TemporalDevServer::start();
    let key = SigningKey::ec("bench");
    let jwks = JwksServer::start(&[&key]).await;
    let token: Arc<str> = key.sign(&claims("bench-writer", &["orders:writer"])).into();
    let config = |passport: &str| {
        ProxyConfig::parse(
            std::path::Path::new("bench.toml"),
            &format!(
                r#"
[listen]
address = "127.0.0.1:0"
[upstream]
address = "http://{upstream}"
{mapper}
[instances]
type = "memory"
[policies.roles]
type = "roles"
[policies.owner]
type = "initiator"
[authorize]
default = ["roles"]
signal = ["roles", "owner"]
{passport}
"#,
                upstream = server.address,
                mapper = jwks_mapper_toml(&jwks.url),
            ),
        )
        .unwrap()
    };
    let proxy = Proxy::start(config(""), std::path::Path::new("."))
        .await
        .unwrap();
    // The same proxy writing an Ed25519 passport into every signal.
    let keys = std::env::temp_dir().join(format!("warden-bench-{}", std::process::id()));
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(
        keys.join("passport.pem"),
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .unwrap()
            .serialize_pem(),
    )
    .unwrap();
    let passport_proxy = Proxy::start(
        config("[passport]\nissuer = \"warden-proxy\"\nkey_file = \"passport.pem\"\nkey_id = \"edge-1\""),
        &keys,
    )
    .await
    .unwrap();
    let sides = [
        ("direct", workflow_client(&server.address).await),
        (
            "through warden proxy",
            workflow_client(&proxy.local_addr().to_string()).await,
        ),
        (
            "through warden proxy, writing passports",
            workflow_client(&passport_proxy.local_addr().to_string()).await,
        ),
    ];
    // Each proxy records the initiators of what it starts in its own store, so a side's
    // workflows are started through its proxy (the direct side's through the plain one).
    let starter = |side: usize| &sides[side.max(1)].1;

    // Warm-up: connections, the token cache, the server's namespace caches.
    for (side, (_, client)) in sides.iter().enumerate() {
        let ids = Arc::new(start_workflows(starter(side), &token, side).await);
        signal_round(client, &token, &ids, Duration::from_millis(500)).await;
    }

    let mut results: Vec<Vec<Round>> = sides.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        // Each side signals its own fresh workflows, started before any side runs, and the
        // side that goes first rotates: none inherits warmer state from another.
        let mut fresh = Vec::new();
        for side in 0..sides.len() {
            fresh.push(Arc::new(
                start_workflows(starter(side), &token, sides.len() * (round + 1) + side).await,
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for turn in 0..sides.len() {
            let side = (round + turn) % sides.len();
            let round = signal_round(&sides[side].1, &token, &fresh[side], duration).await;
            results[side].push(round);
        }
    }

    println!(
        "signals against a Temporal dev server: {rounds} rotating rounds of {duration:?} per side, {CONCURRENCY} concurrent callers, one HTTP/2 connection each side"
    );
    println!();
    println!("| path | signals/s (median of rounds) | p50 | p99 | bench-process CPU per signal |");
    println!("|---|---|---|---|---|");
    for ((name, _), rounds) in sides.iter().zip(&results) {
        let rates: Vec<f64> = rounds
            .iter()
            .map(|r| r.signals as f64 / r.seconds)
            .collect();
        let mut all: Vec<f64> = rounds.iter().flat_map(|r| r.latencies_us.clone()).collect();
        all.sort_by(f64::total_cmp);
        let cpu_us = median(
            rounds
                .iter()
                .map(|r| r.cpu_seconds * 1e6 / r.signals as f64)
                .collect(),
        );
        println!(
            "| {name} | {:.0} | {:.0} µs | {:.0} µs | {cpu_us:.0} µs |",
            median(rates),
            percentile(&all, 0.5),
            percentile(&all, 0.99)
        );
    }
    println!();
    for (side, (name, _)) in sides.iter().enumerate().skip(1) {
        let ratios: Vec<f64> = results[0]
            .iter()
            .zip(&results[side])
            .map(|(d, p)| (p.signals as f64 / p.seconds) / (d.signals as f64 / d.seconds))
            .collect();
        println!(
            "{name} / direct throughput: {:.3} (median of per-round ratios {:?}); goal ≥ 0.90",
            median(ratios.clone()),
            ratios.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>()
        );
    }
    passport_proxy.shutdown();
    let _ = passport_proxy.wait().await;
    let _ = std::fs::remove_dir_all(&keys);
    proxy.shutdown();
    let _ = proxy.wait().await;
}
