//! Temporary files left behind by a process that died between writing a session file and
//! renaming it into place.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::fs;

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
