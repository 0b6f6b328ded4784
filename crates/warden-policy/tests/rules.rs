//! The rules file: matching, argument predicates, load errors with lines, hot reload.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::json;
use warden_core::{
    AuthzRequest, Claims, Effect, Metadata, Operation, OperationKind, Peer, Policy, RequestContext,
    Roles, Transport,
};
use warden_policy::rules::{ProblemKind, RuleLabel, RuleSet, RulesPolicy};

const SVC: &str = "warden.example.v1.WorkflowService";

fn rules(source: &str) -> RuleSet {
    RuleSet::parse(Path::new("rules.toml"), source).unwrap()
}

fn op(kind: OperationKind, method: &str) -> Operation {
    Operation::new(kind, SVC, method).with_namespace("orders")
}

fn writer() -> Claims {
    Claims::for_subject("alice").with_namespace_role("orders", Roles::WRITER)
}

fn decide(set: &RuleSet, claims: Claims, op: Operation) -> (Effect, String) {
    let decision = set.decide(&AuthzRequest::new(claims, op));
    (decision.effect(), decision.decider().to_owned())
}

#[test]
fn a_deny_rule_without_a_subject_condition_stops_an_anonymous_caller_an_allow_rule_admits() {
    let set = rules(
        r#"
        [[rule]]
        id = "anyone-queries"
        effect = "allow"
        kinds = ["query"]
        subject = { anonymous = true }

        [[rule]]
        id = "no-secrets"
        effect = "deny"
        reason = "the secret query is closed"
        names = ["secret"]

        [[rule]]
        id = "no-readers-of-audit"
        effect = "deny"
        names = ["audit"]
        subject = { roles = ["reader"] }
        "#,
    );
    let query = |name: &str| op(OperationKind::Query, "QueryWorkflow").with_name(name);
    assert_eq!(
        decide(&set, Claims::anonymous(), query("status")),
        (Effect::Allow, "rules/anyone-queries".into())
    );
    assert_eq!(
        decide(&set, Claims::anonymous(), query("secret")),
        (Effect::Deny, "rules/no-secrets".into()),
        "a deny rule with no subject condition applies to anonymous callers too"
    );
    assert_eq!(
        decide(&set, writer(), query("secret")),
        (Effect::Deny, "rules/no-secrets".into())
    );
    // A deny rule's own subject conditions still decide whom it stops.
    assert_eq!(
        decide(&set, Claims::anonymous(), query("audit")),
        (Effect::Allow, "rules/anyone-queries".into())
    );
}

#[test]
fn deny_overrides_allow_whatever_the_order_and_nothing_matched_denies() {
    let set = rules(
        r#"
        [[rule]]
        id = "writers-signal"
        effect = "allow"
        kinds = ["signal"]
        subject = { roles = ["writer"] }

        [[rule]]
        id = "no-cancel-signal"
        effect = "deny"
        reason = "cancel signals are blocked"
        names = ["cancel"]
        "#,
    );
    let signal = |name: &str| op(OperationKind::Signal, "SignalWorkflow").with_name(name);
    assert_eq!(
        decide(&set, writer(), signal("approve")),
        (Effect::Allow, "rules/writers-signal".into())
    );
    let denied = set.decide(&AuthzRequest::new(writer(), signal("cancel")));
    assert_eq!(denied.effect(), Effect::Deny);
    assert_eq!(denied.decider(), "rules/no-cancel-signal");
    assert_eq!(denied.reason(), Some("cancel signals are blocked"));
    let nothing = set.decide(&AuthzRequest::new(
        writer(),
        op(OperationKind::Query, "QueryWorkflow"),
    ));
    assert_eq!(nothing.effect(), Effect::Deny);
    assert_eq!(nothing.reason(), Some("no rule allows this call"));
}

