//! The rules policy: a declarative rules file, hot-reloaded.
//!
//! ```toml
//! [[rule]]
//! id = "readers-query"
//! effect = "allow"
//! kinds = ["query", "read"]
//! subject = { roles = ["reader"] }
//!
//! [[rule]]
//! id = "small-discounts"
//! effect = "allow"
//! kinds = ["update"]
//! names = ["set-discount"]
//! args = [{ pointer = "/amount", le = 1000 }]
//! subject = { roles = ["writer"] }
//!
//! [[rule]]
//! id = "no-prod-terminate"
//! effect = "deny"
//! reason = "terminate is disabled in prod"
//! kinds = ["terminate"]
//! namespaces = ["prod-*"]
//!
//! [[rule]]
//! id = "tenants-over-tls"
//! effect = "allow"
//! kinds = ["read"]
//! metadata = [{ name = "x-tenant", in = ["acme", "globex"] }]
//! transport = { tls = true, peer_in = ["10.0.0.0/8"] }
//! ```
//!
//! Rules are matched in order; a matching deny rule decides at once (deny overrides allow),
//! otherwise the first matching allow rule decides, and when none matches the call is denied.
//! Decisions name the rule (`rules/<id>`). Unknown keys, unknown kinds and roles, bad
//! patterns and predicates are load errors, each reported with file and line.
//!
//! Arguments that cannot be decoded never satisfy an allow rule's predicate and always
//! satisfy a deny rule's: rules fail closed on what they cannot read. So do metadata and
//! transport conditions ([`MetadataConfig`], [`TransportConfig`]): a repeated header passes an
//! allow rule only if every value does and matches a deny rule if any does, and a transport or
//! peer address the server did not report fails an allow rule and matches a deny rule.
//!
//! [`RulesPolicy::watch`] reloads the file when it changes: the new rules are swapped in
//! atomically between calls (each call sees one whole rule set), and an invalid new file is
//! logged while the previous rules stay.

mod config;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

pub use config::{
    ArgConfig, MetadataConfig, ProblemKind, RuleConfig, RuleEffect, RuleLabel, RuleProblem,
    RulesError, SubjectConfig, TransportConfig,
};
use serde_json::Value;
use warden_core::{
    Answer, AuthzRequest, Claims, Decision, Evaluation, KindSet, Metadata, Operation,
    OperationKind, Policy, RequestContext, Roles, Transport,
};

/// A name pattern: exact, `prefix*` or `*suffix`.
#[derive(Clone, Debug)]
enum Pattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
}

impl Pattern {
    fn new(source: &str) -> Self {
        if let Some(prefix) = source.strip_suffix('*') {
            Self::Prefix(prefix.to_owned())
        } else if let Some(suffix) = source.strip_prefix('*') {
            Self::Suffix(suffix.to_owned())
        } else {
            Self::Exact(source.to_owned())
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(exact) => value == exact,
            Self::Prefix(prefix) => value.starts_with(prefix.as_str()),
            Self::Suffix(suffix) => value.ends_with(suffix.as_str()),
        }
    }
}

/// Any of the patterns; an empty list matches anything, a missing value nothing.
#[derive(Clone, Debug, Default)]
struct Patterns(Vec<Pattern>);

impl Patterns {
    fn new(sources: &[String]) -> Self {
        Self(sources.iter().map(|s| Pattern::new(s)).collect())
    }

    fn matches(&self, value: Option<&str>) -> bool {
        self.0.is_empty() || value.is_some_and(|v| self.0.iter().any(|p| p.matches(v)))
    }
}

/// A first test per rule, kept apart from the rules so a scan over many stays in cache: the
/// rule's kinds, and for its namespace, name and method patterns the set of first bytes
/// (mod 64) a matching value can start with — all ones where any value could match.
#[derive(Clone, Copy, Debug)]
struct Prefilter {
    /// Bit `k` for each kind `k` the rule covers.
    kinds: u16,
    namespace: u64,
    name: u64,
    method: u64,
}

