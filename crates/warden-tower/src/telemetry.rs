//! Metric keys built at compile time, so recording a decision allocates nothing.

use metrics::{Key, Label, Level, Metadata};
use warden_core::OperationKind;

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

const KINDS: usize = OperationKind::ALL.len();

macro_rules! decision_row {
    ($kind:literal) => {
        [
            [
                Label::from_static_parts("kind", $kind),
                Label::from_static_parts("outcome", "allow"),
            ],
            [
                Label::from_static_parts("kind", $kind),
                Label::from_static_parts("outcome", "deny"),
            ],
            [
                Label::from_static_parts("kind", $kind),
                Label::from_static_parts("outcome", "not_applicable"),
            ],
            [
                Label::from_static_parts("kind", $kind),
                Label::from_static_parts("outcome", "error"),
            ],
        ]
    };
}

macro_rules! per_kind {
    ($row:ident) => {
        [
            $row!("execute"),
            $row!("signal"),
            $row!("query"),
            $row!("update"),
            $row!("cancel"),
            $row!("terminate"),
            $row!("read"),
            $row!("worker"),
            $row!("admin"),
            $row!("other"),
        ]
    };
}

macro_rules! kind_row {
    ($kind:literal) => {
        [Label::from_static_parts("kind", $kind)]
    };
}

// Indexed by `OperationKind as usize`, then by `Outcome as usize`.
static DECISION_LABELS: [[[Label; 2]; 4]; KINDS] = per_kind!(decision_row);
static KIND_LABELS: [[Label; 1]; KINDS] = per_kind!(kind_row);

/// The outcome label of a decision or error.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Outcome {
    Allow = 0,
    Deny = 1,
    NotApplicable = 2,
    Error = 3,
}

/// Counts one decision (`warden_decisions_total{kind, outcome}`) and records its latency
/// (`warden_decision_duration_seconds{kind}`).
pub(crate) fn record_decision(kind: OperationKind, outcome: Outcome, seconds: f64) {
    let labels = &DECISION_LABELS[kind as usize][outcome as usize];
    let counter = Key::from_static_parts("warden_decisions_total", labels);
    let histogram = Key::from_static_parts(
        "warden_decision_duration_seconds",
        &KIND_LABELS[kind as usize],
    );
    metrics::with_recorder(|recorder| {
        recorder.register_counter(&counter, &METADATA).increment(1);
        recorder
            .register_histogram(&histogram, &METADATA)
            .record(seconds);
    });
}

/// Counts one failed authentication (`warden_authentication_failures_total`).
pub(crate) fn record_authentication_failure() {
    let key = Key::from_static_name("warden_authentication_failures_total");
    metrics::with_recorder(|recorder| recorder.register_counter(&key, &METADATA).increment(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_tables_follow_the_kind_order() {
        for kind in OperationKind::ALL {
            assert_eq!(KIND_LABELS[kind as usize][0].value(), kind.as_str());
            for (outcome, name) in [
                (Outcome::Allow, "allow"),
                (Outcome::Deny, "deny"),
                (Outcome::NotApplicable, "not_applicable"),
                (Outcome::Error, "error"),
            ] {
                let labels = &DECISION_LABELS[kind as usize][outcome as usize];
                assert_eq!(labels[0].value(), kind.as_str());
                assert_eq!(labels[1].value(), name);
            }
        }
    }
}
