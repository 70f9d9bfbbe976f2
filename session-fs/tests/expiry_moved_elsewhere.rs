//! Two stores on one directory stand for two processes: an expiry one store remembers
//! from its own write must not keep a session alive after the other store moved that
//! expiry earlier and the session expired.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::time::{Duration, SystemTime};

use session_core::store::{Revision, Store, StoreError, StoreKey};
use session_fs::FileStore;

use common::{hour, key, scratch_dir};

/// Two stores on one new directory, and a session `here` wrote twice (the second time
/// under the lock, so it is the stripe's last writer and trusts what it remembers), at
/// the revision of that second write.
async fn two_processes() -> (FileStore, FileStore, StoreKey, Revision) {
    let dir = scratch_dir("expiry-moved");
    let here = FileStore::open(&dir).unwrap();
    let elsewhere = FileStore::open(&dir).unwrap();
    let key = key();
    let first = here.create(&key, b"v1", hour()).await.unwrap();
    let second = here.update(&key, b"v2", hour(), first).await.unwrap();
    (here, elsewhere, key, second)
}

fn soon() -> SystemTime {
    SystemTime::now() + Duration::from_millis(100)
}

/// Waits past [`soon`], then checks that `what` (done `here`) found the session expired
/// and did not bring it back.
async fn assert_stays_expired<T: std::fmt::Debug>(
    here: &FileStore,
    key: &StoreKey,
    what: &str,
    result: impl std::future::Future<Output = Result<T, StoreError>>,
) {
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(here.load(key).await.unwrap().is_none());
    let result = result.await;
    assert!(
        matches!(result, Err(StoreError::UnknownId)),
        "{what}: expected UnknownId for an expired session, got {result:?}"
    );
    assert!(
        here.load(key).await.unwrap().is_none(),
        "{what}: an expired session came back"
    );
}

#[tokio::test]
async fn a_touch_elsewhere_to_an_earlier_expiry_is_not_undone_by_a_touch_here() {
    let (here, elsewhere, key, _) = two_processes().await;
    elsewhere.touch(&key, soon()).await.unwrap();
    assert_stays_expired(&here, &key, "touch", here.touch(&key, hour())).await;
}

#[tokio::test]
async fn a_touch_elsewhere_to_an_earlier_expiry_is_not_undone_by_an_update_here() {
    let (here, elsewhere, key, revision) = two_processes().await;
    elsewhere.touch(&key, soon()).await.unwrap();
    let update = here.update(&key, b"v3", hour(), revision);
    assert_stays_expired(&here, &key, "update", update).await;
}

#[tokio::test]
async fn an_update_elsewhere_to_an_earlier_expiry_is_not_undone_by_a_touch_here() {
    let (here, elsewhere, key, revision) = two_processes().await;
    let third = elsewhere
        .update(&key, b"v3", soon(), revision)
        .await
        .unwrap();
    assert_stays_expired(&here, &key, "touch", here.touch(&key, hour())).await;
    let update = here.update(&key, b"v4", hour(), third);
    assert_stays_expired(&here, &key, "update", update).await;
}
