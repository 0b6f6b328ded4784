//! Claims granted by configuration: to an API key, or to a certificate identity.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use warden_core::{Claims, Roles, UnknownRole};

/// A role name a grant does not know.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct GrantError(#[from] UnknownRole);

/// Roles, privileges, groups and attributes given to one configured identity.
///
/// Roles are Temporal's, several joined by `|` (`"reader|worker"`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grant {
    /// The system-wide role.
    pub system: Option<String>,
    /// Roles per namespace.
    pub namespaces: BTreeMap<String, String>,
    /// Privileges (scopes).
    pub privileges: Vec<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// Free attributes.
    pub attributes: Map<String, Value>,
}

impl Grant {
    /// `base` with this grant added.
    pub fn claims(&self, mut base: Claims) -> Result<Claims, GrantError> {
        if let Some(system) = &self.system {
            base.system |= Roles::parse(system)?;
        }
        for (namespace, spec) in &self.namespaces {
            *base.namespaces.entry(namespace.clone()).or_default() |= Roles::parse(spec)?;
        }
        base.privileges.extend(self.privileges.iter().cloned());
        base.groups.extend(self.groups.iter().cloned());
        for (key, value) in &self.attributes {
            base.attributes.insert(key.clone(), value.clone());
        }
        Ok(base)
    }
}

/// The grant fields of a config entry, spelled out (serde cannot deny unknown fields through
/// `flatten`, and a typo in an identity's roles must be an error).
macro_rules! grant_fields {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// The system-wide role (`"reader"`, `"reader|worker"`).
            #[serde(default)]
            pub system: Option<String>,
            /// Roles per namespace.
            #[serde(default)]
            pub namespaces: std::collections::BTreeMap<String, String>,
            /// Privileges (scopes).
            #[serde(default)]
            pub privileges: Vec<String>,
            /// Groups.
            #[serde(default)]
            pub groups: Vec<String>,
            /// Free attributes.
            #[serde(default)]
            pub attributes: serde_json::Map<String, serde_json::Value>,
        }

        impl $name {
            /// The claims this entry grants.
            pub fn grant(&self) -> $crate::grant::Grant {
                $crate::grant::Grant {
                    system: self.system.clone(),
                    namespaces: self.namespaces.clone(),
                    privileges: self.privileges.clone(),
                    groups: self.groups.clone(),
                    attributes: self.attributes.clone(),
                }
            }
        }
    };
}
pub(crate) use grant_fields;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_join_with_a_bar_and_unknown_names_are_errors() {
        let grant = Grant {
            system: Some("reader|Worker".into()),
            namespaces: [("orders".to_owned(), "admin".to_owned())].into(),
            ..Grant::default()
        };
        let claims = grant.claims(Claims::for_subject("s")).unwrap();
        assert_eq!(claims.system, Roles::READER | Roles::WORKER);
        assert_eq!(claims.namespaces["orders"], Roles::ADMIN);
        let bad = Grant {
            system: Some("reader|boss".into()),
            ..Grant::default()
        };
        assert_eq!(
            bad.claims(Claims::anonymous()).unwrap_err().to_string(),
            "unknown role `boss` (expected worker, reader, writer or admin, joined by `|`)"
        );
    }
}
