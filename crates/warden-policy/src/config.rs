//! Policies from a config file: named policies, and which of them decide each operation kind.
//!
//! ```toml
//! [policies.roles]
//! type = "roles"                    # Temporal's default authorizer
//! methods = { "shop.v1.Orders/Refund" = { scope = "namespace", access = "write" } }
//!
//! [policies.scopes]
//! type = "privileges"
//! requirements = [{ kinds = ["signal"], name = "approve", privileges = ["orders.approve"] }]
//!
//! [policies.file]
//! type = "rules"
//! path = "rules.toml"               # relative to the config file
//! reload_seconds = 2                # hot reload (needs a Tokio runtime)
//!
//! [policies.owner]
//! type = "initiator"                # or "participants"; needs an instance store
//!
//! [policies.pdp]
//! type = "remote"                   # a decision point over gRPC (feature `remote`)
//! endpoint = "http://127.0.0.1:8181"
//! resource = ["https://temporal.io/attr/namespace/value/{namespace}"]
//!
//! [policies.trial]
//! type = "shadow"                   # dry run: evaluated and logged, never denies
//! policy = "file"
//!
//! [authorize]                       # kind → policies that must all allow (deny overrides)
//! default = ["roles"]
//! signal = ["roles", "scopes", "owner"]
//! update = ["file", "owner"]
//! ```
//!
//! A kind with no entry uses `default`; with neither, its calls are denied (nothing decides).

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use serde::Deserialize;
use warden_core::{
    OperationKind, SharedPolicy,
    instances::SharedInstanceStore,
    policy::{AllOf, AllowAll, DenyAll, Shadow},
};

use crate::{
    cache::CachedPolicy,
    instances::InstancePolicy,
    privileges::{PrivilegePolicy, RequirementConfig},
    roles::{MethodAccess, MethodTable, RolePolicy},
    rules::{RulesError, RulesPolicy},
};

/// The method table a role policy starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaseTable {
    /// Temporal's WorkflowService, OperatorService and AdminService.
    #[default]
    Temporal,
    /// Only the health check.
    Empty,
}

/// One named policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicySpec {
    /// Allows everything.
    AllowAll,
    /// Denies everything.
    DenyAll,
    /// Temporal's role model over a method table.
    Roles {
        /// The table to start from (default `temporal`).
        #[serde(default)]
        table: BaseTable,
        /// Further methods: `"package.Service/Method"` (or `/*`) → `{ scope, access }`.
        #[serde(default)]
        methods: HashMap<String, MethodAccess>,
    },
    /// Required privileges per operation.
    Privileges {
        /// The requirements.
        requirements: Vec<RequirementConfig>,
    },
    /// A rules file.
    Rules {
        /// The file, relative to the config file.
        path: PathBuf,
        /// Poll the file every this many seconds and reload it when it changes.
        #[serde(default)]
        reload_seconds: Option<u64>,
    },
    /// Instance-level: only the initiator or an admin changes an instance.
    Initiator,
    /// Instance-level: participants may do what the initiator may.
    Participants,
    /// A decision point asked over gRPC, failing closed (`warden_pdp::remote`).
    #[cfg(feature = "remote")]
    Remote(warden_pdp::remote::RemoteConfig),
    /// Another policy in shadow (dry-run) mode: evaluated and reported, never denying.
    Shadow {
        /// The shadowed policy's name.
        policy: String,
    },
    /// Another policy behind a decision cache, invalidated when rules reload or the instance
    /// store is written.
    Cached {
        /// The cached policy's name.
        policy: String,
        /// How long a decision lives, in seconds.
        ttl_seconds: u64,
        /// How many decisions are kept (default 10,000).
        #[serde(default = "default_capacity")]
        capacity: usize,
    },
}

fn default_capacity() -> usize {
    10_000
}

/// Named policies and, per operation kind, which of them decide.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesConfig {
    /// The policies, by name.
    #[serde(default)]
    pub policies: BTreeMap<String, PolicySpec>,
    /// Operation kind (or `default`) → the names of the policies that must all allow.
    #[serde(default)]
    pub authorize: BTreeMap<String, Vec<String>>,
}

