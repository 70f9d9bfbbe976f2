//! The store conformance suite: every backend's tests run it against a real server.
//!
//! ```ignore
//! // in session-foo/tests/conformance.rs
//! session_core::store_conformance_tests!(async { FooStore::connect("foo://127.0.0.1").await.unwrap() });
//! ```
//!
//! The macro expands to one `#[test]` per check, each with a fresh store from the factory
//! expression, so a failure names the rule that broke. Checks use random keys under the
//! prefix `conformance:`, so runs against a shared server do not see each other.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::store::{Revision, SharedStore, Store, StoreError, StoreKey};
use crate::{Codec, Config, IdLength, Keyring, SessionId};

/// Expiry used by the checks that wait for a record to die.
pub const SHORT_TTL: Duration = Duration::from_secs(1);

/// How long those checks wait: long enough for stores with one-second resolution
/// (memcached) whose clock may lag a second behind ours.
pub const EXPIRY_WAIT: Duration = Duration::from_millis(3100);

/// Generates one `#[test]` per conformance check for the store that `$factory` (an
/// expression evaluating to a future of the store) makes.
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:expr) => {
        $crate::__store_conformance_tests!($factory;
            load_of_an_absent_key_is_none,
            create_then_load_returns_the_bytes,
            create_of_an_existing_key_is_duplicate_id,
            update_replaces_the_value,
            update_of_an_absent_key_is_unknown_id,
            update_after_delete_does_not_resurrect,
            update_after_expiry_does_not_resurrect,
            touch_extends_expiry_without_rewriting,
            touch_of_an_absent_key_is_unknown_id,
            delete_removes_and_absent_is_ok,
            expired_records_are_absent_on_read,
            a_write_whose_expiry_has_passed_leaves_no_live_record,
            delete_expired_keeps_live_records,
            load_and_touch_extends_expiry,
            large_values_round_trip,
            binary_values_round_trip,
            concurrent_operations_on_many_keys,
            concurrent_creates_of_one_key_have_one_winner,
            create_returns_the_revision_that_load_reports,
            update_at_the_loaded_revision_moves_it,
            update_at_a_stale_revision_is_a_conflict,
            touch_keeps_the_revision,
            delete_if_unchanged_removes_only_the_loaded_revision,
            delete_if_unchanged_of_an_absent_key_is_unknown_id,
            concurrent_conditional_updates_lose_nothing,
            update_loaded_writes_only_over_the_record_it_loaded,
            update_loaded_of_an_absent_or_foreign_record_is_unknown_id,
            concurrent_loaded_updates_lose_nothing,
            sessions_with_unicode_round_trip,
            absolute_timeout_ends_a_session,
            idle_timeout_ends_a_session,
            undecodable_record_is_a_new_session,
            regenerate_deletes_the_old_record,
            destroy_deletes_the_record,
            concurrent_writes_of_distinct_keys_are_all_kept,
            concurrent_updates_of_one_key_add_up,
            a_session_destroyed_during_an_update_stays_destroyed,
            a_session_destroyed_during_a_regenerate_stays_destroyed,
            regenerate_keeps_what_another_request_wrote_meanwhile,
            emptying_a_session_keeps_what_another_request_wrote_meanwhile,
            only_the_request_that_ended_a_session_removes_its_cookie,
            create_bound_lists_the_record_under_its_user_only,
            unbind_takes_a_key_out_of_the_index_only,
            list_bound_prunes_deleted_and_expired_records_without_touching,
            count_and_scan_list_live_sessions_under_a_prefix,
            log_in_binds_and_regenerate_keeps_the_binding,
            destroy_and_clear_end_the_binding,
            end_session_ends_only_the_users_own_session,
            end_sessions_ends_all_or_all_but_the_current,
            an_ended_session_is_not_brought_back_by_a_late_request,
            no_stored_key_or_value_holds_a_live_id,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_tests {
    ($factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::store::conformance::run(|| $factory, $crate::store::conformance::checks::$check);
            }
        )*
    };
}

/// Runs one check on a multi-threaded runtime with a fresh store.
pub fn run<S, F, Fut, C, CFut>(factory: F, check: C)
where
    S: Store,
    F: FnOnce() -> Fut,
    Fut: Future<Output = S>,
    C: FnOnce(SharedStore) -> CFut,
    CFut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let store = SharedStore::new(factory().await);
        check(store).await;
    });
}

/// A random key under the `conformance:` prefix.
pub fn new_key() -> StoreKey {
    StoreKey::new(
        "conformance:",
        &SessionId::generate(IdLength::default()).unwrap(),
    )
}

fn in_(duration: Duration) -> SystemTime {
    SystemTime::now() + duration
}

