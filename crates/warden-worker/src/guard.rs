//! The keys, the policy versions and the judgement every hook shares.

use std::{collections::HashMap, fmt, sync::Arc, time::SystemTime};

use temporalio_common::protos::temporal::api::common::v1::Payload;
use warden_core::{
    Answer, AuthzRequest, KindSet, Operation, OperationKind, Policy, SharedPolicy, policy::DenyAll,
};
use warden_passport::{Binding, Passport, Refusal, Verifier};
use warden_temporal::{WORKFLOW_SERVICE, passport::passport_in};
use warden_tower::Engine;

use crate::{ACTIVITY_SERVICE, activity::ActivityGuard, workflow};

/// The kinds a workflow-side check decides.
const WORKFLOW_KINDS: KindSet = KindSet::one(OperationKind::Execute)
    .with(OperationKind::Signal)
    .with(OperationKind::Query)
    .with(OperationKind::Update);

/// A worker's passport checks and policies; see the [crate docs](crate).
#[derive(Clone, Debug)]
pub struct WorkerGuard {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) verifier: Verifier,
    pub(crate) header_key: String,
    /// Policy versions, oldest first, each with the time (Unix seconds) it takes effect.
    versions: Vec<(u64, Engine)>,
    pub(crate) activity: Engine,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerGuard")
            .field("verifier", &self.verifier)
            .field("header_key", &self.header_key)
            .field(
                "versions",
                &self.versions.iter().map(|(at, _)| at).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A worker guard that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// A workflow-side policy is not deterministic: it may wait on I/O, or read a store or a
    /// clock, so a replay could decide differently.
    #[error(
        "the {kind} policy of the version since {since} is not deterministic: workflow-side checks run inside the workflow and must decide at once from the request alone (no remote, store-backed or cached policy); use it at the edge or for activities"
    )]
    NotDeterministic {
        /// The operation kind it was given for.
        kind: &'static str,
        /// The version's start (Unix seconds).
        since: u64,
    },
    /// Policy versions must take effect in increasing time order.
    #[error("policy version since {since} comes after the version since {previous}")]
    VersionOrder {
        /// The version's start.
        since: u64,
        /// The previous version's start.
        previous: u64,
    },
}

impl WorkerGuard {
    /// Starts a guard that verifies passports with `verifier`.
    pub fn builder(verifier: Verifier) -> WorkerGuardBuilder {
        WorkerGuardBuilder {
            verifier,
            header_key: warden_passport::HEADER_KEY.to_owned(),
            versions: vec![(0, Vec::new())],
            activity: None,
        }
    }

    /// The workflow interceptor, for `WorkerOptions::workflow_interceptor`.
    pub fn workflow_interceptor(
        &self,
    ) -> temporalio_sdk::workflow_interceptors::WorkflowInterceptorConstructor {
        workflow::constructor(Arc::clone(&self.shared))
    }

    /// The activity interceptor, for `WorkerOptions::activity_inbound_interceptor`.
    pub fn activity_interceptor(&self) -> ActivityGuard {
        ActivityGuard::new(Arc::clone(&self.shared))
    }
}

/// Builds a [`WorkerGuard`].
#[must_use]
pub struct WorkerGuardBuilder {
    verifier: Verifier,
    header_key: String,
    versions: Vec<(u64, Vec<KindPolicy>)>,
    activity: Option<SharedPolicy>,
}

/// A policy for some kinds, labelled for errors.
type KindPolicy = (&'static str, KindSet, SharedPolicy);

impl fmt::Debug for WorkerGuardBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerGuardBuilder")
            .field("verifier", &self.verifier)
            .field("header_key", &self.header_key)
            .finish_non_exhaustive()
    }
}

impl WorkerGuardBuilder {
    /// The Temporal header key passports travel under (default `warden-passport`).
    pub fn header_key(mut self, key: impl Into<String>) -> Self {
        self.header_key = key.into();
        self
    }

    fn add(mut self, label: &'static str, kinds: KindSet, policy: SharedPolicy) -> Self {
        if let Some((_, policies)) = self.versions.last_mut() {
            policies.push((label, kinds, policy));
        }
        self
    }

