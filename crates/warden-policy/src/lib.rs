//! Warden's built-in policies.
//!
//! - [`roles::RolePolicy`]: Temporal's default authorizer over a [`roles::MethodTable`] you
//!   can extend for your own services.
//! - [`privileges::PrivilegePolicy`]: required privileges (scopes) per service, method,
//!   operation kind and operation name, like Tilores' `@hasPrivilege`.
//! - [`rules::RulesPolicy`]: a declarative rules file (TOML): ordered allow and deny rules on
//!   the operation, its arguments and the subject; deny overrides allow; nothing matched →
//!   deny; hot-reloaded between calls, keeping the last good rules when a new file is invalid.
//!
//! Every decision names what decided: the policy, or the rule's id.

pub mod cache;
pub mod config;
pub mod instances;
pub mod privileges;
pub mod roles;
pub mod rules;

use serde::Deserialize;
use warden_core::{KindSet, OperationKind};

/// An operation kind's name in config (`execute`, `signal`, `query`, …), checked on load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindName(pub OperationKind);

impl<'de> Deserialize<'de> for KindName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map(KindName).map_err(|_| {
            let expected: Vec<&str> = OperationKind::ALL.iter().map(|k| k.as_str()).collect();
            serde::de::Error::custom(format!(
                "unknown operation kind `{name}`, expected one of {}",
                expected.join(", ")
            ))
        })
    }
}

pub(crate) fn kind_set(kinds: &[KindName]) -> KindSet {
    kinds.iter().fold(KindSet::EMPTY, |set, k| set.with(k.0))
}
