//! Every decision is one `tracing` audit event and updates the metrics; credentials never
//! appear in either.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use std::{
    io::Write,
    sync::{Arc, Mutex, OnceLock},
};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use support::*;
use warden_example::policies::demo_layer;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the process-wide recorder and subscriber once for this test binary.
fn observe() -> &'static (Captured, Snapshotter) {
    static ONCE: OnceLock<(Captured, Snapshotter)> = OnceLock::new();
    ONCE.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_env_filter("warden=info")
            .with_ansi(false)
            .init();
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().unwrap();
        (captured, snapshotter)
    })
}

type Snapshot = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

fn counter(snapshot: &Snapshot, name: &str, labels: &[(&str, &str)]) -> u64 {
    snapshot
        .iter()
        .filter(|(key, _, _, _)| {
            let key = key.key();
            key.name() == name
                && labels
                    .iter()
                    .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
        })
        .map(|(_, _, _, value)| match value {
            DebugValue::Counter(n) => *n,
            _ => 0,
        })
        .sum()
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
    let snapshot: Snapshot = snapshotter.snapshot().into_vec();
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

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
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
