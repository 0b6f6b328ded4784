//! The rules file's shape, and loading it with every error located.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use serde_json::Value;

use crate::KindName;

/// A rules file: `[[rule]]` tables, in order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<toml::Spanned<toml::Table>>,
}

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleEffect {
    /// Allows, unless a deny rule matches too.
    Allow,
    /// Denies, whatever else matches.
    Deny,
}

/// One rule. Every condition given must hold; each list matches when any of its entries
/// does. Service, method, namespace, workflow type and name patterns are exact, a prefix
/// (`temporal.api.*`) or a suffix (`*Workflow`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Names the rule in decisions and audit events.
    pub id: String,
    /// Allow or deny.
    pub effect: RuleEffect,
    /// The denial message (deny rules).
    #[serde(default)]
    pub reason: Option<String>,
    /// Services (`package.Service`).
    #[serde(default)]
    pub services: Vec<String>,
    /// Methods.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Operation kinds.
    #[serde(default)]
    pub kinds: Vec<KindName>,
    /// Namespaces.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Workflow types.
    #[serde(default)]
    pub workflow_types: Vec<String>,
    /// Operation names: signal names, query types, update names.
    #[serde(default)]
    pub names: Vec<String>,
    /// Predicates on the decoded arguments; all must hold.
    #[serde(default)]
    pub args: Vec<ArgConfig>,
    /// Conditions on the caller.
    #[serde(default)]
    pub subject: SubjectConfig,
    /// Conditions on the request metadata (gRPC metadata, HTTP headers); all must hold.
    #[serde(default)]
    pub metadata: Vec<MetadataConfig>,
    /// Conditions on the connection.
    #[serde(default)]
    pub transport: TransportConfig,
}

/// A condition on one metadata entry (header), by name: exactly one comparison.
///
/// `{ name = "x-tenant", in = ["acme", "globex"] }`, `{ name = "x-debug", present = false }`.
///
/// A header can arrive several times. An allow rule's comparison holds only when every value
/// passes it (and, but for `not_in`, there is one); a deny rule's holds when any value does.
/// So a caller cannot add a second value to pass an allow rule or to slip past a deny rule.
/// Values that are not visible ASCII never pass an allow rule's comparison and always pass a
/// deny rule's.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataConfig {
    /// The header name (case-insensitive; `-bin` headers compare their base64 text).
    pub name: String,
    /// Present (true) or absent (false).
    #[serde(default)]
    pub present: Option<bool>,
    /// Equals.
    #[serde(default)]
    pub eq: Option<String>,
    /// Is one of.
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<String>>,
    /// Is none of (holds when the header is absent).
    #[serde(default)]
    pub not_in: Option<Vec<String>>,
    /// Starts with one of.
    #[serde(default)]
    pub prefix: Option<Vec<String>>,
}

/// Conditions on the connection the call came over; each given must hold.
///
/// When the server cannot tell (an in-process call; a server that does not report its
/// transport or peer), an allow rule's transport condition does not hold and a deny rule's
/// does: rules fail closed on what they cannot see.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportConfig {
    /// Over TLS (true) or plaintext (false).
    #[serde(default)]
    pub tls: Option<bool>,
    /// The peer presented a TLS client certificate (true) or did not (false).
    #[serde(default)]
    pub peer_certificate: Option<bool>,
    /// The peer's address is in one of these networks (`10.0.0.0/8`, `::1/128`, or one
    /// address).
    #[serde(default)]
    pub peer_in: Vec<String>,
    /// The peer's address is in none of these networks.
    #[serde(default)]
    pub peer_not_in: Vec<String>,
}

/// A predicate on one argument, found by JSON pointer: exactly one comparison.
///
/// `{ pointer = "/amount", le = 1000 }`, `{ pointer = "/currency", in = ["EUR", "USD"] }`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgConfig {
    /// Where the value is (`/amount`, `/items/0/sku`).
    pub pointer: String,
    /// Equals.
    #[serde(default)]
    pub eq: Option<Value>,
    /// Differs from (a missing value differs).
    #[serde(default)]
    pub ne: Option<Value>,
    /// Is one of.
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<Value>>,
    /// Is none of (a missing value is none of them).
    #[serde(default)]
    pub not_in: Option<Vec<Value>>,
    /// A number below.
    #[serde(default)]
    pub lt: Option<f64>,
    /// A number at most.
    #[serde(default)]
    pub le: Option<f64>,
    /// A number above.
    #[serde(default)]
    pub gt: Option<f64>,
    /// A number at least.
    #[serde(default)]
    pub ge: Option<f64>,
    /// Is present (true) or absent (false).
    #[serde(default)]
    pub exists: Option<bool>,
}