/// The policies a config built.
#[derive(Clone, Default)]
pub struct BuiltPolicies {
    /// Every named policy.
    pub named: BTreeMap<String, SharedPolicy>,
    per_kind: HashMap<OperationKind, (Vec<String>, SharedPolicy)>,
    /// Rules policies, for their reload version.
    pub rules: Vec<RulesPolicy>,
}

impl std::fmt::Debug for BuiltPolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltPolicies")
            .field("named", &self.named.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl BuiltPolicies {
    /// The policy deciding `kind` (all of its configured policies), with their names; `None`
    /// when nothing is configured for it, so nothing decides and calls are denied.
    pub fn for_kind(&self, kind: OperationKind) -> Option<(&[String], &SharedPolicy)> {
        self.per_kind
            .get(&kind)
            .map(|(names, policy)| (names.as_slice(), policy))
    }

    /// Each operation kind that has policies, with them combined (deny overrides), in the
    /// order of [`OperationKind::ALL`]: what an engine is built from.
    pub fn kinds(&self) -> impl Iterator<Item = (OperationKind, &SharedPolicy)> {
        OperationKind::ALL
            .into_iter()
            .filter_map(|kind| Some((kind, self.for_kind(kind)?.1)))
    }
}

/// A policy config that cannot be built; each names the policy or `authorize` key at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoliciesError {
    /// A role policy's `methods` table has a bad key.
    #[error("policy `{policy}`: {source}")]
    RoleTable {
        /// The policy.
        policy: String,
        /// The bad entry.
        source: crate::roles::MethodPathError,
    },
    /// A rules policy's file cannot be loaded.
    #[error("policy `{policy}`:\n{source}")]
    Rules {
        /// The policy.
        policy: String,
        /// Every problem in the file.
        source: RulesError,
    },
    /// An instance-level policy without an instance store.
    #[error("policy `{policy}` is instance-level and needs an instance store")]
    NoStore {
        /// The policy.
        policy: String,
    },
    /// A remote policy's settings cannot be used.
    #[cfg(feature = "remote")]
    #[error("policy `{policy}`: {source}")]
    Remote {
        /// The policy.
        policy: String,
        /// What is wrong.
        source: warden_pdp::remote::RemoteError,
    },
    /// A shadow or cached policy wraps something that is not a plain policy of the file.
    #[error("policy `{policy}` wraps `{target}`, which is not a plain policy defined here")]
    BadWrap {
        /// The wrapping policy.
        policy: String,
        /// What it names.
        target: String,
    },
    /// `authorize` names a policy that is not defined.
    #[error("authorize.{key}: no policy named `{policy}` (known: {})", known.join(", "))]
    UnknownPolicy {
        /// The `authorize` key.
        key: String,
        /// The missing name.
        policy: String,
        /// The names that are defined.
        known: Vec<String>,
    },
    /// An `authorize` key that is neither a kind nor `default`.
    #[error(
        "authorize.{key}: not an operation kind (execute, signal, query, update, cancel, terminate, read, worker, admin, other) or `default`"
    )]
    UnknownKind {
        /// The key.
        key: String,
    },
}