    /// Decides workflow starts with `policy` (in the current version).
    pub fn execute(self, policy: impl Policy) -> Self {
        self.add(
            "execute",
            KindSet::one(OperationKind::Execute),
            Arc::new(policy),
        )
    }

    /// Decides signals with `policy`.
    pub fn signal(self, policy: impl Policy) -> Self {
        self.add(
            "signal",
            KindSet::one(OperationKind::Signal),
            Arc::new(policy),
        )
    }

    /// Decides queries with `policy`.
    pub fn query(self, policy: impl Policy) -> Self {
        self.add(
            "query",
            KindSet::one(OperationKind::Query),
            Arc::new(policy),
        )
    }

    /// Decides updates with `policy`.
    pub fn update(self, policy: impl Policy) -> Self {
        self.add(
            "update",
            KindSet::one(OperationKind::Update),
            Arc::new(policy),
        )
    }

    /// Decides starts, signals, queries and updates with `policy`, beside any per-kind
    /// policy: every policy that applies must allow.
    pub fn policy_for_all(self, policy: impl Policy) -> Self {
        self.add("workflow", WORKFLOW_KINDS, Arc::new(policy))
    }

    /// The policies a policy config built for its operation kinds (as `warden proxy` reads
    /// them), for the kinds a worker sees.
    pub fn policies<'a>(
        mut self,
        kinds: impl IntoIterator<Item = (OperationKind, &'a SharedPolicy)>,
    ) -> Self {
        for (kind, policy) in kinds {
            if WORKFLOW_KINDS.contains(kind) {
                self = self.add(kind.as_str(), KindSet::one(kind), Arc::clone(policy));
            }
        }
        self
    }

    /// Starts a new policy version, in force for events from `since` (seconds since the Unix
    /// epoch) on; the policies given after this call belong to it. Events before `since` —
    /// on replay too — are still decided by the versions before it.
    pub fn version_since(mut self, since: u64) -> Self {
        self.versions.push((since, Vec::new()));
        self
    }

    /// Decides activities with `policy`, on behalf of the workflow's starter. Activity
    /// checks run outside the workflow: any policy will do. Without one, every activity is
    /// refused.
    pub fn activity(mut self, policy: impl Policy) -> Self {
        self.activity = Some(Arc::new(policy));
        self
    }

    /// Builds the guard, refusing policies that are not deterministic.
    pub fn build(self) -> Result<WorkerGuard, GuardError> {
        let mut versions = Vec::with_capacity(self.versions.len());
        let mut previous: Option<u64> = None;
        for (since, policies) in self.versions {
            if let Some(previous) = previous.filter(|previous| since <= *previous) {
                return Err(GuardError::VersionOrder { since, previous });
            }
            previous = Some(since);
            let mut engine = Engine::builder();
            for (label, kinds, policy) in policies {
                if !policy.deterministic() {
                    return Err(GuardError::NotDeterministic { kind: label, since });
                }
                engine = engine.kinds(kinds, policy);
            }
            versions.push((since, engine.build()));
        }
        let activity = Engine::builder()
            .execute(self.activity.unwrap_or_else(|| {
                Arc::new(DenyAll::with_reason(
                    "activity",
                    "no activity policy is configured",
                ))
            }))
            .build();
        Ok(WorkerGuard {
            shared: Arc::new(Shared {
                verifier: self.verifier,
                header_key: self.header_key,
                versions,
                activity,
            }),
        })
    }
}

/// What a workflow-side hook knows of the job it guards.
pub(crate) struct Job<'a> {
    pub(crate) namespace: &'a str,
    pub(crate) workflow_id: &'a str,
    pub(crate) workflow_type: &'a str,
    pub(crate) time: Option<SystemTime>,
    pub(crate) replaying: bool,
}

/// Why a job was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Denial {
    #[error("{0}")]
    Passport(#[from] Refusal),
    #[error("{0}")]
    Policy(String),
    #[error("the workflow has no time yet; nothing can be checked")]
    NoTime,
}