fn hour() -> SystemTime {
    in_(Duration::from_secs(3600))
}

fn assert_unknown<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::UnknownId)),
        "{what}: expected UnknownId, got {result:?}"
    );
}

/// Fails unless `result` is a conflict whose current record, where the backend reports
/// one, is `current` (its value and revision).
fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, current: (&[u8], Revision)) {
    match result {
        Err(StoreError::Conflict {
            current: Some(record),
        }) => assert_eq!(
            (record.value(), record.revision()),
            current,
            "the conflict's record is not the current one"
        ),
        Err(StoreError::Conflict { current: None }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn value(store: &dyn Store, key: &StoreKey) -> Option<Vec<u8>> {
    store.load(key).await.unwrap().map(|l| l.into_value())
}

mod users;

/// The checks, one per rule. Each takes a fresh store.
pub mod checks {
    use super::*;
    use crate::adapter::{RequestCookie, SessionManager};

    pub use super::users::*;

    pub async fn load_of_an_absent_key_is_none(store: SharedStore) {
        assert_eq!(value(&*store, &new_key()).await, None);
    }

    pub async fn create_then_load_returns_the_bytes(store: SharedStore) {
        let key = new_key();
        let expires_at = hour();
        store.create(&key, b"{\"a\":1}", expires_at).await.unwrap();
        let loaded = store.load(&key).await.unwrap().expect("created record");
        assert_eq!(loaded.value(), b"{\"a\":1}");
        if let Some(reported) = loaded.expires_at() {
            let error = reported
                .duration_since(expires_at)
                .or_else(|e| Ok::<_, ()>(e.duration()))
                .unwrap();
            assert!(
                error <= Duration::from_secs(1),
                "reported expiry off by {error:?}"
            );
        }
    }

    pub async fn create_of_an_existing_key_is_duplicate_id(store: SharedStore) {
        let key = new_key();
        store.create(&key, b"first", hour()).await.unwrap();
        let second = store.create(&key, b"second", hour()).await;
        assert!(
            matches!(second, Err(StoreError::DuplicateId)),
            "got {second:?}"
        );
        assert_eq!(value(&*store, &key).await.as_deref(), Some(&b"first"[..]));
    }

    pub async fn update_replaces_the_value(store: SharedStore) {
        let key = new_key();
        let revision = store.create(&key, b"old", hour()).await.unwrap();
        store.update(&key, b"new", hour(), revision).await.unwrap();
        assert_eq!(value(&*store, &key).await.as_deref(), Some(&b"new"[..]));
    }

    pub async fn update_of_an_absent_key_is_unknown_id(store: SharedStore) {
        let key = new_key();
        assert_unknown(
            store.update(&key, b"x", hour(), Revision::FIRST).await,
            "update of absent key",
        );
        assert_eq!(value(&*store, &key).await, None, "update created a record");
    }

    pub async fn update_after_delete_does_not_resurrect(store: SharedStore) {
        let key = new_key();
        let revision = store.create(&key, b"live", hour()).await.unwrap();
        store.delete(&key).await.unwrap();
        assert_unknown(
            store.update(&key, b"zombie", hour(), revision).await,
            "update after delete",
        );
        assert_eq!(value(&*store, &key).await, None, "deleted record came back");
    }

    pub async fn update_after_expiry_does_not_resurrect(store: SharedStore) {
        let key = new_key();
        let revision = store.create(&key, b"short", in_(SHORT_TTL)).await.unwrap();
        tokio::time::sleep(EXPIRY_WAIT).await;
        assert_unknown(
            store.update(&key, b"zombie", hour(), revision).await,
            "update after expiry",
        );
        assert_unknown(
            store.delete_if_unchanged(&key, revision).await,
            "conditional delete after expiry",
        );
        assert_unknown(store.touch(&key, hour()).await, "touch after expiry");
        assert_eq!(value(&*store, &key).await, None, "expired record came back");
    }

    pub async fn touch_extends_expiry_without_rewriting(store: SharedStore) {
        let key = new_key();
        store.create(&key, b"kept", in_(SHORT_TTL)).await.unwrap();
        store.touch(&key, hour()).await.unwrap();
        tokio::time::sleep(EXPIRY_WAIT).await;
        assert_eq!(value(&*store, &key).await.as_deref(), Some(&b"kept"[..]));
    }

    pub async fn touch_of_an_absent_key_is_unknown_id(store: SharedStore) {
        let key = new_key();
        assert_unknown(store.touch(&key, hour()).await, "touch of absent key");
        assert_eq!(value(&*store, &key).await, None, "touch created a record");
    }

    pub async fn delete_removes_and_absent_is_ok(store: SharedStore) {
        let key = new_key();
        store.create(&key, b"x", hour()).await.unwrap();
        store.delete(&key).await.unwrap();
        assert_eq!(value(&*store, &key).await, None);
        store.delete(&key).await.unwrap();
        store.delete(&new_key()).await.unwrap();
    }

    pub async fn expired_records_are_absent_on_read(store: SharedStore) {
        let key = new_key();
        store.create(&key, b"short", in_(SHORT_TTL)).await.unwrap();
        assert!(
            value(&*store, &key).await.is_some(),
            "record gone before its expiry"
        );
        tokio::time::sleep(EXPIRY_WAIT).await;
        assert_eq!(
            value(&*store, &key).await,
            None,
            "expired record was returned"
        );
        // An expired id is free again.
        store.create(&key, b"again", hour()).await.unwrap();
        assert_eq!(value(&*store, &key).await.as_deref(), Some(&b"again"[..]));
    }

    /// An expiry can pass between a request's load and its write-back (an absolute timeout
    /// reached meanwhile): the write must not leave the record readable, not even for the
    /// shortest time-to-live a backend can express.
    pub async fn a_write_whose_expiry_has_passed_leaves_no_live_record(store: SharedStore) {
        let passed = || SystemTime::now() - Duration::from_secs(5);
        let key = new_key();
        let revision = store.create(&key, b"live", hour()).await.unwrap();
        store
            .update(&key, b"over", passed(), revision)
            .await
            .unwrap();
        assert_eq!(
            value(&*store, &key).await,
            None,
            "update to a passed expiry"
        );
        assert_unknown(store.touch(&key, hour()).await, "touch after that update");

        let key = new_key();
        store.create(&key, b"live", hour()).await.unwrap();
        store.touch(&key, passed()).await.unwrap();
        assert_eq!(value(&*store, &key).await, None, "touch to a passed expiry");

        let key = new_key();
        store.create(&key, b"dead", passed()).await.unwrap();
        assert_eq!(
            value(&*store, &key).await,
            None,
            "create at a passed expiry"
        );
        // Absent, so the id is free.
        store.create(&key, b"new", hour()).await.unwrap();
        assert_eq!(value(&*store, &key).await.as_deref(), Some(&b"new"[..]));
    }

    pub async fn delete_expired_keeps_live_records(store: SharedStore) {
        let expired: Vec<StoreKey> = (0..3).map(|_| new_key()).collect();
        let live: Vec<StoreKey> = (0..2).map(|_| new_key()).collect();
        for key in &expired {
            store.create(key, b"old", in_(SHORT_TTL)).await.unwrap();
        }
        for key in &live {
            store.create(key, b"live", hour()).await.unwrap();
        }
        tokio::time::sleep(EXPIRY_WAIT).await;
        store.delete_expired().await.unwrap();
        for key in &live {
            assert_eq!(value(&*store, key).await.as_deref(), Some(&b"live"[..]));
        }
        for key in &expired {
            assert_eq!(value(&*store, key).await, None);
        }
    }

    pub async fn load_and_touch_extends_expiry(store: SharedStore) {
        let key = new_key();
        store.create(&key, b"data", in_(SHORT_TTL)).await.unwrap();
        let loaded = store.load_and_touch(&key, hour()).await.unwrap();
        assert_eq!(
            loaded.map(|l| l.into_value()).as_deref(),
            Some(&b"data"[..])
        );
        tokio::time::sleep(EXPIRY_WAIT).await;
        assert_eq!(value(&*store, &key).await.as_deref(), Some(&b"data"[..]));
        assert!(store
            .load_and_touch(&new_key(), hour())
            .await
            .unwrap()
            .is_none());
    }

    pub async fn large_values_round_trip(store: SharedStore) {
        let key = new_key();
        let big: Vec<u8> = (0..1024 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
        let revision = store.create(&key, &big, hour()).await.unwrap();
        assert!(
            value(&*store, &key).await == Some(big.clone()),
            "1 MiB value changed"
        );
        let bigger: Vec<u8> = big.iter().rev().copied().collect();
        store.update(&key, &bigger, hour(), revision).await.unwrap();
        assert!(
            value(&*store, &key).await == Some(bigger),
            "1 MiB update changed"
        );
    }

    pub async fn binary_values_round_trip(store: SharedStore) {
        let key = new_key();
        let bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        store.create(&key, &bytes, hour()).await.unwrap();
        assert_eq!(value(&*store, &key).await, Some(bytes));
    }

    pub async fn concurrent_operations_on_many_keys(store: SharedStore) {
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let key = new_key();
                    let first = format!("value {i}");
                    let revision = store.create(&key, first.as_bytes(), hour()).await.unwrap();
                    assert_eq!(value(&*store, &key).await, Some(first.into_bytes()));
                    let second = format!("updated {i}");
                    store
                        .update(&key, second.as_bytes(), hour(), revision)
                        .await
                        .unwrap();
                    store.touch(&key, hour()).await.unwrap();
                    assert_eq!(value(&*store, &key).await, Some(second.into_bytes()));
                    store.delete(&key).await.unwrap();
                    assert_eq!(value(&*store, &key).await, None);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }

    pub async fn concurrent_creates_of_one_key_have_one_winner(store: SharedStore) {
        let key = new_key();
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move {
                    let result = store.create(&key, format!("{i}").as_bytes(), hour()).await;
                    (i, result)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (i, Ok(_)) => winners.push(i),
                (_, Err(StoreError::DuplicateId)) => {}
                (_, Err(other)) => panic!("create failed: {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "winners: {winners:?}");
        let stored = value(&*store, &key).await.unwrap();
        assert_eq!(stored, format!("{}", winners[0]).into_bytes());
    }

    pub async fn create_returns_the_revision_that_load_reports(store: SharedStore) {
        let key = new_key();
        let created = store.create(&key, b"v1", hour()).await.unwrap();
        let loaded = store.load(&key).await.unwrap().expect("created record");
        assert_eq!(loaded.revision(), created);
        let touched = store.load_and_touch(&key, hour()).await.unwrap().unwrap();
        assert_eq!(touched.revision(), created, "load_and_touch");
    }

    pub async fn update_at_the_loaded_revision_moves_it(store: SharedStore) {
        let key = new_key();
        let first = store.create(&key, b"v1", hour()).await.unwrap();
        let second = store.update(&key, b"v2", hour(), first).await.unwrap();
        assert_ne!(second, first, "an update must change the revision");
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!((loaded.value(), loaded.revision()), (&b"v2"[..], second));
        let third = store.update(&key, b"v3", hour(), second).await.unwrap();
        assert!(
            third != second && third != first,
            "revisions repeat: {first:?} {second:?} {third:?}"
        );
        assert_eq!(value(&*store, &key).await.as_deref(), Some(&b"v3"[..]));
    }

    pub async fn update_at_a_stale_revision_is_a_conflict(store: SharedStore) {
        let key = new_key();
        let stale = store.create(&key, b"v1", hour()).await.unwrap();
        let current = store.update(&key, b"v2", hour(), stale).await.unwrap();
        assert_conflict(
            store.update(&key, b"lost", hour(), stale).await,
            (b"v2", current),
        );
        assert_eq!(
            value(&*store, &key).await.as_deref(),
            Some(&b"v2"[..]),
            "a stale update was written"
        );
        // The current revision still writes.
        store.update(&key, b"v3", hour(), current).await.unwrap();
        assert_eq!(value(&*store, &key).await.as_deref(), Some(&b"v3"[..]));
    }

    pub async fn touch_keeps_the_revision(store: SharedStore) {
        let key = new_key();
        let created = store.create(&key, b"v1", hour()).await.unwrap();
        store.touch(&key, hour()).await.unwrap();
        store.load_and_touch(&key, hour()).await.unwrap().unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.revision(), created, "a touch changed the revision");
        store.update(&key, b"v2", hour(), created).await.unwrap();
    }

    pub async fn delete_if_unchanged_removes_only_the_loaded_revision(store: SharedStore) {
        let key = new_key();
        let stale = store.create(&key, b"v1", hour()).await.unwrap();
        let current = store.update(&key, b"v2", hour(), stale).await.unwrap();
        assert_conflict(
            store.delete_if_unchanged(&key, stale).await,
            (b"v2", current),
        );
        assert_eq!(
            value(&*store, &key).await.as_deref(),
            Some(&b"v2"[..]),
            "a stale delete removed the record"
        );
        store.delete_if_unchanged(&key, current).await.unwrap();
        assert_eq!(value(&*store, &key).await, None);
        assert_unknown(
            store.update(&key, b"zombie", hour(), current).await,
            "update after delete",
        );
        assert_eq!(value(&*store, &key).await, None, "deleted record came back");
    }

    pub async fn delete_if_unchanged_of_an_absent_key_is_unknown_id(store: SharedStore) {
        assert_unknown(
            store.delete_if_unchanged(&new_key(), Revision::FIRST).await,
            "conditional delete of an absent key",
        );
    }

    pub async fn update_loaded_writes_only_over_the_record_it_loaded(store: SharedStore) {
        let key = new_key();
        store.create(&key, b"v1", hour()).await.unwrap();
        let stale = store.load(&key).await.unwrap().unwrap();
        // Touches move the expiry, not the record: the loaded record still writes.
        store.touch(&key, hour()).await.unwrap();
        store.load_and_touch(&key, hour()).await.unwrap().unwrap();
        let second = store
            .update_loaded(&key, b"v2", hour(), &stale)
            .await
            .unwrap();
        assert_ne!(
            second,
            stale.revision(),
            "an update must change the revision"
        );
        let current = store.load(&key).await.unwrap().unwrap();
        assert_eq!((current.value(), current.revision()), (&b"v2"[..], second));
        assert_conflict(
            store.update_loaded(&key, b"lost", hour(), &stale).await,
            (b"v2", second),
        );
        assert_eq!(
            value(&*store, &key).await.as_deref(),
            Some(&b"v2"[..]),
            "a stale update was written"
        );
        // What `update` wrote, `update_loaded` of its load writes over, and the other way.
        let third = store
            .update_loaded(&key, b"v3", hour(), &current)
            .await
            .unwrap();
        store.update(&key, b"v4", hour(), third).await.unwrap();
        let fourth = store.load(&key).await.unwrap().unwrap();
        store
            .update_loaded(&key, b"v5", hour(), &fourth)
            .await
            .unwrap();
        assert_eq!(value(&*store, &key).await.as_deref(), Some(&b"v5"[..]));
    }

    pub async fn update_loaded_of_an_absent_or_foreign_record_is_unknown_id(store: SharedStore) {
        let key = new_key();
        store.create(&key, b"v1", hour()).await.unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        store.delete(&key).await.unwrap();
        assert_unknown(
            store.update_loaded(&key, b"zombie", hour(), &loaded).await,
            "update_loaded after delete",
        );
        assert_eq!(value(&*store, &key).await, None, "deleted record came back");
        // A record loaded under another key says nothing about this one.
        let other = new_key();
        assert_unknown(
            store
                .update_loaded(&other, b"zombie", hour(), &loaded)
                .await,
            "update_loaded of a key never created",
        );
        assert_eq!(value(&*store, &other).await, None);
    }

    /// Tasks that each add one to a counter with load and conditional update, retrying on
    /// conflict, count exactly: no conditional write may pass a write it did not see.
    pub async fn concurrent_conditional_updates_lose_nothing(store: SharedStore) {
        add_concurrently(store, Condition::Revision).await;
    }

    /// [`concurrent_conditional_updates_lose_nothing`] with [`Store::update_loaded`].
    pub async fn concurrent_loaded_updates_lose_nothing(store: SharedStore) {
        add_concurrently(store, Condition::Loaded).await;
    }

    /// What a conditional update is handed.
    #[derive(Clone, Copy)]
    enum Condition {
        Revision,
        Loaded,
    }

    async fn add_concurrently(store: SharedStore, condition: Condition) {
        const TASKS: usize = 16;
        let key = new_key();
        store.create(&key, b"0", hour()).await.unwrap();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move {
                    let mut conflicts = 0usize;
                    let mut loaded = store.load(&key).await.unwrap().unwrap();
                    loop {
                        let n: usize = std::str::from_utf8(loaded.value())
                            .unwrap()
                            .parse()
                            .unwrap();
                        let next = (n + 1).to_string();
                        let written = match condition {
                            Condition::Revision => {
                                store
                                    .update(&key, next.as_bytes(), hour(), loaded.revision())
                                    .await
                            }
                            Condition::Loaded => {
                                store
                                    .update_loaded(&key, next.as_bytes(), hour(), &loaded)
                                    .await
                            }
                        };
                        match written {
                            Ok(_) => return conflicts,
                            Err(StoreError::Conflict {
                                current: Some(current),
                            }) => loaded = current,
                            Err(StoreError::Conflict { current: None }) => {
                                loaded = store.load(&key).await.unwrap().unwrap();
                            }
                            Err(other) => panic!("update failed: {other:?}"),
                        }
                        conflicts += 1;
                        assert!(conflicts < 10_000, "no progress");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            value(&*store, &key).await,
            Some(TASKS.to_string().into_bytes())
        );
    }

    pub(crate) fn manager(
        store: &SharedStore,
        configure: impl FnOnce(crate::ConfigBuilder) -> crate::ConfigBuilder,
    ) -> SessionManager {
        let keyring = Keyring::new([[42u8; 32]]).unwrap();
        let config = configure(Config::builder(keyring).key_prefix("conformance:"))
            .build()
            .unwrap();
        SessionManager::new(store.clone(), config)
    }

    /// Saves `state` and returns the request cookie a browser would send next.
    pub(crate) async fn save(
        manager: &SessionManager,
        state: crate::adapter::SessionState,
    ) -> RequestCookie {
        match manager.save(state).await.unwrap() {
            crate::adapter::CookieUpdate::Set(header) => {
                let pair = header.split(';').next().unwrap().to_owned();
                manager.verify([pair.as_str()])
            }
            other => panic!("expected a cookie, got {other:?}"),
        }
    }

    pub async fn sessions_with_unicode_round_trip(store: SharedStore) {
        for codec in [Codec::Json, Codec::MessagePack] {
            let sessions = manager(&store, |b| b.codec(codec));
            let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
            state.insert("ключ 🔑", "значение ✓ 日本語").unwrap();
            state.insert("emoji", vec!["🦀", "👩‍👩‍👧"]).unwrap();
            state.insert("n", -1.5).unwrap();
            let cookie = save(&sessions, state).await;
            let state = sessions.load(cookie).await.unwrap();
            assert_eq!(
                state.get::<String>("ключ 🔑").unwrap().as_deref(),
                Some("значение ✓ 日本語"),
                "{codec:?}"
            );
            assert_eq!(
                state.get::<Vec<String>>("emoji").unwrap().unwrap(),
                ["🦀", "👩‍👩‍👧"]
            );
            assert_eq!(state.get::<f64>("n").unwrap(), Some(-1.5));
        }
    }

    pub async fn absolute_timeout_ends_a_session(store: SharedStore) {
        let sessions = manager(&store, |b| b.absolute_timeout(Duration::from_millis(1500)));
        let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
        state.insert("user", "ada").unwrap();
        let cookie = save(&sessions, state).await;
        // Activity does not extend the absolute deadline.
        let mut state = sessions.load(cookie.clone()).await.unwrap();
        assert_eq!(state.get::<String>("user").unwrap().as_deref(), Some("ada"));
        state.insert("clicks", 1).unwrap();
        sessions.save(state).await.unwrap();
        tokio::time::sleep(EXPIRY_WAIT).await;
        let state = sessions.load(cookie).await.unwrap();
        assert!(state.is_empty(), "session outlived its absolute timeout");
    }

    pub async fn idle_timeout_ends_a_session(store: SharedStore) {
        let sessions = manager(&store, |b| b.lifetime(SHORT_TTL));
        let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
        state.insert("user", "ada").unwrap();
        let cookie = save(&sessions, state).await;
        assert!(!sessions.load(cookie.clone()).await.unwrap().is_empty());
        tokio::time::sleep(EXPIRY_WAIT).await;
        assert!(
            sessions.load(cookie).await.unwrap().is_empty(),
            "idle session survived"
        );
    }

    pub async fn undecodable_record_is_a_new_session(store: SharedStore) {
        let sessions = manager(&store, |b| b);
        let id = SessionId::generate(IdLength::default()).unwrap();
        let key = StoreKey::new("conformance:", &id);
        store.create(&key, b"\x00garbage", hour()).await.unwrap();
        let value = sessions.config().keyring().sign("session", &id);
        let cookie = sessions.verify([format!("session={value}").as_str()]);
        assert!(matches!(cookie, RequestCookie::Valid(_)));
        let state = sessions.load(cookie).await.unwrap();
        assert!(state.is_empty());
    }

    pub async fn regenerate_deletes_the_old_record(store: SharedStore) {
        let sessions = manager(&store, |b| b);
        let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
        state.insert("cart", 3).unwrap();
        let old = save(&sessions, state).await;
        let mut state = sessions.load(old.clone()).await.unwrap();
        state.regenerate();
        let new = save(&sessions, state).await;
        assert_ne!(old, new);
        assert_eq!(
            sessions
                .load(new)
                .await
                .unwrap()
                .get::<i32>("cart")
                .unwrap(),
            Some(3)
        );
        assert!(
            sessions.load(old).await.unwrap().is_empty(),
            "old id still works"
        );
    }

    pub async fn destroy_deletes_the_record(store: SharedStore) {
        let sessions = manager(&store, |b| b);
        let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
        state.insert("user", "ada").unwrap();
        let cookie = save(&sessions, state).await;
        let mut state = sessions.load(cookie.clone()).await.unwrap();
        state.destroy();
        let update = sessions.save(state).await.unwrap();
        assert!(
            matches!(update, crate::adapter::CookieUpdate::Remove(_)),
            "{update:?}"
        );
        assert!(
            sessions.load(cookie).await.unwrap().is_empty(),
            "destroyed session lives"
        );
    }

    /// A stored session holding `data`, and the cookie that leads to it.
    async fn stored(sessions: &SessionManager, data: &[(&str, i64)]) -> RequestCookie {
        let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
        for (key, value) in data {
            state.insert(*key, value).unwrap();
        }
        save(sessions, state).await
    }

    /// Requests of one session that all load it, then all write back at once: every
    /// conditional write but one meets another's, so each merge path is taken.
    async fn overlapping<F>(
        sessions: &SessionManager,
        cookie: &RequestCookie,
        requests: usize,
        edit: F,
    ) where
        F: Fn(usize, &mut crate::adapter::SessionState),
    {
        let mut states = Vec::new();
        for i in 0..requests {
            let mut state = sessions.load(cookie.clone()).await.unwrap();
            edit(i, &mut state);
            states.push(state);
        }
        // Half of them through a manager of their own, as from another process: within
        // one manager write-backs of a session take turns, across processes they race.
        let elsewhere = SessionManager::new(sessions.store().clone(), sessions.config().clone());
        let saves: Vec<_> = states
            .into_iter()
            .enumerate()
            .map(|(i, state)| {
                let sessions = if i % 2 == 0 {
                    sessions.clone()
                } else {
                    elsewhere.clone()
                };
                tokio::spawn(async move { sessions.save(state).await })
            })
            .collect();
        for save in saves {
            let update = save.await.unwrap().unwrap();
            assert!(
                !matches!(update, crate::adapter::CookieUpdate::Remove(_)),
                "a write-back removed the cookie: {update:?}"
            );
        }
    }

    pub async fn concurrent_writes_of_distinct_keys_are_all_kept(store: SharedStore) {
        const REQUESTS: usize = 16;
        let sessions = manager(&store, |b| b);
        let cookie = stored(&sessions, &[("first", 0)]).await;
        overlapping(&sessions, &cookie, REQUESTS, |i, state| {
            state.insert(format!("key{i:02}"), i).unwrap();
        })
        .await;
        let state = sessions.load(cookie).await.unwrap();
        for i in 0..REQUESTS {
            assert_eq!(
                state.get::<usize>(&format!("key{i:02}")).unwrap(),
                Some(i),
                "key{i:02} lost"
            );
        }
        assert_eq!(state.len(), REQUESTS + 1);
    }

    pub async fn concurrent_updates_of_one_key_add_up(store: SharedStore) {
        const REQUESTS: usize = 16;
        let sessions = manager(&store, |b| b);
        let cookie = stored(&sessions, &[("n", 100)]).await;
        overlapping(&sessions, &cookie, REQUESTS, |_, state| {
            state
                .update("n", |n: Option<usize>| n.unwrap_or(0) + 1)
                .unwrap();
            state
                .update("list", |list: Option<Vec<u8>>| {
                    let mut list = list.unwrap_or_default();
                    list.push(1);
                    list
                })
                .unwrap();
        })
        .await;
        let state = sessions.load(cookie).await.unwrap();
        assert_eq!(state.get::<usize>("n").unwrap(), Some(100 + REQUESTS));
        assert_eq!(
            state.get::<Vec<u8>>("list").unwrap().map(|l| l.len()),
            Some(REQUESTS)
        );
    }

    pub async fn a_session_destroyed_during_an_update_stays_destroyed(store: SharedStore) {
        let sessions = manager(&store, |b| b);
        let cookie = stored(&sessions, &[("user", 1)]).await;
        let mut slow = sessions.load(cookie.clone()).await.unwrap();
        let mut logout = sessions.load(cookie.clone()).await.unwrap();
        logout.destroy();
        sessions.save(logout).await.unwrap();
        slow.insert("cart", 3).unwrap();
        slow.update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
            .unwrap();
        let update = sessions.save(slow).await.unwrap();
        assert_eq!(
            update,
            crate::adapter::CookieUpdate::Keep,
            "the slow request must not touch the cookie"
        );
        assert!(
            sessions.load(cookie.clone()).await.unwrap().is_empty(),
            "a destroyed session came back"
        );
        // An unmodified request that only refreshes it does not bring it back either.
        let refresh = manager(&store, |b| b.refresh_threshold(Duration::ZERO));
        let cookie = stored(&refresh, &[("user", 1)]).await;
        let stale = refresh.load(cookie.clone()).await.unwrap();
        let mut logout = refresh.load(cookie.clone()).await.unwrap();
        logout.destroy();
        refresh.save(logout).await.unwrap();
        let update = refresh.save(stale).await.unwrap();
        // Neither removed (the logout did that) nor set again: a resend goes only with a
        // conditional write, which finds the record gone, also on a store that refreshed
        // expiry while loading and has no touch to make.
        assert_eq!(update, crate::adapter::CookieUpdate::Keep);
        assert!(
            refresh.load(cookie).await.unwrap().is_empty(),
            "a touch brought it back"
        );
    }

    pub async fn a_session_destroyed_during_a_regenerate_stays_destroyed(store: SharedStore) {
        let sessions = manager(&store, |b| b);
        let cookie = stored(&sessions, &[("cart", 1)]).await;
        let mut login = sessions.load(cookie.clone()).await.unwrap();
        let mut logout = sessions.load(cookie.clone()).await.unwrap();
        logout.destroy();
        sessions.save(logout).await.unwrap();
        login.regenerate();
        login.insert("user", 7).unwrap();
        let update = sessions.save(login).await.unwrap();
        assert_eq!(
            update,
            crate::adapter::CookieUpdate::Keep,
            "a session ended meanwhile got a new id"
        );
        assert!(
            sessions.load(cookie).await.unwrap().is_empty(),
            "a destroyed session came back"
        );
    }

    pub async fn regenerate_keeps_what_another_request_wrote_meanwhile(store: SharedStore) {
        let sessions = manager(&store, |b| b);
        let old = stored(&sessions, &[("cart", 1)]).await;
        let mut login = sessions.load(old.clone()).await.unwrap();
        let mut other = sessions.load(old.clone()).await.unwrap();
        other.insert("theme", 2).unwrap();
        other
            .update("cart", |n: Option<i64>| n.unwrap_or(0) + 1)
            .unwrap();
        sessions.save(other).await.unwrap();
        login.regenerate();
        login.insert("user", 7).unwrap();
        let new = save(&sessions, login).await;
        assert_ne!(new, old);
        let state = sessions.load(new).await.unwrap();
        assert_eq!(state.get::<i64>("user").unwrap(), Some(7));
        assert_eq!(
            state.get::<i64>("theme").unwrap(),
            Some(2),
            "the other request's key was lost"
        );
        assert_eq!(state.get::<i64>("cart").unwrap(), Some(2));
        assert!(
            sessions.load(old).await.unwrap().is_empty(),
            "the old id still works"
        );
    }

    pub async fn emptying_a_session_keeps_what_another_request_wrote_meanwhile(store: SharedStore) {
        let sessions = manager(&store, |b| b);
        let cookie = stored(&sessions, &[("flash", 1)]).await;
        let mut reader = sessions.load(cookie.clone()).await.unwrap();
        let mut writer = sessions.load(cookie.clone()).await.unwrap();
        writer.insert("cart", 5).unwrap();
        sessions.save(writer).await.unwrap();
        reader.remove("flash");
        let update = sessions.save(reader).await.unwrap();
        assert_eq!(
            update,
            crate::adapter::CookieUpdate::Keep,
            "the session is not empty after the merge"
        );
        let state = sessions.load(cookie.clone()).await.unwrap();
        assert_eq!(state.get::<i64>("cart").unwrap(), Some(5));
        assert!(!state.contains("flash"));
        // Without a concurrent write, removing the last key ends the session.
        let mut state = state;
        state.remove("cart");
        let update = sessions.save(state).await.unwrap();
        assert!(
            matches!(update, crate::adapter::CookieUpdate::Remove(_)),
            "{update:?}"
        );
        assert!(sessions.load(cookie).await.unwrap().is_empty());
    }

    pub async fn only_the_request_that_ended_a_session_removes_its_cookie(store: SharedStore) {
        let sessions = manager(&store, |b| b);
        let cookie = stored(&sessions, &[("user", 1)]).await;
        let late = sessions.load(cookie.clone()).await.unwrap();
        let mut logout = sessions.load(cookie.clone()).await.unwrap();
        logout.destroy();
        let update = sessions.save(logout).await.unwrap();
        assert!(
            matches!(update, crate::adapter::CookieUpdate::Remove(_)),
            "{update:?}"
        );
        // A late answer to a request made before the logout, and any later request that
        // still carries the dead cookie, leave the browser's cookie alone: it may already
        // be a newer login's.
        assert_eq!(
            sessions.save(late).await.unwrap(),
            crate::adapter::CookieUpdate::Keep
        );
        let dead = sessions.load(cookie.clone()).await.unwrap();
        assert!(dead.is_empty());
        assert_eq!(
            sessions.save(dead).await.unwrap(),
            crate::adapter::CookieUpdate::Keep
        );
        let forged = sessions.verify(["session=forged"]);
        let state = sessions.load(forged).await.unwrap();
        assert_eq!(
            sessions.save(state).await.unwrap(),
            crate::adapter::CookieUpdate::Keep
        );
        // `clear` ends the session too.
        let cookie = stored(&sessions, &[("user", 1)]).await;
        let mut state = sessions.load(cookie).await.unwrap();
        state.clear();
        let update = sessions.save(state).await.unwrap();
        assert!(
            matches!(update, crate::adapter::CookieUpdate::Remove(_)),
            "{update:?}"
        );
    }
}
