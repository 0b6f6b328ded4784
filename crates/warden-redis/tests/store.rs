//! The Redis store against a real `redis-server` on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use warden_core::instances::{InstanceKey, InstanceStore};
use warden_example::redis_server::RedisServer;
use warden_redis::RedisInstanceStore;

#[tokio::test]
async fn replicas_agree_the_first_initiator_wins_and_participants_come_and_go() {
    let redis = RedisServer::start();
    let (a, b) = (
        RedisInstanceStore::connect(&redis.url).await.unwrap(),
        RedisInstanceStore::connect(&redis.url).await.unwrap(),
    );
    let key = InstanceKey::new("orders", "o-1");
    a.record_initiator(&key, "alice").await.unwrap();
    b.record_initiator(&key, "mallory").await.unwrap();
    b.add_participant(&key, "bob").await.unwrap();
    a.add_participant(&key, "carol").await.unwrap();
    b.remove_participant(&key, "carol").await.unwrap();
    for store in [&a, &b] {
        let record = store.get(&key).await.unwrap();
        assert_eq!(record.initiator.as_deref(), Some("alice"));
        assert_eq!(record.participants.iter().collect::<Vec<_>>(), ["bob"]);
    }
    assert_eq!(
        a.get(&InstanceKey::new("orders", "o-2"))
            .await
            .unwrap()
            .initiator,
        None
    );
}

#[tokio::test]
async fn ids_containing_the_separator_never_share_a_record() {
    let redis = RedisServer::start();
    let store = RedisInstanceStore::connect(&redis.url).await.unwrap();
    // Joined with `:` alone, both would be `orders:o:1`.
    let (one, other) = (
        InstanceKey::new("orders", "o:1"),
        InstanceKey::new("orders:o", "1"),
    );
    store.record_initiator(&one, "alice").await.unwrap();
    store.add_participant(&one, "bob").await.unwrap();
    let record = store.get(&other).await.unwrap();
    assert_eq!(record.initiator, None, "the initiator leaked across keys");
    assert!(record.participants.is_empty(), "participants leaked");
    store.record_initiator(&other, "mallory").await.unwrap();
    let record = store.get(&one).await.unwrap();
    assert_eq!(record.initiator.as_deref(), Some("alice"));
    assert_eq!(
        store.get(&other).await.unwrap().initiator.as_deref(),
        Some("mallory")
    );
}

#[tokio::test]
async fn an_unreachable_store_answers_an_error_within_its_timeout() {
    let mut redis = RedisServer::start();
    let store = RedisInstanceStore::connect_with(&redis.url, "t", Duration::from_millis(300))
        .await
        .unwrap();
    let key = InstanceKey::new("orders", "o-1");
    store.record_initiator(&key, "alice").await.unwrap();
    redis.stop();
    let started = std::time::Instant::now();
    let error = store.get(&key).await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("instance store unavailable: redis:"),
        "{error}"
    );
    assert!(store.record_initiator(&key, "bob").await.is_err());
    // Bounded by the timeouts, not hanging (generous: this is a shared machine).
    assert!(started.elapsed() < Duration::from_secs(10));
    let refused =
        RedisInstanceStore::connect_with(&redis.url, "t", Duration::from_millis(300)).await;
    assert!(
        matches!(refused, Err(warden_redis::ConnectError::Unreachable { .. })),
        "{refused:?}"
    );
    let bad_url = RedisInstanceStore::connect("redis://user:s3cret@[not-a-host").await;
    let error = bad_url.unwrap_err();
    assert!(
        matches!(error, warden_redis::ConnectError::Url { .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains("s3cret"), "{error}");
}

#[tokio::test]
async fn a_lazy_store_made_while_redis_is_down_fails_each_command_in_time_then_connects_once_it_is_up()
 {
    let mut redis = RedisServer::start();
    redis.stop();
    let store = RedisInstanceStore::lazy(&redis.url, "t", Duration::from_millis(300)).unwrap();
    let key = InstanceKey::new("orders", "o-1");
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let error = store.get(&key).await.unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("instance store unavailable: redis:"),
            "{error}"
        );
        assert!(store.ping().await.is_err());
        assert!(started.elapsed() < Duration::from_secs(10), "bounded");
    }

    redis.restart();
    let mut connected = false;
    for _ in 0..50 {
        if store.record_initiator(&key, "alice").await.is_ok() {
            connected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(connected, "the lazy store connected once Redis was up");
    assert_eq!(
        store.get(&key).await.unwrap().initiator.as_deref(),
        Some("alice")
    );
    store.ping().await.unwrap();
}