fn first_bytes(patterns: &Patterns) -> u64 {
    if patterns.0.is_empty() {
        return u64::MAX;
    }
    patterns.0.iter().fold(0, |mask, pattern| {
        mask | match pattern {
            Pattern::Exact(s) | Pattern::Prefix(s) if !s.is_empty() => 1 << (s.as_bytes()[0] % 64),
            _ => u64::MAX,
        }
    })
}

/// The bit of a value's first byte; none for a missing or empty value, which no exact or
/// prefix pattern matches.
fn first_byte(value: Option<&str>) -> u64 {
    match value.and_then(|v| v.as_bytes().first()) {
        Some(byte) => 1 << (byte % 64),
        None => 0,
    }
}

impl Prefilter {
    fn new(rule: &Rule) -> Self {
        Self {
            kinds: kind_bits(|kind| rule.kinds.contains(kind)),
            namespace: first_bytes(&rule.namespaces),
            name: first_bytes(&rule.names),
            method: first_bytes(&rule.methods),
        }
    }

    /// `false` only when the rule cannot match; `true` leaves it to the full check.
    #[inline]
    fn admits(&self, call: &CallBits) -> bool {
        let passes = |mask: u64, bit: u64| mask == u64::MAX || mask & bit != 0;
        self.kinds & call.kinds != 0
            && passes(self.namespace, call.namespace)
            && passes(self.name, call.name)
            && passes(self.method, call.method)
    }
}

/// A call, as the prefilter sees it; computed once per decision.
struct CallBits {
    kinds: u16,
    namespace: u64,
    name: u64,
    method: u64,
}

impl CallBits {
    fn new(op: &Operation) -> Self {
        Self {
            kinds: kind_bits(|kind| op.is(kind)),
            namespace: first_byte(op.namespace.as_deref()),
            name: first_byte(op.name.as_deref()),
            method: first_byte(Some(&op.method)),
        }
    }
}

fn kind_bits(has: impl Fn(OperationKind) -> bool) -> u16 {
    OperationKind::ALL
        .iter()
        .filter(|kind| has(**kind))
        .fold(0, |bits, kind| bits | 1 << (*kind as u16))
}

#[derive(Clone, Debug)]
enum Comparison {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    Lt(f64),
    Le(f64),
    Gt(f64),
    Ge(f64),
    Exists(bool),
}

#[derive(Clone, Debug)]
struct ArgPredicate {
    pointer: String,
    comparison: Comparison,
}

impl ArgPredicate {
    fn new(config: &ArgConfig) -> Self {
        let c = config.clone();
        let comparison = if let Some(v) = c.eq {
            Comparison::Eq(v)
        } else if let Some(v) = c.ne {
            Comparison::Ne(v)
        } else if let Some(v) = c.one_of {
            Comparison::In(v)
        } else if let Some(v) = c.not_in {
            Comparison::NotIn(v)
        } else if let Some(v) = c.lt {
            Comparison::Lt(v)
        } else if let Some(v) = c.le {
            Comparison::Le(v)
        } else if let Some(v) = c.gt {
            Comparison::Gt(v)
        } else if let Some(v) = c.ge {
            Comparison::Ge(v)
        } else {
            // The loader checked that exactly one comparison is set.
            Comparison::Exists(c.exists.unwrap_or(true))
        };
        Self {
            pointer: c.pointer,
            comparison,
        }
    }

