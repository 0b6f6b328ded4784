//! Every decision is one `tracing` audit event and updates the metrics; credentials never
//! appear in either.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use std::sync::OnceLock;

use metrics_util::debugging::{DebuggingRecorder, Snapshotter};
use support::*;
use warden_example::policies::demo_layer;

/// Installs the process-wide recorder and subscriber once for this test binary.
fn observe() -> &'static (Captured, Snapshotter) {
    static ONCE: OnceLock<(Captured, Snapshotter)> = OnceLock::new();
    ONCE.get_or_init(|| {
        let captured = Captured::install();
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().unwrap();
        (captured, snapshotter)
    })
}

#[tokio::test]
async fn decisions_are_audited_and_counted_without_secrets() {
    let (captured, snapshotter) = observe();
    let (addr, _log) = serve(demo_layer()).await;
    let mut client = client(addr).await;
    client
        .start_workflow(as_user("alice-token", start("orders", "o-1")))
        .await
        .unwrap();
    client
        .signal_workflow(as_user("bob-token", signal("orders", "o-1", "approve")))
        .await
        .unwrap_err();
    client
        .start_workflow(as_user("forged-secret", start("orders", "o-2")))
        .await
        .unwrap_err();

    // A snapshot drains the counters, so take one.
    let snapshot: MetricsSnapshot = snapshotter.snapshot().into_vec();
    assert_eq!(
        counter(
            &snapshot,
            "warden_decisions_total",
            &[("kind", "execute"), ("outcome", "allow")]
        ),
        1
    );
    assert_eq!(
        counter(
            &snapshot,
            "warden_decisions_total",
            &[("kind", "signal"), ("outcome", "deny")]
        ),
        1
    );
    assert_eq!(
        counter(&snapshot, "warden_authentication_failures_total", &[]),
        1
    );

    let log = captured.since(0);
    let denial = log
        .lines()
        .find(|line| line.contains("decision=\"deny\"") || line.contains("decision=deny"))
        .unwrap_or_else(|| panic!("no denial event in:\n{log}"));
    for field in [
        "subject=\"bob\"",
        "kind=\"signal\"",
        "namespace=\"orders\"",
        "instance=\"o-1\"",
        "name=\"approve\"",
        "decider=\"writers\"",
        "latency_us=",
    ] {
        let bare = field.replace('"', "");
        assert!(
            denial.contains(field) || denial.contains(&bare),
            "{field} missing from {denial}"
        );
    }
    assert!(log.contains("authentication failed"), "{log}");
    for secret in ["alice-token", "bob-token", "forged-secret"] {
        assert!(!log.contains(secret), "a credential was logged:\n{log}");
    }
}
