//! A session file cut short (a crash mid-copy, a full disk in another tool) is no
//! session: `load` finds none, and neither do `touch`, `update` and
//! `delete_if_unchanged`, so none of them can bring back what `load` said was absent;
//! the cleanup removes it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::fs;
use std::path::PathBuf;

use session_core::store::{Revision, Store, StoreError, StoreKey};
use session_fs::FileStore;

use common::{hour, key, scratch_dir, session_files};

/// A directory holding one session whose file lost its last 10 bytes, its key and the
/// revision it was written at.
async fn a_cut_session() -> (PathBuf, StoreKey, Revision) {
    let dir = scratch_dir("truncated");
    let key = key();
    let revision = FileStore::open(&dir)
        .unwrap()
        .create(&key, &[b'r'; 200], hour())
        .await
        .unwrap();
    let [file] = &session_files(&dir)[..] else {
        panic!("expected one session file");
    };
    let length = fs::metadata(file).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(file)
        .unwrap()
        .set_len(length - 10)
        .unwrap();
    (dir, key, revision)
}

#[tokio::test]
async fn a_file_shorter_than_its_header_says_is_no_session_for_any_operation() {
    let (dir, key, revision) = a_cut_session().await;
    // A store that has not written the file itself reads the header to know it.
    let store = FileStore::open(&dir).unwrap();
    assert!(store.load(&key).await.unwrap().is_none());
    assert!(matches!(
        store.touch(&key, hour()).await,
        Err(StoreError::UnknownId)
    ));
    assert!(matches!(
        store.update(&key, b"back", hour(), revision).await,
        Err(StoreError::UnknownId)
    ));
    assert!(matches!(
        store.delete_if_unchanged(&key, revision).await,
        Err(StoreError::UnknownId)
    ));
    assert!(store.load(&key).await.unwrap().is_none(), "brought back");
}

#[tokio::test]
async fn the_cleanup_removes_a_file_cut_short() {
    let (dir, _, _) = a_cut_session().await;
    let store = FileStore::open(&dir).unwrap();
    assert_eq!(store.delete_expired().await.unwrap(), 1);
    assert!(session_files(&dir).is_empty(), "the cut file stayed");
}
