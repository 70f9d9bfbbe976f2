//! Revisions as Redis holds them: the stored format, values that are not records,
//! conflicts, the conditional-write script's cache, and what `INFO commandstats` counts.
//! Each test runs its own `redis-server`, so that `SCRIPT FLUSH` and command counts
//! concern it alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use redis::aio::MultiplexedConnection;
use session_core::store::conformance::new_key;
use session_core::store::{Loaded, Revision, Store, StoreError, StoreKey};
use session_redis::RedisStore;
use session_testkit::RedisServer;

fn hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

async fn start() -> (RedisServer, RedisStore, MultiplexedConnection) {
    let server = RedisServer::start().unwrap();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    (server, store, raw)
}

async fn get(raw: &mut MultiplexedConnection, key: &StoreKey) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key.as_str())
        .query_async(raw)
        .await
        .unwrap()
}

/// Writes `value` as it is, without the revision in front that the store writes.
async fn set_raw(raw: &mut MultiplexedConnection, key: &StoreKey, value: &[u8]) {
    let () = redis::cmd("SET")
        .arg(key.as_str())
        .arg(value)
        .arg("PX")
        .arg(3_600_000)
        .query_async(raw)
        .await
        .unwrap();
}

fn record(loaded: &Loaded) -> (&[u8], Revision) {
    (loaded.value(), loaded.revision())
}

/// The current record a conflict carries; fails on any other answer.
fn conflict<T: std::fmt::Debug>(result: Result<T, StoreError>) -> Loaded {
    match result {
        Err(StoreError::Conflict {
            current: Some(current),
        }) => current,
        other => panic!("expected a conflict with the current record, got {other:?}"),
    }
}

/// The commands `server` executed while `operation` ran, by name, with their calls, and
/// how many of them the client sent, as [`RedisServer::client_commands`] counts them.
async fn calls<F: std::future::Future>(
    server: &RedisServer,
    operation: F,
) -> (F::Output, BTreeMap<String, u64>, u64) {
    let sent_before = server.client_commands().unwrap();
    let (output, calls) = server.calls_during(operation).await;
    let sent = server.client_commands().unwrap() - sent_before;
    (output, calls, sent)
}

fn counts<const N: usize>(expected: [(&str, u64); N]) -> BTreeMap<String, u64> {
    expected
        .into_iter()
        .map(|(name, calls)| (name.to_owned(), calls))
        .collect()
}

