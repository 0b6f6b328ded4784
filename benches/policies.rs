//! Decisions per second of the built-in policies, in process: the role policy (Temporal's
//! table), the privilege policy, and the rules policy with 1,000 rules.
//!
//! `cargo bench --bench policies` (`-- --quick` for a short run). Each figure is the median
//! over interleaved rounds of the time per decision in a batch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::median;

use std::{fmt::Write as _, hint::black_box, path::Path, time::Instant};

use serde_json::json;
use warden_core::{AuthzRequest, Claims, Effect, Operation, OperationKind, Policy, Roles};
use warden_policy::{
    privileges::{PrivilegePolicy, Requirement},
    roles::{RolePolicy, WORKFLOW_SERVICE},
    rules::{RuleSet, RulesPolicy},
};

const KINDS: [&str; 4] = ["signal", "query", "update", "read"];

/// How the 1,000 rules relate to the call.
#[derive(Clone, Copy)]
enum Shape {
    /// Spread over four kinds and 250 exact namespaces, as a real file would be.
    Spread,
    /// All of the call's kind, namespace *prefixes* (`ns-N*`): no index prunes them, the
    /// first-byte prefilter does.
    Prefixes,
    /// All of the call's kind, prefixes starting like the call's namespace (`o-N*` against
    /// `orders`): every rule gets the full check.
    Unprunable,
}

/// 1,000 rules of `shape`; the one the call matches comes last.
fn thousand_rules(shape: Shape) -> String {
    let mut out = String::new();
    for i in 0..1000 {
        let (kind, namespace) = match shape {
            Shape::Spread => (KINDS[i % 4], format!("ns-{}", i % 250)),
            Shape::Prefixes => ("signal", format!("ns-{}*", i % 250)),
            Shape::Unprunable => ("signal", format!("o-{}*", i % 250)),
        };
        let effect = if i % 10 == 9 { "deny" } else { "allow" };
        writeln!(
            out,
            "[[rule]]\nid = \"r{i}\"\neffect = \"{effect}\"\nkinds = [\"{kind}\"]\nnamespaces = [\"{namespace}\"]\nnames = [\"sig-{}\"]\nargs = [{{ pointer = \"/amount\", le = {} }}]\nsubject = {{ roles = [\"writer\"] }}\n",
            i % 7,
            i * 10
        )
        .unwrap();
    }
    // The call below matches only this one, after all the others.
    out.push_str(
        "[[rule]]\nid = \"target\"\neffect = \"allow\"\nkinds = [\"signal\"]\nnamespaces = [\"orders\"]\nnames = [\"approve\"]\nsubject = { roles = [\"writer\"] }\n",
    );
    out
}

fn time(policy: &dyn Policy, request: &AuthzRequest, batch: u32) -> f64 {
    let started = Instant::now();
    for _ in 0..batch {
        let decision = black_box(policy.evaluate(black_box(request)));
        black_box(decision.now());
    }
    started.elapsed().as_nanos() as f64 / f64::from(batch)
}

fn main() {
    let (_, quick) = common::args();
    let writer = Claims::for_subject("alice")
        .with_namespace_role("orders", Roles::WRITER)
        .with_privilege("orders.signal");
    let signal = Operation::new(
        OperationKind::Signal,
        WORKFLOW_SERVICE,
        "SignalWorkflowExecution",
    )
    .with_namespace("orders")
    .with_instance("order-1")
    .with_name("approve")
    .with_args(json!({"amount": 5}));
    let request = AuthzRequest::new(writer, signal);

    let roles = RolePolicy::temporal();
    let privileges = PrivilegePolicy::new()
        .require(Requirement::kind(OperationKind::Update), ["orders.update"])
        .require(
            Requirement::kind(OperationKind::Signal).named("approve"),
            ["orders.signal"],
        )
        .require(
            Requirement::method(WORKFLOW_SERVICE, "TerminateWorkflowExecution"),
            ["orders.admin"],
        );
    let rules = |shape| {
        RulesPolicy::new(RuleSet::parse(Path::new("bench"), &thousand_rules(shape)).unwrap())
    };
    let (spread, prefixes, unprunable) = (
        rules(Shape::Spread),
        rules(Shape::Prefixes),
        rules(Shape::Unprunable),
    );
    let policies: [(&str, &dyn Policy); 5] = [
        ("role policy (Temporal table)", &roles),
        ("privilege policy (3 requirements)", &privileges),
        (
            "rules, 1,000 rules over 4 kinds and 250 namespaces",
            &spread,
        ),
        (
            "rules, 1,000 rules of the call's kind with namespace prefixes (`ns-N*`)",
            &prefixes,
        ),
        (
            "rules, 1,000 rules of the call's kind whose prefixes start like its namespace (`o-N*`): every rule passes the prefilter and gets the full check",
            &unprunable,
        ),
    ];
    for (name, policy) in policies {
        let decision = policy.evaluate(&request).now().unwrap().unwrap();
        assert_eq!(decision.effect(), Effect::Allow, "{name}: {decision:?}");
    }
    let rounds = if quick { 3 } else { 100 };
    let batch = if quick { 100 } else { 2_000 };
    let mut samples = vec![Vec::new(); policies.len()];
    for _ in 0..rounds {
        for (i, (_, policy)) in policies.iter().enumerate() {
            samples[i].push(time(*policy, &request, batch));
        }
    }
    println!("## Policy decisions in process ({rounds} interleaved rounds of {batch})\n");
    println!("| policy | median per decision | decisions per second |");
    println!("|---|---|---|");
    for ((name, _), samples) in policies.iter().zip(samples) {
        let ns = median(samples);
        println!("| {name} | {:.3} µs | {:.0} |", ns / 1e3, 1e9 / ns);
    }
}