/// Conditions on the caller; each list matches when any entry does.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectConfig {
    /// Subject ids.
    #[serde(default)]
    pub ids: Vec<String>,
    /// Roles the caller holds in the call's namespace (system roles count too): `reader`,
    /// `writer`, `worker`, `admin`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Roles the caller holds system-wide.
    #[serde(default)]
    pub system_roles: Vec<String>,
    /// Privileges.
    #[serde(default)]
    pub privileges: Vec<String>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Claim attributes that must equal these values (all of them).
    #[serde(default)]
    pub claims: BTreeMap<String, Value>,
    /// Whether anonymous callers match an allow rule (default false: every allow rule needs a
    /// caller). Deny rules match anonymous callers whatever this says, as far as their other
    /// conditions do: a denial cannot be escaped by not saying who you are.
    #[serde(default)]
    pub anonymous: bool,
}

/// Every problem found in a rules file, each with file, line and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{}", display_lines(.errors))]
pub struct RulesError {
    /// The problems, in file order.
    pub errors: Vec<RuleProblem>,
}

fn display_lines(errors: &[RuleProblem]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl RulesError {
    fn one(problem: RuleProblem) -> Self {
        Self {
            errors: vec![problem],
        }
    }

    /// The file cannot be read.
    pub(crate) fn unreadable(path: &Path, error: &std::io::Error) -> Self {
        Self::one(RuleProblem {
            path: path.to_owned(),
            line: None,
            rule: None,
            kind: ProblemKind::Unreadable(error.to_string()),
        })
    }
}

/// One problem in a rules file: where, in which rule, and what.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}{}: {}{kind}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), rule.as_ref().map(|r| format!("{r}: ")).unwrap_or_default())]
#[non_exhaustive]
pub struct RuleProblem {
    /// The file.
    pub path: PathBuf,
    /// The line (of the rule, or of a syntax error); none when the file cannot be read.
    pub line: Option<usize>,
    /// The rule, when the problem is inside one.
    pub rule: Option<RuleLabel>,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// How a problem names its rule: by id, or by position when it has none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleLabel {
    /// The rule's `id`.
    Id(String),
    /// The rule's position in the file (1-based), for a rule without a usable id.
    Index(usize),
}

impl std::fmt::Display for RuleLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(id) => write!(f, "rule `{id}`"),
            Self::Index(index) => write!(f, "rule #{index}"),
        }
    }
}

/// What is wrong in a rules file.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The file cannot be read.
    #[error("{0}")]
    Unreadable(String),
    /// Not TOML, or not the rules file's shape (an unknown key, a wrong type, an unknown
    /// kind or effect), as the parser says it.
    #[error("{0}")]
    Invalid(String),
    /// `id` is empty.
    #[error("`id` must not be empty")]
    EmptyId,
    /// Another rule has this id.
    #[error("the id is already used by the rule at line {first_line}")]
    DuplicateId {
        /// The line of the rule that has it first.
        first_line: usize,
    },
    /// An argument pointer is not a JSON pointer.
    #[error("argument pointer `{pointer}` must be a JSON pointer starting with `/`")]
    Pointer {
        /// The pointer as written.
        pointer: String,
    },
    /// An argument predicate has no comparison or several.
    #[error(
        "argument `{pointer}` needs exactly one of eq, ne, in, not_in, lt, le, gt, ge, exists (found {found})"
    )]
    ArgComparisons {
        /// The predicate's pointer.
        pointer: String,
        /// How many comparisons it has.
        found: usize,
    },
    /// A role name that does not exist.
    #[error("unknown role `{role}`, expected worker, reader, writer or admin")]
    UnknownRole {
        /// The name as written.
        role: String,
    },
    /// A name pattern with `*` anywhere but at one end, or only `*`.
    #[error(
        "pattern `{pattern}` must be exact, `prefix*` or `*suffix` (leave the list out to match anything)"
    )]
    Pattern {
        /// The pattern as written.
        pattern: String,
    },
    /// A metadata condition names a pseudo-header.
    #[error(
        "metadata `{name}`: pseudo-headers are not metadata; match the method with `services` and `methods`"
    )]
    PseudoHeader {
        /// The name as written.
        name: String,
    },
    /// A metadata condition's name is not a header name.
    #[error("metadata `{name}` is not a valid header name")]
    HeaderName {
        /// The name as written.
        name: String,
    },
    /// A metadata condition has no comparison or several.
    #[error(
        "metadata `{name}` needs exactly one of present, eq, in, not_in, prefix (found {found})"
    )]
    MetadataComparisons {
        /// The header name.
        name: String,
        /// How many comparisons it has.
        found: usize,
    },
    /// A peer network is not CIDR notation or an address.
    #[error("`{network}` is not a network (`10.0.0.0/8`, `fd00::/8`) or an address")]
    Network {
        /// The network as written.
        network: String,
    },
}