impl Denial {
    /// The engine's refusal; its `permission denied: ` prefix is the denial's own.
    pub(crate) fn refused(rejection: &warden_tower::Rejection) -> Self {
        let message = rejection.message();
        Self::Policy(
            message
                .strip_prefix("permission denied: ")
                .unwrap_or(message)
                .to_owned(),
        )
    }

    /// The refusal as the caller sees it: `permission denied: …`.
    pub(crate) fn message(&self) -> String {
        format!("permission denied: {self}")
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The RPC a job arrived through, as the edge classified it.
fn method(kind: OperationKind, with_start: bool) -> &'static str {
    match kind {
        OperationKind::Execute if with_start => "SignalWithStartWorkflowExecution",
        OperationKind::Execute => "StartWorkflowExecution",
        OperationKind::Signal => "SignalWorkflowExecution",
        OperationKind::Query => "QueryWorkflow",
        _ => "UpdateWorkflowExecution",
    }
}

impl Shared {
    /// Verifies the passport in `headers` for `kind`/`name` on `job`, then asks the policy
    /// version in force at the job's time. Synchronous, and a function of its arguments only.
    pub(crate) fn judge(
        &self,
        job: &Job<'_>,
        kind: OperationKind,
        name: Option<&str>,
        headers: &HashMap<String, Payload>,
    ) -> Result<Passport, Denial> {
        let outcome = self.decide(job, kind, name, headers);
        if let Err(denial) = &outcome {
            tracing::warn!(
                target: "warden::audit",
                door = "worker",
                outcome = "deny",
                kind = kind.as_str(),
                name = name.unwrap_or(""),
                namespace = job.namespace,
                workflow_id = job.workflow_id,
                workflow_type = job.workflow_type,
                replaying = job.replaying,
                reason = %denial,
                "refused before the handler",
            );
        }
        outcome
    }

    fn decide(
        &self,
        job: &Job<'_>,
        kind: OperationKind,
        name: Option<&str>,
        headers: &HashMap<String, Payload>,
    ) -> Result<Passport, Denial> {
        let now = unix_seconds(job.time.ok_or(Denial::NoTime)?);
        let token = passport_in(headers, &self.header_key).ok_or(Refusal::Missing)?;
        let mut expected = Binding::new(job.namespace, job.workflow_id, kind);
        if let Some(name) = name {
            expected = expected.with_name(name);
        }
        let passport = self.verifier.verify(token, &expected, now)?;
        let operation =
            Operation::new(kind, WORKFLOW_SERVICE, method(kind, passport.binding.start))
                .with_namespace(job.namespace)
                .with_instance(job.workflow_id)
                .with_workflow_type(job.workflow_type);
        let operation = match name {
            Some(name) => operation.with_name(name),
            None => operation,
        };
        let Some(engine) = self.version_at(now) else {
            return Err(Denial::Policy("no policy version is in force".into()));
        };
        authorize(engine, &passport, operation)?;
        Ok(passport)
    }

    fn version_at(&self, now: u64) -> Option<&Engine> {
        self.versions
            .iter()
            .rev()
            .find(|(since, _)| *since <= now)
            .map(|(_, engine)| engine)
    }

    /// The activity's operation, for the activity policy.
    pub(crate) fn activity_operation(
        namespace: &str,
        workflow_id: &str,
        workflow_type: &str,
        activity_type: &str,
    ) -> Operation {
        Operation::new(OperationKind::Execute, ACTIVITY_SERVICE, activity_type)
            .with_namespace(namespace)
            .with_instance(workflow_id)
            .with_workflow_type(workflow_type)
            .with_name(activity_type)
    }
}

/// Asks `engine` synchronously; a policy that would wait is a refusal, never a wait.
fn authorize(engine: &Engine, passport: &Passport, operation: Operation) -> Result<(), Denial> {
    let request = AuthzRequest::new(passport.claims.clone(), operation);
    match engine.authorize(&request) {
        Answer::Ready(Ok(_)) => Ok(()),
        Answer::Ready(Err(rejection)) => Err(Denial::refused(&rejection)),
        Answer::Pending(_) => Err(Denial::Policy(
            "a policy did not decide at once, which a workflow cannot wait for".into(),
        )),
    }
}
