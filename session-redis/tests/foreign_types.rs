//! Keys of another Redis type (a hash, a list, a set) where a session could be: under the
//! key prefix, or at a session's own key. They are not records of this store, so they are
//! absent to every operation, are not listed, and break nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

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
    on(started(RedisServer::start)).await
}

/// A private server, started while no other test of this file starts one: this file's
/// tests start theirs at the same time, on a machine the rest of the suite keeps busy.
fn started(start: fn() -> Result<RedisServer, session_testkit::Error>) -> RedisServer {
    static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = STARTING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    start().unwrap()
}

async fn on(server: RedisServer) -> (RedisServer, RedisStore, MultiplexedConnection) {
    // A server that listens may still refuse a connection or two while it finishes
    // starting up on a loaded machine.
    let mut attempts = 0;
    let store = loop {
        match RedisStore::connect(&server.url()).await {
            Ok(store) => break store,
            Err(error) if attempts < 20 => {
                attempts += 1;
                eprintln!("connecting to {}: {error}", server.url());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("cannot connect to {}: {error:?}", server.url()),
        }
    };
    let raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    (server, store, raw)
}

/// Writes a hash at `key`, with a TTL as a session would have.
async fn hash_at(raw: &mut MultiplexedConnection, key: &str) {
    let _: i64 = redis::cmd("HSET")
        .arg(key)
        .arg("field")
        .arg("value")
        .query_async(raw)
        .await
        .unwrap();
    let _: i64 = redis::cmd("EXPIRE")
        .arg(key)
        .arg(3600)
        .query_async(raw)
        .await
        .unwrap();
}

async fn type_of(raw: &mut MultiplexedConnection, key: &StoreKey) -> String {
    redis::cmd("TYPE")
        .arg(key.as_str())
        .query_async(raw)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_key_of_another_type_under_the_prefix_is_not_listed_and_breaks_no_scan() {
    let (_server, store, mut raw) = start().await;
    let session = new_key();
    store.create(&session, b"live", hour()).await.unwrap();
    // Another program's hash, under the prefix, named like a session key.
    hash_at(&mut raw, "conformance:statistics").await;

    let page = store.scan("conformance:", None, 100).await;
    let page = match page {
        Ok(page) => page,
        Err(error) => panic!("a scan under the prefix failed: {error:?}"),
    };
    let keys: Vec<&str> = page.records.iter().map(|r| r.key().as_str()).collect();
    assert_eq!(keys, [session.as_str()]);
    assert!(page.next.is_none());
}

/// Every operation that reads a record finds none in a key of another type, and none
/// changes it.
async fn a_key_of_another_type_is_absent(store: &RedisStore, raw: &mut MultiplexedConnection) {
    let key = new_key();
    hash_at(raw, key.as_str()).await;

    let loaded = store.load(&key).await;
    assert!(matches!(loaded, Ok(None)), "load: {loaded:?}");
    let loaded = store.load_and_touch(&key, hour()).await;
    assert!(matches!(loaded, Ok(None)), "load_and_touch: {loaded:?}");
    let update = store.update(&key, b"new", hour(), Revision::FIRST).await;
    assert!(
        matches!(update, Err(StoreError::UnknownId)),
        "update: {update:?}"
    );
    let loaded = Loaded::new(b"old".to_vec(), Revision::FIRST);
    let update = store.update_loaded(&key, b"new", hour(), &loaded).await;
    assert!(
        matches!(update, Err(StoreError::UnknownId)),
        "update_loaded: {update:?}"
    );
    let delete = store.delete_if_unchanged(&key, Revision::FIRST).await;
    assert!(
        matches!(delete, Err(StoreError::UnknownId)),
        "delete_if_unchanged: {delete:?}"
    );
    assert_eq!(type_of(raw, &key).await, "hash");
}

#[tokio::test]
async fn a_session_key_holding_another_type_is_absent_and_left_alone() {
    let (_server, store, mut raw) = start().await;
    a_key_of_another_type_is_absent(&store, &mut raw).await;
}

/// The same on Valkey, whose `SET ... IFEQ` does `update_loaded` without the script.
#[tokio::test]
async fn on_valkey_a_session_key_holding_another_type_is_absent_and_left_alone() {
    let (_server, store, mut raw) = on(started(RedisServer::start_valkey)).await;
    a_key_of_another_type_is_absent(&store, &mut raw).await;
}

/// On a cluster, where each key is read by a pipeline of its own: a key of another type
/// under the prefix, on whichever node, spoils neither a scan nor a user's listing.
#[tokio::test]
async fn on_a_cluster_a_key_of_another_type_breaks_no_scan_or_listing() {
    let url = std::env::var("SESSION_TEST_REDIS_CLUSTER_URL").expect(
        "SESSION_TEST_REDIS_CLUSTER_URL is not set: run `cargo xtask test redis`, which starts a cluster",
    );
    let store = RedisStore::connect(&url).await.unwrap();
    let prefix = format!(
        "foreign-{}:",
        new_key().as_str().rsplit(':').next().unwrap()
    );
    let hosts = url.strip_prefix("redis+cluster://").unwrap();
    let nodes = hosts.split(',').map(|host| format!("redis://{host}"));
    let mut raw = redis::cluster::ClusterClient::new(nodes.collect::<Vec<_>>())
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();
    let session = StoreKey::from_stored(format!("{prefix}session"));
    let user = session_core::store::UserKey::new(&prefix, "ferris");
    store
        .create_bound(&session, b"live", hour(), &user)
        .await
        .unwrap();
    // Hashes on several slots, one of them in the user's index.
    for n in 0..8 {
        let key = format!("{prefix}hash{n}");
        let _: i64 = redis::cmd("HSET")
            .arg(&key)
            .arg("field")
            .arg("value")
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let _: i64 = redis::cmd("SADD")
        .arg(user.as_str())
        .arg(format!("{prefix}hash0"))
        .query_async(&mut raw)
        .await
        .unwrap();

    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = match store.scan(&prefix, after.as_ref(), 100).await {
            Ok(page) => page,
            Err(error) => panic!("a scan under the prefix failed: {error:?}"),
        };
        listed.extend(
            page.records
                .into_iter()
                .map(|r| r.key().as_str().to_owned()),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, [session.as_str()]);
    let bound = match store.list_bound(&user).await {
        Ok(bound) => bound,
        Err(error) => panic!("a listing of the user failed: {error:?}"),
    };
    let bound: Vec<&StoreKey> = bound.iter().map(|r| r.key()).collect();
    assert_eq!(bound, [&session]);
}