#[test]
fn argument_predicates_compare_decoded_arguments_and_fail_closed() {
    let set = rules(
        r#"
        [[rule]]
        id = "small-discounts"
        effect = "allow"
        kinds = ["update"]
        args = [{ pointer = "/amount", le = 1000 }, { pointer = "/currency", in = ["EUR", "USD"] }]

        [[rule]]
        id = "no-vip"
        effect = "deny"
        kinds = ["update"]
        args = [{ pointer = "/customer/tier", eq = "vip" }]
        "#,
    );
    let update =
        |args: serde_json::Value| op(OperationKind::Update, "UpdateWorkflow").with_args(args);
    let effect = |op| decide(&set, writer(), op).0;
    assert_eq!(
        effect(update(json!({"amount": 250, "currency": "EUR"}))),
        Effect::Allow
    );
    assert_eq!(
        effect(update(json!({"amount": 1000.0, "currency": "USD"}))),
        Effect::Allow
    );
    assert_eq!(
        effect(update(json!({"amount": 5000, "currency": "EUR"}))),
        Effect::Deny
    );
    assert_eq!(
        effect(update(json!({"amount": 250, "currency": "GBP"}))),
        Effect::Deny
    );
    assert_eq!(
        effect(update(json!({"amount": "250", "currency": "EUR"}))),
        Effect::Deny
    );
    assert_eq!(effect(update(json!({"currency": "EUR"}))), Effect::Deny);
    let vip = json!({"amount": 1, "currency": "EUR", "customer": {"tier": "vip"}});
    assert_eq!(
        decide(&set, writer(), update(vip)),
        (Effect::Deny, "rules/no-vip".into())
    );
    // Bytes that are not JSON: no allow rule can vouch for them, every deny rule holds.
    let opaque = op(OperationKind::Update, "UpdateWorkflow").with_json_args(b"\x00\x01".to_vec());
    assert_eq!(
        decide(&set, writer(), opaque),
        (Effect::Deny, "rules/no-vip".into())
    );
}

#[test]
fn patterns_and_subject_conditions_match_as_documented() {
    let set = rules(
        r#"
        [[rule]]
        id = "prefix-service"
        effect = "allow"
        services = ["warden.example.*"]
        methods = ["Describe*", "*Workflows"]
        namespaces = ["ord*"]
        subject = { groups = ["ops"], claims = { department = "finance" } }

        [[rule]]
        id = "by-id"
        effect = "allow"
        kinds = ["terminate"]
        subject = { ids = ["root"], system_roles = ["admin"] }

        [[rule]]
        id = "scoped"
        effect = "allow"
        kinds = ["read"]
        subject = { privileges = ["orders.read"] }

        [[rule]]
        id = "health"
        effect = "allow"
        methods = ["Check"]
        subject = { anonymous = true }
        "#,
    );
    let ops = Claims::for_subject("o")
        .with_group("ops")
        .with_attribute("department", json!("finance"));
    let describe = op(OperationKind::Read, "DescribeWorkflow");
    assert_eq!(
        decide(&set, ops.clone(), describe.clone()).1,
        "rules/prefix-service"
    );
    assert_eq!(
        decide(&set, ops.clone(), op(OperationKind::Read, "ListWorkflows")).1,
        "rules/prefix-service"
    );
    assert_eq!(
        decide(&set, ops.clone(), op(OperationKind::Read, "WatchWorkflow")).0,
        Effect::Deny
    );
    let sales = Claims::for_subject("o")
        .with_group("ops")
        .with_attribute("department", json!("sales"));
    assert_eq!(decide(&set, sales, describe.clone()).0, Effect::Deny);
    let root = Claims::for_subject("root").with_system_role(Roles::ADMIN);
    let terminate = op(OperationKind::Terminate, "TerminateWorkflow");
    assert_eq!(decide(&set, root, terminate.clone()).0, Effect::Allow);
    let other_admin = Claims::for_subject("eve").with_system_role(Roles::ADMIN);
    assert_eq!(decide(&set, other_admin, terminate).0, Effect::Deny);
    let scoped = Claims::for_subject("s").with_privilege("orders.read");
    assert_eq!(
        decide(&set, scoped, op(OperationKind::Read, "Get")).1,
        "rules/scoped"
    );
    // Anonymous callers match only rules that say so.
    assert_eq!(decide(&set, Claims::anonymous(), describe).0, Effect::Deny);
    assert_eq!(
        decide(&set, Claims::anonymous(), op(OperationKind::Other, "Check")).1,
        "rules/health"
    );
}

