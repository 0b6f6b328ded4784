use std::{fmt, str::FromStr, sync::Arc};

use crate::Args;

/// What a call does to an instance, in the taxonomy Temporal and Automatiko share.
///
/// An unknown method is [`OperationKind::Other`] and is authorized like any call: nothing is let
/// through unclassified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum OperationKind {
    /// Start or create an instance.
    Execute = 0,
    /// Send a signal to an instance.
    Signal = 1,
    /// Ask an instance a question without changing it.
    Query = 2,
    /// Change an instance and wait for the result.
    Update = 3,
    /// Request cancellation of an instance.
    Cancel = 4,
    /// End an instance at once (or delete it).
    Terminate = 5,
    /// Describe, list or read the history of instances.
    Read = 6,
    /// Poll for and respond to work, as a worker does.
    Worker = 7,
    /// Administer the system: namespaces, clusters, search attributes.
    Admin = 8,
    /// Anything else, including methods no map knows.
    Other = 9,
}

impl OperationKind {
    /// Every kind, in declaration order.
    pub const ALL: [OperationKind; 10] = [
        Self::Execute,
        Self::Signal,
        Self::Query,
        Self::Update,
        Self::Cancel,
        Self::Terminate,
        Self::Read,
        Self::Worker,
        Self::Admin,
        Self::Other,
    ];

    /// The lowercase name used in config, logs and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Execute => "execute",
            Self::Signal => "signal",
            Self::Query => "query",
            Self::Update => "update",
            Self::Cancel => "cancel",
            Self::Terminate => "terminate",
            Self::Read => "read",
            Self::Worker => "worker",
            Self::Admin => "admin",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown operation kind name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown operation kind `{name}`; expected one of execute, signal, query, update, cancel, terminate, read, worker, admin, other"
)]
pub struct ParseKindError {
    name: String,
}

impl FromStr for OperationKind {
    type Err = ParseKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseKindError { name: s.to_owned() })
    }
}

/// A set of [`OperationKind`]s, as a bit set: cheap to copy and to test.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct KindSet(u16);

impl KindSet {
    /// No kind.
    pub const EMPTY: Self = Self(0);
    /// Every kind.
    pub const ALL: Self = Self((1 << OperationKind::ALL.len()) - 1);

    /// A set holding one kind.
    #[inline]
    pub const fn one(kind: OperationKind) -> Self {
        Self(1 << kind as u16)
    }

    /// This set with `kind` added.
    #[must_use]
    #[inline]
    pub const fn with(self, kind: OperationKind) -> Self {
        Self(self.0 | 1 << kind as u16)
    }

    /// Whether `kind` is in the set.
    #[inline]
    pub const fn contains(self, kind: OperationKind) -> bool {
        self.0 & (1 << kind as u16) != 0
    }

    /// Whether the set is empty.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = OperationKind> {
        OperationKind::ALL
            .into_iter()
            .filter(move |kind| self.contains(*kind))
    }
}

impl FromIterator<OperationKind> for KindSet {
    fn from_iter<I: IntoIterator<Item = OperationKind>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::with)
    }
}

impl fmt::Debug for KindSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The text of an operation's targets: an immutable string that keeps up to 23 bytes inline
/// (namespaces, most workflow ids, signal and query names) and shares longer ones, so decoding
/// a call's targets allocates nothing in the usual case. It derefs to `str`:
/// `op.namespace.as_deref() == Some("orders")`.
pub type Text = smol_str::SmolStr;

/// What one call (or one message of a stream) asks to do, decoded from its method and payload.
///
/// Text fields are `None` when the call does not carry them (proto3's empty string counts as
/// absent). `args` holds the arguments, decoded as JSON on first read.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Operation {
    /// The kind of operation.
    pub kind: OperationKind,
    /// Further kinds the call also performs (signal-with-start is also a signal).
    pub also: KindSet,
    /// The fully qualified service (`package.Service`), or `http` for plain HTTP routes.
    pub service: Arc<str>,
    /// The method name (`SignalWorkflow`), or the HTTP route template.
    pub method: Arc<str>,
    /// The namespace the call targets.
    pub namespace: Option<Text>,
    /// The instance (workflow id) the call targets.
    pub instance_id: Option<Text>,
    /// The run of the instance.
    pub run_id: Option<Text>,
    /// The workflow type, for calls that name one.
    pub workflow_type: Option<Text>,
    /// The task queue, for calls that name one.
    pub task_queue: Option<Text>,
    /// The operation name: the signal name, query type or update name.
    pub name: Option<Text>,
    /// The arguments, decoded as JSON when a policy first reads them.
    pub args: Args,
}

