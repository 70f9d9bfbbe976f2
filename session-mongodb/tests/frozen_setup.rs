//! Creating the TTL index at start is bounded by the store's timeout too, for a client the
//! application made with the driver's defaults: a frozen server fails the start with
//! `Unavailable` instead of leaving it waiting.
//!
//! The server is a private mongoeco (the MongoDB-compatible server `cargo xtask test`
//! prepares), frozen with SIGSTOP: its connections stay open and nothing answers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::{Duration, Instant};

use mongodb::bson::doc;
use mongodb::Client;
use session_core::test_suite::LocalServer;
use session_core::StoreError;
use session_mongodb::MongoStore;

/// The launcher of mongoeco's wire server, in the repository.
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../services/mongoeco_server.py"
);

const TIMEOUT: Duration = Duration::from_millis(500);

/// Far past the timeout: a start still waiting then never ends by itself.
const HUNG: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_fails_the_index_setup_in_time() {
    let python = std::env::var("SESSION_TEST_MONGOECO_PYTHON").expect(
        "SESSION_TEST_MONGOECO_PYTHON is not set: run `cargo xtask test mongodb`, which prepares mongoeco",
    );
    let python: &'static str = Box::leak(python.into_boxed_str());
    let server = LocalServer::start(python, &[SCRIPT, "--port"]).unwrap();
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
