//! From a verified token's JSON claims to Warden [`Claims`].

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};
use warden_core::{AuthError, Claims, Roles};

/// The namespace whose role in Temporal's `permissions` claim is the system-wide role.
pub const SYSTEM_NAMESPACE: &str = "temporal-system";

/// How a token's claims become [`Claims`]; the defaults read tokens as Temporal's default JWT
/// claim mapper does.
///
/// Paths are dotted (`realm_access.roles`) or JSON pointers (`/realm_access/roles`).
///
/// ```toml
/// subject = "sub"
/// permissions = "permissions"          # "<namespace>:<role>" entries
/// permissions_regex = '^(?P<namespace>[\w-]+):(?P<role>\w+)$'
/// scopes = true                        # `scope` (space-separated) and `scp` (array)
/// privileges = ["entitlements"]
/// groups = "groups"
/// attributes = { department = "org.department" }
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimRulesConfig {
    /// The claim naming the subject (default `sub`).
    pub subject: String,
    /// The claim holding Temporal permissions (default `permissions`); empty to ignore.
    pub permissions: String,
    /// A regex with named groups `namespace` and `role` that each permission must match;
    /// without one, an entry is `<namespace>:<role>` split at its only `:`.
    pub permissions_regex: Option<String>,
    /// Whether OAuth scopes (`scope`, `scp`) become privileges (default true).
    pub scopes: bool,
    /// Further claims whose strings (an array, or one space-separated string) are privileges.
    pub privileges: Vec<String>,
    /// The claim holding groups (default `groups`); empty to ignore.
    pub groups: String,
    /// Free attributes: attribute name → claim path. Missing claims are left out.
    pub attributes: BTreeMap<String, String>,
}

impl Default for ClaimRulesConfig {
    fn default() -> Self {
        Self {
            subject: "sub".into(),
            permissions: "permissions".into(),
            permissions_regex: None,
            scopes: true,
            privileges: Vec::new(),
            groups: "groups".into(),
            attributes: BTreeMap::new(),
        }
    }
}

/// An error in a [`ClaimRulesConfig`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimRulesError {
    /// `permissions_regex` is not a regular expression.
    #[error("claim rules: permissions_regex does not compile: {reason}")]
    Regex {
        /// What the regex compiler said.
        reason: String,
    },
    /// `permissions_regex` lacks a named group it must have.
    #[error("claim rules: permissions_regex needs a named group `{group}`")]
    MissingGroup {
        /// `namespace` or `role`.
        group: &'static str,
    },
    /// `subject` is empty.
    #[error("claim rules: subject needs a claim path")]
    NoSubject,
}

/// Compiled [`ClaimRulesConfig`].
#[derive(Clone, Debug)]
pub struct ClaimRules {
    subject: ClaimPath,
    permissions: Option<ClaimPath>,
    permissions_regex: Option<Regex>,
    scopes: bool,
    privileges: Vec<ClaimPath>,
    groups: Option<ClaimPath>,
    attributes: Vec<(String, ClaimPath)>,
}

impl Default for ClaimRules {
    fn default() -> Self {
        // The default config has no regex, so compiling it cannot fail.
        Self::compile_paths(&ClaimRulesConfig::default(), None)
    }
}

impl ClaimRules {
    /// Compiles `config`, checking its paths and regex.
    pub fn new(config: &ClaimRulesConfig) -> Result<Self, ClaimRulesError> {
        let regex = match &config.permissions_regex {
            None => None,
            Some(source) => {
                let regex = Regex::new(source).map_err(|e| ClaimRulesError::Regex {
                    reason: e.to_string(),
                })?;
                for group in ["namespace", "role"] {
                    if !regex.capture_names().flatten().any(|name| name == group) {
                        return Err(ClaimRulesError::MissingGroup { group });
                    }
                }
                Some(regex)
            }
        };
        if config.subject.is_empty() {
            return Err(ClaimRulesError::NoSubject);
        }
        Ok(Self::compile_paths(config, regex))
    }

    fn compile_paths(config: &ClaimRulesConfig, regex: Option<Regex>) -> Self {
        let optional = |path: &str| (!path.is_empty()).then(|| ClaimPath::parse(path));
        Self {
            subject: ClaimPath::parse(&config.subject),
            permissions: optional(&config.permissions),
            permissions_regex: regex,
            scopes: config.scopes,
            privileges: config
                .privileges
                .iter()
                .map(|p| ClaimPath::parse(p))
                .collect(),
            groups: optional(&config.groups),
            attributes: config
                .attributes
                .iter()
                .map(|(name, path)| (name.clone(), ClaimPath::parse(path)))
                .collect(),
        }
    }

