//! Users' sessions as MongoDB keeps them: a `user` field on the session's own document,
//! with an index on it, and no session id anywhere in the collection.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::{Duration, SystemTime};

use futures_util::TryStreamExt as _;
use mongodb::bson::{doc, Bson, Document};
use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager};
use session_core::store::{ScanCursor, Store, StoreKey, UserKey};
use session_core::{Config, IdLength, Keyring, SessionId};
use session_mongodb::MongoStore;

fn url() -> String {
    std::env::var("SESSION_TEST_MONGODB_URL")
        .expect("SESSION_TEST_MONGODB_URL is not set: run `cargo xtask test mongodb`")
}

/// A store on a database of its own for one test.
async fn store(name: &str) -> MongoStore {
    MongoStore::builder(url())
        .database(format!("{name}_{}", std::process::id()))
        .connect()
        .await
        .unwrap()
}

fn key(prefix: &str) -> StoreKey {
    StoreKey::new(prefix, &SessionId::generate(IdLength::default()).unwrap())
}

fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

async fn documents(store: &MongoStore) -> Vec<Document> {
    store
        .collection()
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
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

/// Saves `state` and returns the cookie a browser would send next.
async fn save(
    sessions: &SessionManager,
    state: session_core::adapter::SessionState,
) -> RequestCookie {
    match sessions.save(state).await.unwrap() {
        CookieUpdate::Set(header) => {
            let pair = header.split(';').next().unwrap().to_owned();
            sessions.verify([pair.as_str()])
        }
        other => panic!("expected a cookie, got {other:?}"),
    }
}

/// Every name and every string or binary value in `document`, nested ones included.
fn texts(document: &Document, found: &mut Vec<Vec<u8>>) {
    for (name, value) in document {
        found.push(name.as_bytes().to_vec());
        match value {
            Bson::String(text) => found.push(text.as_bytes().to_vec()),
            Bson::Binary(binary) => found.push(binary.bytes.clone()),
            Bson::Document(inner) => texts(inner, found),
            Bson::Array(items) => {
                for item in items {
                    texts(&doc! { "item": item.clone() }, found);
                }
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn logins_store_no_session_id_and_bind_through_an_indexed_field() {
    let store = store("users_documents").await;
    let keyring = Keyring::new([[42u8; 32]]).unwrap();
    let sessions = SessionManager::new(store.clone(), Config::builder(keyring).build().unwrap());
    let user = "alice@example.com";

    let anonymous = {
        let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
        state.insert("cart", 3).unwrap();
        save(&sessions, state).await
    };
    let mut cookies = vec![anonymous];
    for _ in 0..2 {
        let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
        state.insert("seen", true).unwrap();
        state.log_in(user, None);
        cookies.push(save(&sessions, state).await);
    }
    let ids: Vec<SessionId> = cookies
        .into_iter()
        .map(|cookie| match cookie {
            RequestCookie::Valid(verified) => verified.into_id(),
            _ => panic!("no cookie"),
        })
        .collect();

    let documents = documents(&store).await;
    assert_eq!(documents.len(), 3);
    let mut found = Vec::new();
    for document in &documents {
        texts(document, &mut found);
        // The raw BSON too, in case a value of another type spelled an id.
        found.push(mongodb::bson::to_vec(document).unwrap());
    }
    for id in &ids {
        let id = id.as_str().as_bytes();
        assert!(
            !found
                .iter()
                .any(|text| text.windows(id.len()).any(|window| window == id)),
            "a stored _id, field or value holds a live session id"
        );
    }

    // Both logins, and only they, carry the user's index key.
    let user_key = UserKey::new(session_core::store::DEFAULT_KEY_PREFIX, user);
    let bound = documents
        .iter()
        .filter(|d| d.get_str("user").ok() == Some(user_key.as_str()))
        .count();
    assert_eq!(bound, 2);
    assert_eq!(
        documents.iter().filter(|d| d.contains_key("user")).count(),
        2
    );
    assert_eq!(store.list_bound(&user_key).await.unwrap().len(), 2);

    let indexes: Vec<_> = store
        .collection()
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let index = indexes
        .iter()
        .find(|index| index.keys == doc! { "user": 1 })
        .expect("an index on user");
    assert_eq!(index.options.as_ref().and_then(|o| o.sparse), Some(true));
}

#[tokio::test]
async fn update_and_touch_keep_the_binding_and_unbind_only_drops_it() {
    let store = store("users_binding").await;
    let (alice, bob) = (
        UserKey::new("session:", "alice"),
        UserKey::new("session:", "bob"),
    );
    let key = key("session:");
    let revision = store
        .create_bound(&key, b"v1", in_an_hour(), &alice)
        .await
        .unwrap();
    store
        .update(&key, b"v2", in_an_hour(), revision)
        .await
        .unwrap();
    store.touch(&key, in_an_hour()).await.unwrap();
    assert_eq!(
        stored(&store, &key).await.get_str("user").ok(),
        Some(alice.as_str())
    );

    // Another user's unbind leaves the field; the owner's removes only the field.
    store.unbind(&bob, &key).await.unwrap();
    assert_eq!(store.list_bound(&alice).await.unwrap().len(), 1);
    store.unbind(&alice, &key).await.unwrap();
    let document = stored(&store, &key).await;
    assert!(!document.contains_key("user"));
    assert_eq!(store.load(&key).await.unwrap().unwrap().value(), b"v2");
    assert!(store.list_bound(&alice).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_record_created_over_an_expired_bound_one_is_not_bound() {
    let store = store("users_takeover").await;
    let alice = UserKey::new("session:", "alice");
    let key = key("session:");
    let soon = SystemTime::now() + Duration::from_millis(300);
    store
        .create_bound(&key, b"old", soon, &alice)
        .await
        .unwrap();
    // Expired, and still there: the TTL monitor has not come by.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(store.list_bound(&alice).await.unwrap().is_empty());
    store.create(&key, b"new", in_an_hour()).await.unwrap();
    assert!(!stored(&store, &key).await.contains_key("user"));
    assert!(store.list_bound(&alice).await.unwrap().is_empty());
}

#[tokio::test]
async fn count_and_scan_take_the_prefix_literally_and_skip_nested_prefixes() {
    let store = store("users_prefix").await;
    // Regex syntax in the prefix matches only itself.
    let prefix = "a.b+(c)[d]{2}$^|?*\\e:";
    let mut live = std::collections::BTreeSet::new();
    for _ in 0..5 {
        let key = key(prefix);
        store.create(&key, b"x", in_an_hour()).await.unwrap();
        live.insert(key);
    }
    for other in [
        // Would match the prefix read as a regex.
        "aXb+(c)[d]{2}$^|?*\\e:abc",
        // Another prefix nested under this one, as a user index key would be.
        &format!("{prefix}nested:abc"),
        // Just past the prefix in the order of `_id`.
        "a.b+(c)[d]{2}$^|?*\\e;abc",
    ] {
        store
            .create(&StoreKey::from_stored(other), b"x", in_an_hour())
            .await
            .unwrap();
    }
    assert_eq!(store.count(prefix).await.unwrap(), 5);

    let mut seen = std::collections::BTreeSet::new();
    let mut after: Option<ScanCursor> = None;
    for page in 0.. {
        assert!(page < 10, "scan does not end");
        // A limit of 0 still makes progress.
        let scanned = store.scan(prefix, after.as_ref(), page % 3).await.unwrap();
        assert!(scanned.records.len() <= (page % 3).max(1));
        seen.extend(scanned.records.into_iter().map(|l| l.key().clone()));
        match scanned.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, live);
}

#[test]
fn the_new_operation_futures_are_small() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(store("users_futures"));
    let (key, user) = (key("session:"), UserKey::new("session:", "alice"));
    let sizes = [
        (
            "create_bound",
            std::mem::size_of_val(&*store.create_bound(&key, b"v", in_an_hour(), &user)),
        ),
        ("unbind", std::mem::size_of_val(&*store.unbind(&user, &key))),
        (
            "list_bound",
            std::mem::size_of_val(&*store.list_bound(&user)),
        ),
        ("count", std::mem::size_of_val(&*store.count("session:"))),
        (
            "scan",
            std::mem::size_of_val(&*store.scan("session:", None, 10)),
        ),
    ];
    let large: Vec<_> = sizes
        .iter()
        .filter(|(_, bytes)| *bytes > session_testkit::MAX_FUTURE_BYTES)
        .collect();
    assert!(
        large.is_empty(),
        "futures larger than {} bytes: {large:?}",
        session_testkit::MAX_FUTURE_BYTES
    );
}
