use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    ops::{BitOr, BitOrAssign},
};

/// Temporal's role bit set: worker 1, reader 2, writer 4, admin 8.
///
/// Roles are OR'd, and Temporal's default authorizer compares them *as numbers*: a caller whose
/// role value is at least the access a method needs is allowed. So a worker alone (1) reads
/// nothing, while a writer (4) reads.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Roles(u8);

impl Roles {
    /// No role.
    pub const NONE: Self = Self(0);
    /// Polls and completes tasks.
    pub const WORKER: Self = Self(1);
    /// Reads.
    pub const READER: Self = Self(2);
    /// Reads and writes.
    pub const WRITER: Self = Self(4);
    /// Everything.
    pub const ADMIN: Self = Self(8);

    const NAMES: [(Roles, &'static str); 4] = [
        (Self::WORKER, "worker"),
        (Self::READER, "reader"),
        (Self::WRITER, "writer"),
        (Self::ADMIN, "admin"),
    ];

    /// The raw bits, Temporal's number for the role set.
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The roles of `bits`, ignoring unknown bits.
    pub const fn from_bits_truncate(bits: u8) -> Self {
        Self(bits & 0b1111)
    }

    /// Whether every role of `other` is in `self`, bit by bit: `WRITER` does not contain
    /// `READER`. To ask "may this caller read?", use [`at_least`](Self::at_least).
    #[inline]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the role set grants at least `access`, compared as numbers the way Temporal's
    /// default authorizer compares them: a writer or an admin reads, a worker alone does not.
    ///
    /// ```
    /// use warden_core::Roles;
    ///
    /// assert!(Roles::WRITER.at_least(Roles::READER));
    /// assert!(!Roles::WRITER.contains(Roles::READER));
    /// assert!(!Roles::WORKER.at_least(Roles::READER));
    /// assert!((Roles::WORKER | Roles::READER).at_least(Roles::READER));
    /// ```
    #[inline]
    pub const fn at_least(self, access: Self) -> bool {
        self.0 >= access.0
    }

    /// Whether no role is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The union of two role sets.
    #[must_use]
    #[inline]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Parses one role name as Temporal's JWT claim mapper does: `read`/`reader`,
    /// `write`/`writer`, `worker`, `admin`, case-insensitive.
    pub fn parse_one(name: &str) -> Option<Self> {
        let name = name.trim();
        [
            ("read", Self::READER),
            ("reader", Self::READER),
            ("write", Self::WRITER),
            ("writer", Self::WRITER),
            ("worker", Self::WORKER),
            ("admin", Self::ADMIN),
        ]
        .into_iter()
        .find_map(|(n, role)| n.eq_ignore_ascii_case(name).then_some(role))
    }

    /// Parses a role set written in config: names as [`parse_one`](Self::parse_one) reads
    /// them, joined by `|` (`"reader|worker"`). An unknown name is an error, never skipped.
    pub fn parse(spec: &str) -> Result<Self, UnknownRole> {
        spec.split('|').try_fold(Self::NONE, |all, name| {
            Self::parse_one(name)
                .map(|role| all | role)
                .ok_or_else(|| UnknownRole(name.trim().to_owned()))
        })
    }
}

/// A role name [`Roles::parse`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}` (expected worker, reader, writer or admin, joined by `|`)")]
pub struct UnknownRole(pub String);

impl BitOr for Roles {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl BitOrAssign for Roles {
    fn bitor_assign(&mut self, rhs: Self) {
        *self = self.union(rhs);
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let mut first = true;
        for (role, name) in Self::NAMES {
            if self.contains(role) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Roles({self})")
    }
}

/// Who is calling: the identity a `ClaimMapper` derived from the caller's credentials.
///
/// Holds no secret: credentials stay in `AuthInfo`, and only what was proven about them lands
/// here. Handlers read it from request extensions.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Claims {
    /// The subject (user, service or worker id); `None` for an anonymous caller.
    pub subject: Option<String>,
    /// The system-wide role (Temporal's `temporal-system` namespace).
    pub system: Roles,
    /// Roles per namespace; namespaces are compared exactly (case-sensitive).
    pub namespaces: BTreeMap<String, Roles>,
    /// Privileges or OAuth scopes, compared exactly.
    pub privileges: BTreeSet<String>,
    /// Groups the subject belongs to.
    pub groups: BTreeSet<String>,
    /// Any other attributes, as JSON.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl Claims {
    /// Claims of an anonymous caller: no subject, no role.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// Claims of `subject`, with no role yet.
    pub fn for_subject(subject: impl Into<String>) -> Self {
        Self {
            subject: Some(subject.into()),
            ..Self::default()
        }
    }

    /// Adds a system-wide role.
    #[must_use]
    pub fn with_system_role(mut self, roles: Roles) -> Self {
        self.system |= roles;
        self
    }

    /// Adds a role in `namespace`.
    #[must_use]
    pub fn with_namespace_role(mut self, namespace: impl Into<String>, roles: Roles) -> Self {
        *self.namespaces.entry(namespace.into()).or_default() |= roles;
        self
    }

    /// Adds a privilege (scope).
    #[must_use]
    pub fn with_privilege(mut self, privilege: impl Into<String>) -> Self {
        self.privileges.insert(privilege.into());
        self
    }

    /// Adds a group.
    #[must_use]
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.groups.insert(group.into());
        self
    }

    /// Sets an attribute.
    #[must_use]
    pub fn with_attribute(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.attributes.insert(key.into(), value);
        self
    }

    /// Whether the caller is anonymous.
    #[inline]
    pub fn is_anonymous(&self) -> bool {
        self.subject.is_none()
    }

    /// The caller's effective role for `namespace`: the system role OR'd with the namespace's
    /// role, as Temporal's default authorizer computes it. With no namespace, the system role.
    #[inline]
    pub fn role_in(&self, namespace: Option<&str>) -> Roles {
        let namespaced = namespace
            .and_then(|ns| self.namespaces.get(ns))
            .copied()
            .unwrap_or_default();
        self.system | namespaced
    }

    /// Whether the caller holds `privilege`.
    pub fn has_privilege(&self, privilege: &str) -> bool {
        self.privileges.contains(privilege)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_alone_is_numerically_below_reader() {
        assert!(Roles::WORKER.bits() < Roles::READER.bits());
        assert!((Roles::WORKER | Roles::READER).bits() >= Roles::READER.bits());
    }

    #[test]
    fn namespace_role_is_ored_with_system_role_and_case_sensitive() {
        let claims = Claims::for_subject("a")
            .with_system_role(Roles::READER)
            .with_namespace_role("Orders", Roles::WRITER);
        assert_eq!(
            claims.role_in(Some("Orders")),
            Roles::READER | Roles::WRITER
        );
        assert_eq!(claims.role_in(Some("orders")), Roles::READER);
        assert_eq!(claims.role_in(None), Roles::READER);
    }

    #[test]
    fn role_names_parse_like_temporal() {
        assert_eq!(Roles::parse_one("READ"), Some(Roles::READER));
        assert_eq!(Roles::parse_one("writer"), Some(Roles::WRITER));
        assert_eq!(Roles::parse_one("owner"), None);
        assert_eq!((Roles::READER | Roles::ADMIN).to_string(), "reader|admin");
    }
}