impl PoliciesConfig {
    /// Builds the policies. Paths are relative to `base`; instance policies read `store`.
    /// Rules files with `reload_seconds` start watching (so this must run inside a Tokio
    /// runtime when any does).
    pub fn build(
        &self,
        base: &Path,
        store: Option<&SharedInstanceStore>,
    ) -> Result<BuiltPolicies, PoliciesError> {
        let mut built = BuiltPolicies::default();
        // Plain policies first; wrappers (shadow, cached) then name one of them.
        let (wrappers, plain): (Vec<_>, Vec<_>) = self.policies.iter().partition(|(_, spec)| {
            matches!(spec, PolicySpec::Shadow { .. } | PolicySpec::Cached { .. })
        });
        for (name, spec) in plain {
            let policy: SharedPolicy = match spec {
                PolicySpec::AllowAll => Arc::new(AllowAll::new()),
                PolicySpec::DenyAll => Arc::new(DenyAll::new()),
                PolicySpec::Roles { table, methods } => {
                    let table = match table {
                        BaseTable::Temporal => MethodTable::temporal(),
                        BaseTable::Empty => MethodTable::new(),
                    };
                    let table =
                        table
                            .extend_from(methods)
                            .map_err(|source| PoliciesError::RoleTable {
                                policy: name.clone(),
                                source,
                            })?;
                    Arc::new(RolePolicy::new(table))
                }
                PolicySpec::Privileges { requirements } => {
                    Arc::new(PrivilegePolicy::from_config(requirements.clone()))
                }
                PolicySpec::Rules {
                    path,
                    reload_seconds,
                } => {
                    let rules = RulesPolicy::load(base.join(path)).map_err(|source| {
                        PoliciesError::Rules {
                            policy: name.clone(),
                            source,
                        }
                    })?;
                    if let Some(seconds) = reload_seconds {
                        rules.watch(Duration::from_secs((*seconds).max(1)));
                    }
                    built.rules.push(rules.clone());
                    Arc::new(rules)
                }
                PolicySpec::Initiator | PolicySpec::Participants => {
                    let store = store.ok_or_else(|| PoliciesError::NoStore {
                        policy: name.clone(),
                    })?;
                    Arc::new(match spec {
                        PolicySpec::Initiator => InstancePolicy::initiator(Arc::clone(store)),
                        _ => InstancePolicy::participants(Arc::clone(store)),
                    })
                }
                #[cfg(feature = "remote")]
                PolicySpec::Remote(config) => {
                    let mut config = config.clone();
                    config.token_file = config.token_file.map(|path| base.join(path));
                    Arc::new(
                        warden_pdp::remote::RemotePolicy::new(name.as_str(), &config).map_err(
                            |source| PoliciesError::Remote {
                                policy: name.clone(),
                                source,
                            },
                        )?,
                    )
                }
                PolicySpec::Shadow { .. } | PolicySpec::Cached { .. } => continue,
            };
            built.named.insert(name.clone(), policy);
        }
        let mut wrapped = Vec::new();
        for (name, spec) in wrappers {
            let (PolicySpec::Shadow { policy: target } | PolicySpec::Cached { policy: target, .. }) =
                spec
            else {
                continue;
            };
            let inner = built
                .named
                .get(target)
                .cloned()
                .ok_or_else(|| PoliciesError::BadWrap {
                    policy: name.clone(),
                    target: target.clone(),
                })?;
            let policy: SharedPolicy = match spec {
                PolicySpec::Cached {
                    ttl_seconds,
                    capacity,
                    ..
                } => {
                    let mut cached =
                        CachedPolicy::new(inner, *capacity, Duration::from_secs(*ttl_seconds));
                    for rules in &built.rules {
                        cached = cached.invalidated_by_rules(rules);
                    }
                    if let Some(store) = store {
                        cached = cached.invalidated_by_store(Arc::clone(store));
                    }
                    Arc::new(cached)
                }
                _ => Arc::new(Shadow::new(inner)),
            };
            wrapped.push((name.clone(), policy));
        }
        built.named.extend(wrapped);
        let mut by_kind: HashMap<OperationKind, Vec<String>> = HashMap::new();
        let mut default = None;
        for (key, names) in &self.authorize {
            for policy in names {
                if !built.named.contains_key(policy) {
                    return Err(PoliciesError::UnknownPolicy {
                        key: key.clone(),
                        policy: policy.clone(),
                        known: built.named.keys().cloned().collect(),
                    });
                }
            }
            if key == "default" {
                default = Some(names.clone());
                continue;
            }
            let kind: OperationKind = key
                .parse()
                .map_err(|_| PoliciesError::UnknownKind { key: key.clone() })?;
            by_kind.insert(kind, names.clone());
        }
        for kind in OperationKind::ALL {
            let Some(names) = by_kind.remove(&kind).or_else(|| default.clone()) else {
                continue;
            };
            let children = names
                .iter()
                .filter_map(|n| built.named.get(n).cloned())
                .collect();
            let policy: SharedPolicy =
                Arc::new(AllOf::new(format!("authorize.{}", kind.as_str()), children));
            built.per_kind.insert(kind, (names, policy));
        }
        Ok(built)
    }
}
