//! Per-call cost of Warden, measured side by side in one run.
//!
//! 1. In process: the full stack (classify + decode + authenticate + a rules-style policy)
//!    around a trivial inner service, against the same service bare: the layers' own cost.
//! 2. Over loopback HTTP/2 with tonic: the example `SignalWorkflow` unary call served bare,
//!    behind a no-op layer, behind the full stack, and behind a tonic `Interceptor` that only checks a header (what a
//!    user would otherwise pick). Sequential calls give p50/p99 latency; 32 concurrent callers
//!    give throughput. A fourth server carries a no-op tower-http layer: the floor any
//!    `Server::layer` middleware pays in tonic. The servers run on their own one-worker runtime and the callers on a
//!    single-threaded one, each keeping a core; rounds alternate between the three servers so
//!    that machine noise hits them alike.
//!
//! Run with `cargo bench --bench grpc_overhead` (`-- --quick` for a short run, `-- --in-process`
//! for part 1 only).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;
mod floor;

use common::{median, percentile};

use std::{
    convert::Infallible,
    net::SocketAddr,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{
    Request, Status,
    transport::{Channel, Endpoint, Server},
};
use tower::{Layer, Service, ServiceExt, service_fn};
use warden_core::{AuthzRequest, Decision, OperationKind, Roles, policy::policy_fn};
use warden_example::{
    ExampleService, operation_map, path,
    pb::{
        SignalWorkflowRequest, StartWorkflowRequest, WorkflowExecution,
        workflow_service_client::WorkflowServiceClient,
        workflow_service_server::WorkflowServiceServer,
    },
    policies::identities,
};
use warden_tower::WardenLayer;

/// Counts heap allocations, so the in-process part reports them per call: each is a malloc
/// and a free on the hot path. Counting costs a few relaxed atomic adds, paid alike by every
/// target.
#[global_allocator]
static GLOBAL: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

fn allocations() -> u64 {
    let stats = GLOBAL.stats();
    (stats.allocations + stats.reallocations) as u64
}

/// One rule of the bench's rules-style policy, shared by the Warden stack and the floor layer
/// so both decide by the same table.
pub(crate) struct Rule {
    pub(crate) id: std::sync::Arc<str>,
    pub(crate) kind: OperationKind,
    pub(crate) namespace: String,
    pub(crate) min_role: Roles,
    pub(crate) name: Option<&'static str>,
}

/// The policy's 22 rules: 20 signal rules for other tenants, then `orders`' approve signal
/// and start.
pub(crate) fn rules() -> Vec<Rule> {
    let mut rules = Vec::new();
    for i in 0..20 {
        rules.push(Rule {
            id: format!("rule-{i}").into(),
            kind: OperationKind::Signal,
            namespace: format!("tenant-{i}"),
            min_role: Roles::WRITER,
            name: None,
        });
    }
    rules.push(Rule {
        id: "rule-orders-approve".into(),
        kind: OperationKind::Signal,
        namespace: "orders".into(),
        min_role: Roles::WRITER,
        name: Some("approve"),
    });
    rules.push(Rule {
        id: "rule-orders-execute".into(),
        kind: OperationKind::Execute,
        namespace: "orders".into(),
        min_role: Roles::WRITER,
        name: None,
    });
    rules
}

/// A rules-style policy: an ordered list of (kind, namespace, minimum role, signal name)
/// rules scanned in order, the first match deciding, default deny.
fn rules_layer() -> WardenLayer {
    let rules = rules();
    let policy = policy_fn("rules", move |request: &AuthzRequest| {
        let op = &request.operation;
        let role = request.subject.role_in(op.namespace.as_deref());
        for rule in &rules {
            if rule.kind == op.kind
                && op.namespace.as_deref() == Some(rule.namespace.as_str())
                && rule.name.is_none_or(|n| op.name.as_deref() == Some(n))
            {
                return if role.bits() >= rule.min_role.bits() {
                    Decision::allow(std::sync::Arc::clone(&rule.id))
                } else {
                    Decision::deny(std::sync::Arc::clone(&rule.id), "role too low")
                };
            }
        }
        Decision::deny("rules", "no rule matched")
    })
    // It never looks at metadata, as the floor's rules do not.
    .ignoring_metadata();
    WardenLayer::builder(operation_map())
        .authenticate(identities())
        .kinds(warden_core::KindSet::ALL, policy)
        .build()
        .unwrap()
}

fn signal_message() -> SignalWorkflowRequest {
    SignalWorkflowRequest {
        namespace: "orders".into(),
        execution: Some(WorkflowExecution {
            workflow_id: "bench-1".into(),
            run_id: String::new(),
        }),
        signal_name: "approve".into(),
        input: br#"{"amount":42,"note":"benchmark"}"#.to_vec(),
        identity: "bench".into(),
    }
}

// ---- 1. in process -------------------------------------------------------------------------

async fn in_process(iterations: usize) {
    async fn answer<B>(_: http::Request<B>) -> Result<http::Response<Full<Bytes>>, Infallible> {
        Ok(http::Response::new(Full::new(Bytes::new())))
    }
    let mut message = Vec::new();
    message.push(0u8);
    let encoded = prost::Message::encode_to_vec(&signal_message());
    message.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    message.extend_from_slice(&encoded);
    let body = Bytes::from(message);
    let request = || {
        http::Request::post(path("SignalWorkflow"))
            .version(http::Version::HTTP_2)
            .header("content-type", "application/grpc")
            .header("authorization", "Bearer alice-token")
            .body(Full::new(body.clone()))
            .unwrap()
    };
    let mut warden = rules_layer().layer(service_fn(
        answer::<warden_tower::ClassifiedBody<Full<Bytes>>>,
    ));
    let mut bare = service_fn(answer::<Full<Bytes>>);
    let mut samples_bare = Vec::with_capacity(iterations);
    let mut samples_warden = Vec::with_capacity(iterations);
    let (mut allocations_bare, mut allocations_warden) = (0, 0);
    for _ in 0..iterations {
        let req = request();
        let (t, a) = (Instant::now(), allocations());
        let response = bare.ready().await.unwrap().call(req).await.unwrap();
        response.into_body().collect().await.unwrap();
        samples_bare.push(t.elapsed().as_nanos() as f64);
        allocations_bare += allocations() - a;

        let req = request();
        let (t, a) = (Instant::now(), allocations());
        let response = warden.ready().await.unwrap().call(req).await.unwrap();
        assert!(
            response.headers().get("grpc-status").is_none(),
            "the bench call must be allowed"
        );
        response.into_body().collect().await.unwrap();
        samples_warden.push(t.elapsed().as_nanos() as f64);
        allocations_warden += allocations() - a;
    }
    samples_bare.sort_by(f64::total_cmp);
    samples_warden.sort_by(f64::total_cmp);
    println!("## In process ({iterations} calls each, interleaved)\n");
    println!("| stack | p50 | p99 | heap allocations per call |");
    println!("|---|---|---|---|");
    for (name, s, allocated) in [
        ("bare inner service", &samples_bare, allocations_bare),
        ("full Warden stack", &samples_warden, allocations_warden),
    ] {
        println!(
            "| {name} | {:.2} µs | {:.2} µs | {:.1} |",
            percentile(s, 0.5) / 1e3,
            percentile(s, 0.99) / 1e3,
            allocated as f64 / iterations as f64
        );
    }
    println!(
        "\nWarden's own cost per call (p50 difference): {:.2} µs\n",
        (percentile(&samples_warden, 0.5) - percentile(&samples_bare, 0.5)) / 1e3
    );
}

/// The decoder alone: the field-number map (one pass over the encoding) against the same map
/// decoding the whole message with prost, on the bench's message and on one whose unmapped
/// `identity` field carries 64 KiB (as Temporal requests carry payloads and memos).
fn decoders(iterations: usize) {
    let fields = operation_map();
    let typed = warden_example::typed_operation_map();
    let path = path("SignalWorkflow");
    let (fields, typed) = (fields.get(&path).unwrap(), typed.get(&path).unwrap());
    let small = Bytes::from(prost::Message::encode_to_vec(&signal_message()));
    let mut big = signal_message();
    big.identity = "x".repeat(64 * 1024);
    let big = Bytes::from(prost::Message::encode_to_vec(&big));
    println!("## Decoding the first message ({iterations} decodes each, interleaved)\n");
    println!("| message | field numbers (wire pass) | prost (whole message) | ratio |");
    println!("|---|---|---|---|");
    for (name, message) in [
        ("the bench's message", &small),
        ("with 64 KiB unmapped", &big),
    ] {
        let name = format!("{name}, {} bytes", message.len());
        assert_eq!(
            fields.decode(message).unwrap(),
            typed.decode(message).unwrap()
        );
        let (mut a, mut b) = (
            Vec::with_capacity(iterations),
            Vec::with_capacity(iterations),
        );
        for _ in 0..iterations {
            let t = Instant::now();
            std::hint::black_box(fields.decode(std::hint::black_box(message)).unwrap());
            a.push(t.elapsed().as_nanos() as f64);
            let t = Instant::now();
            std::hint::black_box(typed.decode(std::hint::black_box(message)).unwrap());
            b.push(t.elapsed().as_nanos() as f64);
        }
        let (a, b) = (median(a), median(b));
        println!(
            "| {name} | {:.2} µs | {:.2} µs | {:.1}× |",
            a / 1e3,
            b / 1e3,
            b / a
        );
    }
    println!();
}

// ---- 2. over loopback ----------------------------------------------------------------------

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

async fn serve_bare() -> SocketAddr {
    let (listener, addr) = listen().await;
    let router = Server::builder().add_service(ExampleService::lean().into_server());
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    addr
}

async fn serve_warden() -> SocketAddr {
    let (listener, addr) = listen().await;
    let router = Server::builder()
        .layer(rules_layer())
        .add_service(ExampleService::lean().into_server());
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    addr
}

/// The floor of any middleware added with `Server::layer`: a no-op tower-http layer.
async fn serve_noop_layer() -> SocketAddr {
    let (listener, addr) = listen().await;
    let noop =
        tower_http::map_request_body::MapRequestBodyLayer::new(|body: tonic::body::Body| body);
    let router = Server::builder()
        .layer(noop)
        .add_service(ExampleService::lean().into_server());
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    addr
}

/// Parts of the stack, for `--profile 4` and `--profile 5`, which split Warden's cost: the
/// classify layer alone with a method-only map (no body read: what wrapping a call costs), and
/// with the example's field map (the first message read, decoded and replayed).
async fn serve_classify_only(payload: bool) -> SocketAddr {
    let (listener, addr) = listen().await;
    let map = if payload {
        operation_map()
    } else {
        warden_tower::map::OperationMap::builder()
            .method(&path("StartWorkflow"), OperationKind::Execute)
            .method(&path("SignalWorkflow"), OperationKind::Signal)
            .build()
            .unwrap()
    };
    let router = Server::builder()
        .layer(warden_tower::ClassifyLayer::new(map))
        .add_service(ExampleService::lean().into_server());
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    addr
}

/// `--profile 6`: the hand-written floor layer (see `floor/mod.rs`), deciding by the same
/// rules.
async fn serve_floor() -> SocketAddr {
    let (listener, addr) = listen().await;
    let tokens = [(
        "alice-token",
        warden_core::Claims::for_subject("alice").with_namespace_role("orders", Roles::WRITER),
    )];
    let router = Server::builder()
        .layer(floor::FloorLayer::new(rules(), tokens))
        .add_service(ExampleService::lean().into_server());
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    addr
}

#[allow(clippy::result_large_err)] // tonic's interceptor signature
fn header_check(request: Request<()>) -> Result<Request<()>, Status> {
    match request.metadata().get("authorization") {
        Some(value) if value == "Bearer alice-token" => Ok(request),
        _ => Err(Status::unauthenticated("bad token")),
    }
}

async fn serve_interceptor() -> SocketAddr {
    let (listener, addr) = listen().await;
    let service = WorkflowServiceServer::with_interceptor(ExampleService::lean(), header_check);
    let router = Server::builder().add_service(service);
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    addr
}

async fn client(addr: SocketAddr) -> WorkflowServiceClient<Channel> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = WorkflowServiceClient::new(channel);
    let start = StartWorkflowRequest {
        namespace: "orders".into(),
        workflow_id: "bench-1".into(),
        workflow_type: "Bench".into(),
        ..Default::default()
    };
    client.start_workflow(authorized(start)).await.unwrap();
    client
}