#[test]
fn signal_with_start_meets_the_rules_of_both_kinds() {
    let set = rules(
        r#"
        [[rule]]
        id = "start"
        effect = "allow"
        kinds = ["execute"]

        [[rule]]
        id = "no-approve"
        effect = "deny"
        kinds = ["signal"]
        names = ["approve"]
        "#,
    );
    let swst = op(OperationKind::Execute, "SignalWithStart")
        .also(OperationKind::Signal)
        .with_name("approve");
    assert_eq!(decide(&set, writer(), swst).1, "rules/no-approve");
}

/// A call's context: `headers` as metadata, from `peer` over `transport`.
fn context(headers: &[(&str, &str)], transport: Transport, peer: Option<&str>) -> RequestContext {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    RequestContext::default()
        .with_peer(Peer::new(peer.map(|p| p.parse().unwrap()), transport))
        .with_metadata(Metadata::new(map))
}

fn decide_in(set: &RuleSet, context: RequestContext) -> (Effect, String) {
    let request = AuthzRequest::new(writer(), op(OperationKind::Query, "QueryWorkflow"))
        .with_context(context);
    let decision = set.decide(&request);
    (decision.effect(), decision.decider().to_owned())
}

#[test]
fn metadata_conditions_match_presence_values_and_prefixes_and_several_values_fail_closed() {
    let set = rules(
        r#"
        [[rule]]
        id = "no-debug"
        effect = "deny"
        metadata = [{ name = "X-Debug", present = true }]

        [[rule]]
        id = "no-legacy-clients"
        effect = "deny"
        metadata = [{ name = "user-agent", prefix = ["legacy/", "old/"] }]

        [[rule]]
        id = "known-tenants"
        effect = "allow"
        metadata = [{ name = "x-tenant", in = ["acme", "globex"] }]

        [[rule]]
        id = "not-blocked"
        effect = "allow"
        metadata = [{ name = "x-region", not_in = ["blocked"] }, { name = "x-tenant", eq = "initech" }]
        "#,
    );
    let plain =
        |headers: &[(&str, &str)]| decide_in(&set, context(headers, Transport::Plaintext, None));
    let allowed = |id: &str| (Effect::Allow, format!("rules/{id}"));
    let denied = |id: &str| (Effect::Deny, format!("rules/{id}"));

    assert_eq!(plain(&[("x-tenant", "acme")]), allowed("known-tenants"));
    assert_eq!(plain(&[("x-tenant", "globex")]), allowed("known-tenants"));
    assert_eq!(plain(&[("x-tenant", "umbrella")]).0, Effect::Deny);
    assert_eq!(
        plain(&[]),
        (Effect::Deny, "rules".into()),
        "no header, no allow"
    );
    // Names are case-insensitive.
    assert_eq!(
        plain(&[("x-tenant", "acme"), ("x-debug", "1")]),
        denied("no-debug")
    );
    assert_eq!(
        plain(&[("x-tenant", "acme"), ("user-agent", "old/2.1")]),
        denied("no-legacy-clients")
    );
    assert_eq!(
        plain(&[("x-tenant", "acme"), ("user-agent", "temporal-cli/1.3")]),
        allowed("known-tenants")
    );

    // Several values: an allow rule needs every one of them to pass, a deny rule any.
    assert_eq!(
        plain(&[("x-tenant", "acme"), ("x-tenant", "umbrella")]).0,
        Effect::Deny,
        "a second value cannot ride on an allowed first"
    );
    assert_eq!(
        plain(&[("x-tenant", "acme"), ("x-tenant", "globex")]),
        allowed("known-tenants")
    );
    assert_eq!(
        plain(&[
            ("x-tenant", "acme"),
            ("user-agent", "ok/1"),
            ("user-agent", "legacy/0.9")
        ]),
        denied("no-legacy-clients"),
        "a deny rule is not escaped by sending a harmless value first"
    );

    // `not_in` holds for a missing header; `eq` on another header must hold too.
    assert_eq!(plain(&[("x-tenant", "initech")]), allowed("not-blocked"));
    assert_eq!(
        plain(&[("x-tenant", "initech"), ("x-region", "blocked")]).0,
        Effect::Deny
    );

    // A value that is not visible ASCII never passes an allow comparison and always passes
    // a deny one.
    assert_eq!(plain(&[("x-tenant", "acm\u{e9}")]).0, Effect::Deny);
    assert_eq!(
        plain(&[("x-tenant", "acme"), ("user-agent", "caf\u{e9}")]),
        denied("no-legacy-clients")
    );

    // An in-process call with no metadata meets no allow rule on it.
    assert_eq!(decide_in(&set, RequestContext::default()).0, Effect::Deny);
}

