//! A directory someone made under a session's file name is not the store's: it is left as
//! it is and makes no operation on that key fail.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::fs;

use session_core::store::{Revision, Store, StoreError};
use session_fs::FileStore;

use common::{hour, key, scratch_dir};

#[tokio::test]
async fn a_directory_named_like_a_session_is_absent_to_every_removal() {
    let dir = scratch_dir("named-dir");
    let store = FileStore::open(&dir).unwrap();
    let key = key();
    let planted = dir.join(key.as_str());
    fs::create_dir(&planted).unwrap();

    assert!(store.load(&key).await.unwrap().is_none());
    let deleted = store.delete(&key).await;
    assert!(deleted.is_ok(), "delete: {deleted:?}");
    assert!(matches!(
        store.delete_if_unchanged(&key, Revision::FIRST).await,
        Err(StoreError::UnknownId)
    ));
    assert!(matches!(
        store.touch(&key, hour()).await,
        Err(StoreError::UnknownId)
    ));
    assert!(planted.is_dir(), "the directory was removed");
}
