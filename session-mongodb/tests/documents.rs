//! What a user finds in MongoDB, and what happens when it cannot be reached.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::TryStreamExt as _;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, DateTime, Document};
use mongodb::event::command::CommandEvent;
use mongodb::event::EventHandler;
use mongodb::options::ClientOptions;
use mongodb::Client;
use session_core::store::{Revision, Store, StoreError, StoreKey};
use session_core::{IdLength, SessionId};
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
    let store = MongoStore::builder(url())
        .database(&database)
        .connect()
        .await
        .unwrap();
    // Creating the index again (a second instance starting) is fine.
    let again = MongoStore::builder(url())
        .database(&database)
        .connect()
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
    assert_eq!(document.get("rev"), Some(&Bson::Int64(1)));

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
    let error = MongoStore::builder("mongodb://127.0.0.1:1")
        .timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

async fn store(name: &str) -> MongoStore {
    MongoStore::builder(url())
        .database(format!("{name}_{}", std::process::id()))
        .connect()
        .await
        .unwrap()
}

async fn stored(store: &MongoStore, key: &StoreKey) -> Document {
    store
        .collection()
        .find_one(doc! { "_id": key.as_str() })
        .await
        .unwrap()
        .expect("the document")
}

/// A session as this store writes it, but without the `rev` field.
fn document_without_rev(key: &StoreKey, value: &[u8]) -> Document {
    let now = SystemTime::now();
    doc! {
        "_id": key.as_str(),
        "data": Binary { subtype: BinarySubtype::Generic, bytes: value.to_vec() },
        "expires_at": DateTime::from_system_time(now + Duration::from_secs(3600)),
        "created_at": DateTime::from_system_time(now),
    }
}

fn data(document: &Document) -> &[u8] {
    match document.get("data") {
        Some(Bson::Binary(b)) => &b.bytes,
        other => panic!("data is {other:?}"),
    }
}

#[tokio::test]
async fn revisions_count_writes_and_a_stale_write_changes_nothing() {
    let store = store("revisions").await;
    let key = key();
    let hour = SystemTime::now() + Duration::from_secs(3600);
    let first = store.create(&key, b"v1", hour).await.unwrap();
    assert_eq!(first, Revision::FIRST);
    let second = store.update(&key, b"v2", hour, first).await.unwrap();
    assert_eq!(second, Revision::new(2));
    let updated = stored(&store, &key).await;
    assert_eq!(updated.get("rev"), Some(&Bson::Int64(2)));
    assert!(
        updated.get_datetime("created_at").is_ok(),
        "update dropped created_at"
    );

    // A stale update reports the current document (one extra read, on this path only)
    // and leaves data, expiry and rev as they were.
    let before = stored(&store, &key).await;
    let later = hour + Duration::from_secs(3600);
    match store.update(&key, b"lost", later, first).await {
        Err(StoreError::Conflict {
            current: Some(current),
        }) => {
            assert_eq!((current.value(), current.revision()), (&b"v2"[..], second));
            assert_eq!(
                current.expires_at().map(DateTime::from_system_time),
                before.get_datetime("expires_at").ok().copied()
            );
        }
        other => panic!("expected a conflict with the document, got {other:?}"),
    }
    assert_eq!(stored(&store, &key).await, before, "a stale update wrote");

    // The touch leaves rev alone.
    store.touch(&key, later).await.unwrap();
    assert_eq!(stored(&store, &key).await.get("rev"), Some(&Bson::Int64(2)));
}

