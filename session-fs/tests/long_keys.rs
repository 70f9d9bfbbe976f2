//! Every key prefix that session-core accepts works with `FileStore`, even one whose
//! `%XX`-escaped file name would pass the 255 bytes a file name may have: such a key gets
//! a shorter name, which the store still recognises as its own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use session_core::store::{Revision, Store, StoreError, StoreKey};
use session_core::{Config, IdLength, SessionId};
use session_fs::FileStore;

use common::{hour, scratch_dir};

/// The longest prefix the core accepts, of a character every file name escapes (`/`, three
/// bytes as `%2F`), with the longest id: a key whose escaped name has 578 bytes.
fn longest_key() -> StoreKey {
    let prefix = "/".repeat(Config::MAX_KEY_PREFIX_LEN);
    let id = SessionId::generate(IdLength::new(64).unwrap()).unwrap();
    StoreKey::new(&prefix, &id)
}

/// Creates `key`, reads it back, updates and touches it; the revision written last.
async fn create_update_touch(store: &FileStore, key: &StoreKey) -> Revision {
    let revision = store.create(key, b"first", hour()).await.unwrap();
    assert_eq!(store.load(key).await.unwrap().unwrap().value(), b"first");
    let revision = store
        .update(key, b"second", hour(), revision)
        .await
        .unwrap();
    store.touch(key, hour()).await.unwrap();
    assert_eq!(store.load(key).await.unwrap().unwrap().value(), b"second");
    revision
}

/// The names of the entries the store made for sessions (not its `.locks`).
fn session_names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.starts_with('.'))
        .collect()
}

#[tokio::test]
async fn a_key_whose_escaped_name_is_too_long_for_a_file_name_still_works() {
    let dir = scratch_dir("long-keys");
    let store = FileStore::open(&dir).unwrap();
    let key = longest_key();
    let revision = create_update_touch(&store, &key).await;
    assert!(matches!(
        store.create(&key, b"again", hour()).await,
        Err(StoreError::DuplicateId)
    ));
    // One file, with a name the filesystem takes, and none for a key that differs only in
    // its id's last characters.
    let names = session_names(&dir);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].len() <= 255, "{}", names[0].len());
    assert!(store.load(&longest_key()).await.unwrap().is_none());
    store.delete_if_unchanged(&key, revision).await.unwrap();
    assert!(store.load(&key).await.unwrap().is_none());
    assert!(session_names(&dir).is_empty());
}

#[tokio::test]
async fn long_named_sessions_are_the_stores_own_for_cleanup_and_the_limit() {
    let dir = scratch_dir("long-keys");
    let store = FileStore::builder(&dir).limit(10).open().unwrap();
    let soon = SystemTime::now() + Duration::from_millis(1);
    for _ in 0..3 {
        store.create(&longest_key(), b"old", soon).await.unwrap();
    }
    let live: Vec<_> = (0..3).map(|_| longest_key()).collect();
    for key in &live {
        store.create(key, b"live", hour()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    // The cleanup takes the expired files for sessions, and only them.
    assert_eq!(store.delete_expired().await.unwrap(), 3);
    assert_eq!(session_names(&dir).len(), 3);
    for key in &live {
        assert!(store.load(key).await.unwrap().is_some());
    }
    // The limit counts them: a store built on the directory finds 3 sessions, and evicts
    // among them once full.
    let limited = FileStore::builder(&dir).limit(4).open().unwrap();
    for _ in 0..4 {
        limited
            .create(&longest_key(), b"new", hour())
            .await
            .unwrap();
        assert!(session_names(&dir).len() <= 4, "{:?}", session_names(&dir));
    }
}

#[tokio::test]
async fn a_directory_whose_paths_pass_the_stack_buffer_works() {
    // Full paths of some 1,100 bytes, past the buffer a file's path is built in on the stack.
    let mut dir = scratch_dir("long-keys");
    for part in ["a", "b"] {
        dir.push(part.repeat(250));
    }
    fs::create_dir_all(&dir).unwrap();
    // The session directory itself is the store's to create, private.
    dir.push("c".repeat(250));
    let store = FileStore::open(&dir).unwrap();
    let key = longest_key();
    assert!(dir.as_os_str().len() + 255 > 1000);
    let revision = create_update_touch(&store, &key).await;
    store.delete_if_unchanged(&key, revision).await.unwrap();
    assert!(store.load(&key).await.unwrap().is_none());
    assert!(session_names(&dir).is_empty());
}
