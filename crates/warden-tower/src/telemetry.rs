//! Metric keys built at compile time, so recording a decision allocates nothing.

use metrics::{Key, Label, Level, Metadata};
use warden_core::OperationKind;

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

const KINDS: usize = OperationKind::ALL.len();

/// The labels of one decision counter.
macro_rules! decision_labels {
    ($kind:literal, $outcome:literal) => {
        Key::from_static_parts("warden_decisions_total", {
            static LABELS: [Label; 2] = [
                Label::from_static_parts("kind", $kind),
                Label::from_static_parts("outcome", $outcome),
            ];
            &LABELS
        })
    };
}

macro_rules! decision_row {
    ($kind:literal) => {
        [
            decision_labels!($kind, "allow"),
            decision_labels!($kind, "deny"),
            decision_labels!($kind, "not_applicable"),
            decision_labels!($kind, "error"),
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

macro_rules! duration_key {
    ($kind:literal) => {
        Key::from_static_parts("warden_decision_duration_seconds", {
            static LABELS: [Label; 1] = [Label::from_static_parts("kind", $kind)];
            &LABELS
        })
    };
}

// Whole keys, hashes included, are computed at compile time: recording a decision hashes
// nothing. Indexed by `OperationKind as usize`, then by `Outcome as usize`.
static DECISION_KEYS: [[Key; 4]; KINDS] = per_kind!(decision_row);
static DURATION_KEYS: [Key; KINDS] = per_kind!(duration_key);
static AUTHENTICATION_FAILURES: Key = Key::from_static_name("warden_authentication_failures_total");

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
    let counter = &DECISION_KEYS[kind as usize][outcome as usize];
    let histogram = &DURATION_KEYS[kind as usize];
    metrics::with_recorder(|recorder| {
        recorder.register_counter(counter, &METADATA).increment(1);
        recorder
            .register_histogram(histogram, &METADATA)
            .record(seconds);
    });
}

/// Counts one failed authentication (`warden_authentication_failures_total`).
pub(crate) fn record_authentication_failure() {
    metrics::with_recorder(|recorder| {
        recorder
            .register_counter(&AUTHENTICATION_FAILURES, &METADATA)
            .increment(1)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_tables_follow_the_kind_order() {
        for kind in OperationKind::ALL {
            let duration = DURATION_KEYS[kind as usize].labels().collect::<Vec<_>>();
            assert_eq!(duration[0].value(), kind.as_str());
            for (outcome, name) in [
                (Outcome::Allow, "allow"),
                (Outcome::Deny, "deny"),
                (Outcome::NotApplicable, "not_applicable"),
                (Outcome::Error, "error"),
            ] {
                let key = &DECISION_KEYS[kind as usize][outcome as usize];
                let labels = key.labels().collect::<Vec<_>>();
                assert_eq!(key.name(), "warden_decisions_total");
                assert_eq!(labels[0].value(), kind.as_str());
                assert_eq!(labels[1].value(), name);
            }
        }
    }
}
