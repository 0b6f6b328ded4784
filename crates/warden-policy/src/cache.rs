//! A decision cache for policies that are expensive to ask (a remote decision point, a store
//! lookup): bounded, with a time to live, keyed on what the decision depends on.
//!
//! - The key is built from the parts of the request you name ([`KeyParts`]); by default the
//!   caller's whole claims and every field of the operation, arguments included. The
//!   connection (transport, peer address, whether a certificate was presented) is always in
//!   the key; request metadata never is, so do not cache a policy whose decision depends on
//!   metadata (a rules file with `metadata` conditions). Keys are compared whole, never by
//!   hash alone.
//! - Errors are never cached, and neither are decisions of a policy that answered with an
//!   error a moment later: only what the policy decided.
//! - Entries die after the TTL, and all at once when any invalidation source changes version:
//!   a reloaded rules file ([`RulesPolicy::version`](crate::rules::RulesPolicy::version)), an
//!   instance store written through ([`InstanceStore::version`]).
//!
//! For cheap policies (roles, privileges, rules: well under a microsecond) a cache costs more
//! than it saves; put it in front of the expensive ones.

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use warden_core::{
    Answer, AuthzRequest, Claims, Decision, Evaluation, Operation, Policy, SharedPolicy,
    instances::InstanceStore,
};

use crate::rules::RulesPolicy;

/// Which parts of a request a cached decision depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyParts {
    /// The caller's claims (subject, roles, privileges, groups, attributes).
    pub subject: bool,
    /// The instance and run ids.
    pub instance: bool,
    /// The decoded arguments.
    pub args: bool,
}

impl Default for KeyParts {
    /// Everything.
    fn default() -> Self {
        Self {
            subject: true,
            instance: true,
            args: true,
        }
    }
}

type VersionFn = Arc<dyn Fn() -> u64 + Send + Sync>;

struct Entry {
    decision: Decision,
    expires: Instant,
    version: u64,
}

struct Inner {
    policy: SharedPolicy,
    entries: Mutex<HashMap<String, Entry, foldhash::fast::RandomState>>,
    capacity: usize,
    ttl: Duration,
    parts: KeyParts,
    sources: Vec<VersionFn>,
}

/// A policy with a decision cache; see the [module docs](self).
#[derive(Clone)]
pub struct CachedPolicy {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CachedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedPolicy")
            .field("capacity", &self.inner.capacity)
            .field("ttl", &self.inner.ttl)
            .field("parts", &self.inner.parts)
            .finish_non_exhaustive()
    }
}

