//! Temporary files left behind by a process that died between writing a session file and
//! renaming it into place.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::fs::{self, File};
use std::time::{Duration, SystemTime};

use session_core::store::Store;
use session_fs::FileStore;

use common::{hour, key, scratch_dir};

/// Pids are reused (a container's server is often pid 1 on every start), so a new process
/// meets the temporary names an earlier one with its pid left.
#[tokio::test]
async fn temporary_files_a_dead_process_left_do_not_fail_writes() {
    let dir = scratch_dir("stale-temp");
    let store = FileStore::open(&dir).unwrap();
    for serial in 0..64 {
        let name = format!(".tmp-{}-{serial}", std::process::id());
        fs::write(dir.join(name), b"cut short").unwrap();
    }
    for round in 0..8 {
        let key = key();
        let created = store.create(&key, b"v1", hour()).await;
        let first = created.unwrap_or_else(|e| panic!("create {round}: {e:?}"));
        let updated = store.update(&key, b"v2", hour(), first).await;
        updated.unwrap_or_else(|e| panic!("update {round}: {e:?}"));
        assert_eq!(store.load(&key).await.unwrap().unwrap().value(), b"v2");
    }
}

/// The cleanup removes temporary files an hour old, which no running write still uses,
/// and leaves a fresh one (a write under way) and anything that is not a temporary file.
#[tokio::test]
async fn the_cleanup_removes_old_temporary_files_only() {
    let dir = scratch_dir("stale-temp-cleanup");
    let store = FileStore::open(&dir).unwrap();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    let old = dir.join(".tmp-4242-7");
    fs::write(&old, b"cut short").unwrap();
    File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let fresh = dir.join(".tmp-4242-8");
    fs::write(&fresh, b"being written").unwrap();
    let old_directory = dir.join(".tmp-4242-9");
    fs::create_dir(&old_directory).unwrap();
    File::open(&old_directory)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let key = key();
    store.create(&key, b"live", hour()).await.unwrap();

    assert_eq!(
        store.delete_expired().await.unwrap(),
        0,
        "no session expired"
    );
    assert!(!old.exists(), "an old temporary file was left");
    assert!(fresh.exists(), "a write's temporary file was removed");
    assert!(old_directory.exists(), "a directory was removed");
    assert_eq!(store.load(&key).await.unwrap().unwrap().value(), b"live");
}
