//! The checks of users' indexes and of listing sessions: `create_bound`, `unbind`,
//! `list_bound`, `count`, `scan`, and the manager's users' sessions on top of them.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use super::checks::{manager, save};
use super::{hour, in_, new_key, EXPIRY_WAIT, SHORT_TTL};
use crate::adapter::{CookieUpdate, RequestCookie, SessionManager, SessionState};
use crate::store::{ScanCursor, SharedStore, StoreError, StoreKey, UserKey};
use crate::{IdLength, SessionId};

/// A user of its own for one check, so that runs against a shared server do not meet.
fn new_user() -> String {
    let id = SessionId::generate(IdLength::default()).unwrap();
    format!("user-{}", &id.as_str()[..12])
}

fn user_key(user: &str) -> UserKey {
    UserKey::new("conformance:", user)
}

async fn bound_keys(store: &SharedStore, user: &UserKey) -> BTreeSet<StoreKey> {
    let listed = store.list_bound(user).await.unwrap();
    let keys: BTreeSet<StoreKey> = listed.iter().map(|l| l.key().clone()).collect();
    assert_eq!(keys.len(), listed.len(), "a record listed twice");
    keys
}

fn set(keys: &[&StoreKey]) -> BTreeSet<StoreKey> {
    keys.iter().map(|key| (*key).clone()).collect()
}

pub async fn create_bound_lists_the_record_under_its_user_only(store: SharedStore) {
    let (alice, bob) = (user_key(&new_user()), user_key(&new_user()));
    let (a1, a2, b1, loose) = (new_key(), new_key(), new_key(), new_key());
    let expires_at = hour();
    store
        .create_bound(&a1, b"a1", expires_at, &alice)
        .await
        .unwrap();
    store
        .create_bound(&a2, b"a2", hour(), &alice)
        .await
        .unwrap();
    store.create_bound(&b1, b"b1", hour(), &bob).await.unwrap();
    store.create(&loose, b"loose", hour()).await.unwrap();
    assert!(
        matches!(
            store.create_bound(&a1, b"again", hour(), &bob).await,
            Err(StoreError::DuplicateId)
        ),
        "create_bound over a live record"
    );
    let listed = store.list_bound(&alice).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|l| l.key().clone())
            .collect::<BTreeSet<_>>(),
        set(&[&a1, &a2])
    );
    let first = listed.iter().find(|l| l.key() == &a1).unwrap();
    assert_eq!(first.value(), b"a1");
    let off = first
        .expires_at()
        .duration_since(expires_at)
        .unwrap_or_else(|e| e.duration());
    assert!(off <= Duration::from_secs(2), "expiry off by {off:?}");
    assert_eq!(bound_keys(&store, &bob).await, set(&[&b1]));
    assert!(bound_keys(&store, &user_key(&new_user())).await.is_empty());
    // A bound record is a record like any other.
    let loaded = store.load(&a1).await.unwrap().unwrap();
    assert_eq!(loaded.value(), b"a1");
    let revision = store
        .update(&a1, b"a1'", hour(), loaded.revision())
        .await
        .unwrap();
    assert_ne!(revision, loaded.revision());
    assert_eq!(bound_keys(&store, &alice).await, set(&[&a1, &a2]));
}

pub async fn unbind_takes_a_key_out_of_the_index_only(store: SharedStore) {
    let alice = user_key(&new_user());
    let (a1, a2) = (new_key(), new_key());
    store
        .create_bound(&a1, b"a1", hour(), &alice)
        .await
        .unwrap();
    store
        .create_bound(&a2, b"a2", hour(), &alice)
        .await
        .unwrap();
    store.unbind(&alice, &a1).await.unwrap();
    assert_eq!(bound_keys(&store, &alice).await, set(&[&a2]));
    assert!(store.load(&a1).await.unwrap().is_some(), "unbind deleted");
    // Absent entries and absent users are not errors.
    store.unbind(&alice, &a1).await.unwrap();
    store
        .unbind(&user_key(&new_user()), &new_key())
        .await
        .unwrap();
    store.unbind(&alice, &a2).await.unwrap();
    assert!(bound_keys(&store, &alice).await.is_empty());
}