impl CachedPolicy {
    /// Caches up to `capacity` decisions of `policy` for `ttl` each.
    pub fn new(policy: impl Policy, capacity: usize, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                policy: Arc::new(policy),
                entries: Mutex::new(HashMap::default()),
                capacity: capacity.max(1),
                ttl,
                parts: KeyParts::default(),
                sources: Vec::new(),
            }),
        }
    }

    fn edit(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                policy: Arc::clone(&shared.policy),
                entries: Mutex::new(HashMap::default()),
                capacity: shared.capacity,
                ttl: shared.ttl,
                parts: shared.parts,
                sources: shared.sources.clone(),
            },
        };
        f(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Keys decisions on these parts only (the operation's kind, method, namespace, workflow
    /// type and name always count).
    #[must_use]
    pub fn keyed_on(self, parts: KeyParts) -> Self {
        self.edit(|inner| inner.parts = parts)
    }

    /// Drops every entry when `version` changes.
    #[must_use]
    pub fn invalidated_by(self, version: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.edit(|inner| inner.sources.push(Arc::new(version)))
    }

    /// Drops every entry when `rules` reload.
    #[must_use]
    pub fn invalidated_by_rules(self, rules: &RulesPolicy) -> Self {
        let rules = rules.clone();
        self.invalidated_by(move || rules.version())
    }

    /// Drops every entry when `store` is written through.
    #[must_use]
    pub fn invalidated_by_store(self, store: Arc<dyn InstanceStore>) -> Self {
        self.invalidated_by(move || store.version())
    }

    /// How many decisions are held.
    pub fn len(&self) -> usize {
        self.inner
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no decision is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn version(&self) -> u64 {
        self.sources.iter().fold(0u64, |all, source| {
            all.wrapping_mul(31).wrapping_add(source())
        })
    }

    fn key(&self, request: &AuthzRequest) -> String {
        let mut key = String::with_capacity(128);
        let op: &Operation = &request.operation;
        let field = |key: &mut String, value: Option<&str>| {
            // Length-prefixed, so no two requests share a key by moving a separator.
            let value = value.unwrap_or("\u{0}");
            let _ = write!(key, "{}:{value};", value.len());
        };
        field(&mut key, Some(op.kind.as_str()));
        for also in op.also.iter() {
            field(&mut key, Some(also.as_str()));
        }
        field(&mut key, Some(&op.service));
        field(&mut key, Some(&op.method));
        field(&mut key, op.namespace.as_deref());
        field(&mut key, op.workflow_type.as_deref());
        field(&mut key, op.task_queue.as_deref());
        field(&mut key, op.name.as_deref());
        if self.parts.instance {
            field(&mut key, op.instance_id.as_deref());
            field(&mut key, op.run_id.as_deref());
        }
        if self.parts.args {
            let args = op.args.get().map(|a| a.to_string());
            field(&mut key, args.as_deref());
        }
        if self.parts.subject {
            subject_key(&mut key, &request.subject);
        }
        // What the connection says, for policies with transport conditions.
        let context = &request.context;
        let _ = write!(
            key,
            ";t{:?};c{}",
            context.transport,
            context.peer_certificates.is_some()
        );
        let peer = context.peer_addr.map(|a| a.ip().to_string());
        field(&mut key, peer.as_deref());
        key
    }

    fn get(&self, key: &str, version: u64) -> Option<Decision> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(key)?;
        if entry.version == version && Instant::now() < entry.expires {
            return Some(entry.decision.clone());
        }
        entries.remove(key);
        None
    }

    fn put(&self, key: String, decision: &Decision, version: u64) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, e| e.version == version && now < e.expires);
            if entries.len() >= self.capacity
                && let Some(victim) = entries.keys().next().cloned()
            {
                entries.remove(&victim);
            }
        }
        entries.insert(
            key,
            Entry {
                decision: decision.clone(),
                expires: now + self.ttl,
                version,
            },
        );
    }
}

fn subject_key(key: &mut String, claims: &Claims) {
    let _ = write!(
        key,
        "{}:{};{}",
        claims.subject.as_deref().map_or(0, str::len),
        claims.subject.as_deref().unwrap_or_default(),
        claims.system.bits()
    );
    for (namespace, roles) in &claims.namespaces {
        let _ = write!(key, ";{}:{namespace}={}", namespace.len(), roles.bits());
    }
    for privilege in &claims.privileges {
        let _ = write!(key, ";p{}:{privilege}", privilege.len());
    }
    for group in &claims.groups {
        let _ = write!(key, ";g{}:{group}", group.len());
    }
    if !claims.attributes.is_empty() {
        let attributes = serde_json::Value::Object(claims.attributes.clone()).to_string();
        let _ = write!(key, ";a{}:{attributes}", attributes.len());
    }
}

impl Policy for CachedPolicy {
    fn reads_metadata(&self) -> bool {
        self.inner.policy.reads_metadata()
    }