#[test]
fn transport_conditions_match_tls_certificates_and_peer_networks_and_fail_closed_when_unknown() {
    let set = rules(
        r#"
        [[rule]]
        id = "internal-plaintext-only"
        effect = "deny"
        reason = "plaintext is only for the pod network"
        transport = { tls = false, peer_not_in = ["10.0.0.0/8", "fd00::/8", "::1", "127.0.0.0/8"] }

        [[rule]]
        id = "mtls-callers"
        effect = "allow"
        transport = { tls = true, peer_certificate = true }

        [[rule]]
        id = "pod-network"
        effect = "allow"
        transport = { peer_in = ["10.0.0.0/8", "fd00::/8"] }
        "#,
    );
    let call =
        |transport: Transport, peer: Option<&str>| decide_in(&set, context(&[], transport, peer));
    let allowed = |id: &str| (Effect::Allow, format!("rules/{id}"));
    assert_eq!(
        call(Transport::Plaintext, Some("10.1.2.3:5000")),
        allowed("pod-network")
    );
    assert_eq!(
        call(Transport::Plaintext, Some("[fd00::7]:5000")),
        allowed("pod-network")
    );
    assert_eq!(
        call(Transport::Plaintext, Some("[::ffff:10.9.9.9]:5000")),
        allowed("pod-network"),
        "an IPv4 peer on a dual-stack socket is compared as IPv4"
    );
    assert_eq!(
        call(Transport::Plaintext, Some("192.0.2.1:5000")),
        (Effect::Deny, "rules/internal-plaintext-only".into())
    );
    // TLS without a client certificate, from outside: no rule allows.
    assert_eq!(
        call(Transport::Tls, Some("192.0.2.1:5000")),
        (Effect::Deny, "rules".into())
    );

    let mut with_cert = context(&[], Transport::Tls, Some("192.0.2.1:5000"));
    with_cert.peer_certificates = Some(vec![vec![0x30]].into());
    assert_eq!(decide_in(&set, with_cert), allowed("mtls-callers"));

    // Unknown transport and peer: the deny rule matches, no allow rule does.
    assert_eq!(
        call(Transport::Unknown, None),
        (Effect::Deny, "rules/internal-plaintext-only".into())
    );
    let mut unknown_inside = context(&[], Transport::Unknown, Some("10.0.0.5:1"));
    unknown_inside.transport = Transport::Unknown;
    assert_eq!(
        decide_in(&set, unknown_inside),
        allowed("pod-network"),
        "a deny rule on plaintext does not match a peer it excludes by network"
    );
}