    fn holds(&self, args: &Value) -> bool {
        let value = args.pointer(&self.pointer);
        let number = || value.and_then(Value::as_f64);
        match &self.comparison {
            Comparison::Eq(expected) => value == Some(expected),
            Comparison::Ne(expected) => value != Some(expected),
            Comparison::In(options) => value.is_some_and(|v| options.contains(v)),
            Comparison::NotIn(options) => value.is_none_or(|v| !options.contains(v)),
            Comparison::Lt(limit) => number().is_some_and(|n| n < *limit),
            Comparison::Le(limit) => number().is_some_and(|n| n <= *limit),
            Comparison::Gt(limit) => number().is_some_and(|n| n > *limit),
            Comparison::Ge(limit) => number().is_some_and(|n| n >= *limit),
            Comparison::Exists(exists) => value.is_some() == *exists,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct SubjectMatch {
    ids: Vec<String>,
    roles: Roles,
    system_roles: Roles,
    privileges: Vec<String>,
    groups: Vec<String>,
    claims: Vec<(String, Value)>,
    anonymous: bool,
}

fn roles_of(names: &[String]) -> Roles {
    names
        .iter()
        .filter_map(|n| Roles::parse_one(n))
        .fold(Roles::NONE, |all, r| all | r)
}

impl SubjectMatch {
    /// The caller conditions of an allow rule, or of a deny rule (`deny`): a deny rule matches
    /// anonymous callers too, so a denial cannot be escaped by not saying who you are.
    fn new(config: &SubjectConfig, deny: bool) -> Self {
        Self {
            ids: config.ids.clone(),
            roles: roles_of(&config.roles),
            system_roles: roles_of(&config.system_roles),
            privileges: config.privileges.clone(),
            groups: config.groups.clone(),
            claims: config
                .claims
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            anonymous: config.anonymous || deny,
        }
    }

    fn matches(&self, claims: &Claims, operation: &Operation) -> bool {
        if claims.is_anonymous() && !self.anonymous {
            return false;
        }
        let holds_any =
            |wanted: Roles, held: Roles| wanted.is_empty() || wanted.bits() & held.bits() != 0;
        (self.ids.is_empty()
            || claims
                .subject
                .as_deref()
                .is_some_and(|s| self.ids.iter().any(|id| id == s)))
            && holds_any(self.roles, claims.role_in(operation.namespace.as_deref()))
            && holds_any(self.system_roles, claims.system)
            && (self.privileges.is_empty()
                || self.privileges.iter().any(|p| claims.has_privilege(p)))
            && (self.groups.is_empty() || self.groups.iter().any(|g| claims.groups.contains(g)))
            && self
                .claims
                .iter()
                .all(|(key, expected)| claims.attributes.get(key) == Some(expected))
    }
}

#[derive(Clone, Debug)]
enum HeaderTest {
    Present(bool),
    Values(ValueTest),
}

/// A comparison of a header's values.
#[derive(Clone, Debug)]
enum ValueTest {
    OneOf(Vec<String>),
    NotIn(Vec<String>),
    Prefix(Vec<String>),
}

impl ValueTest {
    fn passes(&self, value: &str) -> bool {
        match self {
            Self::OneOf(options) => options.iter().any(|o| o == value),
            Self::NotIn(options) => options.iter().all(|o| o != value),
            Self::Prefix(prefixes) => prefixes.iter().any(|p| value.starts_with(p.as_str())),
        }
    }

    /// A missing header is in none of the listed values; it equals and starts with nothing.
    fn holds_when_absent(&self) -> bool {
        matches!(self, Self::NotIn(_))
    }
}

/// A metadata condition; see [`MetadataConfig`] for how several values and unreadable ones
/// count.
#[derive(Clone, Debug)]
struct HeaderMatch {
    name: http::HeaderName,
    test: HeaderTest,
}

impl HeaderMatch {
    fn new(config: &MetadataConfig) -> Self {
        let c = config.clone();
        let test = if let Some(present) = c.present {
            HeaderTest::Present(present)
        } else if let Some(value) = c.eq {
            HeaderTest::Values(ValueTest::OneOf(vec![value]))
        } else if let Some(values) = c.one_of {
            HeaderTest::Values(ValueTest::OneOf(values))
        } else if let Some(values) = c.not_in {
            HeaderTest::Values(ValueTest::NotIn(values))
        } else {
            // The loader checked that exactly one comparison is set.
            HeaderTest::Values(ValueTest::Prefix(c.prefix.unwrap_or_default()))
        };
        Self {
            // The loader checked the name.
            name: http::HeaderName::from_bytes(c.name.as_bytes())
                .unwrap_or(http::HeaderName::from_static("x-warden-invalid")),
            test,
        }
    }

    fn holds(&self, metadata: &Metadata, deny: bool) -> bool {
        if metadata.headers().is_none() {
            // Metadata not shown to the policy (an in-process call without any): unknown,
            // so an allow rule's condition fails and a deny rule's holds.
            return deny;
        }
        let test = match &self.test {
            HeaderTest::Present(present) => return metadata.contains(&self.name) == *present,
            HeaderTest::Values(test) => test,
        };
        let mut values = metadata
            .get_all(&self.name)
            .map(|v| v.to_str().ok())
            .peekable();
        if values.peek().is_none() {
            return test.holds_when_absent();
        }
        if deny {
            // Any value that passes (or cannot be read) makes the deny rule match.
            values.any(|v| v.is_none_or(|v| test.passes(v)))
        } else {
            values.all(|v| v.is_some_and(|v| test.passes(v)))
        }
    }
}

/// Conditions on the connection; see [`TransportConfig`].
#[derive(Clone, Debug, Default)]
struct TransportMatch {
    tls: Option<bool>,
    peer_certificate: Option<bool>,
    peer_in: Vec<ipnet::IpNet>,
    peer_not_in: Vec<ipnet::IpNet>,
}

impl TransportMatch {
    fn new(config: &TransportConfig) -> Self {
        // The loader checked every network.
        let networks = |sources: &[String]| {
            sources
                .iter()
                .filter_map(|s| config::parse_network(s).ok())
                .collect()
        };
        Self {
            tls: config.tls,
            peer_certificate: config.peer_certificate,
            peer_in: networks(&config.peer_in),
            peer_not_in: networks(&config.peer_not_in),
        }
    }

    fn is_empty(&self) -> bool {
        self.tls.is_none()
            && self.peer_certificate.is_none()
            && self.peer_in.is_empty()
            && self.peer_not_in.is_empty()
    }

    /// What cannot be seen (an unknown transport or peer address) fails an allow rule and
    /// matches a deny rule.
    fn holds(&self, context: &RequestContext, deny: bool) -> bool {
        let tls = match context.transport {
            Transport::Tls => Some(true),
            Transport::Plaintext => Some(false),
            _ => None,
        };
        // An IPv4 peer on a dual-stack socket shows as `::ffff:a.b.c.d`: compared as IPv4.
        let addr = context.peer_addr.map(|a| a.ip().to_canonical());
        let unknown = deny;
        self.tls
            .is_none_or(|wanted| tls.map_or(unknown, |tls| tls == wanted))
            && self
                .peer_certificate
                .is_none_or(|wanted| context.peer_certificates.is_some() == wanted)
            && (self.peer_in.is_empty()
                || addr.map_or(unknown, |a| self.peer_in.iter().any(|n| n.contains(&a))))
            && (self.peer_not_in.is_empty()
                || addr.map_or(unknown, |a| {
                    !self.peer_not_in.iter().any(|n| n.contains(&a))
                }))
    }
}

#[derive(Clone, Debug)]
struct Rule {
    decider: Arc<str>,
    deny: bool,
    reason: String,
    kinds: KindSet,
    services: Patterns,
    methods: Patterns,
    namespaces: Patterns,
    workflow_types: Patterns,
    names: Patterns,
    args: Vec<ArgPredicate>,
    subject: SubjectMatch,
    metadata: Vec<HeaderMatch>,
    transport: TransportMatch,
}

impl Rule {
    fn new(config: &RuleConfig) -> Self {
        let deny = config.effect == RuleEffect::Deny;
        Self {
            decider: format!("rules/{}", config.id).into(),
            deny,
            reason: config
                .reason
                .clone()
                .unwrap_or_else(|| format!("denied by rule `{}`", config.id)),
            kinds: if config.kinds.is_empty() {
                KindSet::ALL
            } else {
                crate::kind_set(&config.kinds)
            },
            services: Patterns::new(&config.services),
            methods: Patterns::new(&config.methods),
            namespaces: Patterns::new(&config.namespaces),
            workflow_types: Patterns::new(&config.workflow_types),
            names: Patterns::new(&config.names),
            args: config.args.iter().map(ArgPredicate::new).collect(),
            subject: SubjectMatch::new(&config.subject, deny),
            metadata: config.metadata.iter().map(HeaderMatch::new).collect(),
            transport: TransportMatch::new(&config.transport),
        }
    }

    /// The full check of a rule whose [`Prefilter`] admitted the call (which covers kinds).
    fn matches(&self, request: &AuthzRequest) -> bool {
        let op = &request.operation;
        self.services.matches(Some(&op.service))
            && self.methods.matches(Some(&op.method))
            && self.namespaces.matches(op.namespace.as_deref())
            && self.workflow_types.matches(op.workflow_type.as_deref())
            && self.names.matches(op.name.as_deref())
            && self.subject.matches(&request.subject, op)
            && self.connection_holds(&request.context)
            && self.args_hold(op)
    }

    /// Metadata and transport conditions.
    fn connection_holds(&self, context: &RequestContext) -> bool {
        (self.transport.is_empty() || self.transport.holds(context, self.deny))
            && self
                .metadata
                .iter()
                .all(|m| m.holds(&context.metadata, self.deny))
    }

    /// Argument predicates; arguments that cannot be read fail closed.
    fn args_hold(&self, op: &Operation) -> bool {
        if self.args.is_empty() {
            return true;
        }
        match op.args.get() {
            Some(args) => self.args.iter().all(|p| p.holds(args)),
            None if op.args.is_present() => self.deny,
            None => self.args.iter().all(|p| p.holds(&Value::Null)),
        }
    }
}

/// The rules that can match calls of one kind, as indices in file order.
#[derive(Clone, Debug, Default)]
struct KindIndex {
    /// Rules naming only exact namespaces, under each of them.
    by_namespace: HashMap<String, Vec<u32>, foldhash::fast::RandomState>,
    /// Every other rule.
    general: Vec<u32>,
}

/// Merges two ascending index lists.
struct Merge<A: Iterator<Item = u32>, B: Iterator<Item = u32>> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<A: Iterator<Item = u32>, B: Iterator<Item = u32>> Iterator for Merge<A, B> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        match (self.a.peek(), self.b.peek()) {
            (Some(a), Some(b)) if b < a => self.b.next(),
            (Some(_), _) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

/// A compiled, immutable set of rules.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Whether any rule has a metadata condition.
    reads_metadata: bool,
    prefilters: Vec<Prefilter>,
    /// Per kind, the rules that can match it: a 1,000-rule file is not scanned whole.
    by_kind: [KindIndex; OperationKind::ALL.len()],
}

impl RuleSet {
    /// Compiles loaded rules.
    pub fn new(configs: &[RuleConfig]) -> Self {
        let rules: Vec<Rule> = configs.iter().map(Rule::new).collect();
        let mut by_kind: [KindIndex; OperationKind::ALL.len()] = Default::default();
        for (index, rule) in rules.iter().enumerate() {
            let exact: Option<Vec<&str>> = (!rule.namespaces.0.is_empty())
                .then(|| {
                    rule.namespaces
                        .0
                        .iter()
                        .map(|p| match p {
                            Pattern::Exact(n) => Some(n.as_str()),
                            _ => None,
                        })
                        .collect()
                })
                .flatten();
            for kind in rule.kinds.iter() {
                let slot = &mut by_kind[kind as usize];
                match &exact {
                    Some(namespaces) => {
                        for namespace in namespaces {
                            let list = slot
                                .by_namespace
                                .entry((*namespace).to_owned())
                                .or_default();
                            // A rule listing a namespace twice is indexed once.
                            if list.last() != Some(&(index as u32)) {
                                list.push(index as u32);
                            }
                        }
                    }
                    None => slot.general.push(index as u32),
                }
            }
        }
        let prefilters = rules.iter().map(Prefilter::new).collect();
        Self {
            reads_metadata: rules.iter().any(|rule| !rule.metadata.is_empty()),
            rules,
            prefilters,
            by_kind,
        }
    }

    /// Parses and compiles a rules file's text; `path` names it in errors.
    pub fn parse(path: &Path, source: &str) -> Result<Self, RulesError> {
        Ok(Self::new(&config::parse(path, source)?))
    }

    /// Loads a rules file.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        Self::parse(path, &read(path)?)
    }

    /// How many rules the set holds.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether any rule has a metadata condition.
    pub fn reads_metadata(&self) -> bool {
        self.reads_metadata
    }

    /// Whether the set is empty (and so denies everything).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The decision for `request`.
    pub fn decide(&self, request: &AuthzRequest) -> Decision {
        let op = &request.operation;
        let bits = CallBits::new(op);
        let mut allowed = None;
        let denied = if op.also.is_empty() {
            let index = &self.by_kind[op.kind as usize];
            let scoped = op
                .namespace
                .as_deref()
                .and_then(|n| index.by_namespace.get(n))
                .map_or(&[][..], Vec::as_slice);
            if scoped.is_empty() {
                self.scan(request, &bits, index.general.iter().copied(), &mut allowed)
            } else {
                let merged = Merge {
                    a: index.general.iter().copied().peekable(),
                    b: scoped.iter().copied().peekable(),
                };
                self.scan(request, &bits, merged, &mut allowed)
            }
        } else {
            // Calls of several kinds (signal-with-start) meet every rule of any of them.
            self.scan(request, &bits, 0..self.rules.len() as u32, &mut allowed)
        };
        if let Some(denied) = denied {
            return denied;
        }
        match allowed {
            Some(index) => Decision::allow(Arc::clone(&self.rules[index as usize].decider)),
            None => Decision::deny(RULES_POLICY, "no rule allows this call"),
        }
    }

    /// Checks `candidates` in order: the first matching deny rule's decision, else `None`
    /// with the first matching allow rule in `allowed`.
    fn scan(
        &self,
        request: &AuthzRequest,
        bits: &CallBits,
        candidates: impl Iterator<Item = u32>,
        allowed: &mut Option<u32>,
    ) -> Option<Decision> {
        for index in candidates {
            if !self.prefilters[index as usize].admits(bits) {
                continue;
            }
            let rule = &self.rules[index as usize];
            if !rule.matches(request) {
                continue;
            }
            if rule.deny {
                return Some(Decision::deny(
                    Arc::clone(&rule.decider),
                    rule.reason.clone(),
                ));
            }
            allowed.get_or_insert(index);
        }
        None
    }
}

/// The decider id when no rule matched.
pub const RULES_POLICY: &str = "rules";

/// The rules policy; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct RulesPolicy {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: Option<PathBuf>,
    current: RwLock<Arc<RuleSet>>,
    /// Whether the current set reads metadata, readable without the lock.
    reads_metadata: AtomicBool,
    version: AtomicU64,
    /// The file's text when last read, so an unchanged file is not parsed again.
    seen: std::sync::Mutex<Option<String>>,
}

impl RulesPolicy {
    /// A policy over a fixed rule set.
    pub fn new(rules: RuleSet) -> Self {
        Self::with_path(rules, None, None)
    }

