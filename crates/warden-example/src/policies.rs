//! In-code policies and identities shared by the demo, the tests and the benchmarks.

use serde_json::Value;
use warden_core::{
    AuthzRequest, Claims, Decision, Roles,
    identity::StaticTokenMapper,
    policy::{PolicyFn, policy_fn},
};

type Rule = fn(&AuthzRequest) -> Decision;

fn role(request: &AuthzRequest) -> Roles {
    request
        .subject
        .role_in(request.operation.namespace.as_deref())
}

/// Readers, writers and admins of the call's namespace (or system-wide) may read and query.
pub fn readers() -> PolicyFn<Rule> {
    policy_fn("readers", |request: &AuthzRequest| {
        // Temporal compares roles as numbers: reader (2) and above read; a worker (1) alone does not.
        if role(request).at_least(Roles::READER) {
            Decision::allow("readers")
        } else {
            Decision::deny("readers", "needs the reader role in this namespace")
        }
    })
}

/// Only writers (or admins) of the call's namespace may start, signal and cancel.
pub fn writers() -> PolicyFn<Rule> {
    policy_fn("writers", |request: &AuthzRequest| {
        if role(request).at_least(Roles::WRITER) {
            Decision::allow("writers")
        } else {
            Decision::deny("writers", "needs the writer role in this namespace")
        }
    })
}

/// Writers may update, but an `amount` argument above 1000 needs an admin.
pub fn updates_up_to_1000() -> PolicyFn<Rule> {
    policy_fn("updates-up-to-1000", |request: &AuthzRequest| {
        let role = role(request);
        let amount = request
            .operation
            .args
            .get()
            .and_then(|a| a.get("amount"))
            .and_then(Value::as_f64);
        match amount {
            _ if role.at_least(Roles::ADMIN) => Decision::allow("updates-up-to-1000"),
            _ if !role.at_least(Roles::WRITER) => Decision::deny(
                "updates-up-to-1000",
                "needs the writer role in this namespace",
            ),
            Some(amount) if amount > 1000.0 => Decision::deny(
                "updates-up-to-1000",
                format!("amount {amount} is over 1000"),
            ),
            _ => Decision::allow("updates-up-to-1000"),
        }
    })
}

/// Only admins may terminate.
pub fn admins() -> PolicyFn<Rule> {
    policy_fn("admins", |request: &AuthzRequest| {
        if role(request).at_least(Roles::ADMIN) {
            Decision::allow("admins")
        } else {
            Decision::deny("admins", "needs the admin role")
        }
    })
}

/// The demo's callers and their bearer tokens.
pub const IDENTITIES: [(&str, &str); 5] = [
    ("alice", "alice-token"),
    ("bob", "bob-token"),
    ("carol", "carol-token"),
    ("root", "root-token"),
    ("wendy", "wendy-token"),
];

/// A mapper for [`IDENTITIES`]: alice writes `orders`, bob reads `orders`, carol writes
/// `billing`, root is a system admin, wendy is a worker of `orders`. Calls without a token are
/// refused.
pub fn identities() -> StaticTokenMapper {
    StaticTokenMapper::new()
        .with_token(
            "alice-token",
            Claims::for_subject("alice").with_namespace_role("orders", Roles::WRITER),
        )
        .with_token(
            "bob-token",
            Claims::for_subject("bob").with_namespace_role("orders", Roles::READER),
        )
        .with_token(
            "carol-token",
            Claims::for_subject("carol").with_namespace_role("billing", Roles::WRITER),
        )
        .with_token(
            "root-token",
            Claims::for_subject("root").with_system_role(Roles::ADMIN),
        )
        .with_token(
            "wendy-token",
            Claims::for_subject("wendy").with_namespace_role("orders", Roles::WORKER),
        )
}

/// The demo's stack: readers query, describe, list and watch; writers start, signal and cancel;
/// updates over 1000 need an admin; only admins terminate; everything else is denied.
pub fn demo_layer() -> warden_tower::WardenLayer {
    demo_layer_with(identities())
}

/// The demo's stack, with callers authenticated by `mapper`.
pub fn demo_layer_with(mapper: impl warden_core::ClaimMapper) -> warden_tower::WardenLayer {
    demo_layer_authenticated(warden_tower::AuthenticateLayer::new(mapper))
}

/// The demo's stack, with callers authenticated by a configured layer.
pub fn demo_layer_authenticated(
    authenticate: warden_tower::AuthenticateLayer,
) -> warden_tower::WardenLayer {
    use warden_core::{KindSet, OperationKind};
    let result = warden_tower::WardenLayer::builder(crate::operation_map())
        .authenticate_with(authenticate)
        .query(readers())
        .read(readers())
        .execute(writers())
        .signal(writers())
        .kinds(KindSet::one(OperationKind::Cancel), writers())
        .kinds(KindSet::one(OperationKind::Terminate), admins())
        .update(updates_up_to_1000())
        .build();
    match result {
        Ok(layer) => layer,
        Err(error) => unreachable!("the demo stack has a claim mapper: {error}"),
    }
}