pub async fn list_bound_prunes_deleted_and_expired_records_without_touching(store: SharedStore) {
    let alice = user_key(&new_user());
    let (deleted, short, kept) = (new_key(), new_key(), new_key());
    store
        .create_bound(&deleted, b"d", hour(), &alice)
        .await
        .unwrap();
    store
        .create_bound(&short, b"s", in_(SHORT_TTL), &alice)
        .await
        .unwrap();
    store
        .create_bound(&kept, b"k", hour(), &alice)
        .await
        .unwrap();
    store.delete(&deleted).await.unwrap();
    assert_eq!(bound_keys(&store, &alice).await, set(&[&short, &kept]));
    // Listing reads without touching: the short-lived record still dies on time.
    tokio::time::sleep(EXPIRY_WAIT).await;
    assert_eq!(bound_keys(&store, &alice).await, set(&[&kept]));
    assert!(
        store.load(&short).await.unwrap().is_none(),
        "listing kept it alive"
    );
    // The pruned entries are gone for good: records that appear again under those keys,
    // unbound, are not the user's.
    store.create(&deleted, b"new", hour()).await.unwrap();
    store.create(&short, b"new", hour()).await.unwrap();
    assert_eq!(bound_keys(&store, &alice).await, set(&[&kept]));
}

/// A key prefix of its own for one check, so that counting sees only its records.
fn new_prefix() -> String {
    let id = SessionId::generate(IdLength::default()).unwrap();
    format!("scan{}:", &id.as_str()[..10].replace(['-', '_'], "x"))
}

pub async fn count_and_scan_list_live_sessions_under_a_prefix(store: SharedStore) {
    let prefix = new_prefix();
    let key = || StoreKey::new(&prefix, &SessionId::generate(IdLength::default()).unwrap());
    let user = UserKey::new(&prefix, &new_user());
    let mut live = BTreeSet::new();
    for i in 0..23 {
        let key = key();
        if i % 4 == 0 {
            store
                .create_bound(&key, b"bound", hour(), &user)
                .await
                .unwrap();
        } else {
            store.create(&key, b"loose", hour()).await.unwrap();
        }
        live.insert(key);
    }
    let deleted = key();
    store.create(&deleted, b"gone", hour()).await.unwrap();
    store.delete(&deleted).await.unwrap();
    let short = key();
    store
        .create(&short, b"short", in_(SHORT_TTL))
        .await
        .unwrap();
    // Another prefix's sessions are not counted.
    store.create(&new_key(), b"other", hour()).await.unwrap();
    tokio::time::sleep(EXPIRY_WAIT).await;

    let count = match store.count(&prefix).await {
        Err(StoreError::Unsupported { operation, .. }) => {
            assert_eq!(operation, "count");
            assert!(matches!(
                store.scan(&prefix, None, 10).await,
                Err(StoreError::Unsupported { .. })
            ));
            return;
        }
        other => other.unwrap(),
    };
    assert_eq!(count, live.len() as u64);

    let mut seen = BTreeSet::new();
    let mut after: Option<ScanCursor> = None;
    for page in 0.. {
        assert!(page < 1_000, "scan does not end");
        let scanned = store.scan(&prefix, after.as_ref(), 7).await.unwrap();
        for listed in &scanned.records {
            assert!(
                listed.value() == b"bound" || listed.value() == b"loose",
                "scan listed a record it should not"
            );
            assert!(listed.expires_at() > SystemTime::now());
            seen.insert(listed.key().clone());
        }
        match scanned.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, live);
}

/// Logs `user` in on a new session (or on `cookie`'s) and returns the new cookie.
async fn logged_in(sessions: &SessionManager, cookie: RequestCookie, user: &str) -> RequestCookie {
    let mut state = sessions.load(cookie).await.unwrap();
    state.insert("seen", true).unwrap();
    state.log_in(user, None);
    save(sessions, state).await
}

fn handle(state: &SessionState) -> crate::SessionHandle {
    state.handle().unwrap()
}

