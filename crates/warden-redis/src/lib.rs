//! A Redis [`InstanceStore`] for Warden: several replicas agree on who started an instance
//! and who takes part in it.
//!
//! The initiator is a string key written with `SET NX` (the first start wins, across
//! replicas); participants are a set. Every command has a timeout; a store that cannot be
//! reached answers an error, and enforcement denies the call `UNAVAILABLE`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use warden_redis::RedisInstanceStore;
//!
//! let store = RedisInstanceStore::connect("redis://127.0.0.1:6379/").await?;
//! # let _ = store;
//! # Ok(()) }
//! ```

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use redis::{AsyncCommands, aio::ConnectionManager};
use warden_core::{
    Answer,
    instances::{InstanceKey, InstanceRecord, InstanceStore, StoreError, StoreRead, StoreWrite},
};

/// How long one Redis command may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Initiators and participants in Redis; see the [crate docs](crate).
#[derive(Clone)]
pub struct RedisInstanceStore {
    connection: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
    /// Writes through this handle (other replicas' writes are bounded by cache TTLs).
    version: Arc<AtomicU64>,
}

impl std::fmt::Debug for RedisInstanceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisInstanceStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError(format!("redis: {error}"))
}

/// Why a Redis instance store could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a Redis URL (it is not repeated: it may hold a password).
    #[error("instances.url: not a Redis URL: {reason}")]
    Url {
        /// What the client said.
        reason: String,
    },
    /// The server did not answer.
    #[error("instances: redis unreachable: {reason}")]
    Unreachable {
        /// Why.
        reason: String,
    },
}

impl RedisInstanceStore {
    /// Connects to `url` (`redis://host:port/db`), with keys under `warden:` and a 1 s
    /// command timeout. The connection reconnects by itself after a failure.
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::connect_with(url, "warden", DEFAULT_TIMEOUT).await
    }

    /// Connects with a key prefix and a command timeout of your choice.
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        timeout: Duration,
    ) -> Result<Self, ConnectError> {
        let store = Self::lazy(url, prefix, timeout)?;
        let unreachable = |reason: String| ConnectError::Unreachable { reason };
        // The first connection may take its retry: three command timeouts, not one.
        let limit = timeout * 3;
        tokio::time::timeout(limit, store.send_ping())
            .await
            .map_err(|_| unreachable(format!("no connection within {limit:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(store)
    }

    /// A store that connects on its first command rather than now, for a server that must
    /// start while Redis is down: until Redis answers, every command fails within `timeout`
    /// (and enforcement denies the call `UNAVAILABLE`); each call tries to connect again.
    /// Only a malformed URL is an error here.
    pub fn lazy(url: &str, prefix: &str, timeout: Duration) -> Result<Self, ConnectError> {
        let client = redis::Client::open(url).map_err(|e| ConnectError::Url {
            reason: e.to_string(),
        })?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            ConnectError::Url {
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            connection,
            prefix: prefix.into(),
            timeout,
            version: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Whether Redis answers a `PING` within the command timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        tokio::time::timeout(self.timeout, self.send_ping())
            .await
            .map_err(|_| unavailable(format!("no answer within {:?}", self.timeout)))?
            .map_err(unavailable)?;
        Ok(())
    }

    /// `PING`, connecting first if need be, with no deadline of its own.
    async fn send_ping(&self) -> redis::RedisResult<String> {
        let mut connection = self.connection.clone();
        redis::cmd("PING").query_async(&mut connection).await
    }

    /// `prefix:kind:<len>:namespace:instance` — the length keeps `a:b`/`c` apart from `a`/`b:c`.
    fn key(&self, kind: &str, key: &InstanceKey) -> String {
        format!(
            "{}:{kind}:{}:{}:{}",
            self.prefix,
            key.namespace.len(),
            key.namespace,
            key.instance
        )
    }

    fn write<F>(&self, command: F) -> StoreWrite
    where
        F: FnOnce(ConnectionManager) -> redis::RedisFuture<'static, ()> + Send + 'static,
    {
        let (connection, timeout) = (self.connection.clone(), self.timeout);
        let version = Arc::clone(&self.version);
        Box::pin(async move {
            let result = tokio::time::timeout(timeout, command(connection))
                .await
                .map_err(|_| unavailable(format!("no answer within {timeout:?}")))?
                .map_err(unavailable);
            version.fetch_add(1, Ordering::AcqRel);
            result
        })
    }
}

impl InstanceStore for RedisInstanceStore {
    fn get(&self, key: &InstanceKey) -> StoreRead {
        let (initiator, participants) = (self.key("initiator", key), self.key("participants", key));
        let (mut connection, timeout) = (self.connection.clone(), self.timeout);
        Answer::pending(async move {
            let read = async {
                redis::pipe()
                    .get(&initiator)
                    .smembers(&participants)
                    .query_async::<(Option<String>, std::collections::BTreeSet<String>)>(
                        &mut connection,
                    )
                    .await
            };
            let (initiator, participants) = tokio::time::timeout(timeout, read)
                .await
                .map_err(|_| unavailable(format!("no answer within {timeout:?}")))?
                .map_err(unavailable)?;
            Ok(InstanceRecord {
                initiator,
                participants,
            })
        })
    }

    fn record_initiator(&self, key: &InstanceKey, subject: &str) -> StoreWrite {
        let (name, subject) = (self.key("initiator", key), subject.to_owned());
        self.write(move |mut c| {
            Box::pin(async move {
                let _: Option<String> = redis::cmd("SET")
                    .arg(&name)
                    .arg(&subject)
                    .arg("NX")
                    .query_async(&mut c)
                    .await?;
                Ok(())
            })
        })
    }

    fn add_participant(&self, key: &InstanceKey, subject: &str) -> StoreWrite {
        let (name, subject) = (self.key("participants", key), subject.to_owned());
        self.write(move |mut c| {
            Box::pin(async move {
                let _: i64 = c.sadd(&name, &subject).await?;
                Ok(())
            })
        })
    }

    fn remove_participant(&self, key: &InstanceKey, subject: &str) -> StoreWrite {
        let (name, subject) = (self.key("participants", key), subject.to_owned());
        self.write(move |mut c| {
            Box::pin(async move {
                let _: i64 = c.srem(&name, &subject).await?;
                Ok(())
            })
        })
    }

    fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
}
