//! `RedisStore` passes the store conformance suite on a single Redis server: the one in
//! `SESSION_TEST_REDIS_URL` (set by `cargo xtask test`), else the standard local one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

fn url() -> String {
    std::env::var("SESSION_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

session_core::store_conformance_tests!(async {
    session_redis::RedisStore::connect(&url())
        .await
        .unwrap_or_else(|e| panic!("no Redis at {} (run `cargo xtask test redis`): {e}", url()))
});

#[test]
fn operation_futures_are_small() {
    let store = session_redis::RedisStore::builder(url())
        .build_lazy()
        .unwrap();
    session_testkit::assert_small_futures(&store);
}