#[test]
fn metadata_and_transport_conditions_are_checked_at_load() {
    let error = RuleSet::parse(
        Path::new("r.toml"),
        r#"
[[rule]]
id = "pseudo"
effect = "deny"
metadata = [{ name = ":authority", present = true }]

[[rule]]
id = "bad-name"
effect = "deny"
metadata = [{ name = "x tenant", present = true }]

[[rule]]
id = "two"
effect = "allow"
metadata = [{ name = "x-tenant", eq = "a", prefix = ["b"] }]

[[rule]]
id = "net"
effect = "allow"
transport = { peer_in = ["10.0.0.0/33"] }

[[rule]]
id = "typo"
effect = "allow"
transport = { tsl = true }
"#,
    )
    .unwrap_err();
    let lines: Vec<String> = error.errors.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert!(
        lines[0].starts_with(
            "r.toml:2: rule `pseudo`: metadata `:authority`: pseudo-headers are not metadata"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(
            "r.toml:7: rule `bad-name`: metadata `x tenant` is not a valid header name"
        ),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with("r.toml:12: rule `two`: metadata `x-tenant` needs exactly one of present, eq, in, not_in, prefix (found 2)"), "{}", lines[2]);
    assert!(
        lines[3].starts_with("r.toml:17: rule `net`: `10.0.0.0/33` is not a network"),
        "{}",
        lines[3]
    );
    assert!(
        lines[4].starts_with("r.toml:22: rule `typo`: unknown field `tsl`"),
        "{}",
        lines[4]
    );
}

#[test]
fn every_load_error_is_reported_with_its_line_and_what_was_expected() {
    let source = r#"
[[rule]]
id = "ok"
effect = "allow"

[[rule]]
id = "typo"
effect = "allow"
kindz = ["query"]

[[rule]]
id = "bad-kind"
effect = "allow"
kinds = ["qeury"]

[[rule]]
id = "two-comparisons"
effect = "deny"
args = [{ pointer = "/amount", le = 1, ge = 0 }]

[[rule]]
id = "bad-role"
effect = "allow"
subject = { roles = ["boss"] }

[[rule]]
id = "ok"
effect = "maybe"
"#;
    let error = RuleSet::parse(Path::new("policy/rules.toml"), source).unwrap_err();
    let lines: Vec<String> = error.errors.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 5, "{lines:#?}");
    // Embedders match on the parts, not the text.
    let role = &error.errors[3];
    assert_eq!(role.path, Path::new("policy/rules.toml"));
    assert_eq!(role.line, Some(21));
    assert_eq!(role.rule, Some(RuleLabel::Id("bad-role".into())));
    assert_eq!(
        role.kind,
        ProblemKind::UnknownRole {
            role: "boss".into()
        }
    );
    assert_eq!(
        error.errors[2].kind,
        ProblemKind::ArgComparisons {
            pointer: "/amount".into(),
            found: 2
        }
    );
    assert!(
        lines[0].starts_with(
            "policy/rules.toml:6: rule `typo`: unknown field `kindz`, expected one of"
        ),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("policy/rules.toml:11: rule `bad-kind`: unknown operation kind `qeury`, expected one of execute"), "{}", lines[1]);
    assert!(
        lines[2].starts_with(
            "policy/rules.toml:16: rule `two-comparisons`: argument `/amount` needs exactly one of"
        ),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with("policy/rules.toml:21: rule `bad-role`: unknown role `boss`"),
        "{}",
        lines[3]
    );
    assert!(
        lines[4].starts_with(
            "policy/rules.toml:26: rule `ok`: unknown variant `maybe`, expected `allow` or `deny`"
        ),
        "{}",
        lines[4]
    );

    let syntax = RuleSet::parse(
        Path::new("r.toml"),
        "[[rule]]\nid = \"x\"\neffect = allow\n",
    )
    .unwrap_err();
    assert!(
        syntax.errors[0].to_string().starts_with("r.toml:3: "),
        "{syntax}"
    );
    let top = RuleSet::parse(Path::new("r.toml"), "\n[[rules]]\nid = \"x\"\n").unwrap_err();
    assert!(
        top.errors[0]
            .to_string()
            .starts_with("r.toml:2: unknown field `rules`"),
        "{top}"
    );
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("warden-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Writes `path` atomically: a temporary file renamed over it.
    fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two versions whose decisions for one request differ in effect *and* decider, and an
/// invalid third.
const VERSION_A: &str = r#"
[[rule]]
id = "a-allow"
effect = "allow"
kinds = ["update"]

[[rule]]
id = "a-deny-big"
effect = "deny"
kinds = ["update"]
args = [{ pointer = "/amount", gt = 100 }]
"#;
const VERSION_B: &str = r#"
[[rule]]
id = "b-allow"
effect = "allow"
kinds = ["update"]
"#;
const INVALID: &str = "[[rule]]\nid = \"broken\"\neffect = \"allow\"\nkinds = [\"nope\"]\n";

fn big_update() -> AuthzRequest {
    AuthzRequest::new(
        writer(),
        op(OperationKind::Update, "UpdateWorkflow").with_args(json!({"amount": 500})),
    )
}

#[test]
fn reload_swaps_valid_files_in_and_keeps_the_last_good_rules() {
    let dir = TempDir::new("rules-reload");
    let path = dir.write("rules.toml", VERSION_A);
    let policy = RulesPolicy::load(&path).unwrap();
    let decider = |p: &RulesPolicy| p.rules().decide(&big_update()).decider().to_owned();
    assert_eq!(decider(&policy), "rules/a-deny-big");
    assert!(
        !policy.reload().unwrap(),
        "an unchanged file is not reloaded"
    );
    dir.write("rules.toml", VERSION_B);
    assert!(policy.reload().unwrap());
    assert_eq!(decider(&policy), "rules/b-allow");
    assert_eq!(policy.version(), 1);
    dir.write("rules.toml", INVALID);
    let error = policy.reload().unwrap_err();
    assert!(
        error.to_string().contains("rules.toml:1: rule `broken`"),
        "{error}"
    );
    assert_eq!(decider(&policy), "rules/b-allow");
    assert_eq!(policy.version(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_concurrent_load_loses_no_call_and_never_serves_a_mix() {
    let dir = TempDir::new("rules-watch");
    let path = dir.write("rules.toml", VERSION_A);
    let policy = RulesPolicy::load(&path).unwrap();
    policy.watch(Duration::from_millis(5));
    let stop = Arc::new(AtomicBool::new(false));
    let (from_a, from_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (policy, stop) = (policy.clone(), Arc::clone(&stop));
            let (from_a, from_b) = (Arc::clone(&from_a), Arc::clone(&from_b));
            tokio::spawn(async move {
                let request = big_update();
                let mut calls = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let decision = policy.evaluate(&request).now().unwrap().unwrap();
                    match (decision.effect(), decision.decider()) {
                        (Effect::Deny, "rules/a-deny-big") => {
                            from_a.fetch_add(1, Ordering::Relaxed)
                        }
                        (Effect::Allow, "rules/b-allow") => from_b.fetch_add(1, Ordering::Relaxed),
                        other => panic!("a decision from neither version: {other:?}"),
                    };
                    calls += 1;
                    if calls.is_multiple_of(64) {
                        tokio::task::yield_now().await;
                    }
                }
                calls
            })
        })
        .collect();
    let mut versions_seen = 0;
    for round in 0..20 {
        let content = match round % 3 {
            0 => VERSION_B,
            1 => INVALID,
            _ => VERSION_A,
        };
        dir.write("rules.toml", content);
        tokio::time::sleep(Duration::from_millis(60)).await;
        versions_seen = versions_seen.max(policy.version());
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for caller in callers {
        total += caller.await.unwrap();
    }
    let (a, b) = (
        from_a.load(Ordering::Relaxed),
        from_b.load(Ordering::Relaxed),
    );
    assert_eq!(a + b, total, "every call got a decision");
    assert!(a > 0 && b > 0, "both versions served: a={a} b={b}");
    assert!(versions_seen >= 2, "the watcher reloaded: {versions_seen}");
}
