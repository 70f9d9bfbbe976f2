//! Two stores on one directory stand for two processes: an expiry one store remembers
//! from its own write must not keep a session alive after the other store moved that
//! expiry earlier and the session expired.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::time::{Duration, SystemTime};

use session_core::store::{Revision, Store, StoreError};
use session_fs::FileStore;

use common::{hour, key, scratch_dir};

fn soon() -> SystemTime {
    SystemTime::now() + Duration::from_millis(100)
}

async fn past_soon() {
    tokio::time::sleep(Duration::from_millis(250)).await;
}

fn assert_unknown<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::UnknownId)),
        "{what}: expected UnknownId for an expired session, got {result:?}"
    );
}

#[tokio::test]
async fn a_touch_elsewhere_to_an_earlier_expiry_is_not_undone_by_a_touch_here() {
    let dir = scratch_dir("expiry-moved");
    let (here, elsewhere) = (
        FileStore::open(&dir).unwrap(),
        FileStore::open(&dir).unwrap(),
    );
    let key = key();
    here.create(&key, b"v1", hour()).await.unwrap();
    elsewhere.touch(&key, soon()).await.unwrap();
    past_soon().await;
    assert!(here.load(&key).await.unwrap().is_none());

    assert_unknown(here.touch(&key, hour()).await, "touch");
    assert!(
        here.load(&key).await.unwrap().is_none(),
        "an expired session came back"
    );
}

#[tokio::test]
async fn a_touch_elsewhere_to_an_earlier_expiry_is_not_undone_by_an_update_here() {
    let dir = scratch_dir("expiry-moved");
    let (here, elsewhere) = (
        FileStore::open(&dir).unwrap(),
        FileStore::open(&dir).unwrap(),
    );
    let key = key();
    let first = here.create(&key, b"v1", hour()).await.unwrap();
    // Under the lock, so `here` is the stripe's last writer and trusts what it wrote.
    let second = here.update(&key, b"v2", hour(), first).await.unwrap();
    elsewhere.touch(&key, soon()).await.unwrap();
    past_soon().await;
    assert!(here.load(&key).await.unwrap().is_none());

    assert_unknown(here.update(&key, b"v3", hour(), second).await, "update");
    assert!(
        here.load(&key).await.unwrap().is_none(),
        "an expired session came back"
    );
}

#[tokio::test]
async fn an_update_elsewhere_to_an_earlier_expiry_is_not_undone_by_a_touch_here() {
    let dir = scratch_dir("expiry-moved");
    let (here, elsewhere) = (
        FileStore::open(&dir).unwrap(),
        FileStore::open(&dir).unwrap(),
    );
    let key = key();
    let first = here.create(&key, b"v1", hour()).await.unwrap();
    // Under the lock, so `here` remembers the session live for an hour.
    let second = here.update(&key, b"v2", hour(), first).await.unwrap();
    elsewhere.update(&key, b"v3", soon(), second).await.unwrap();
    past_soon().await;
    assert!(here.load(&key).await.unwrap().is_none());

    assert_unknown(here.touch(&key, hour()).await, "touch");
    assert!(
        here.load(&key).await.unwrap().is_none(),
        "an expired session came back"
    );
    assert_unknown(
        here.update(&key, b"v4", hour(), Revision::FIRST.next().next())
            .await,
        "update",
    );
}
