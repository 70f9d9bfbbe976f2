//! `MongoStore` passes the store conformance suite against the server in
//! `SESSION_TEST_MONGODB_URL`, which `cargo xtask test mongodb` provides.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

fn url() -> String {
    std::env::var("SESSION_TEST_MONGODB_URL")
        .expect("SESSION_TEST_MONGODB_URL is not set: run `cargo xtask test mongodb`")
}

/// One database per test process, so runs do not see each other.
fn database() -> String {
    format!("conformance_{}", std::process::id())
}

session_core::store_conformance_tests!(async {
    session_mongodb::MongoStore::builder(url())
        .database(database())
        .connect()
        .await
        .unwrap_or_else(|e| panic!("no MongoDB at {}: {e:?}", url()))
});

#[test]
fn operation_futures_are_small() {
    session_core::store::conformance::run(
        || async {
            session_mongodb::MongoStore::builder(url())
                .database(database())
                .connect()
                .await
                .unwrap_or_else(|e| panic!("no MongoDB at {}: {e:?}", url()))
        },
        |store| async move { session_testkit::assert_small_futures(&*store) },
    );
}
