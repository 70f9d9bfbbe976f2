//! Users' indexes in memcached: concurrent binds lose no entry, and neither the index item
//! nor the session items hold a live session id, on the memcached in
//! `SESSION_TEST_MEMCACHED_URL` (started by `cargo xtask services up`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use memcache::exp::{AsyncMetaClient, Get, Meta};
use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager, SessionState};
use session_core::store::{SharedStore, Store, StoreError, StoreKey, UserKey};
use session_core::{Config, IdLength, Keyring, SessionId};
use session_memcached::MemcachedStore;

fn url() -> String {
    std::env::var("SESSION_TEST_MEMCACHED_URL")
        .expect("SESSION_TEST_MEMCACHED_URL is not set: run `cargo xtask services up`")
}

async fn store() -> MemcachedStore {
    MemcachedStore::connect(&url()).await.unwrap()
}

/// A random token, so that runs against a shared server do not meet.
fn token() -> String {
    let id = SessionId::generate(IdLength::default()).unwrap();
    id.as_str()[..12].replace(['-', '_'], "x")
}

fn key(prefix: &str) -> StoreKey {
    StoreKey::new(prefix, &SessionId::generate(IdLength::default()).unwrap())
}

fn hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_binds_of_one_user_are_all_listed() {
    let store = store().await;
    let prefix = format!("users{}:", token());
    let user = UserKey::new(&prefix, "alice");
    let keys: Vec<StoreKey> = (0..32).map(|_| key(&prefix)).collect();
    let tasks: Vec<_> = keys
        .iter()
        .cloned()
        .map(|key| {
            let (store, user) = (store.clone(), user.clone());
            tokio::spawn(async move { store.create_bound(&key, b"s", hour(), &user).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let listed = store.list_bound(&user).await.unwrap();
    assert_eq!(listed.len(), 32, "an entry was lost or listed twice");
    let listed: BTreeSet<StoreKey> = listed.iter().map(|l| l.key().clone()).collect();
    assert_eq!(listed, keys.into_iter().collect::<BTreeSet<_>>());
    for key in &listed {
        store.unbind(&user, key).await.unwrap();
    }
    assert!(store.list_bound(&user).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_second_bound_create_of_a_live_key_keeps_its_entry() {
    let store = store().await;
    let prefix = format!("users{}:", token());
    let (alice, bob) = (UserKey::new(&prefix, "alice"), UserKey::new(&prefix, "bob"));
    let key = key(&prefix);
    store
        .create_bound(&key, b"a", hour(), &alice)
        .await
        .unwrap();
    for user in [&alice, &bob] {
        assert!(matches!(
            store.create_bound(&key, b"again", hour(), user).await,
            Err(StoreError::DuplicateId)
        ));
    }
    let listed = store.list_bound(&alice).await.unwrap();
    assert_eq!(
        listed.len(),
        1,
        "the entry of a live bound record was taken out"
    );
    assert_eq!(listed[0].value(), b"a");
    assert!(store.list_bound(&bob).await.unwrap().is_empty());
}

async fn saved(sessions: &SessionManager, state: SessionState) -> RequestCookie {
    match sessions.save(state).await.unwrap() {
        CookieUpdate::Set(header) => {
            let pair = header.split(';').next().unwrap().to_owned();
            sessions.verify([pair.as_str()])
        }
        other => panic!("expected a cookie, got {other:?}"),
    }
}

async fn logged_in(sessions: &SessionManager, user: &str) -> RequestCookie {
    let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
    state.insert("seen", true).unwrap();
    state.log_in(user, None);
    saved(sessions, state).await
}

/// The value of the item under `key`, read with a client of its own, or `None` on a miss.
async fn raw_value(client: &AsyncMetaClient, key: &str) -> Option<Vec<u8>> {
    let result = client.run(Get::new(key)).await.unwrap();
    let hit = result.hit();
    result.value.filter(|_| hit)
}

fn holds(text: &[u8], id: &SessionId) -> bool {
    text.windows(id.as_str().len())
        .any(|window| window == id.as_str().as_bytes())
}

#[tokio::test]
async fn the_index_and_the_sessions_hold_no_live_id() {
    let store = SharedStore::new(store().await);
    let prefix = format!("users{}:", token());
    let sessions = {
        let keyring = Keyring::new([[42u8; 32]]).unwrap();
        let config = Config::builder(keyring)
            .key_prefix(prefix.clone())
            .build()
            .unwrap();
        SessionManager::new(store.clone(), config)
    };
    let user = format!("user-{}", token());
    let ids: Vec<SessionId> = [
        logged_in(&sessions, &user).await,
        logged_in(&sessions, &user).await,
    ]
    .into_iter()
    .map(|cookie| match cookie {
        RequestCookie::Valid(verified) => verified.into_id(),
        _ => panic!("no cookie"),
    })
    .collect();

    let raw = AsyncMetaClient::connect(url().strip_prefix("memcache://").unwrap())
        .await
        .unwrap();
    let index_key = UserKey::new(&prefix, &user);
    let index = raw_value(&raw, index_key.as_str())
        .await
        .expect("no index item");
    let keys: Vec<&str> = std::str::from_utf8(&index)
        .unwrap()
        .lines()
        .filter(|line| !line.is_empty())
        .collect();
    assert_eq!(keys.len(), 2, "the index does not hold both sessions");
    // Exptime 0: the index outlives any expiry its sessions are moved to.
    let ttl = raw
        .run(
            Get::new(index_key.as_str())
                .meta(Meta::NONE.ttl())
                .without_value(),
        )
        .await
        .unwrap()
        .item
        .ttl;
    assert_eq!(ttl, Some(-1), "the index item expires");
    for id in &ids {
        assert!(
            !holds(index_key.as_str().as_bytes(), id),
            "the index key holds an id"
        );
        assert!(!holds(&index, id), "the index holds an id");
    }
    for key in keys {
        assert!(key.starts_with(&prefix));
        let value = raw_value(&raw, key)
            .await
            .expect("an indexed session is absent");
        for id in &ids {
            assert!(!holds(key.as_bytes(), id), "a session key holds an id");
            assert!(!holds(&value, id), "a session value holds an id");
        }
    }
    assert_eq!(sessions.sessions_of(&user, None).await.unwrap().len(), 2);
}
