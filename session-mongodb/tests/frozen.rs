//! A server that takes requests and stops answering: each call fails with `Unavailable`
//! within the store's timeout, and the store works again once the server answers. Creating
//! the TTL index at start is bounded too, for a client the application made with the
//! driver's defaults.
//!
//! The server is a private mongoeco (the MongoDB-compatible server `cargo xtask test`
//! prepares), frozen with SIGSTOP: its connections stay open and nothing answers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::{Duration, SystemTime};

use mongodb::bson::doc;
use mongodb::Client;
use session_core::store::{Store, StoreKey};
use session_core::{IdLength, SessionId};
use session_mongodb::MongoStore;
use session_testkit::launcher::backends::Backend;
use session_testkit::outage::{self, MARGIN};
use session_testkit::Server;

const TIMEOUT: Duration = Duration::from_millis(500);

fn key() -> StoreKey {
    StoreKey::new(
        "session:",
        &SessionId::generate(IdLength::default()).unwrap(),
    )
}

fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

/// A private mongoeco on a free port, from the Python `cargo xtask test mongodb` prepares.
fn private_mongoeco() -> Server {
    Server::start(Backend::Mongodb.spec().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_fails_each_call_in_time_and_the_store_recovers() {
    let server = private_mongoeco();
    let store = MongoStore::builder(format!("mongodb://{}/frozen", server.address()))
        .timeout(TIMEOUT)
        .connect()
        .await
        .unwrap();
    let key = key();
    store.create(&key, b"kept", in_an_hour()).await.unwrap();

    server.freeze().unwrap();
    outage::calls_fail_in_time("frozen", &store, &key, TIMEOUT).await;
    server.thaw().unwrap();
    outage::recovers("thawed", &store, &key, b"kept", Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_fails_the_index_setup_in_time() {
    let server = private_mongoeco();
    let client = Client::with_uri_str(format!("mongodb://{}", server.address()))
        .await
        .unwrap();
    // The client has found the server and holds a connection to it.
    client
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .await
        .unwrap();

    server.freeze().unwrap();
    let setup = MongoStore::from_client(client.clone())
        .database("frozen_setup")
        .timeout(TIMEOUT)
        .connect();
    let elapsed = outage::unavailable("setup", setup).await;
    server.thaw().unwrap();
    assert!(elapsed < TIMEOUT + MARGIN, "setup took {elapsed:?}");
}