#[tokio::test]
async fn values_are_the_revision_in_hex_then_the_record() {
    let (_server, store, mut raw) = start().await;
    let key = new_key();
    let first = store.create(&key, br#"{"n":1}"#, hour()).await.unwrap();
    assert_eq!(first, Revision::FIRST);
    assert_eq!(
        get(&mut raw, &key).await.unwrap(),
        br#"0000000000000001{"n":1}"#
    );
    let second = store
        .update(&key, br#"{"n":2}"#, hour(), first)
        .await
        .unwrap();
    assert_ne!(second, first);
    assert_eq!(
        get(&mut raw, &key).await.unwrap(),
        format!("{:016x}{{\"n\":2}}", second.get()).into_bytes()
    );

    let later = hour() + Duration::from_secs(3600);
    store.touch(&key, later).await.unwrap();
    let touched = store.load_and_touch(&key, later).await.unwrap().unwrap();
    assert_eq!(record(&touched), (&br#"{"n":2}"#[..], second));
    assert_eq!(
        get(&mut raw, &key).await.unwrap(),
        format!("{:016x}{{\"n\":2}}", second.get()).into_bytes(),
        "a touch rewrote the value"
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(key.as_str())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        ttl > 3_600_000,
        "the touches did not move the expiry: {ttl}"
    );
}

/// A value without the revision in front (a session stored without it, or another
/// program's value) is not a record: absent to every operation, and left as it is.
#[tokio::test]
async fn a_value_that_is_not_a_record_is_absent_and_left_alone() {
    let (_server, store, mut raw) = start().await;
    // JSON and MessagePack (`{"v": 1}`) sessions, an empty value, upper-case hex.
    let values: [&[u8]; 4] = [
        br#"{"v":1,"data":{"n":1}}"#,
        b"\x81\xa1v\x01",
        b"",
        b"0123456789ABCDEF{}",
    ];
    for value in values {
        let key = new_key();
        set_raw(&mut raw, &key, value).await;
        assert_eq!(store.load(&key).await.unwrap(), None, "{value:?}");
        assert_eq!(
            store.load_and_touch(&key, hour()).await.unwrap(),
            None,
            "{value:?}"
        );
        let update = store.update(&key, b"new", hour(), Revision::FIRST).await;
        assert!(
            matches!(update, Err(StoreError::UnknownId)),
            "{value:?}: {update:?}"
        );
        let delete = store.delete_if_unchanged(&key, Revision::FIRST).await;
        assert!(
            matches!(delete, Err(StoreError::UnknownId)),
            "{value:?}: {delete:?}"
        );
        assert_eq!(get(&mut raw, &key).await.unwrap(), value);
    }
}

#[tokio::test]
async fn a_conflict_carries_the_current_record_from_the_same_script_run() {
    let (server, store, mut raw) = start().await;
    let key = new_key();
    let stale = store.create(&key, b"v1", hour()).await.unwrap();
    let current = store.update(&key, b"v2", hour(), stale).await.unwrap();

    let (result, commands, sent) = calls(&server, store.update(&key, b"lost", hour(), stale)).await;
    assert_eq!(sent, 1, "commands sent");
    assert_eq!(record(&conflict(result)), (&b"v2"[..], current));
    assert_eq!(
        commands,
        counts([("evalsha", 1), ("getrange", 1), ("get", 1)])
    );
    let (result, commands, sent) = calls(&server, store.delete_if_unchanged(&key, stale)).await;
    assert_eq!(sent, 1, "commands sent");
    assert_eq!(record(&conflict(result)), (&b"v2"[..], current));
    assert_eq!(
        commands,
        counts([("evalsha", 1), ("getrange", 1), ("get", 1)])
    );
    assert_eq!(
        get(&mut raw, &key).await.unwrap(),
        format!("{:016x}v2", current.get()).into_bytes()
    );
}

/// Each operation is one command from the client; `INFO commandstats` also counts, under
/// their own names, the commands the conditional-write script calls.
#[tokio::test]
async fn each_operation_is_one_command_and_commandstats_counts_the_scripts_calls() {
    let (server, store, _raw) = start().await;
    let key = new_key();
    // Loads the script, so that the counts below are those of the common case.
    let other = new_key();
    let revision = store.create(&other, b"x", hour()).await.unwrap();
    store.update(&other, b"y", hour(), revision).await.unwrap();

    let (revision, commands, sent) = calls(&server, store.create(&key, b"v1", hour())).await;
    assert_eq!(sent, 1, "commands sent");
    assert_eq!(commands, counts([("set", 1)]), "create");
    let revision = revision.unwrap();
    let (_, commands, sent) = calls(&server, store.load(&key)).await;
    assert_eq!(sent, 1, "commands sent");
    assert_eq!(commands, counts([("get", 1)]), "load");
    let (_, commands, sent) = calls(&server, store.load_and_touch(&key, hour())).await;
    assert_eq!(sent, 1, "commands sent");
    assert_eq!(commands, counts([("getex", 1)]), "load_and_touch");
    let (_, commands, sent) = calls(&server, store.touch(&key, hour())).await;
    assert_eq!(sent, 1, "commands sent");
    assert_eq!(commands, counts([("pexpireat", 1)]), "touch");
    let (revision, commands, sent) =
        calls(&server, store.update(&key, b"v2", hour(), revision)).await;
    assert_eq!(sent, 1, "commands sent");
    let revision = revision.unwrap();
    assert_eq!(
        commands,
        counts([("evalsha", 1), ("getrange", 1), ("set", 1)]),
        "update"
    );
    let (deleted, commands, sent) = calls(&server, store.delete_if_unchanged(&key, revision)).await;
    assert_eq!(sent, 1, "commands sent");
    deleted.unwrap();
    assert_eq!(
        commands,
        counts([("evalsha", 1), ("getrange", 1), ("del", 1)]),
        "delete_if_unchanged"
    );
    let (absent, commands, sent) =
        calls(&server, store.update(&key, b"v3", hour(), revision)).await;
    assert_eq!(sent, 1, "commands sent");
    assert!(matches!(absent, Err(StoreError::UnknownId)), "{absent:?}");
    assert_eq!(
        commands,
        counts([("evalsha", 1), ("getrange", 1), ("exists", 1)]),
        "update of an absent key"
    );
    let (_, commands, sent) = calls(&server, store.delete(&other)).await;
    assert_eq!(sent, 1, "commands sent");
    assert_eq!(commands, counts([("del", 1)]), "delete");
}

#[tokio::test]
async fn the_script_is_sent_again_after_script_flush() {
    let (server, store, mut raw) = start().await;
    let key = new_key();
    let revision = store.create(&key, b"v1", hour()).await.unwrap();

    // A new server does not know the script: the first conditional write teaches it.
    let (revision, commands, sent) =
        calls(&server, store.update(&key, b"v2", hour(), revision)).await;
    assert_eq!(sent, 2, "commands sent");
    let revision = revision.unwrap();
    assert_eq!(
        commands,
        counts([("evalsha", 1), ("eval", 1), ("getrange", 1), ("set", 1)]),
        "first update"
    );
    let (revision, commands, sent) =
        calls(&server, store.update(&key, b"v3", hour(), revision)).await;
    assert_eq!(sent, 1, "commands sent");
    let revision = revision.unwrap();
    assert_eq!(
        commands,
        counts([("evalsha", 1), ("getrange", 1), ("set", 1)]),
        "second update"
    );

    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw)
        .await
        .unwrap();
    let (deleted, commands, sent) = calls(&server, store.delete_if_unchanged(&key, revision)).await;
    assert_eq!(sent, 2, "commands sent");
    deleted.unwrap();
    assert_eq!(
        commands,
        counts([("evalsha", 1), ("eval", 1), ("getrange", 1), ("del", 1)]),
        "delete after SCRIPT FLUSH"
    );
    assert_eq!(get(&mut raw, &key).await, None);

    let key = new_key();
    let revision = store.create(&key, b"v1", hour()).await.unwrap();
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw)
        .await
        .unwrap();
    let next = store.update(&key, b"v2", hour(), revision).await.unwrap();
    let loaded = store.load(&key).await.unwrap().unwrap();
    assert_eq!(record(&loaded), (&b"v2"[..], next));
    let (_, commands, sent) = calls(&server, store.update(&key, b"v3", hour(), next)).await;
    assert_eq!(sent, 1, "commands sent");
    assert_eq!(
        commands,
        counts([("evalsha", 1), ("getrange", 1), ("set", 1)]),
        "update after the script was sent again"
    );
}
