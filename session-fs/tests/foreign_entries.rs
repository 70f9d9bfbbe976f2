//! A `FileStore` reads, counts and removes only its own files: entries someone else put in
//! its directory (a file, a directory such as `lost+found`, a FIFO, a symbolic link)
//! survive the cleanup and the limit's eviction, and do not make either fail.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use session_core::store::{Store, StoreKey};
use session_fs::FileStore;

use common::{hour, key, scratch_dir};

/// A session file's bytes as the store writes them (`SES2`), expired a second ago.
fn expired_session_bytes() -> Vec<u8> {
    let past = SystemTime::now() - Duration::from_secs(1);
    let mut bytes = b"SES2".to_vec();
    bytes.extend_from_slice(&2u32.to_le_bytes());
    bytes.extend_from_slice(&session_core::store::time::unix_millis(past).to_le_bytes());
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(b"{}");
    bytes
}

#[derive(Debug, Clone, Copy)]
enum Foreign {
    /// Another program's file, with a name a store could never give a session.
    File,
    /// A file named like a session, but without a session header.
    SessionNamedFile,
    /// What `mkfs` puts at the root of a filesystem mounted as the session directory.
    LostAndFound,
    /// A directory named like a session.
    SessionNamedDir,
    /// A FIFO named like a session: opening it for reading waits for a writer.
    Fifo,
    /// A symbolic link named like a session, to an expired session file elsewhere.
    Symlink,
}

/// Puts `kind` into `dir`; the path to check afterwards.
fn plant(dir: &Path, kind: Foreign) -> PathBuf {
    let path = match kind {
        Foreign::File => dir.join("notes.txt"),
        Foreign::SessionNamedFile => dir.join(key().as_str()),
        Foreign::LostAndFound => dir.join("lost+found"),
        Foreign::SessionNamedDir => dir.join(key().as_str()),
        Foreign::Fifo => dir.join(key().as_str()),
        Foreign::Symlink => dir.join(key().as_str()),
    };
    match kind {
        Foreign::File | Foreign::SessionNamedFile => fs::write(&path, b"not yours").unwrap(),
        Foreign::LostAndFound | Foreign::SessionNamedDir => fs::create_dir(&path).unwrap(),
        Foreign::Fifo => {
            let made = Command::new("mkfifo").arg(&path).status().unwrap();
            assert!(made.success(), "mkfifo failed");
        }
        Foreign::Symlink => {
            let target = scratch_dir("foreign").join("elsewhere");
            fs::write(&target, expired_session_bytes()).unwrap();
            std::os::unix::fs::symlink(&target, &path).unwrap();
        }
    }
    path
}

fn still_there(path: &Path, kind: Foreign) {
    let meta = fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("the store removed a foreign {kind:?}: {e}"));
    let same_type = match kind {
        Foreign::File | Foreign::SessionNamedFile => meta.is_file(),
        Foreign::LostAndFound | Foreign::SessionNamedDir => meta.is_dir(),
        Foreign::Fifo => std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()),
        Foreign::Symlink => meta.file_type().is_symlink(),
    };
    assert!(same_type, "the foreign {kind:?} was replaced");
    if let Foreign::File | Foreign::SessionNamedFile = kind {
        assert_eq!(fs::read(path).unwrap(), b"not yours");
    }
}

async fn cleanup_leaves_it_alone(kind: Foreign) {
    let dir = scratch_dir("foreign");
    let store = FileStore::open(&dir).unwrap();
    let planted = plant(&dir, kind);
    let soon = SystemTime::now() + Duration::from_millis(1);
    for _ in 0..3 {
        store.create(&key(), b"old", soon).await.unwrap();
    }
    let live = key();
    store.create(&live, b"live", hour()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;

    // Only the store's three expired sessions are removed, and counted.
    assert_eq!(store.delete_expired().await.unwrap(), 3, "{kind:?}");
    assert_eq!(store.delete_expired().await.unwrap(), 0, "{kind:?}");
    still_there(&planted, kind);
    assert!(store.load(&live).await.unwrap().is_some());
}

async fn eviction_leaves_it_alone(kind: Foreign) {
    let dir = scratch_dir("foreign");
    let planted = plant(&dir, kind);
    let store = FileStore::builder(&dir).limit(4).open().unwrap();
    let mut keys = Vec::new();
    for i in 0..12u64 {
        let key = key();
        let expires = hour() + Duration::from_secs(i);
        store
            .create(&key, b"x", expires)
            .await
            .unwrap_or_else(|e| panic!("create {i} with a foreign {kind:?}: {e}"));
        keys.push(key);
    }
    still_there(&planted, kind);
    let kept = count_loadable(&store, &keys).await;
    assert!((1..=4).contains(&kept), "{kept} sessions kept, limit 4");
    assert!(store.load(&keys[11]).await.unwrap().is_some());
}

async fn count_loadable(store: &FileStore, keys: &[StoreKey]) -> usize {
    let mut kept = 0;
    for key in keys {
        kept += usize::from(store.load(key).await.unwrap().is_some());
    }
    kept
}

macro_rules! both_survive {
    ($($name:ident: $kind:expr;)+) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn survives_delete_expired() {
                cleanup_leaves_it_alone($kind).await;
            }

            #[tokio::test]
            async fn survives_eviction() {
                eviction_leaves_it_alone($kind).await;
            }
        }
    )+};
}

both_survive! {
    other_file: Foreign::File;
    session_named_file_without_header: Foreign::SessionNamedFile;
    lost_and_found: Foreign::LostAndFound;
    session_named_dir: Foreign::SessionNamedDir;
    fifo: Foreign::Fifo;
    symlink: Foreign::Symlink;
}

/// Entries that are not sessions do not fill the limit: with as many of them as the limit,
/// no session is evicted until the sessions alone reach it.
#[tokio::test]
async fn foreign_entries_do_not_count_towards_the_limit() {
    let dir = scratch_dir("foreign");
    for kind in [
        Foreign::File,
        Foreign::SessionNamedFile,
        Foreign::LostAndFound,
        Foreign::Symlink,
    ] {
        plant(&dir, kind);
    }
    let store = FileStore::builder(&dir).limit(4).open().unwrap();
    let keys: Vec<_> = (0..4).map(|_| key()).collect();
    for key in &keys {
        store.create(key, b"x", hour()).await.unwrap();
    }
    assert_eq!(
        count_loadable(&store, &keys).await,
        4,
        "a session was evicted"
    );
}