impl Operation {
    /// An operation of `kind` on `service`/`method` with no target yet.
    pub fn new(
        kind: OperationKind,
        service: impl Into<Arc<str>>,
        method: impl Into<Arc<str>>,
    ) -> Self {
        Self {
            kind,
            also: KindSet::EMPTY,
            service: service.into(),
            method: method.into(),
            namespace: None,
            instance_id: None,
            run_id: None,
            workflow_type: None,
            task_queue: None,
            name: None,
            args: Args::none(),
        }
    }

    /// Whether the operation is of `kind`, as its main kind or as one it also performs.
    #[inline]
    pub fn is(&self, kind: OperationKind) -> bool {
        self.kind == kind || self.also.contains(kind)
    }

    /// Whether the operation is of any kind in `kinds`.
    #[inline]
    pub fn is_any(&self, kinds: KindSet) -> bool {
        kinds.contains(self.kind) || kinds.0 & self.also.0 != 0
    }

    /// Sets the namespace (an empty string means none).
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl AsRef<str>) -> Self {
        self.namespace = non_empty(namespace.as_ref());
        self
    }

    /// Sets the instance id (an empty string means none).
    #[must_use]
    pub fn with_instance(mut self, instance_id: impl AsRef<str>) -> Self {
        self.instance_id = non_empty(instance_id.as_ref());
        self
    }

    /// Sets the run id (an empty string means none).
    #[must_use]
    pub fn with_run(mut self, run_id: impl AsRef<str>) -> Self {
        self.run_id = non_empty(run_id.as_ref());
        self
    }

    /// Sets the workflow type (an empty string means none).
    #[must_use]
    pub fn with_workflow_type(mut self, workflow_type: impl AsRef<str>) -> Self {
        self.workflow_type = non_empty(workflow_type.as_ref());
        self
    }

    /// Sets the task queue (an empty string means none).
    #[must_use]
    pub fn with_task_queue(mut self, task_queue: impl AsRef<str>) -> Self {
        self.task_queue = non_empty(task_queue.as_ref());
        self
    }

    /// Sets the operation name: signal name, query type or update name.
    #[must_use]
    pub fn with_name(mut self, name: impl AsRef<str>) -> Self {
        self.name = non_empty(name.as_ref());
        self
    }

    /// Sets the decoded arguments.
    #[must_use]
    pub fn with_args(mut self, args: serde_json::Value) -> Self {
        self.args = Args::from_value(args);
        self
    }

    /// Sets the arguments as JSON bytes, parsed only if a policy reads them.
    #[must_use]
    pub fn with_json_args(mut self, bytes: impl Into<bytes::Bytes>) -> Self {
        self.args = Args::from_json_bytes(bytes);
        self
    }

    /// Adds a kind the operation also performs.
    #[must_use]
    pub fn also(mut self, kind: OperationKind) -> Self {
        self.also = self.also.with(kind);
        self
    }
}

fn non_empty(value: &str) -> Option<Text> {
    (!value.is_empty()).then(|| Text::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip_case_insensitively() {
        for kind in OperationKind::ALL {
            assert_eq!(
                kind.as_str().to_uppercase().parse::<OperationKind>(),
                Ok(kind)
            );
        }
        assert!("delete".parse::<OperationKind>().is_err());
    }

    #[test]
    fn kind_set_holds_exactly_what_was_added() {
        let set: KindSet = [OperationKind::Signal, OperationKind::Other]
            .into_iter()
            .collect();
        assert!(set.contains(OperationKind::Signal));
        assert!(set.contains(OperationKind::Other));
        assert!(!set.contains(OperationKind::Query));
        assert_eq!(KindSet::ALL.iter().count(), OperationKind::ALL.len());
    }

    #[test]
    fn secondary_kind_counts_for_matching() {
        let op = Operation::new(OperationKind::Execute, "s", "SignalWithStart")
            .also(OperationKind::Signal);
        assert!(op.is(OperationKind::Signal));
        assert!(op.is_any(KindSet::one(OperationKind::Signal)));
        assert!(!op.is(OperationKind::Query));
    }

    #[test]
    fn empty_strings_are_absent_targets() {
        let op = Operation::new(OperationKind::Read, "s", "m")
            .with_namespace("")
            .with_instance("wf");
        assert_eq!(op.namespace, None);
        assert_eq!(op.instance_id.as_deref(), Some("wf"));
    }
}
