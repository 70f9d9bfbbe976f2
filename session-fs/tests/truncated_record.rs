//! A session file cut short (a crash mid-copy, a full disk in another tool) is no
//! session: `load` finds none, and neither do `touch`, `update` and
//! `delete_if_unchanged`, so none of them can bring back what `load` said was absent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::fs;

use session_core::{Store, StoreError};
use session_fs::FileStore;

use common::{hour, key, scratch_dir, session_files};

#[tokio::test]
async fn a_file_shorter_than_its_header_says_is_no_session_for_any_operation() {
    let dir = scratch_dir("truncated");
    let key = key();
    let in_an_hour = hour();
    let revision = FileStore::new(&dir)
        .unwrap()
        .create(&key, &[b'r'; 200], in_an_hour)
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

    // A store that has not written the file itself reads the header to know it.
    let store = FileStore::new(&dir).unwrap();
    assert!(store.load(&key).await.unwrap().is_none());
    assert!(matches!(
        store.touch(&key, in_an_hour).await,
        Err(StoreError::UnknownId)
    ));
    assert!(matches!(
        store.update(&key, b"back", in_an_hour, revision).await,
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
    let dir = scratch_dir("truncated");
    let key = key();
    FileStore::new(&dir)
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
    let store = FileStore::new(&dir).unwrap();
    assert_eq!(store.delete_expired().await.unwrap(), 1);
    assert!(session_files(&dir).is_empty(), "the cut file stayed");
}
