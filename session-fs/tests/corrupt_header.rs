//! A header claiming a record far longer than its file is a corrupt record: absent, and
//! read without allocating what the header claims.
//!
//! Alone in its test binary, so that the peak memory it measures is its own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use session_core::store::{Store, StoreKey};
use session_core::{IdLength, SessionId};
use session_fs::FileStore;

/// The process's peak resident memory so far, in bytes (`VmHWM`).
fn peak_rss() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

/// A `SES2` file whose header claims `claimed` bytes of record, followed by `record`
/// (longer than the store's first read, so that the claim is acted on).
fn lying_file(claimed: u32, record: &[u8]) -> Vec<u8> {
    let expires = SystemTime::now() + Duration::from_secs(3600);
    let mut bytes = b"SES2".to_vec();
    bytes.extend_from_slice(&claimed.to_le_bytes());
    bytes.extend_from_slice(&session_core::store::time::unix_millis(expires).to_le_bytes());
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(record);
    bytes
}

#[tokio::test]
async fn a_header_claiming_a_huge_record_is_absent_without_a_huge_allocation() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("session-fs-corrupt");
    fs::create_dir_all(&base).unwrap();
    let dir = tempfile::Builder::new()
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir_in(base)
        .unwrap()
        .keep();
    let store = FileStore::open(&dir).unwrap();
    let record = vec![b'r'; 3000];
    // 256 MiB first: a store that believes it fills that much memory, which shows in the
    // peak; then the largest claim the field holds.
    for claimed in [256 << 20, u32::MAX] {
        let key = StoreKey::new(
            "session:",
            &SessionId::generate(IdLength::default()).unwrap(),
        );
        fs::write(dir.join(key.as_str()), lying_file(claimed, &record)).unwrap();
        let before = peak_rss();
        assert!(store.load(&key).await.unwrap().is_none(), "claim {claimed}");
        let grown = peak_rss().saturating_sub(before);
        assert!(
            grown < 16 << 20,
            "reading a file of {} bytes claiming {claimed} grew the peak memory by {grown} bytes",
            record.len() + 24
        );
    }
}