    fn with_path(rules: RuleSet, path: Option<PathBuf>, seen: Option<String>) -> Self {
        Self {
            shared: Arc::new(Shared {
                path,
                reads_metadata: AtomicBool::new(rules.reads_metadata()),
                current: RwLock::new(Arc::new(rules)),
                version: AtomicU64::new(0),
                seen: std::sync::Mutex::new(seen),
            }),
        }
    }

    /// Loads the rules file at `path`; [`reload`](Self::reload) and [`watch`](Self::watch)
    /// read it again.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, RulesError> {
        let path = path.into();
        let source = read(&path)?;
        let rules = RuleSet::parse(&path, &source)?;
        Ok(Self::with_path(rules, Some(path), Some(source)))
    }

    /// The rule set calls are decided by now.
    pub fn rules(&self) -> Arc<RuleSet> {
        Arc::clone(
            &self
                .shared
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Bumped on every successful reload (decision caches key on it).
    pub fn version(&self) -> u64 {
        self.shared.version.load(Ordering::Acquire)
    }

    /// Reads the file again and swaps the new rules in if it changed and is valid. Returns
    /// whether new rules were installed; an invalid file leaves the current rules in place.
    pub fn reload(&self) -> Result<bool, RulesError> {
        let Some(path) = &self.shared.path else {
            return Ok(false);
        };
        let source = read(path)?;
        self.install(path, source)
    }

    fn install(&self, path: &Path, source: String) -> Result<bool, RulesError> {
        let mut seen = self
            .shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seen.as_deref() == Some(source.as_str()) {
            return Ok(false);
        }
        let result = RuleSet::parse(path, &source);
        // Remember the text either way, so an invalid file is reported once, not every poll.
        *seen = Some(source);
        let rules = result?;
        let count = rules.len();
        // Raised before the swap: a call that reads the flag between the two is shown the
        // metadata it may not need, never denied it.
        let reads_metadata = rules.reads_metadata();
        if reads_metadata {
            self.shared.reads_metadata.store(true, Ordering::Release);
        }
        *self
            .shared
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(rules);
        self.shared
            .reads_metadata
            .store(reads_metadata, Ordering::Release);
        self.shared.version.fetch_add(1, Ordering::AcqRel);
        tracing::info!(path = %path.display(), rules = count, "rules reloaded");
        Ok(true)
    }

    /// Polls the file every `every` on the Tokio runtime and reloads it when it changes, until
    /// the policy is dropped. A changed file is loaded only once it has settled (two reads
    /// agree on text, length and modification time; see [`warden_core::watch`]), so a file
    /// caught mid-write is not taken for a shorter valid one (still, write rules files
    /// atomically: a temporary file renamed over the old one). An invalid file is logged
    /// (every error, with its line) and the previous rules stay.
    pub fn watch(&self, every: Duration) {
        let Some(path) = self.shared.path.clone() else {
            return;
        };
        warden_core::watch::watch_file(
            Arc::downgrade(&self.shared),
            path.clone(),
            every,
            move |shared, text| {
                let policy = RulesPolicy {
                    shared: Arc::clone(shared),
                };
                if let Err(error) = policy.install(&path, text) {
                    tracing::error!(%error, "the changed rules file is invalid; keeping the previous rules");
                }
            },
        );
    }
}

fn read(path: &Path) -> Result<String, RulesError> {
    std::fs::read_to_string(path).map_err(|e| RulesError::unreadable(path, &e))
}

impl Policy for RulesPolicy {
    fn reads_metadata(&self) -> bool {
        self.shared.reads_metadata.load(Ordering::Acquire)
    }

    /// Between reloads: a worker that decides inside workflows loads its rules once and never watches them.
    fn deterministic(&self) -> bool {
        true
    }

    fn evaluate(&self, request: &AuthzRequest) -> Evaluation {
        let rules = self.rules();
        Answer::Ready(Ok(rules.decide(request)))
    }
}