pub async fn log_in_binds_and_regenerate_keeps_the_binding(store: SharedStore) {
    let sessions = manager(&store, |b| b);
    let user = new_user();
    let anonymous = {
        let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
        state.insert("cart", 1).unwrap();
        save(&sessions, state).await
    };
    assert!(sessions.sessions_of(&user, None).await.unwrap().is_empty());
    let first = logged_in(&sessions, anonymous.clone(), &user).await;
    assert_ne!(first, anonymous, "log_in kept the id");
    assert!(sessions.load(anonymous).await.unwrap().is_empty());
    let state = sessions.load(first.clone()).await.unwrap();
    assert_eq!(state.user(), Some(user.as_str()));
    assert_eq!(state.get::<i32>("cart").unwrap(), Some(1));
    let current = handle(&state);
    let listed = sessions.sessions_of(&user, Some(&current)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].current);
    assert_eq!(listed[0].user.as_deref(), Some(user.as_str()));
    assert!(listed[0].created_at <= listed[0].last_active);
    assert!(listed[0].last_active < listed[0].expires_at);

    let mut state = sessions.load(first.clone()).await.unwrap();
    state.regenerate();
    let second = save(&sessions, state).await;
    let state = sessions.load(second).await.unwrap();
    assert_eq!(state.user(), Some(user.as_str()));
    let listed = sessions.sessions_of(&user, None).await.unwrap();
    assert_eq!(listed.len(), 1, "the old id is still listed");
    assert_eq!(listed[0].handle, handle(&state));
    assert!(!listed[0].current);

    // A session of its own per login, all listed.
    logged_in(&sessions, RequestCookie::Absent, &user).await;
    assert_eq!(sessions.sessions_of(&user, None).await.unwrap().len(), 2);
}

pub async fn destroy_and_clear_end_the_binding(store: SharedStore) {
    let sessions = manager(&store, |b| b);
    let user = new_user();
    let destroyed = logged_in(&sessions, RequestCookie::Absent, &user).await;
    let cleared = logged_in(&sessions, RequestCookie::Absent, &user).await;
    let kept = logged_in(&sessions, RequestCookie::Absent, &user).await;
    assert_eq!(sessions.sessions_of(&user, None).await.unwrap().len(), 3);
    let mut state = sessions.load(destroyed.clone()).await.unwrap();
    state.destroy();
    assert!(matches!(
        sessions.save(state).await.unwrap(),
        CookieUpdate::Remove(_)
    ));
    let mut state = sessions.load(cleared.clone()).await.unwrap();
    state.clear();
    assert!(state.user().is_none());
    assert!(matches!(
        sessions.save(state).await.unwrap(),
        CookieUpdate::Remove(_)
    ));
    let listed = sessions.sessions_of(&user, None).await.unwrap();
    let kept = sessions.load(kept).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].handle, handle(&kept));
}

pub async fn end_session_ends_only_the_users_own_session(store: SharedStore) {
    let sessions = manager(&store, |b| b);
    let (alice, mallory) = (new_user(), new_user());
    let phone = logged_in(&sessions, RequestCookie::Absent, &alice).await;
    let laptop = logged_in(&sessions, RequestCookie::Absent, &alice).await;
    let theirs = logged_in(&sessions, RequestCookie::Absent, &mallory).await;
    let phone_handle = handle(&sessions.load(phone.clone()).await.unwrap());
    // Another user's handle ends nothing.
    assert!(!sessions.end_session(&mallory, &phone_handle).await.unwrap());
    assert!(!sessions.load(phone.clone()).await.unwrap().is_empty());
    assert!(sessions.end_session(&alice, &phone_handle).await.unwrap());
    assert!(
        sessions.load(phone).await.unwrap().is_empty(),
        "revoked session lives"
    );
    assert!(!sessions.end_session(&alice, &phone_handle).await.unwrap());
    assert!(!sessions.load(laptop).await.unwrap().is_empty());
    assert!(!sessions.load(theirs).await.unwrap().is_empty());
    assert_eq!(sessions.sessions_of(&alice, None).await.unwrap().len(), 1);
}

