//! Load over loopback, bounded: `WARDEN_LOAD_CALLS` calls (default 200,000) at 256 at once,
//! a mix of kinds allowed and denied, through the full stack in front of a tonic server and
//! through `warden proxy` in front of an upstream. Every answer is checked against what the
//! policy decides (0 wrong, 0 lost), and resident memory after the run is within 10% of what
//! it was after a warm-up of the same concurrency: memory does not grow with the number of
//! calls.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use std::time::{Duration, Instant};

use support::{
    load::{CONCURRENCY, load},
    *,
};
use warden_example::policies::demo_layer;

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
