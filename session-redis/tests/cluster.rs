//! `RedisStore` passes the store conformance suite on a Redis Cluster of three masters,
//! which `cargo xtask test redis` starts and names in `SESSION_TEST_REDIS_CLUSTER_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

fn url() -> String {
    std::env::var("SESSION_TEST_REDIS_CLUSTER_URL").expect(
        "SESSION_TEST_REDIS_CLUSTER_URL is not set: run `cargo xtask test redis`, which starts a cluster",
    )
}

session_core::store_conformance_tests!(async {
    session_redis::RedisStore::connect(&url())
        .await
        .unwrap_or_else(|e| panic!("no Redis Cluster at {}: {e}", url()))
});

mod revisions {
    use std::time::{Duration, SystemTime};

    use redis::aio::MultiplexedConnection;
    use session_core::store::conformance::new_key;
    use session_core::store::{Store, StoreKey};
    use session_redis::RedisStore;

    fn hour() -> SystemTime {
        SystemTime::now() + Duration::from_secs(3600)
    }

    /// A direct connection to each node of the cluster.
    async fn nodes() -> Vec<MultiplexedConnection> {
        let url = super::url();
        let hosts = url.strip_prefix("redis+cluster://").unwrap();
        let mut nodes = Vec::new();
        for host in hosts.split(',') {
            let client = redis::Client::open(format!("redis://{host}")).unwrap();
            nodes.push(client.get_multiplexed_async_connection().await.unwrap());
        }
        nodes
    }

    /// A new key whose slot `node` serves: others answer `MOVED`.
    async fn key_on(node: &mut MultiplexedConnection) -> StoreKey {
        loop {
            let key = new_key();
            let owned: redis::RedisResult<i64> = redis::cmd("EXISTS")
                .arg(key.as_str())
                .query_async(node)
                .await;
            if owned.is_ok() {
                return key;
            }
        }
    }

    /// Each node keeps its own script cache: after `SCRIPT FLUSH` on all of them, a
    /// conditional write on a key of each node must send the script to that node.
    #[tokio::test]
    async fn the_script_is_sent_again_to_each_node_after_script_flush() {
        let store = RedisStore::connect(&super::url()).await.unwrap();
        let mut nodes = nodes().await;
        let mut keys = Vec::new();
        for node in &mut nodes {
            let key = key_on(node).await;
            let revision = store.create(&key, b"v1", hour()).await.unwrap();
            keys.push((key, revision));
        }
        for node in &mut nodes {
            let () = redis::cmd("SCRIPT")
                .arg("FLUSH")
                .query_async(node)
                .await
                .unwrap();
        }
        for (key, revision) in &mut keys {
            *revision = store.update(key, b"v2", hour(), *revision).await.unwrap();
            let loaded = store.load(key).await.unwrap().unwrap();
            assert_eq!((loaded.value(), loaded.revision()), (&b"v2"[..], *revision));
        }
        for node in &mut nodes {
            let () = redis::cmd("SCRIPT")
                .arg("FLUSH")
                .query_async(node)
                .await
                .unwrap();
        }
        for (key, revision) in &keys {
            store.delete_if_unchanged(key, *revision).await.unwrap();
            assert!(store.load(key).await.unwrap().is_none());
        }
    }
}

mod users {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use session_core::store::conformance::new_key;
    use session_core::store::{Store, StoreKey, UserKey};
    use session_core::{IdLength, SessionId};
    use session_redis::RedisStore;

    const LOGINS: usize = 200;
    const LISTERS: usize = 4;

    /// On a cluster a login's index entry and record are written by separate commands: a
    /// listing that runs between them finds the record absent and prunes the entry, which
    /// the login's and the listing's second looks must put back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn logins_concurrent_with_listings_all_stay_in_the_index() {
        let store = RedisStore::connect(&super::url()).await.unwrap();
        let user = SessionId::generate(IdLength::default()).unwrap();
        let user = UserKey::new("conformance:", user.as_str());
        let done = Arc::new(AtomicBool::new(false));
        let listers: Vec<_> = (0..LISTERS)
            .map(|_| {
                let (store, user, done) = (store.clone(), user.clone(), done.clone());
                tokio::spawn(async move {
                    let mut listings = 0u64;
                    while !done.load(Ordering::Relaxed) {
                        store.list_bound(&user).await.unwrap();
                        listings += 1;
                    }
                    listings
                })
            })
            .collect();
        let at = SystemTime::now() + Duration::from_secs(600);
        let logins: Vec<_> = (0..LOGINS)
            .map(|_| {
                let (store, user) = (store.clone(), user.clone());
                tokio::spawn(async move {
                    let key = new_key();
                    store.create_bound(&key, b"{}", at, &user).await.unwrap();
                    key
                })
            })
            .collect();
        let mut created = BTreeSet::new();
        for login in logins {
            created.insert(login.await.unwrap());
        }
        done.store(true, Ordering::Relaxed);
        for lister in listers {
            assert!(lister.await.unwrap() > 0, "a lister never listed");
        }
        let listed: BTreeSet<StoreKey> = store
            .list_bound(&user)
            .await
            .unwrap()
            .into_iter()
            .map(|listed| listed.key().clone())
            .collect();
        let missing = created.difference(&listed).count();
        assert_eq!(missing, 0, "{missing} of {LOGINS} sessions left the index");
        for key in &created {
            store.delete(key).await.unwrap();
            store.unbind(&user, key).await.unwrap();
        }
    }
}