fn authorized<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", "Bearer alice-token".parse().unwrap());
    request
}

async fn sequential(client: &mut WorkflowServiceClient<Channel>, calls: usize, out: &mut Vec<f64>) {
    for _ in 0..calls {
        let t = Instant::now();
        client
            .signal_workflow(authorized(signal_message()))
            .await
            .unwrap();
        out.push(t.elapsed().as_nanos() as f64);
    }
}

/// How many callers share the connection in the load phases.
const CALLERS: u32 = 32;

/// Runs `CALLERS` callers for `duration`, each as fast as it can, or, with `rate`, together at
/// that many calls per second. Returns calls per second, server CPU nanoseconds per call and
/// the number of calls. At a fixed rate the transport batches alike for every server, so the difference in CPU per
/// call is the middleware's own cost.
async fn load(
    client: &WorkflowServiceClient<Channel>,
    duration: Duration,
    rate: Option<u64>,
) -> (f64, f64, u64) {
    let period = rate.map(|rate| Duration::from_nanos(1_000_000_000 * u64::from(CALLERS) / rate));
    let started = tokio::time::Instant::now();
    let deadline = started + duration;
    let cpu_before = server_cpu_ns();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                // Callers are spread evenly over one period so the offered load is smooth.
                let mut ticks = period.map(|period| {
                    let mut ticks =
                        tokio::time::interval_at(started + period * i / CALLERS, period);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    ticks
                });
                let mut done = 0u64;
                while tokio::time::Instant::now() < deadline {
                    if let Some(ticks) = &mut ticks {
                        ticks.tick().await;
                    }
                    client
                        .signal_workflow(authorized(signal_message()))
                        .await
                        .unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    let cpu = server_cpu_ns() - cpu_before;
    (
        total as f64 / started.elapsed().as_secs_f64(),
        cpu as f64 / total as f64,
        total,
    )
}

struct Target {
    name: &'static str,
    client: WorkflowServiceClient<Channel>,
    latencies: Vec<f64>,
    throughput: Vec<f64>,
    cpu_per_call: Vec<f64>,
    paced_cpu: Vec<f64>,
}

const SERVER_THREAD: &str = "bench-server";

/// The offered load of the paced phase: about a third of what the bare server sustains here.
const PACED_RATE: u64 = 8_000;

/// Nanoseconds the server threads have run on a CPU (the first field of `schedstat`), so that
/// server cost per call is measured even where the load generator, not the server, is the
/// bottleneck.
fn server_cpu_ns() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != SERVER_THREAD {
            continue;
        }
        let schedstat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += schedstat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

/// Starts the three servers on their own one-worker runtime, so that on a small machine the
/// servers and the load generator each keep a core.
fn start_servers() -> [SocketAddr; 7] {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(SERVER_THREAD)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let addrs = [
                serve_bare().await,
                serve_noop_layer().await,
                serve_warden().await,
                serve_interceptor().await,
                serve_classify_only(false).await,
                serve_classify_only(true).await,
                serve_floor().await,
            ];
            tx.send(addrs).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

async fn loopback(addrs: [SocketAddr; 7], rounds: usize, calls: usize, window: Duration) {
    // The classify-only targets (4, 5) are for `--profile` runs.
    let names = [
        ("tonic, bare", 0),
        ("tonic + no-op tower layer", 1),
        ("tonic + full Warden stack", 2),
        ("tonic + header-only Interceptor", 3),
        ("tonic + hand-written floor layer", 6),
    ];
    let mut targets = Vec::new();
    for (name, index) in names {
        targets.push(Target {
            name,
            client: client(addrs[index]).await,
            latencies: vec![],
            throughput: vec![],
            cpu_per_call: vec![],
            paced_cpu: vec![],
        });
    }
    // Warm up connections and allocators.
    for target in &mut targets {
        sequential(&mut target.client, calls / 4, &mut Vec::new()).await;
    }
    for _ in 0..rounds {
        for target in &mut targets {
            let mut latencies = Vec::new();
            sequential(&mut target.client, calls, &mut latencies).await;
            target.latencies.extend(latencies);
            let (rate, cpu, _) = load(&target.client, window, None).await;
            target.throughput.push(rate);
            target.cpu_per_call.push(cpu);
            target
                .paced_cpu
                .push(load(&target.client, window, Some(PACED_RATE)).await.1);
        }
    }
    println!("## Loopback HTTP/2, unary `SignalWorkflow` ({rounds} interleaved rounds)\n");
    println!(
        "Latency: {calls} sequential calls per round. Load: 32 concurrent callers on one connection, \
         {window:?} per round; throughput and server CPU per call are medians of rounds. On two cores \
         the single-threaded load generator saturates first, so server CPU per call is the figure \
         that bounds a server's throughput.\n"
    );
    println!(
        "| server | p50 | p99 | saturated throughput (calls/s) | server CPU per call, saturated | server CPU per call at {PACED_RATE} calls/s |"
    );
    println!("|---|---|---|---|---|---|");
    let mut summary = Vec::new();
    for target in &mut targets {
        target.latencies.sort_by(f64::total_cmp);
        let p50 = percentile(&target.latencies, 0.5) / 1e3;
        let p99 = percentile(&target.latencies, 0.99) / 1e3;
        let rate = median(target.throughput.clone());
        let cpu = median(target.cpu_per_call.clone()) / 1e3;
        let paced_cpu = median(target.paced_cpu.clone()) / 1e3;
        println!(
            "| {} | {p50:.1} µs | {p99:.1} µs | {rate:.0} | {cpu:.1} µs | {paced_cpu:.1} µs |",
            target.name
        );
        summary.push((p50, p99, rate, cpu, paced_cpu));
    }
    println!();
    let bare = summary[0];
    for (name, other) in [
        ("No-op layer", summary[1]),
        ("Warden", summary[2]),
        ("Interceptor", summary[3]),
        ("Floor layer", summary[4]),
    ] {
        println!(
            "- {name} vs bare: added p50 {:+.1} µs, added p99 {:+.1} µs; server CPU per call {:+.1} µs at {PACED_RATE} calls/s \
             (a CPU-bound server would keep {:.1}% of its throughput), {:+.1} µs saturated; saturated throughput ratio {:.3}",
            other.0 - bare.0,
            other.1 - bare.1,
            other.4 - bare.4,
            bare.4 / other.4 * 100.0,
            other.3 - bare.3,
            other.2 / bare.2,
        );
    }
    let (noop, warden) = (summary[1], summary[2]);
    println!(
        "- Warden vs the no-op layer (its own cost over any `Server::layer` middleware): server CPU per call {:+.1} µs at {PACED_RATE} calls/s, saturated throughput ratio {:.3}, added p50 {:+.1} µs, added p99 {:+.1} µs",
        warden.4 - noop.4,
        warden.2 / noop.2,
        warden.0 - noop.0,
        warden.1 - noop.1,
    );
}

fn main() {
    let (args, quick) = common::args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(in_process(if quick { 500 } else { 50_000 }));
    decoders(if quick { 500 } else { 50_000 });
    if args.iter().any(|a| a == "--in-process") {
        return;
    }
    let addrs = start_servers();
    // `--profile N`: only paced load on target N (0 bare, 1 no-op layer, 2 Warden, 3
    // interceptor, 4 classify with a method-only map, 5 classify with the field map, 6 the
    // hand-written floor layer) for 10 s,
    // to run under `perf record` or `valgrind` and compare the server thread between targets
    // (`scripts/bench-instructions.sh` does the latter).
    if let Some(index) = args
        .iter()
        .position(|a| a == "--profile")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse::<usize>().ok())
    {
        runtime.block_on(async {
            let client = client(addrs[index]).await;
            let (rate, cpu, calls) = load(&client, Duration::from_secs(10), Some(PACED_RATE)).await;
            // The warm-up call in `client` reached the server too.
            println!(
                "target {index}: {rate:.0} calls/s, {} calls, server CPU {:.1} µs/call",
                calls + 1,
                cpu / 1e3
            );
        });
        return;
    }
    runtime.block_on(async {
        if quick {
            loopback(addrs, 1, 100, Duration::from_millis(200)).await;
        } else {
            loopback(addrs, 10, 2_000, Duration::from_secs(1)).await;
        }
    });
}
