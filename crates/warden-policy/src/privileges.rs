//! The privilege policy, like Tilores' `@hasPrivilege`: operations that need named privileges
//! (OAuth scopes).
//!
//! Each requirement matches operations by service, method, kind and operation name (a signal
//! name, a query type), exactly and case-sensitively; the caller needs every privilege of
//! every requirement that matches. An operation no requirement matches is not this policy's
//! to decide (`not applicable`), so it composes with the role or rules policy.
//!
//! ```
//! use warden_core::{AuthzRequest, Claims, Effect, Operation, OperationKind};
//! use warden_policy::privileges::{PrivilegePolicy, Requirement};
//!
//! let policy = PrivilegePolicy::new()
//!     .require(Requirement::kind(OperationKind::Signal).named("approve"), ["orders.approve"]);
//! let signal = Operation::new(OperationKind::Signal, "orders.v1.Orders", "Signal").with_name("approve");
//! let clerk = Claims::for_subject("clerk").with_privilege("orders.read");
//! let decision = policy.decide(&AuthzRequest::new(clerk, signal));
//! assert_eq!(decision.effect(), Effect::Deny);
//! assert!(decision.reason().unwrap().contains("orders.approve"));
//! ```

use serde::Deserialize;
use warden_core::{
    Answer, AuthzRequest, Decision, Evaluation, KindSet, Operation, OperationKind, Policy,
};

/// Which operations a requirement applies to; unset fields match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requirement {
    /// The service (`package.Service`).
    pub service: Option<String>,
    /// The method.
    pub method: Option<String>,
    /// The operation kinds.
    pub kinds: Option<KindSet>,
    /// The operation name (signal name, query type, update name).
    pub name: Option<String>,
}

impl Requirement {
    /// Operations of `kind`.
    pub fn kind(kind: OperationKind) -> Self {
        Self {
            kinds: Some(KindSet::one(kind)),
            ..Self::default()
        }
    }

    /// Calls to `service`/`method`.
    pub fn method(service: &str, method: &str) -> Self {
        Self {
            service: Some(service.to_owned()),
            method: Some(method.to_owned()),
            ..Self::default()
        }
    }

    /// Narrows to operations named `name`.
    #[must_use]
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Whether this requirement applies to `operation`.
    pub fn matches(&self, operation: &Operation) -> bool {
        self.service
            .as_deref()
            .is_none_or(|s| s == &*operation.service)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m == &*operation.method)
            && self.kinds.is_none_or(|k| operation.is_any(k))
            && self
                .name
                .as_deref()
                .is_none_or(|n| operation.name.as_deref() == Some(n))
    }
}

/// One requirement and the privileges it needs, as a config entry:
/// `{ kinds = ["signal"], name = "approve", privileges = ["orders.approve"] }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequirementConfig {
    /// The service (`package.Service`).
    #[serde(default)]
    pub service: Option<String>,
    /// The method.
    #[serde(default)]
    pub method: Option<String>,
    /// The operation kinds (`execute`, `signal`, …).
    #[serde(default)]
    pub kinds: Option<Vec<crate::KindName>>,
    /// The operation name (signal name, query type, update name).
    #[serde(default)]
    pub name: Option<String>,
    /// Every privilege they need.
    pub privileges: Vec<String>,
}

/// Requires privileges per operation; see the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct PrivilegePolicy {
    requirements: Vec<(Requirement, Vec<String>)>,
}

/// The decider id of [`PrivilegePolicy`] decisions.
pub const PRIVILEGE_POLICY: &str = "privileges";

/// The decider id, allocated once: every decision shares it instead of allocating its own.
fn decider() -> std::sync::Arc<str> {
    static PRIVILEGES: std::sync::LazyLock<std::sync::Arc<str>> =
        std::sync::LazyLock::new(|| std::sync::Arc::from(PRIVILEGE_POLICY));
    std::sync::Arc::clone(&PRIVILEGES)
}

impl PrivilegePolicy {
    /// No requirements yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Operations matching `when` need every one of `privileges`.
    #[must_use]
    pub fn require<I, P>(mut self, when: Requirement, privileges: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.requirements
            .push((when, privileges.into_iter().map(Into::into).collect()));
        self
    }

    /// A policy from config entries.
    pub fn from_config(entries: Vec<RequirementConfig>) -> Self {
        let requirements = entries
            .into_iter()
            .map(|e| {
                let when = Requirement {
                    service: e.service,
                    method: e.method,
                    kinds: e.kinds.map(|k| crate::kind_set(&k)),
                    name: e.name,
                };
                (when, e.privileges)
            })
            .collect();
        Self { requirements }
    }

    /// The decision for `request`.
    pub fn decide(&self, request: &AuthzRequest) -> Decision {
        let mut applies = false;
        for (when, privileges) in &self.requirements {
            if !when.matches(&request.operation) {
                continue;
            }
            applies = true;
            if let Some(missing) = privileges
                .iter()
                .find(|p| !request.subject.has_privilege(p))
            {
                return Decision::deny(decider(), format!("missing privilege `{missing}`"));
            }
        }
        if applies {
            Decision::allow(decider())
        } else {
            Decision::not_applicable(decider())
        }
    }
}

impl Policy for PrivilegePolicy {
    fn reads_metadata(&self) -> bool {
        false
    }

    fn deterministic(&self) -> bool {
        true
    }

    fn evaluate(&self, request: &AuthzRequest) -> Evaluation {
        Answer::Ready(Ok(self.decide(request)))
    }
}
