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
    rbac(&roles, rounds, batch);
}

/// An RBAC workload where most calls are denied: 1,000 users, each a writer of one of 100
/// namespaces (and holding that namespace's signal privilege), calling across all of them.
/// Each row decides one prepared set of 1,000 calls, all allowed or all denied, so the
/// figure is the cost of that outcome.
fn rbac(roles: &RolePolicy, rounds: usize, batch: u32) {
    let users: Vec<Claims> = (0..1000)
        .map(|i| {
            let namespace = format!("ns-{}", i % 100);
            Claims::for_subject(format!("user-{i}"))
                .with_namespace_role(&namespace, Roles::WRITER)
                .with_privilege(format!("{namespace}.signal"))
        })
        .collect();
    let call = |user: usize, namespace: usize| {
        let signal = Operation::new(
            OperationKind::Signal,
            WORKFLOW_SERVICE,
            "SignalWorkflowExecution",
        )
        .with_namespace(format!("ns-{namespace}"))
        .with_instance("order-1")
        .with_name("approve");
        AuthzRequest::new(users[user].clone(), signal)
    };
    // Allowed: each user in their own namespace. Denied: each user in another one.
    let allowed: Vec<AuthzRequest> = (0..1000).map(|i| call(i, i % 100)).collect();
    let denied: Vec<AuthzRequest> = (0..1000).map(|i| call(i, (i * 7 + 13) % 100)).collect();
    // Approving needs `ns-0.signal`, which the ten users of `ns-0` hold.
    let scoped = PrivilegePolicy::new().require(
        Requirement::kind(OperationKind::Signal).named("approve"),
        ["ns-0.signal"],
    );
    let (holders, others): (Vec<AuthzRequest>, Vec<AuthzRequest>) = allowed
        .iter()
        .cloned()
        .partition(|r| r.operation.namespace.as_deref() == Some("ns-0"));
    let cases: [(&str, &dyn Policy, &[AuthzRequest], Effect); 4] = [
        ("role policy, allowed", roles, &allowed, Effect::Allow),
        ("role policy, denied", roles, &denied, Effect::Deny),
        (
            "privilege policy, allowed",
            &scoped,
            &holders,
            Effect::Allow,
        ),
        ("privilege policy, denied", &scoped, &others, Effect::Deny),
    ];
    for (name, policy, requests, effect) in &cases {
        for request in *requests {
            let decision = policy.evaluate(request).now().unwrap().unwrap();
            assert_eq!(decision.effect(), *effect, "{name}: {decision:?}");
        }
    }
    // The floor of a denial that says why: formatting the role policy's reason alone.
    let floor = |request: &AuthzRequest| {
        let namespace = request.operation.namespace.as_deref().unwrap_or_default();
        let role = request.subject.role_in(Some(namespace));
        format!(
            "needs the {} role in namespace `{namespace}`; the caller has {role}",
            Roles::WRITER
        )
    };
    let mut floor_samples = Vec::new();
    let mut samples = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        let started = Instant::now();
        let mut done = 0u32;
        while done < batch {
            for request in &denied {
                black_box(floor(black_box(request)));
                done += 1;
            }
        }
        floor_samples.push(started.elapsed().as_nanos() as f64 / f64::from(done));
        for (i, (_, policy, requests, _)) in cases.iter().enumerate() {
            let started = Instant::now();
            let mut done = 0u32;
            while done < batch {
                for request in requests.iter() {
                    black_box(black_box(*policy).evaluate(black_box(request)).now());
                    done += 1;
                }
            }
            samples[i].push(started.elapsed().as_nanos() as f64 / f64::from(done));
        }
    }
    println!(
        "\n## RBAC, 1,000 users and 100 namespaces, most calls denied ({rounds} interleaved rounds)\n"
    );
    println!("| policy | median per decision | decisions per second |");
    println!("|---|---|---|");
    for ((name, ..), samples) in cases.iter().zip(samples) {
        let ns = median(samples);
        println!("| {name} | {:.3} µs | {:.0} |", ns / 1e3, 1e9 / ns);
    }
    let ns = median(floor_samples);
    println!(
        "| floor: formatting the role denial's reason alone | {:.3} µs | {:.0} |",
        ns / 1e3,
        1e9 / ns
    );
}
