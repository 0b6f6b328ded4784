//! Policies built from a config: shadowing, caching, and config errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use warden_core::{AuthzRequest, Claims, Effect, Operation, OperationKind, Roles};
use warden_policy::config::PoliciesConfig;

fn build(source: &str) -> Result<warden_policy::config::BuiltPolicies, String> {
    let config: PoliciesConfig = toml::from_str(source).map_err(|e| e.to_string())?;
    config
        .build(Path::new("."), None)
        .map_err(|e| e.to_string())
}

fn signal() -> AuthzRequest {
    let op = Operation::new(OperationKind::Signal, "s.v1.S", "Signal").with_namespace("orders");
    AuthzRequest::new(
        Claims::for_subject("alice").with_namespace_role("orders", Roles::READER),
        op,
    )
}

#[test]
fn a_shadowed_policy_reports_its_denial_while_the_call_goes_through() {
    let built = build(
        r#"
        [policies.strict]
        type = "deny_all"
        [policies.trial]
        type = "shadow"
        policy = "strict"
        [policies.open]
        type = "allow_all"
        [authorize]
        signal = ["open", "trial"]
        "#,
    )
    .unwrap();
    let (names, policy) = built.for_kind(OperationKind::Signal).unwrap();
    assert_eq!(names, ["open", "trial"]);
    let decision = policy.evaluate(&signal()).now().unwrap().unwrap();
    assert_eq!(decision.effect(), Effect::Allow);
    let trial = built.named["trial"]
        .evaluate(&signal())
        .now()
        .unwrap()
        .unwrap();
    assert_eq!(trial.decider(), "shadow/deny-all");
    assert_eq!(
        trial.reason(),
        Some("shadowed: would deny: denied by default")
    );
    // Nothing configured for queries and no default: nothing decides them.
    assert!(built.for_kind(OperationKind::Query).is_none());
}

#[test]
fn a_cached_policy_decides_as_the_policy_it_wraps() {
    let built = build(
        r#"
        [policies.roles]
        type = "roles"
        table = "empty"
        methods = { "s.v1.S/Signal" = { scope = "namespace", access = "write" } }
        [policies.fast]
        type = "cached"
        policy = "roles"
        ttl_seconds = 30
        [authorize]
        default = ["fast"]
        "#,
    )
    .unwrap();
    let (_, policy) = built.for_kind(OperationKind::Signal).unwrap();
    for _ in 0..2 {
        let decision = policy.evaluate(&signal()).now().unwrap().unwrap();
        assert_eq!(decision.effect(), Effect::Deny);
        assert_eq!(decision.decider(), "roles");
    }
}

#[test]
fn config_mistakes_are_errors_that_say_what_is_wrong() {
    let wraps_nothing = build("[policies.x]\ntype = \"shadow\"\npolicy = \"y\"\n").unwrap_err();
    assert!(wraps_nothing.contains("wraps `y`"), "{wraps_nothing}");
    let no_store = build("[policies.o]\ntype = \"initiator\"\n").unwrap_err();
    assert!(no_store.contains("needs an instance store"), "{no_store}");
    let bad_kind =
        build("[policies.a]\ntype = \"allow_all\"\n[authorize]\nsignals = [\"a\"]\n").unwrap_err();
    assert!(
        bad_kind.contains("authorize.signals: not an operation kind"),
        "{bad_kind}"
    );
    // Embedders match on what is wrong and where.
    let config: PoliciesConfig =
        toml::from_str("[policies.a]\ntype = \"allow_all\"\n[authorize]\nquery = [\"b\"]\n")
            .unwrap();
    match config.build(Path::new("."), None).unwrap_err() {
        warden_policy::config::PoliciesError::UnknownPolicy { key, policy, known } => {
            assert_eq!((key.as_str(), policy.as_str()), ("query", "b"));
            assert_eq!(known, ["a"]);
        }
        other => panic!("expected UnknownPolicy, got {other:?}"),
    }
    let unknown_type = build("[policies.a]\ntype = \"cedar\"\n").unwrap_err();
    assert!(
        unknown_type.contains("unknown variant `cedar`"),
        "{unknown_type}"
    );
}
