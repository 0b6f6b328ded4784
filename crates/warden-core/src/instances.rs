//! Who started an instance, and who takes part in it: the state instance-level policies read.
//!
//! The initiator is recorded when an `Execute` call succeeds; participants are added and
//! removed through [`InstanceStore`]. [`MemoryInstanceStore`] serves one process; a shared
//! store (Redis) lets several replicas agree. A store that cannot answer fails the decision,
//! and enforcement denies the call `UNAVAILABLE`.

use std::{
    collections::{BTreeSet, HashMap},
    fmt,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use crate::{Answer, BoxFuture};

/// One workflow instance: its namespace and id (runs of one id share access).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKey {
    /// The namespace (empty for services without one).
    pub namespace: String,
    /// The instance (workflow) id.
    pub instance: String,
}

impl InstanceKey {
    /// The key of `instance` in `namespace`.
    pub fn new(namespace: impl Into<String>, instance: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            instance: instance.into(),
        }
    }
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.instance)
    }
}

/// What a store knows about an instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceRecord {
    /// Who started it.
    pub initiator: Option<String>,
    /// Who else takes part.
    pub participants: BTreeSet<String>,
}

/// A store that could not answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("instance store unavailable: {0}")]
pub struct StoreError(pub String);

/// The answer of a store read.
pub type StoreRead = Answer<Result<InstanceRecord, StoreError>>;
/// The answer of a store write.
pub type StoreWrite = BoxFuture<Result<(), StoreError>>;

/// Where initiators and participants live.
pub trait InstanceStore: Send + Sync + 'static {
    /// The record of `key` (empty when nothing is known). In-memory stores answer at once.
    fn get(&self, key: &InstanceKey) -> StoreRead;

    /// Records `subject` as the initiator of `key`, unless one is recorded already: the first
    /// start wins, so a later start of the same id cannot take an instance over.
    fn record_initiator(&self, key: &InstanceKey, subject: &str) -> StoreWrite;

    /// Adds a participant.
    fn add_participant(&self, key: &InstanceKey, subject: &str) -> StoreWrite;

    /// Removes a participant.
    fn remove_participant(&self, key: &InstanceKey, subject: &str) -> StoreWrite;

    /// A number that changes whenever this store (through this handle) changes, so decision
    /// caches can drop what they derived from it. Shared stores also change through other
    /// replicas; caches bound that staleness with their time to live.
    fn version(&self) -> u64 {
        0
    }
}

impl<S: InstanceStore + ?Sized> InstanceStore for Arc<S> {
    fn get(&self, key: &InstanceKey) -> StoreRead {
        (**self).get(key)
    }
    fn record_initiator(&self, key: &InstanceKey, subject: &str) -> StoreWrite {
        (**self).record_initiator(key, subject)
    }
    fn add_participant(&self, key: &InstanceKey, subject: &str) -> StoreWrite {
        (**self).add_participant(key, subject)
    }
    fn remove_participant(&self, key: &InstanceKey, subject: &str) -> StoreWrite {
        (**self).remove_participant(key, subject)
    }
    fn version(&self) -> u64 {
        (**self).version()
    }
}

/// A store shared between layers and policies.
pub type SharedInstanceStore = Arc<dyn InstanceStore>;

/// An in-memory store for one process.
#[derive(Clone, Debug, Default)]
pub struct MemoryInstanceStore {
    records: Arc<RwLock<HashMap<InstanceKey, InstanceRecord>>>,
    version: Arc<AtomicU64>,
}

impl MemoryInstanceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn edit(&self, key: &InstanceKey, f: impl FnOnce(&mut InstanceRecord)) -> StoreWrite {
        let mut records = self.records.write().unwrap_or_else(PoisonError::into_inner);
        f(records.entry(key.clone()).or_default());
        self.version.fetch_add(1, Ordering::AcqRel);
        Box::pin(std::future::ready(Ok(())))
    }
}

impl InstanceStore for MemoryInstanceStore {
    fn get(&self, key: &InstanceKey) -> StoreRead {
        let records = self.records.read().unwrap_or_else(PoisonError::into_inner);
        Answer::Ready(Ok(records.get(key).cloned().unwrap_or_default()))
    }

    fn record_initiator(&self, key: &InstanceKey, subject: &str) -> StoreWrite {
        self.edit(key, |r| {
            r.initiator.get_or_insert_with(|| subject.to_owned());
        })
    }

    fn add_participant(&self, key: &InstanceKey, subject: &str) -> StoreWrite {
        self.edit(key, |r| {
            r.participants.insert(subject.to_owned());
        })
    }

    fn remove_participant(&self, key: &InstanceKey, subject: &str) -> StoreWrite {
        self.edit(key, |r| {
            r.participants.remove(subject);
        })
    }

    fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_initiator_wins_and_participants_come_and_go() {
        let store = MemoryInstanceStore::new();
        let key = InstanceKey::new("orders", "o-1");
        store.record_initiator(&key, "alice").await.unwrap();
        store.record_initiator(&key, "mallory").await.unwrap();
        store.add_participant(&key, "bob").await.unwrap();
        store.add_participant(&key, "carol").await.unwrap();
        store.remove_participant(&key, "carol").await.unwrap();
        let record = store.get(&key).await.unwrap();
        assert_eq!(record.initiator.as_deref(), Some("alice"));
        assert_eq!(record.participants.into_iter().collect::<Vec<_>>(), ["bob"]);
        let unknown = store.get(&InstanceKey::new("orders", "o-2")).await.unwrap();
        assert_eq!(unknown, InstanceRecord::default());
    }
}