#[tokio::test]
async fn a_document_with_a_foreign_rev_reads_as_absent() {
    let store = store("foreign_rev").await;
    // `None`: no `rev` field at all.
    for rev in [
        None,
        Some(Bson::Null),
        Some(Bson::String("1".into())),
        Some(Bson::Int64(0)),
    ] {
        let key = key();
        let mut document = document_without_rev(&key, b"x");
        if let Some(rev) = &rev {
            document.insert("rev", rev.clone());
        }
        store.collection().insert_one(document).await.unwrap();
        assert_eq!(store.load(&key).await.unwrap(), None, "rev {rev:?}");
        assert!(
            matches!(
                store
                    .update(&key, b"y", SystemTime::now(), Revision::FIRST)
                    .await,
                Err(StoreError::UnknownId)
            ),
            "rev {rev:?}"
        );
        assert_eq!(data(&stored(&store, &key).await), b"x");
    }
}

#[tokio::test]
async fn a_conflict_free_write_is_one_command_and_only_a_miss_reads_back() {
    let database = format!("round_trips_{}", std::process::id());
    let commands = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut options = ClientOptions::parse(url()).await.unwrap();
    let (seen, db) = (Arc::clone(&commands), database.clone());
    options.command_event_handler = Some(EventHandler::callback(move |event| {
        if let CommandEvent::Started(started) = event {
            if started.db == db {
                seen.lock().unwrap().push(started.command_name);
            }
        }
    }));
    let store = MongoStore::from_client(Client::with_options(options).unwrap())
        .database(&database)
        .connect()
        .await
        .unwrap();
    let sent = || std::mem::take(&mut *commands.lock().unwrap());
    sent();

    let key = key();
    let hour = SystemTime::now() + Duration::from_secs(3600);
    let first = store.create(&key, b"v1", hour).await.unwrap();
    assert_eq!(sent(), ["insert"], "create");
    let second = store.update(&key, b"v2", hour, first).await.unwrap();
    assert_eq!(sent(), ["update"], "update");
    store.touch(&key, hour).await.unwrap();
    assert_eq!(sent(), ["update"], "touch");
    store.load(&key).await.unwrap().unwrap();
    assert_eq!(sent(), ["find"], "load");
    assert!(store.update(&key, b"x", hour, first).await.is_err());
    assert_eq!(sent(), ["update", "find"], "stale update");
    assert!(store.delete_if_unchanged(&key, first).await.is_err());
    assert_eq!(sent(), ["delete", "find"], "stale delete_if_unchanged");
    store.delete_if_unchanged(&key, second).await.unwrap();
    assert_eq!(sent(), ["delete"], "delete_if_unchanged");

    let user = session_core::store::UserKey::new("session:", "alice");
    let bound = self::key();
    store.create_bound(&bound, b"v", hour, &user).await.unwrap();
    assert_eq!(sent(), ["insert"], "create_bound");
    assert_eq!(store.list_bound(&user).await.unwrap().len(), 1);
    assert_eq!(sent(), ["find"], "list_bound");
    store.unbind(&user, &bound).await.unwrap();
    assert_eq!(sent(), ["update"], "unbind");
    assert_eq!(store.count("session:").await.unwrap(), 1);
    assert_eq!(sent(), ["aggregate"], "count");
    assert_eq!(
        store
            .scan("session:", None, 10)
            .await
            .unwrap()
            .records
            .len(),
        1
    );
    assert_eq!(sent(), ["find"], "scan");
}

#[tokio::test]
async fn sessions_are_read_from_the_primary_whatever_the_clients_default() {
    use mongodb::options::{ReadPreference, SelectionCriteria};
    let base = url();
    let separator = match (base.contains('?'), base.ends_with('/')) {
        (true, _) => "&",
        (false, true) => "?",
        (false, false) => "/?",
    };
    let store = MongoStore::connect(&format!(
        "{base}{separator}readPreference=secondaryPreferred"
    ))
    .await
    .unwrap();
    assert!(
        matches!(
            store.collection().selection_criteria(),
            Some(SelectionCriteria::ReadPreference(ReadPreference::Primary))
        ),
        "{:?}",
        store.collection().selection_criteria()
    );
    let key = key();
    let revision = store
        .create(&key, b"{}", SystemTime::now() + Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.load(&key).await.unwrap().unwrap().revision(),
        revision
    );
}
