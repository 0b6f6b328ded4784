//! A bounded cache of verified credentials whose entries never outlive the credential.

use std::{
    collections::HashMap,
    hash::BuildHasher,
    sync::{Mutex, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

const SHARDS: usize = 16;

/// Seconds since the Unix epoch, the unit of JWT `exp` and certificate `notAfter`.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Verified credentials (the full token or certificate bytes) → what they proved.
///
/// An entry is served only while `now < expires` and only for the key generation it was
/// verified under, so neither an expired token nor one signed by a since-removed key is ever
/// answered from the cache. Full keys are compared, never just hashes. When a shard is full,
/// expired entries go first, then an arbitrary one.
type Shard<V> = Mutex<HashMap<Box<[u8]>, Entry<V>, foldhash::fast::RandomState>>;

pub(crate) struct ExpiringCache<V> {
    shards: Box<[Shard<V>]>,
    per_shard: usize,
    hasher: foldhash::fast::RandomState,
}

struct Entry<V> {
    value: V,
    expires: u64,
    generation: u64,
}

impl<V: Clone> ExpiringCache<V> {
    /// A cache of at most about `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
            per_shard,
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn shard(&self, key: &[u8]) -> &Shard<V> {
        let index = self.hasher.hash_one(key) as usize % SHARDS;
        &self.shards[index]
    }

    /// The value cached for `key`, if still valid at `now` under key `generation`.
    pub(crate) fn get(&self, key: &[u8], now: u64, generation: u64) -> Option<V> {
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = shard.get(key)?;
        if now < entry.expires && entry.generation == generation {
            return Some(entry.value.clone());
        }
        shard.remove(key);
        None
    }

    /// Caches `value` for `key` until `expires` (seconds since the epoch).
    pub(crate) fn insert(&self, key: &[u8], value: V, expires: u64, generation: u64) {
        let now = unix_now();
        if expires <= now {
            return;
        }
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= self.per_shard && !shard.contains_key(key) {
            shard.retain(|_, entry| entry.expires > now && entry.generation == generation);
            if shard.len() >= self.per_shard
                && let Some(victim) = shard.keys().next().cloned()
            {
                shard.remove(&victim);
            }
        }
        shard.insert(
            key.into(),
            Entry {
                value,
                expires,
                generation,
            },
        );
    }

    /// How many entries are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_with_the_credential() {
        let cache = ExpiringCache::new(8);
        let now = unix_now();
        cache.insert(b"token", 1, now + 10, 0);
        assert_eq!(cache.get(b"token", now, 0), Some(1));
        assert_eq!(cache.get(b"token", now + 10, 0), None);
        // An expired entry is dropped on sight, and expired credentials are never stored.
        assert_eq!(cache.get(b"token", now, 0), None);
        cache.insert(b"old", 2, now - 1, 0);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_new_key_generation_invalidates_entries() {
        let cache = ExpiringCache::new(8);
        let now = unix_now();
        cache.insert(b"token", 1, now + 10, 3);
        assert_eq!(cache.get(b"token", now, 4), None);
        assert_eq!(cache.get(b"token", now, 3), None);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = ExpiringCache::new(32);
        let now = unix_now();
        for i in 0..10_000u32 {
            cache.insert(&i.to_be_bytes(), i, now + 60, 0);
        }
        assert!(cache.len() <= 32, "{} entries", cache.len());
        let last = 9_999u32;
        assert_eq!(cache.get(&last.to_be_bytes(), now, 0), Some(last));
    }
}
