//! What a user finds in MongoDB, and what happens when it cannot be reached.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::{Duration, Instant, SystemTime};

use futures_util::TryStreamExt as _;
use mongodb::bson::{doc, Bson, Document};
use session_core::{IdLength, SessionId, Store, StoreError, StoreKey};
use session_mongodb::MongoStore;

fn url() -> String {
    std::env::var("SESSION_TEST_MONGODB_URL")
        .expect("SESSION_TEST_MONGODB_URL is not set: run `cargo xtask test mongodb`")
}

fn key() -> StoreKey {
    StoreKey::new(
        "session:",
        &SessionId::generate(IdLength::default()).unwrap(),
    )
}

#[tokio::test]
async fn one_document_per_session_with_a_ttl_index() {
    let database = format!("documents_{}", std::process::id());
    let store = MongoStore::builder()
        .database(&database)
        .connect(&url())
        .await
        .unwrap();
    // Creating the index again (a second instance starting) is fine.
    let again = MongoStore::builder()
        .database(&database)
        .connect(&url())
        .await
        .unwrap();
    let key = key();
    let expires = SystemTime::now() + Duration::from_secs(3600);
    again.create(&key, br#"{"v":1}"#, expires).await.unwrap();

    let document: Document = store
        .collection()
        .find_one(doc! { "_id": key.as_str() })
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(document.get("data"), Some(Bson::Binary(b)) if b.bytes == br#"{"v":1}"#));
    let stored = document
        .get_datetime("expires_at")
        .unwrap()
        .timestamp_millis();
    let wanted = expires
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((stored - wanted).abs() <= 1, "{stored} vs {wanted}");
    assert!(document.get_datetime("created_at").is_ok());

    let indexes: Vec<_> = store
        .collection()
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let ttl = indexes
        .iter()
        .find(|index| index.keys == doc! { "expires_at": 1 })
        .expect("a TTL index on expires_at");
    let options = ttl.options.as_ref().unwrap();
    assert_eq!(options.expire_after, Some(Duration::ZERO));
}

#[tokio::test]
async fn the_database_comes_from_the_url() {
    let database = format!("from_url_{}", std::process::id());
    let store = MongoStore::connect(&format!("{}/{database}", url().trim_end_matches('/')))
        .await
        .unwrap();
    assert_eq!(store.collection().namespace().db, database);
    assert_eq!(store.collection().name(), "sessions");
}

#[tokio::test]
async fn a_server_that_cannot_be_reached_fails_fast() {
    let started = Instant::now();
    let error = MongoStore::builder()
        .timeout(Duration::from_millis(500))
        .connect("mongodb://127.0.0.1:1")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}