pub async fn end_sessions_ends_all_or_all_but_the_current(store: SharedStore) {
    let sessions = manager(&store, |b| b);
    let (alice, bob) = (new_user(), new_user());
    let mut cookies = Vec::new();
    for _ in 0..3 {
        cookies.push(logged_in(&sessions, RequestCookie::Absent, &alice).await);
    }
    let bobs = logged_in(&sessions, RequestCookie::Absent, &bob).await;
    let current = handle(&sessions.load(cookies[0].clone()).await.unwrap());
    assert_eq!(
        sessions.end_sessions(&alice, Some(&current)).await.unwrap(),
        2
    );
    assert!(!sessions.load(cookies[0].clone()).await.unwrap().is_empty());
    for cookie in &cookies[1..] {
        assert!(sessions.load(cookie.clone()).await.unwrap().is_empty());
    }
    let listed = sessions.sessions_of(&alice, Some(&current)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].current);
    assert_eq!(sessions.end_sessions(&alice, None).await.unwrap(), 1);
    assert!(sessions.load(cookies[0].clone()).await.unwrap().is_empty());
    assert!(sessions.sessions_of(&alice, None).await.unwrap().is_empty());
    assert!(
        !sessions.load(bobs).await.unwrap().is_empty(),
        "another user's session ended"
    );
}

pub async fn an_ended_session_is_not_brought_back_by_a_late_request(store: SharedStore) {
    let sessions = manager(&store, |b| b);
    let user = new_user();
    let cookie = logged_in(&sessions, RequestCookie::Absent, &user).await;
    let mut writer = sessions.load(cookie.clone()).await.unwrap();
    let mut regenerating = sessions.load(cookie.clone()).await.unwrap();
    assert_eq!(sessions.end_sessions(&user, None).await.unwrap(), 1);
    writer.insert("late", 1).unwrap();
    assert_eq!(sessions.save(writer).await.unwrap(), CookieUpdate::Keep);
    regenerating.regenerate();
    assert_eq!(
        sessions.save(regenerating).await.unwrap(),
        CookieUpdate::Keep
    );
    assert!(sessions.load(cookie).await.unwrap().is_empty());
    assert!(sessions.sessions_of(&user, None).await.unwrap().is_empty());
}

pub async fn no_stored_key_or_value_holds_a_live_id(store: SharedStore) {
    let prefix = new_prefix();
    let sessions = {
        let keyring = crate::Keyring::new([[42u8; 32]]).unwrap();
        let config = crate::Config::builder(keyring)
            .key_prefix(prefix.clone())
            .build()
            .unwrap();
        SessionManager::new(store.clone(), config)
    };
    let user = new_user();
    let anonymous = {
        let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
        state.insert("n", 0).unwrap();
        save(&sessions, state).await
    };
    let cookies = [
        anonymous,
        logged_in(&sessions, RequestCookie::Absent, &user).await,
        logged_in(&sessions, RequestCookie::Absent, &user).await,
    ];
    let ids: Vec<SessionId> = cookies
        .into_iter()
        .map(|cookie| match cookie {
            RequestCookie::Valid(verified) => verified.into_id(),
            _ => panic!("no cookie"),
        })
        .collect();
    let holds_an_id = |text: &[u8]| {
        ids.iter().any(|id| {
            text.windows(id.as_str().len())
                .any(|window| window == id.as_str().as_bytes())
        })
    };
    let listed = store
        .list_bound(&UserKey::new(&prefix, &user))
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    for listed in &listed {
        assert!(
            !holds_an_id(listed.key().as_str().as_bytes()),
            "a key holds an id"
        );
        assert!(!holds_an_id(listed.value()), "a value holds an id");
    }
    // Every page, where the store can list its sessions.
    let mut records = Vec::new();
    let mut after: Option<ScanCursor> = None;
    while let Ok(page) = store.scan(&prefix, after.as_ref(), 100).await {
        records.extend(page.records);
        match page.next {
            Some(next) => after = Some(next),
            None => {
                let keys: BTreeSet<StoreKey> = records.iter().map(|l| l.key().clone()).collect();
                assert_eq!(keys.len(), 3);
                break;
            }
        }
    }
    for listed in &records {
        assert!(
            !holds_an_id(listed.key().as_str().as_bytes()),
            "a key holds an id"
        );
        assert!(!holds_an_id(listed.value()), "a value holds an id");
    }
}