    /// Maps verified `claims` to [`Claims`]. A claim of the wrong JSON type is an error, never
    /// silently skipped: a token that cannot be read as configured does not authenticate.
    pub fn apply(&self, claims: &Map<String, Value>) -> Result<Claims, AuthError> {
        let subject = match self.subject.get(claims) {
            Some(Value::String(subject)) if !subject.is_empty() => subject.clone(),
            Some(Value::String(_)) | None => {
                return Err(AuthError::invalid(format!(
                    "the token has no `{}` claim naming the subject",
                    self.subject
                )));
            }
            Some(_) => return Err(wrong_type(&self.subject, "a string")),
        };
        let mut out = Claims::for_subject(subject);
        if let Some(path) = &self.permissions {
            self.permissions(path, claims, &mut out)?;
        }
        if self.scopes {
            for (name, split) in [("scope", true), ("scp", false)] {
                let path = ClaimPath::parse(name);
                for scope in strings(&path, claims, split)? {
                    out.privileges.insert(scope);
                }
            }
        }
        for path in &self.privileges {
            for privilege in strings(path, claims, true)? {
                out.privileges.insert(privilege);
            }
        }
        if let Some(path) = &self.groups {
            for group in strings(path, claims, false)? {
                out.groups.insert(group);
            }
        }
        for (name, path) in &self.attributes {
            if let Some(value) = path.get(claims) {
                out.attributes.insert(name.clone(), value.clone());
            }
        }
        Ok(out)
    }

    /// Temporal's `permissions` claim: `"<namespace>:<role>"` entries, roles OR'd, entries that
    /// do not parse skipped, `temporal-system` the system-wide role. Entries that are not
    /// strings are skipped with a warning, as Temporal's default claim mapper does: skipping
    /// can only grant less. A claim that is not an array at all is refused.
    fn permissions(
        &self,
        path: &ClaimPath,
        claims: &Map<String, Value>,
        out: &mut Claims,
    ) -> Result<(), AuthError> {
        let entries = match path.get(claims) {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::Array(entries)) => entries,
            Some(_) => return Err(wrong_type(path, "an array of strings")),
        };
        for entry in entries {
            let Value::String(entry) = entry else {
                tracing::warn!(
                    claim = %path,
                    entry_type = json_type(entry),
                    "skipping a permissions entry that is not a string"
                );
                continue;
            };
            let Some((namespace, role)) = self.split_permission(entry) else {
                continue;
            };
            let Some(role) = Roles::parse_one(role) else {
                continue;
            };
            if namespace == SYSTEM_NAMESPACE {
                out.system |= role;
            } else {
                *out.namespaces.entry(namespace.to_owned()).or_default() |= role;
            }
        }
        Ok(())
    }

    fn split_permission<'a>(&self, entry: &'a str) -> Option<(&'a str, &'a str)> {
        match &self.permissions_regex {
            Some(regex) => {
                let captures = regex.captures(entry)?;
                Some((
                    captures.name("namespace")?.as_str(),
                    captures.name("role")?.as_str(),
                ))
            }
            None => {
                let (namespace, role) = entry.split_once(':')?;
                (!namespace.is_empty() && !role.contains(':')).then_some((namespace, role))
            }
        }
    }
}

/// The JSON type of `value`, for a log line that must not print the value itself.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong_type(path: &ClaimPath, expected: &str) -> AuthError {
    AuthError::invalid(format!("the `{path}` claim must be {expected}"))
}

/// The strings of a claim: an array of strings, or one string (split at spaces when `split`).
fn strings(
    path: &ClaimPath,
    claims: &Map<String, Value>,
    split: bool,
) -> Result<Vec<String>, AuthError> {
    match path.get(claims) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if split => Ok(s.split_whitespace().map(str::to_owned).collect()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(wrong_type(path, "a string or an array of strings")),
            })
            .collect(),
        Some(_) => Err(wrong_type(path, "a string or an array of strings")),
    }
}

/// A path into a JSON object: dotted (`a.b`) or a JSON pointer (`/a/b`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimPath {
    source: String,
    segments: Vec<String>,
}

impl ClaimPath {
    /// Parses a dotted path or a JSON pointer.
    pub fn parse(source: &str) -> Self {
        let segments = match source.strip_prefix('/') {
            Some(pointer) => pointer
                .split('/')
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
                .collect(),
            None => source.split('.').map(str::to_owned).collect(),
        };
        Self {
            source: source.to_owned(),
            segments,
        }
    }

