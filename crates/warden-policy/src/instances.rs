//! Instance-level access, as in Automatiko: who may touch *this* workflow.
//!
//! - **participants**: the initiator, an admin (of the namespace or system-wide) or a current
//!   participant may read, query, signal, update, cancel or terminate the instance;
//! - **initiator**: like participants, but only the initiator or an admin may update, cancel
//!   or terminate; participants may read, query and signal;
//! - **allow-all** is [`AllowAll`](warden_core::policy::AllowAll), and composites are
//!   [`AllOf`](warden_core::policy::AllOf) (all must allow).
//!
//! Calls that name no instance, and starts, are not these policies' to decide (`not
//! applicable`). A signal-with-start is judged as a signal when the instance is known, as a
//! start otherwise. An instance with no recorded initiator admits only admins. A store that
//! cannot answer is a policy error: the call is denied `UNAVAILABLE`.

use std::sync::Arc;

use warden_core::{
    Answer, AuthzRequest, Claims, Decision, Evaluation, Operation, OperationKind, Policy,
    PolicyError, Roles,
    instances::{InstanceKey, InstanceRecord, SharedInstanceStore},
};

/// Who besides the initiator and admins may do what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceMode {
    /// Participants may do everything the initiator may.
    Participants,
    /// Participants may read, query and signal; only the initiator (or an admin) may update,
    /// cancel or terminate.
    Initiator,
}

/// An instance-level policy; see the [module docs](self).
#[derive(Clone)]
pub struct InstancePolicy {
    store: SharedInstanceStore,
    mode: InstanceMode,
    decider: Arc<str>,
}

impl std::fmt::Debug for InstancePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstancePolicy")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// What an instance-scoped call does, for this policy.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Touch {
    /// Reads, queries, signals.
    Use,
    /// Updates, cancels, terminates.
    Change,
    /// Signal-with-start: a signal if the instance is known, a start otherwise.
    SignalOrStart,
}

fn touch(op: &Operation) -> Option<Touch> {
    op.instance_id.as_deref().filter(|id| !id.is_empty())?;
    match op.kind {
        OperationKind::Read | OperationKind::Query | OperationKind::Signal => Some(Touch::Use),
        OperationKind::Update | OperationKind::Cancel | OperationKind::Terminate => {
            Some(Touch::Change)
        }
        OperationKind::Execute if op.is(OperationKind::Signal) => Some(Touch::SignalOrStart),
        _ => None,
    }
}

impl InstancePolicy {
    /// The *participants* policy over `store`.
    pub fn participants(store: SharedInstanceStore) -> Self {
        Self {
            store,
            mode: InstanceMode::Participants,
            decider: "instances/participants".into(),
        }
    }

    /// The *initiator* policy over `store`.
    pub fn initiator(store: SharedInstanceStore) -> Self {
        Self {
            store,
            mode: InstanceMode::Initiator,
            decider: "instances/initiator".into(),
        }
    }

    fn decide(
        &self,
        touch: Touch,
        claims: &Claims,
        op: &Operation,
        record: InstanceRecord,
    ) -> Decision {
        let decider = Arc::clone(&self.decider);
        let subject = claims.subject.as_deref().unwrap_or_default();
        if record.initiator.is_none() {
            if touch == Touch::SignalOrStart {
                return Decision::not_applicable(decider);
            }
            return Decision::deny(
                decider,
                "no initiator is recorded for this instance; only admins may touch it",
            );
        }
        if record.initiator.as_deref() == Some(subject) {
            return Decision::allow(decider).with_reason("initiator");
        }
        if record.participants.contains(subject) {
            if self.mode == InstanceMode::Participants || touch != Touch::Change {
                return Decision::allow(decider).with_reason("participant");
            }
            return Decision::deny(
                decider,
                format!(
                    "only the initiator or an admin may {} this instance",
                    verb(op.kind)
                ),
            );
        }
        Decision::deny(
            decider,
            "only the initiator, a participant or an admin may touch this instance",
        )
    }
}

fn verb(kind: OperationKind) -> &'static str {
    match kind {
        OperationKind::Update => "update",
        OperationKind::Cancel => "cancel",
        _ => "terminate",
    }
}

impl Policy for InstancePolicy {
    fn reads_metadata(&self) -> bool {
        false
    }

    fn evaluate(&self, request: &AuthzRequest) -> Evaluation {
        let op = &request.operation;
        let Some(touch) = touch(op) else {
            return Answer::Ready(Ok(Decision::not_applicable(Arc::clone(&self.decider))));
        };
        let claims = &request.subject;
        if claims
            .role_in(op.namespace.as_deref())
            .at_least(Roles::ADMIN)
        {
            return Answer::Ready(Ok(
                Decision::allow(Arc::clone(&self.decider)).with_reason("admin")
            ));
        }
        if claims.is_anonymous() {
            return Answer::Ready(Ok(Decision::deny(
                Arc::clone(&self.decider),
                "anonymous callers cannot touch an instance",
            )));
        }
        let key = InstanceKey::new(
            op.namespace.clone().unwrap_or_default(),
            op.instance_id.clone().unwrap_or_default(),
        );
        let unavailable =
            |e: warden_core::instances::StoreError| PolicyError::unavailable(e.to_string());
        match self.store.get(&key) {
            Answer::Ready(record) => Answer::Ready(
                record
                    .map(|record| self.decide(touch, claims, op, record))
                    .map_err(unavailable),
            ),
            Answer::Pending(read) => {
                let (policy, request) = (self.clone(), request.clone());
                Answer::pending(async move {
                    let record = read.await.map_err(unavailable)?;
                    Ok(policy.decide(touch, &request.subject, &request.operation, record))
                })
            }
        }
    }
}