fn line_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// Parses `source` (named `path` in errors) into rules, reporting every invalid rule.
pub(crate) fn parse(path: &Path, source: &str) -> Result<Vec<RuleConfig>, RulesError> {
    let problem = |line: usize, rule: Option<&RuleLabel>, kind: ProblemKind| RuleProblem {
        path: path.to_owned(),
        line: Some(line),
        rule: rule.cloned(),
        kind,
    };
    let raw: RawFile = toml::from_str(source).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(source, s.start));
        let kind = ProblemKind::Invalid(e.message().trim_end().to_owned());
        RulesError::one(problem(line, None, kind))
    })?;
    let mut rules = Vec::with_capacity(raw.rule.len());
    let mut errors = Vec::new();
    let mut ids = std::collections::HashMap::new();
    for (index, spanned) in raw.rule.into_iter().enumerate() {
        let line = line_of(source, spanned.span().start);
        let table = spanned.into_inner();
        let label = match table.get("id").and_then(|v| v.as_str()) {
            Some(id) => RuleLabel::Id(id.to_owned()),
            None => RuleLabel::Index(index + 1),
        };
        match RuleConfig::deserialize(toml::Value::Table(table)) {
            Ok(rule) => match check(&rule) {
                Ok(()) => {
                    if let Some(first_line) = ids.insert(rule.id.clone(), line) {
                        let kind = ProblemKind::DuplicateId { first_line };
                        errors.push(problem(line, Some(&label), kind));
                    }
                    rules.push(rule);
                }
                Err(kind) => errors.push(problem(line, Some(&label), kind)),
            },
            Err(e) => {
                let kind = ProblemKind::Invalid(e.message().trim_end().to_owned());
                errors.push(problem(line, Some(&label), kind));
            }
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(RulesError { errors })
    }
}

/// Checks what serde cannot: one comparison per predicate, known role names, pointers.
fn check(rule: &RuleConfig) -> Result<(), ProblemKind> {
    if rule.id.trim().is_empty() {
        return Err(ProblemKind::EmptyId);
    }
    for arg in &rule.args {
        if !arg.pointer.is_empty() && !arg.pointer.starts_with('/') {
            return Err(ProblemKind::Pointer {
                pointer: arg.pointer.clone(),
            });
        }
        let found = [
            arg.eq.is_some(),
            arg.ne.is_some(),
            arg.one_of.is_some(),
            arg.not_in.is_some(),
            arg.lt.is_some(),
            arg.le.is_some(),
            arg.gt.is_some(),
            arg.ge.is_some(),
            arg.exists.is_some(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count();
        if found != 1 {
            return Err(ProblemKind::ArgComparisons {
                pointer: arg.pointer.clone(),
                found,
            });
        }
    }
    for condition in &rule.metadata {
        check_metadata(condition)?;
    }
    for network in rule
        .transport
        .peer_in
        .iter()
        .chain(&rule.transport.peer_not_in)
    {
        parse_network(network)?;
    }
    for role in rule.subject.roles.iter().chain(&rule.subject.system_roles) {
        if warden_core::Roles::parse_one(role).is_none() {
            return Err(ProblemKind::UnknownRole { role: role.clone() });
        }
    }
    for pattern in rule
        .services
        .iter()
        .chain(&rule.methods)
        .chain(&rule.namespaces)
        .chain(&rule.workflow_types)
        .chain(&rule.names)
    {
        let stars = pattern.matches('*').count();
        let inner_star = stars == 1 && !pattern.starts_with('*') && !pattern.ends_with('*');
        if pattern.is_empty() || stars > 1 || pattern == "*" || inner_star {
            return Err(ProblemKind::Pattern {
                pattern: pattern.clone(),
            });
        }
    }
    Ok(())
}

fn check_metadata(condition: &MetadataConfig) -> Result<(), ProblemKind> {
    let name = condition.name.clone();
    if name.starts_with(':') {
        return Err(ProblemKind::PseudoHeader { name });
    }
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(ProblemKind::HeaderName { name });
    }
    let found = [
        condition.present.is_some(),
        condition.eq.is_some(),
        condition.one_of.is_some(),
        condition.not_in.is_some(),
        condition.prefix.is_some(),
    ]
    .into_iter()
    .filter(|set| *set)
    .count();
    if found != 1 {
        return Err(ProblemKind::MetadataComparisons { name, found });
    }
    Ok(())
}

/// A network in CIDR notation, or one address (a /32 or /128).
pub(crate) fn parse_network(source: &str) -> Result<ipnet::IpNet, ProblemKind> {
    let trimmed = source.trim();
    trimmed
        .parse::<ipnet::IpNet>()
        .or_else(|_| trimmed.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| ProblemKind::Network {
            network: trimmed.to_owned(),
        })
}
