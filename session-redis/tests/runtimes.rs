//! A store used from more than one tokio runtime on the same thread: one after another
//! (a runtime dropped, a new one built), or side by side (two current-thread runtimes that
//! take turns). Each runtime must talk to Redis over a connection that it drives itself.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::{Duration, SystemTime};

use session_core::store::conformance::new_key;
use session_core::store::{Store, StoreKey};
use session_redis::RedisStore;

fn url() -> String {
    std::env::var("SESSION_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A store, and the key of a record it created on `runtime`, which opened its connection.
fn stored_on(runtime: &tokio::runtime::Runtime) -> (RedisStore, StoreKey) {
    runtime.block_on(async {
        let store = RedisStore::builder(url())
            .timeout(Duration::from_millis(300))
            .connect()
            .await
            .unwrap();
        let key = new_key();
        let expiry = SystemTime::now() + Duration::from_secs(600);
        store.create(&key, b"kept", expiry).await.unwrap();
        (store, key)
    })
}

/// A runtime that ended took its connection's tasks with it: the next runtime on the
/// thread must not get a store error from a server that is up.
#[test]
fn a_store_outlives_the_runtime_that_connected_it() {
    let first = runtime();
    let (store, key) = stored_on(&first);
    drop(first);

    let second = runtime();
    let loaded = second.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), store.load(&key))
            .await
            .expect("a load on a new runtime never ended")
    });
    assert!(
        matches!(&loaded, Ok(Some(record)) if record.value() == b"kept"),
        "a load on a new runtime, with Redis up: {loaded:?}"
    );
}

/// A runtime that is alive but not running does not drive its connection: a call made on
/// another runtime of the same thread must neither wait for it nor hang.
#[test]
fn a_store_works_on_two_runtimes_that_take_turns_on_one_thread() {
    let first = runtime();
    let (store, key) = stored_on(&first);

    let second = runtime();
    let loaded = second.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), store.load(&key))
            .await
            .expect("a load on a second runtime never ended")
    });
    assert!(
        matches!(&loaded, Ok(Some(record)) if record.value() == b"kept"),
        "a load on a second runtime, with Redis up: {loaded:?}"
    );
    // The first runtime's calls still work once it runs again.
    let loaded = first.block_on(store.load(&key));
    assert!(
        matches!(&loaded, Ok(Some(record)) if record.value() == b"kept"),
        "a load back on the first runtime: {loaded:?}"
    );
}
