//! A session file cut short (a crash mid-copy, a full disk in another tool) is no
//! session: `load` finds none, and neither do `touch`, `update` and
//! `delete_if_unchanged`, so none of them can bring back what `load` said was absent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use session_core::{IdLength, SessionId, Store, StoreError, StoreKey};
use session_fs::FileStore;

#[tokio::test]
async fn a_file_shorter_than_its_header_says_is_no_session_for_any_operation() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("session-fs-truncated");
    fs::create_dir_all(&base).unwrap();
    let dir = tempfile::Builder::new()
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir_in(base)
        .unwrap();
    let key = StoreKey::new(
        "session:",
        &SessionId::generate(IdLength::default()).unwrap(),
    );
    let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
    let revision = FileStore::new(dir.path())
        .unwrap()
        .create(&key, &[b'r'; 200], in_an_hour)
        .await
        .unwrap();
    let file = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.is_file() && !path.file_name().unwrap().to_string_lossy().starts_with('.')
        })
        .unwrap();
    let length = fs::metadata(&file).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(length - 10)
        .unwrap();

    // A store that has not written the file itself reads the header to know it.
    let store = FileStore::new(dir.path()).unwrap();
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
