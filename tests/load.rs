//! Load over loopback, bounded: `WARDEN_LOAD_CALLS` calls (default 200,000) at 256 at once,
//! a mix of kinds allowed and denied, through the full stack in front of a tonic server and
//! through `warden proxy` in front of an upstream. Every answer is checked against what the
//! policy decides (0 wrong, 0 lost), and resident memory after the run is within 10% of what
//! it was after a warm-up of the same concurrency: memory does not grow with the number of
//! calls.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use support::*;
use tonic::Code;
use warden_example::{
    pb::{DescribeWorkflowRequest, workflow_service_client::WorkflowServiceClient},
    policies::demo_layer,
};

const CONCURRENCY: u64 = 256;

#[derive(Default)]
struct Tally {
    allowed: AtomicU64,
    denied: AtomicU64,
    wrong: AtomicU64,
    lost: AtomicU64,
}

/// Call `i` of the mix, as alice (a writer of `orders`, nothing in `billing`), and whether the
/// policy allows it.
async fn call(
    client: &mut WorkflowServiceClient<tonic::transport::Channel>,
    run: &str,
    i: u64,
) -> (bool, Result<(), tonic::Status>) {
    let id = format!("{run}-{i}");
    // Nothing is started, so the handlers keep no state that grows with the calls: the allowed
    // calls reach a handler that answers NOT_FOUND.
    let missing = |namespace: &str| DescribeWorkflowRequest {
        namespace: namespace.into(),
        execution: execution(&id),
    };
    match i % 4 {
        0 => (
            true,
            client
                .describe_workflow(as_alice(missing("orders")))
                .await
                .map(|_| ()),
        ),
        1 => (
            false,
            client
                .start_workflow(as_alice(start("billing", &id)))
                .await
                .map(|_| ()),
        ),
        2 => (
            false,
            client
                .signal_workflow(as_alice(signal("billing", &id, "approve")))
                .await
                .map(|_| ()),
        ),
        _ => (
            true,
            client
                .signal_workflow(as_alice(signal("orders", &id, "approve")))
                .await
                .map(|_| ()),
        ),
    }
}

async fn load(address: SocketAddr, run: &str, calls: u64) -> Tally {
    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicU64::new(0));
    let channel = channel(address).await;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (tally, next, run) = (Arc::clone(&tally), Arc::clone(&next), run.to_owned());
        let mut client = WorkflowServiceClient::new(channel.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    return;
                }
                let (allowed, answer) = call(&mut client, &run, i).await;
                let counter = match (allowed, answer) {
                    (true, Ok(())) => &tally.allowed,
                    (true, Err(status)) if status.code() == Code::NotFound => &tally.allowed,
                    (false, Err(status)) if status.code() == Code::PermissionDenied => {
                        &tally.denied
                    }
                    (_, Err(status))
                        if matches!(status.code(), Code::PermissionDenied | Code::Ok) =>
                    {
                        &tally.wrong
                    }
                    (true, Err(_)) | (false, Err(_)) => &tally.lost,
                    (false, Ok(())) => &tally.wrong,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.unwrap();
    }
    Arc::try_unwrap(tally).ok().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_every_decision_is_right_none_is_lost_and_memory_does_not_grow() {
    let calls: u64 = std::env::var("WARDEN_LOAD_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let stack_service = warden_example::ExampleService::counting();
    let stack_log = stack_service.log();
    let stack = serve_service(demo_layer(), stack_service.into_server()).await;
    let upstream_service = warden_example::ExampleService::counting();
    let upstream_log = upstream_service.log();
    let upstream = serve_service(
        tower::layer::util::Identity::new(),
        upstream_service.into_server(),
    )
    .await;
    let dir = std::env::temp_dir().join(format!("warden-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let proxy = warden_proxy::Proxy::start(example_proxy_config(upstream, &dir, ""), &dir)
        .await
        .unwrap();
    for (name, address, log) in [
        ("stack", stack, &stack_log),
        ("proxy", proxy.local_addr(), &upstream_log),
    ] {
        // Warm up at full concurrency, so pools and caches reach their working size.
        let warm = load(address, &format!("{name}-warm"), 20_000).await;
        assert_eq!(
            (warm.wrong.into_inner(), warm.lost.into_inner()),
            (0, 0),
            "{name}: warm-up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = resident_kib();
        let logged = log.len();
        let started = Instant::now();
        let tally = load(address, name, calls).await;
        let took = started.elapsed();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = resident_kib();
        let (allowed, denied) = (tally.allowed.into_inner(), tally.denied.into_inner());
        let (wrong, lost) = (tally.wrong.into_inner(), tally.lost.into_inner());
        println!(
            "load {name}: {calls} calls at {CONCURRENCY} at once in {took:?}: {allowed} allowed, {denied} denied, {wrong} wrong, {lost} lost; resident {before} KiB -> {after} KiB"
        );
        assert_eq!((wrong, lost), (0, 0), "{name}: wrong or lost answers");
        assert_eq!(allowed + denied, calls, "{name}");
        assert_eq!(allowed, calls / 2, "{name}: half the mix is allowed");
        assert_eq!(
            (log.len() - logged) as u64,
            allowed,
            "{name}: exactly the allowed calls reached the handler or upstream"
        );
        assert!(
            after <= before + before / 10,
            "{name}: resident memory grew from {before} KiB to {after} KiB"
        );
    }
    proxy.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
