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
