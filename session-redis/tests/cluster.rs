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