    fn evaluate(&self, request: &AuthzRequest) -> Evaluation {
        let inner = &self.inner;
        let version = inner.version();
        let key = inner.key(request);
        if let Some(decision) = inner.get(&key, version) {
            return Answer::Ready(Ok(decision));
        }
        match inner.policy.evaluate(request) {
            Answer::Ready(Ok(decision)) => {
                inner.put(key, &decision, version);
                Answer::Ready(Ok(decision))
            }
            Answer::Ready(Err(error)) => Answer::Ready(Err(error)),
            Answer::Pending(pending) => {
                let inner = Arc::clone(inner);
                Answer::pending(async move {
                    let decision = pending.await?;
                    inner.put(key, &decision, version);
                    Ok(decision)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;
    use warden_core::{
        Effect, OperationKind, PolicyError, Roles,
        instances::{InstanceKey, MemoryInstanceStore},
        policy::policy_fn,
    };

    use super::*;

    /// A policy that counts its evaluations and allows writers.
    fn counting(calls: Arc<AtomicUsize>) -> impl Policy {
        policy_fn("counted", move |request: &AuthzRequest| {
            calls.fetch_add(1, Ordering::SeqCst);
            if request
                .subject
                .role_in(Some("orders"))
                .at_least(Roles::WRITER)
            {
                Decision::allow("counted")
            } else {
                Decision::deny("counted", "not a writer")
            }
        })
    }

    fn request(subject: Claims, amount: u64) -> AuthzRequest {
        let op = Operation::new(OperationKind::Update, "s", "Update")
            .with_namespace("orders")
            .with_instance("o-1")
            .with_args(json!({ "amount": amount }));
        AuthzRequest::new(subject, op)
    }

    fn writer() -> Claims {
        Claims::for_subject("alice").with_namespace_role("orders", Roles::WRITER)
    }

    fn effect(policy: &CachedPolicy, request: &AuthzRequest) -> Effect {
        policy.evaluate(request).now().unwrap().unwrap().effect()
    }

    #[test]
    fn a_repeated_request_is_answered_from_the_cache_and_a_different_one_is_not() {
        let calls = Arc::new(AtomicUsize::new(0));
        let cached = CachedPolicy::new(counting(Arc::clone(&calls)), 100, Duration::from_secs(60));
        assert_eq!(effect(&cached, &request(writer(), 5)), Effect::Allow);
        assert_eq!(effect(&cached, &request(writer(), 5)), Effect::Allow);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Other arguments, another caller, other roles: all evaluated afresh.
        effect(&cached, &request(writer(), 6));
        let reader = Claims::for_subject("alice").with_namespace_role("orders", Roles::READER);
        assert_eq!(effect(&cached, &request(reader, 5)), Effect::Deny);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn errors_are_never_cached() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let failing = move |_: &AuthzRequest| -> Evaluation {
            counter.fetch_add(1, Ordering::SeqCst);
            Answer::Ready(Err(PolicyError::unavailable("down")))
        };
        struct Failing<F>(F);
        impl<F: Fn(&AuthzRequest) -> Evaluation + Send + Sync + 'static> Policy for Failing<F> {
            fn evaluate(&self, request: &AuthzRequest) -> Evaluation {
                (self.0)(request)
            }
        }
        let cached = CachedPolicy::new(Failing(failing), 100, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(
                cached
                    .evaluate(&request(writer(), 5))
                    .now()
                    .unwrap()
                    .is_err()
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(cached.is_empty());
    }

    #[test]
    fn entries_expire_and_die_when_the_store_changes() {
        let calls = Arc::new(AtomicUsize::new(0));
        let store = Arc::new(MemoryInstanceStore::new());
        let cached =
            CachedPolicy::new(counting(Arc::clone(&calls)), 100, Duration::from_millis(50))
                .invalidated_by_store(store.clone());
        effect(&cached, &request(writer(), 5));
        effect(&cached, &request(writer(), 5));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        drop(store.add_participant(&InstanceKey::new("orders", "o-1"), "bob"));
        effect(&cached, &request(writer(), 5));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "a store write invalidates");
        std::thread::sleep(Duration::from_millis(60));
        effect(&cached, &request(writer(), 5));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "an expired entry is evaluated afresh"
        );
    }

    #[test]
    fn the_cache_stays_bounded_and_keys_can_ignore_arguments() {
        let calls = Arc::new(AtomicUsize::new(0));
        let cached = CachedPolicy::new(counting(Arc::clone(&calls)), 8, Duration::from_secs(60))
            .keyed_on(KeyParts {
                args: false,
                ..KeyParts::default()
            });
        for amount in 0..100 {
            effect(&cached, &request(writer(), amount));
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "arguments are not part of the key"
        );
        for i in 0..100 {
            effect(&cached, &request(Claims::for_subject(format!("u{i}")), 1));
        }
        assert!(cached.len() <= 8);
    }
}
