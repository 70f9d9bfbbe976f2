//! A SQLite database that `SqlStore` creates can be read by the server's user only, and so
//! can its write-ahead log and shared-memory files: they hold every session.
//!
//! The test sets the process umask, so it stays alone in this file: each file under
//! `tests/` is a process of its own, and no other test runs in this one meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::Mode;
use rustix::process::umask;
use session_core::store::{Store, StoreKey};
use session_core::{IdLength, SessionId};
use session_sql::SqlStore;

/// The process umask set to a value for as long as this lives, then put back.
struct Umask(Mode);

impl Umask {
    fn set(mask: u32) -> Self {
        Self(umask(Mode::from_raw_mode(mask)))
    }
}

impl Drop for Umask {
    fn drop(&mut self) {
        umask(self.0);
    }
}

/// A directory of this test run's own.
fn scratch_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("session-sql-files")
        .join(format!("{}-{nanos}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn a_new_sqlite_database_and_its_wal_files_are_private() {
    // The usual umask, under which SQLite's own 0644 stays 0644: a stricter one (077)
    // would make the files private whatever the store does.
    let _umask = Umask::set(0o022);
    let db = scratch_dir().join("sessions.db");
    let store = SqlStore::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    // A write, so that the write-ahead log and its index exist while the pool is open.
    let key = StoreKey::new(
        "session:",
        &SessionId::generate(IdLength::default()).unwrap(),
    );
    let hour = SystemTime::now() + Duration::from_secs(3600);
    store.create(&key, b"{}", hour).await.unwrap();
    let mut wal = db.clone().into_os_string();
    wal.push("-wal");
    let mut shm = db.clone().into_os_string();
    shm.push("-shm");
    for path in [db.clone(), wal.into(), shm.into()] {
        assert_eq!(format!("{:o}", mode(&path)), "600", "{}", path.display());
    }
    assert!(store.load(&key).await.unwrap().is_some());
}
