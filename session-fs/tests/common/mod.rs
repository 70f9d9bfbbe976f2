//! What the `FileStore` tests share: a private scratch directory, a fresh key, an expiry.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses its own part; a panic is a failure report

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use session_core::store::StoreKey;
use session_core::{IdLength, SessionId};

/// A new directory under `target/tmp/session-fs-<group>/`, mode 0700 as the store
/// requires, kept after the test for a look at what it left.
pub(crate) fn scratch_dir(group: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("session-fs-{group}"));
    fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir_in(base)
        .unwrap()
        .keep()
}

/// A key under the default prefix with a fresh id.
pub(crate) fn key() -> StoreKey {
    StoreKey::new(
        "session:",
        &SessionId::generate(IdLength::default()).unwrap(),
    )
}

/// An hour from now.
pub(crate) fn hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

/// The entries the store made for sessions (not its `.locks`).
pub(crate) fn session_files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| !path.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect()
}
