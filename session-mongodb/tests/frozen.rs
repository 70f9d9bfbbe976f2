//! A server that takes requests and stops answering: each call fails with `Unavailable`
//! within the store's timeout, and the store works again once the server answers. Creating
//! the TTL index at start is bounded too, for a client the application made with the
//! driver's defaults.
//!
//! The server is a private mongoeco (the MongoDB-compatible server `cargo xtask test`
//! prepares), frozen with SIGSTOP: its connections stay open and nothing answers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::{Duration, Instant, SystemTime};

use mongodb::bson::doc;
use mongodb::Client;
use session_core::test_suite::LocalServer;
use session_core::{IdLength, SessionId, Store, StoreError, StoreKey};
use session_mongodb::MongoStore;

/// The launcher of mongoeco's wire server, in the repository.
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../services/mongoeco_server.py"
);

const TIMEOUT: Duration = Duration::from_millis(500);

/// Far past the timeout: a call still waiting then never ends by itself.
const HUNG: Duration = Duration::from_secs(5);

fn key() -> StoreKey {
    StoreKey::new(
        "session:",
        &SessionId::generate(IdLength::default()).unwrap(),
    )
}

fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

/// A private mongoeco on a free port.
fn private_mongoeco() -> LocalServer {
    let python = std::env::var("SESSION_TEST_MONGOECO_PYTHON").expect(
        "SESSION_TEST_MONGOECO_PYTHON is not set: run `cargo xtask test mongodb`, which prepares mongoeco",
    );
    let python: &'static str = Box::leak(python.into_boxed_str());
    LocalServer::start(python, &[SCRIPT, "--port"]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_fails_each_call_in_time_and_the_store_recovers() {
    let server = private_mongoeco();
    let store = MongoStore::builder()
        .timeout(TIMEOUT)
        .connect(&format!("mongodb://127.0.0.1:{}/frozen", server.port()))
        .await
        .unwrap();
    let key = key();
    store.create(&key, b"kept", in_an_hour()).await.unwrap();

    server.signal("STOP").unwrap();
    let started = Instant::now();
    let load = tokio::time::timeout(HUNG, store.load(&key))
        .await
        .unwrap_or_else(|_| panic!("load still waiting after {HUNG:?}"));
    assert!(
        matches!(load, Err(StoreError::Unavailable { .. })),
        "{load:?}"
    );
    // A write that leaves the value alone: a call given up on may still be applied once
    // the server runs again.
    let touch = tokio::time::timeout(HUNG, store.touch(&key, in_an_hour()))
        .await
        .unwrap_or_else(|_| panic!("touch still waiting after {HUNG:?}"));
    assert!(
        matches!(touch, Err(StoreError::Unavailable { .. })),
        "{touch:?}"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed < 2 * TIMEOUT + Duration::from_secs(1),
        "two calls took {elapsed:?}"
    );

    server.signal("CONT").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match store.load(&key).await {
            Ok(Some(loaded)) => {
                assert_eq!(loaded.value(), b"kept");
                break;
            }
            other => assert!(Instant::now() < deadline, "still failing: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_fails_the_index_setup_in_time() {
    let server = private_mongoeco();
    let client = Client::with_uri_str(format!("mongodb://127.0.0.1:{}", server.port()))
        .await
        .unwrap();
    // The client has found the server and holds a connection to it.
    client
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .await
        .unwrap();

    server.signal("STOP").unwrap();
    let started = Instant::now();
    let setup = MongoStore::builder()
        .database("frozen_setup")
        .timeout(TIMEOUT)
        .with_client(client.clone());
    let store = tokio::time::timeout(HUNG, setup)
        .await
        .unwrap_or_else(|_| panic!("setup still waiting after {HUNG:?}"));
    let elapsed = started.elapsed();
    server.signal("CONT").unwrap();
    assert!(
        matches!(store, Err(StoreError::Unavailable { .. })),
        "{store:?}"
    );
    assert!(
        elapsed < TIMEOUT + Duration::from_secs(1),
        "setup took {elapsed:?}"
    );
}