    /// The value at this path.
    pub fn get<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.segments.split_first()?;
        let mut value = claims.get(first)?;
        for segment in rest {
            value = match value {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(value)
    }
}

impl std::fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn apply(rules: &ClaimRules, claims: Value) -> Result<Claims, AuthError> {
        let Value::Object(map) = claims else {
            panic!("claims must be an object")
        };
        rules.apply(&map)
    }

    #[test]
    fn temporal_permissions_or_roles_per_namespace_and_system() {
        let claims = apply(
            &ClaimRules::default(),
            json!({
                "sub": "ann",
                "permissions": [
                    "orders:read", "orders:WRITE", "billing:worker",
                    "temporal-system:admin", "no-colon", "a:b:c", "Orders:admin", "x:unknown"
                ]
            }),
        )
        .unwrap();
        assert_eq!(claims.subject.as_deref(), Some("ann"));
        assert_eq!(claims.system, Roles::ADMIN);
        assert_eq!(claims.namespaces["orders"], Roles::READER | Roles::WRITER);
        assert_eq!(claims.namespaces["billing"], Roles::WORKER);
        // Namespaces are case-sensitive; unknown roles and malformed entries are skipped.
        assert_eq!(claims.namespaces["Orders"], Roles::ADMIN);
        assert!(!claims.namespaces.contains_key("x"));
        assert!(!claims.namespaces.contains_key("a"));
        assert_eq!(claims.namespaces.len(), 3);
    }

    #[test]
    fn a_permissions_claim_that_is_not_an_array_is_an_error() {
        for bad in [json!("orders:read"), json!(7), json!({"orders": "read"})] {
            let error = apply(
                &ClaimRules::default(),
                json!({"sub": "ann", "permissions": bad}),
            )
            .unwrap_err();
            assert!(
                error.to_string().contains("`permissions` claim must be"),
                "{error}"
            );
        }
    }

    #[test]
    fn permissions_entries_that_are_not_strings_are_skipped_as_temporal_skips_them() {
        let claims = apply(
            &ClaimRules::default(),
            json!({
                "sub": "ann",
                "permissions": [1, "orders:read", null, {"billing": "admin"}, ["x:admin"], true]
            }),
        )
        .unwrap();
        // Only the string entry counts: skipping can only grant less.
        assert_eq!(claims.namespaces.len(), 1);
        assert_eq!(claims.namespaces["orders"], Roles::READER);
        assert_eq!(claims.system, Roles::NONE);
    }

    #[test]
    fn a_permissions_regex_picks_namespace_and_role() {
        let rules = ClaimRules::new(&ClaimRulesConfig {
            permissions_regex: Some(r"^temporal\.(?P<namespace>[\w-]+)\.(?P<role>\w+)$".into()),
            ..Default::default()
        })
        .unwrap();
        let claims = apply(
            &rules,
            json!({"sub": "s", "permissions": ["temporal.orders.write", "orders:read"]}),
        )
        .unwrap();
        assert_eq!(claims.namespaces["orders"], Roles::WRITER);
        assert_eq!(claims.namespaces.len(), 1);
        let missing_group = ClaimRules::new(&ClaimRulesConfig {
            permissions_regex: Some(r"(?P<namespace>\w+)".into()),
            ..Default::default()
        });
        assert!(missing_group.unwrap_err().to_string().contains("`role`"));
    }

    #[test]
    fn scopes_groups_privileges_and_attributes_follow_their_paths() {
        let rules = ClaimRules::new(&ClaimRulesConfig {
            privileges: vec!["/realm_access/roles".into()],
            attributes: [("dept".to_owned(), "org.department".to_owned())].into(),
            ..Default::default()
        })
        .unwrap();
        let claims = apply(
            &rules,
            json!({
                "sub": "s",
                "scope": "orders.read  orders.write",
                "scp": ["billing.read"],
                "groups": ["ops", "dev"],
                "realm_access": {"roles": ["auditor"]},
                "org": {"department": "finance"}
            }),
        )
        .unwrap();
        let privileges: Vec<_> = claims.privileges.iter().map(String::as_str).collect();
        assert_eq!(
            privileges,
            ["auditor", "billing.read", "orders.read", "orders.write"]
        );
        assert!(claims.groups.contains("ops") && claims.groups.contains("dev"));
        assert_eq!(claims.attributes["dept"], json!("finance"));
    }

    #[test]
    fn a_token_without_a_subject_does_not_authenticate() {
        let error = apply(&ClaimRules::default(), json!({"permissions": []})).unwrap_err();
        assert!(error.to_string().contains("`sub`"), "{error}");
        let error = apply(&ClaimRules::default(), json!({"sub": 5})).unwrap_err();
        assert!(error.to_string().contains("must be a string"), "{error}");
    }
}
