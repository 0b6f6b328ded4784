//! What a worker guard accepts at registration: deterministic policies only, from code or
//! from the policy config `warden proxy` reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use warden_core::{
    Decision, OperationKind, Policy,
    instances::{MemoryInstanceStore, SharedInstanceStore},
    policy::{AllOf, AllowAll, async_policy_fn, policy_fn},
};
use warden_passport::{SigningKey, TrustedKeys, Verifier};
use warden_policy::{
    cache::CachedPolicy,
    config::{PoliciesConfig, PolicySpec},
    roles::RolePolicy,
};
use warden_worker::{GuardError, WorkerGuard};

fn verifier() -> Verifier {
    let key = SigningKey::from_secret(&[3; 32], "k").unwrap();
    Verifier::new(
        TrustedKeys::new().with_signing_key(&key).unwrap(),
        "warden-proxy",
    )
}

#[test]
fn a_policy_that_waits_is_refused_for_workflow_side_checks_with_the_reason() {
    let remote = async_policy_fn("remote", |_| async { Ok(Decision::allow("remote")) });
    let error = WorkerGuard::builder(verifier())
        .signal(remote)
        .build()
        .unwrap_err();
    assert_eq!(
        error,
        GuardError::NotDeterministic {
            kind: "signal",
            since: 0
        }
    );
    assert!(error.to_string().contains("must decide at once"), "{error}");
    // Hidden inside a combination, or behind a cache with a clock: refused the same way.
    let combined = AllOf::new(
        "both",
        vec![
            AllowAll::new().shared(),
            async_policy_fn("remote", |_| async { Ok(Decision::allow("remote")) }).shared(),
        ],
    );
    assert!(matches!(
        WorkerGuard::builder(verifier()).query(combined).build(),
        Err(GuardError::NotDeterministic { kind: "query", .. })
    ));
    let cached = CachedPolicy::new(RolePolicy::temporal(), 100, Duration::from_secs(5));
    assert!(matches!(
        WorkerGuard::builder(verifier())
            .version_since(1_000)
            .update(cached)
            .build(),
        Err(GuardError::NotDeterministic {
            kind: "update",
            since: 1_000
        })
    ));
}

#[test]
fn activity_policies_may_wait_and_versions_must_move_forward() {
    let remote = async_policy_fn("remote", |_| async { Ok(Decision::allow("remote")) });
    assert!(
        WorkerGuard::builder(verifier())
            .policy_for_all(policy_fn("pure", |_| Decision::allow("pure")))
            .activity(remote)
            .build()
            .is_ok(),
        "activity checks run outside the workflow"
    );
    assert_eq!(
        WorkerGuard::builder(verifier())
            .version_since(2_000)
            .version_since(1_000)
            .build()
            .unwrap_err(),
        GuardError::VersionOrder {
            since: 1_000,
            previous: 2_000
        }
    );
}

#[test]
fn the_proxys_policy_config_builds_a_guard_unless_it_reads_the_instance_store() {
    let dir =
        std::env::temp_dir().join(format!("warden-worker-registration-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("rules.toml"),
        "[[rule]]\nid = \"signals\"\neffect = \"allow\"\nkinds = [\"signal\"]\n",
    )
    .unwrap();
    let config: PoliciesConfig = toml::from_str(
        r#"
[policies.roles]
type = "roles"
[policies.rules]
type = "rules"
path = "rules.toml"
[authorize]
default = ["roles"]
signal = ["roles", "rules"]
"#,
    )
    .unwrap();
    let built = config.build(&dir, None).unwrap();
    assert!(
        WorkerGuard::builder(verifier())
            .policies(built.kinds())
            .build()
            .is_ok()
    );
    // The initiator policy reads the instance store: state outside the history.
    let mut with_owner = config.clone();
    with_owner
        .policies
        .insert("owner".into(), PolicySpec::Initiator);
    with_owner
        .authorize
        .insert("update".into(), vec!["roles".into(), "owner".into()]);
    let store: SharedInstanceStore = Arc::new(MemoryInstanceStore::new());
    let built = with_owner.build(&dir, Some(&store)).unwrap();
    assert!(matches!(
        WorkerGuard::builder(verifier()).policies(built.kinds()).build(),
        Err(GuardError::NotDeterministic { kind, .. }) if kind == OperationKind::Update.as_str()
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
