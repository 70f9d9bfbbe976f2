//! What `FileStore` promises beyond the Store contract: modes, atomic files, in-place
//! touch, the session limit, and several processes sharing one directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use session_core::store::{Loaded, Revision, Store, StoreError, StoreKey};
use session_core::IdLength;
use session_fs::FileStore;

use common::{hour, key, scratch_dir, session_files};

fn stray_temp_files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(".tmp"))
        .collect()
}

#[tokio::test]
async fn creates_the_directory_and_private_files() {
    let dir = scratch_dir("files").join("nested/sessions");
    let store = FileStore::open(&dir).unwrap();
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let key = key();
    store.create(&key, b"{}", hour()).await.unwrap();
    let file = dir.join(key.as_str());
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The file is named after the key, so `ls .sessions` shows the sessions.
    assert_eq!(session_files(&dir), std::slice::from_ref(&file));
    // And its data follows the 24-byte header, readable as it was stored.
    assert_eq!(&fs::read(&file).unwrap()[24..], b"{}");
}

#[tokio::test]
async fn file_mode_is_configurable() {
    // 0o640 passes the usual umask (022) untouched; 0o660 loses its group write bit to
    // it, so the store must put that bit back itself.
    for wanted in [0o640, 0o660] {
        let dir = scratch_dir("files");
        let store = FileStore::builder(&dir).file_mode(wanted).open().unwrap();
        let key = key();
        let revision = store.create(&key, b"x", hour()).await.unwrap();
        let mode = |key: &StoreKey| {
            fs::metadata(dir.join(key.as_str()))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(&key), wanted, "after create");
        store.update(&key, b"y", hour(), revision).await.unwrap();
        assert_eq!(mode(&key), wanted, "after update");
    }
}

#[tokio::test]
async fn writes_leave_no_temporary_files() {
    let dir = scratch_dir("files");
    let store = FileStore::open(&dir).unwrap();
    let keys: Vec<_> = (0..20).map(|_| key()).collect();
    for key in &keys {
        let revision = store.create(key, b"a", hour()).await.unwrap();
        store.update(key, b"b", hour(), revision).await.unwrap();
        store.touch(key, hour()).await.unwrap();
        // A refused create leaves neither its temporary file nor a change behind.
        assert!(matches!(
            store.create(key, b"c", hour()).await,
            Err(StoreError::DuplicateId)
        ));
        assert_eq!(store.load(key).await.unwrap().unwrap().value(), b"b");
    }
    for key in &keys[..10] {
        store.delete(key).await.unwrap();
    }
    assert!(stray_temp_files(&dir).is_empty());
    assert_eq!(session_files(&dir).len(), 10);
}

#[tokio::test]
async fn touch_rewrites_only_the_expiry_in_place() {
    let dir = scratch_dir("files");
    let store = FileStore::open(&dir).unwrap();
    let key = key();
    let revision = store.create(&key, b"payload", hour()).await.unwrap();
    let path = dir.join(key.as_str());
    let inode = fs::metadata(&path).unwrap().ino();
    let later = hour() + Duration::from_secs(3600);
    store.touch(&key, later).await.unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().ino(),
        inode,
        "touch replaced the file"
    );
    let loaded = store.load(&key).await.unwrap().unwrap();
    assert_eq!(loaded.value(), b"payload");
    let reported = loaded.expires_at().unwrap();
    let skew = reported
        .duration_since(later)
        .unwrap_or_else(|e| e.duration());
    assert!(
        skew < Duration::from_millis(2),
        "expiry is {reported:?}, wanted {later:?}"
    );
    // update, by contrast, writes a new file atomically.
    store.update(&key, b"new", hour(), revision).await.unwrap();
    assert_ne!(fs::metadata(&path).unwrap().ino(), inode);
}

#[tokio::test]
async fn a_file_without_a_header_is_absent_and_left_to_its_owner() {
    let dir = scratch_dir("files");
    let store = FileStore::open(&dir).unwrap();
    let key = key();
    fs::write(dir.join(key.as_str()), b"not a session").unwrap();
    assert!(store.load(&key).await.unwrap().is_none());
    assert!(matches!(
        store.update(&key, b"x", hour(), Revision::FIRST).await,
        Err(StoreError::UnknownId)
    ));
    // create may take the name over, since nobody can load what is there
    store.create(&key, b"fresh", hour()).await.unwrap();
    assert_eq!(store.load(&key).await.unwrap().unwrap().value(), b"fresh");
    // Without a session header it is not the store's file: the cleanup leaves it.
    let junk = self::key();
    fs::write(dir.join(junk.as_str()), b"junk").unwrap();
    assert_eq!(store.delete_expired().await.unwrap(), 0);
    assert_eq!(fs::read(dir.join(junk.as_str())).unwrap(), b"junk");
}

/// A session file as written by hand: `SES2`, the record length field, the expiry, the
/// first revision.
fn raw_file(record_len: u32, expires_at: SystemTime, record: &[u8]) -> Vec<u8> {
    let millis = session_core::store::time::unix_millis(expires_at);
    let mut bytes = b"SES2".to_vec();
    bytes.extend_from_slice(&record_len.to_le_bytes());
    bytes.extend_from_slice(&millis.to_le_bytes());
    bytes.extend_from_slice(&Revision::FIRST.get().to_le_bytes());
    bytes.extend_from_slice(record);
    bytes
}

#[tokio::test]
async fn the_header_keeps_the_record_length_and_a_length_of_zero_reads_to_the_end() {
    let dir = scratch_dir("files");
    let store = FileStore::open(&dir).unwrap();
    let key = key();
    store.create(&key, b"payload", hour()).await.unwrap();
    let bytes = fs::read(dir.join(key.as_str())).unwrap();
    assert_eq!(&bytes[4..8], &7u32.to_le_bytes());

    // A length field of 0 (a record too long for it): the record is read to the end. Also
    // longer than the first read, so that the rest is read too.
    let record = vec![b'r'; 5000];
    let old = self::key();
    fs::write(dir.join(old.as_str()), raw_file(0, hour(), &record)).unwrap();
    assert_eq!(
        store.load(&old).await.unwrap().unwrap().value(),
        &record[..]
    );
}

#[tokio::test]
async fn a_file_shorter_than_its_header_says_is_absent() {
    let dir = scratch_dir("files");
    let store = FileStore::open(&dir).unwrap();
    for (len, record) in [(10, &b"short"[..]), (5000, &[b'x'; 2000][..])] {
        let key = key();
        fs::write(dir.join(key.as_str()), raw_file(len, hour(), record)).unwrap();
        assert!(store.load(&key).await.unwrap().is_none(), "length {len}");
    }
    // Longer than it says: the bytes past the record are not part of it.
    let key = key();
    fs::write(dir.join(key.as_str()), raw_file(4, hour(), b"dataJUNK")).unwrap();
    assert_eq!(store.load(&key).await.unwrap().unwrap().value(), b"data");
}

/// Two stores on one directory share nothing in memory, as two processes would not: what
/// one remembers about a session must not outlive the other's removal of it.
#[tokio::test]
async fn a_session_removed_elsewhere_is_not_brought_back_by_a_store_that_knew_it() {
    let dir = scratch_dir("files");
    let (here, elsewhere) = (
        FileStore::open(&dir).unwrap(),
        FileStore::open(&dir).unwrap(),
    );
    let (deleted, cleaned, kept) = (key(), key(), key());
    for key in [&deleted, &cleaned, &kept] {
        let revision = here.create(key, b"v1", hour()).await.unwrap();
        // Updated and touched once, so `here` knows them live from its own writes.
        here.update(key, b"v2", hour(), revision).await.unwrap();
        here.touch(key, hour()).await.unwrap();
    }

    elsewhere.delete(&deleted).await.unwrap();
    // Expired by hand, then removed by the other store's cleanup.
    let expired = raw_file(2, SystemTime::now() - Duration::from_secs(1), b"v2");
    fs::write(dir.join(cleaned.as_str()), expired).unwrap();
    assert_eq!(elsewhere.delete_expired().await.unwrap(), 1);

    for key in [&deleted, &cleaned] {
        assert_unknown(
            here.update(key, b"v3", hour(), Revision::FIRST.next())
                .await,
        );
        assert_unknown(here.touch(key, hour()).await);
        assert!(here.load(key).await.unwrap().is_none());
    }
    // The other store's removals do not cost `here` its sessions, only its memory of them.
    here.update(&kept, b"v3", hour(), Revision::FIRST.next())
        .await
        .unwrap();
    assert_eq!(here.load(&kept).await.unwrap().unwrap().value(), b"v3");
    assert_eq!(session_files(&dir).len(), 1);
}

/// Two stores on one directory stand for two processes: a revision one remembers from its
/// own write must not outlive the other's write of the session.
#[tokio::test]
async fn a_revision_written_elsewhere_makes_a_stale_update_or_delete_a_conflict() {
    let dir = scratch_dir("files");
    let (here, elsewhere) = (
        FileStore::open(&dir).unwrap(),
        FileStore::open(&dir).unwrap(),
    );
    let key = key();
    // Created here without the lock, so `here` remembers the first revision.
    let first = here.create(&key, b"v1", hour()).await.unwrap();
    let loaded = elsewhere.load(&key).await.unwrap().unwrap();
    let second = elsewhere
        .update(&key, b"v2", hour(), loaded.revision())
        .await
        .unwrap();
    for stale in [
        here.update(&key, b"lost", hour(), first).await.map(|_| ()),
        here.delete_if_unchanged(&key, first).await,
    ] {
        assert_conflict_with(stale, b"v2", second);
    }

    // Updated here under the lock, so `here` remembers the third revision.
    let third = here.update(&key, b"v3", hour(), second).await.unwrap();
    let fourth = elsewhere.update(&key, b"v4", hour(), third).await.unwrap();
    for stale in [
        here.update(&key, b"lost", hour(), third).await.map(|_| ()),
        here.delete_if_unchanged(&key, third).await,
    ] {
        assert_conflict_with(stale, b"v4", fourth);
    }
    assert_eq!(here.load(&key).await.unwrap().unwrap().value(), b"v4");
    // At the current revision both still work, from either store.
    let fifth = here.update(&key, b"v5", hour(), fourth).await.unwrap();
    elsewhere.delete_if_unchanged(&key, fifth).await.unwrap();
    assert_unknown(here.update(&key, b"zombie", hour(), fifth).await);
    assert!(session_files(&dir).is_empty());
}

/// A session file rewritten by hand at another revision: what a store that does not read
/// the header would miss.
fn rewrite_at(path: &Path, revision: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[16..24].copy_from_slice(&revision.to_le_bytes());
    fs::write(path, bytes).unwrap();
}

/// The stripe of a session file, as `locks` computes it (FNV-1a, 64 stripes).
fn stripe_of(key: &StoreKey) -> u64 {
    let hash = key
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    hash % 64
}

#[tokio::test]
async fn an_update_at_the_revision_this_store_wrote_does_not_read_the_file() {
    let dir = scratch_dir("files");
    let (store, elsewhere) = (
        FileStore::open(&dir).unwrap(),
        FileStore::open(&dir).unwrap(),
    );
    let key = key();
    let path = dir.join(key.as_str());
    let neighbour = std::iter::repeat_with(self::key)
        .find(|other| stripe_of(other) == stripe_of(&key))
        .unwrap();
    // A store trusts what it remembers of a stripe once it is the stripe's last writer.
    let created = store.create(&neighbour, b"n1", hour()).await.unwrap();
    let neighbour_at = store
        .update(&neighbour, b"n2", hour(), created)
        .await
        .unwrap();

    // Both after a create (remembered without the lock) and after an update.
    let first = store.create(&key, b"v1", hour()).await.unwrap();
    rewrite_at(&path, 99);
    let second = store.update(&key, b"v2", hour(), first).await.unwrap();
    rewrite_at(&path, 99);
    let third = store.update(&key, b"v3", hour(), second).await.unwrap();
    assert_eq!(store.load(&key).await.unwrap().unwrap().revision(), third);

    // Once another store has written any session of the same stripe, the header is read.
    elsewhere
        .update(&neighbour, b"n3", hour(), neighbour_at)
        .await
        .unwrap();
    rewrite_at(&path, 99);
    assert_conflict_with(
        store.update(&key, b"lost", hour(), third).await.map(|_| ()),
        b"v3",
        Revision::new(99),
    );
}

fn assert_conflict_with(result: Result<(), StoreError>, value: &[u8], revision: Revision) {
    match result {
        Err(StoreError::Conflict {
            current: Some(current),
        }) => assert_eq!((current.value(), current.revision()), (value, revision)),
        other => panic!("expected a conflict with the current record, got {other:?}"),
    }
}

#[tokio::test]
async fn a_session_known_live_still_expires_for_update_and_touch() {
    let dir = scratch_dir("files");
    let store = FileStore::open(&dir).unwrap();
    let key = key();
    let soon = SystemTime::now() + Duration::from_millis(50);
    let first = store.create(&key, b"v1", soon).await.unwrap();
    let second = store.update(&key, b"v2", soon, first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_unknown(store.update(&key, b"v3", hour(), second).await);
    assert_unknown(store.delete_if_unchanged(&key, second).await);
    assert_unknown(store.touch(&key, hour()).await);
    assert!(store.load(&key).await.unwrap().is_none());
}

#[tokio::test]
async fn a_session_file_removed_by_hand_is_noticed_after_a_delete() {
    let dir = scratch_dir("files");
    let store = FileStore::open(&dir).unwrap();
    let key = key();
    store.create(&key, b"v1", hour()).await.unwrap();
    fs::remove_file(dir.join(key.as_str())).unwrap();
    // A touch, which writes in place, finds it gone.
    assert_unknown(store.touch(&key, hour()).await);
    let revision = store.create(&key, b"v1", hour()).await.unwrap();
    fs::remove_file(dir.join(key.as_str())).unwrap();
    // Absent is not an error for delete, and what the store knew about the file goes too.
    store.delete(&key).await.unwrap();
    assert_unknown(store.update(&key, b"v2", hour(), revision).await);
    assert!(session_files(&dir).is_empty());
}

#[tokio::test]
async fn debug_output_never_shows_a_session_id() {
    let dir = scratch_dir("files");
    let store = FileStore::open(&dir).unwrap();
    let key = key();
    let revision = store.create(&key, b"v1", hour()).await.unwrap();
    store.update(&key, b"v2", hour(), revision).await.unwrap();
    let id = key.as_str().trim_start_matches("session:");
    let debug = format!("{store:?}");
    assert!(!debug.contains(id), "{debug}");
}

fn assert_unknown<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::UnknownId)),
        "expected UnknownId, got {result:?}"
    );
}

#[tokio::test]
async fn delete_expired_counts_and_removes_only_expired_files() {
    let dir = scratch_dir("files");
    let store = FileStore::open(&dir).unwrap();
    let past = SystemTime::now() - Duration::from_secs(1);
    let expired: Vec<_> = (0..1500).map(|_| key()).collect();
    for key in &expired {
        // Written as already expired, which only a store without native TTL allows.
        store
            .create(key, b"old", SystemTime::now() + Duration::from_millis(1))
            .await
            .unwrap();
    }
    let live: Vec<_> = (0..5).map(|_| key()).collect();
    for key in &live {
        store.create(key, b"live", hour()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(SystemTime::now() > past);
    // More than one batch (1000) of expired files.
    assert_eq!(store.delete_expired().await.unwrap(), 1500);
    assert_eq!(session_files(&dir).len(), 5);
    assert_eq!(store.delete_expired().await.unwrap(), 0);
}

#[tokio::test]
async fn the_limit_evicts_the_sessions_closest_to_expiry() {
    let dir = scratch_dir("files");
    let store = FileStore::builder(&dir).limit(20).open().unwrap();
    let mut keys = Vec::new();
    for i in 0..60u64 {
        let key = key();
        // Later sessions expire later, so the earliest are the ones to go.
        let expires = hour() + Duration::from_secs(i);
        store.create(&key, b"x", expires).await.unwrap();
        keys.push(key);
        assert!(
            session_files(&dir).len() <= 20,
            "limit exceeded after {i} creates"
        );
    }
    for key in &keys[55..] {
        assert!(
            store.load(key).await.unwrap().is_some(),
            "a recent session was evicted"
        );
    }
    assert!(store.load(&keys[0]).await.unwrap().is_none());
}

#[tokio::test]
async fn the_limit_counts_sessions_already_on_disk() {
    let dir = scratch_dir("files");
    let first = FileStore::open(&dir).unwrap();
    for _ in 0..10 {
        first.create(&key(), b"x", hour()).await.unwrap();
    }
    let limited = FileStore::builder(&dir).limit(10).open().unwrap();
    limited.create(&key(), b"x", hour()).await.unwrap();
    assert!(session_files(&dir).len() <= 10);
}

const SHARED_KEYS: usize = 200;

fn shared_key(i: usize) -> StoreKey {
    // Both processes derive the same keys. An unsigned keyring is the public way to turn a
    // known string into an id; the final `A` keeps the encoding canonical.
    let encoded = format!("{:0>42}A", format!("shared{i}"));
    let ring = session_core::Keyring::insecure_unsigned();
    let verified = ring
        .verify("session", &encoded, IdLength::default())
        .unwrap_or_else(|| panic!("{encoded} is not id-shaped"));
    StoreKey::new("session:", verified.id())
}

fn pattern(writer: &str, round: usize) -> Vec<u8> {
    let unit = format!("{writer}:{round};");
    unit.repeat(64 * 1024 / unit.len()).into_bytes()
}

fn is_whole_pattern(bytes: &[u8]) -> bool {
    let Some(end) = bytes.iter().position(|b| *b == b';') else {
        return false;
    };
    let unit = &bytes[..=end];
    bytes.len().is_multiple_of(unit.len()) && bytes.chunks(unit.len()).all(|c| c == unit)
}

/// The key both processes count on.
fn counter_key() -> StoreKey {
    shared_key(SHARED_KEYS)
}

/// Writes `value` over whatever the key holds, by load and conditional update, retrying
/// on a conflict with the other process; how many conflicts it met.
async fn write_over(
    store: &FileStore,
    key: &StoreKey,
    value: impl Fn(&Loaded) -> Vec<u8>,
) -> usize {
    let mut loaded = store.load(key).await.unwrap().unwrap();
    for conflicts in 0.. {
        match store
            .update(key, &value(&loaded), hour(), loaded.revision())
            .await
        {
            Ok(_) => return conflicts,
            Err(StoreError::Conflict {
                current: Some(current),
            }) => loaded = current,
            Err(e) => panic!("update: {e:?}"),
        }
    }
    unreachable!()
}

fn plus_one(loaded: &Loaded) -> Vec<u8> {
    let n: u64 = std::str::from_utf8(loaded.value())
        .unwrap()
        .parse()
        .unwrap();
    (n + 1).to_string().into_bytes()
}

/// Creates every shared key (printing the ones it won), then updates and reads them while
/// the other process does the same, checking that every read sees a whole value, and
/// adds one to the counter key in bursts between them.
async fn hammer(dir: PathBuf, name: &str) -> Vec<usize> {
    let store = FileStore::open(&dir).unwrap();
    let mut won = Vec::new();
    for i in 0..SHARED_KEYS {
        match store
            .create(&shared_key(i), &pattern(name, 0), hour())
            .await
        {
            Ok(_) => won.push(i),
            Err(StoreError::DuplicateId) => {}
            Err(e) => panic!("create: {e}"),
        }
    }
    match store.create(&counter_key(), b"0", hour()).await {
        Ok(_) | Err(StoreError::DuplicateId) => {}
        Err(e) => panic!("create: {e}"),
    }
    let mut conflicts = 0;
    for round in 1..=5 {
        for i in 0..SHARED_KEYS {
            conflicts += write_over(&store, &shared_key(i), |_| pattern(name, round)).await;
            store.touch(&shared_key(i), hour()).await.unwrap();
            let loaded = store.load(&shared_key(i)).await.unwrap().unwrap();
            assert!(is_whole_pattern(loaded.value()), "torn read in {name}");
            if i % (SHARED_KEYS / BURSTS_PER_ROUND) == 0 {
                // In bursts, so that the two processes' increments meet.
                for _ in 0..BURST {
                    conflicts += write_over(&store, &counter_key(), plus_one).await;
                }
            }
        }
    }
    println!("CONFLICTS {conflicts} in {name}");
    println!(
        "WON {}",
        won.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    won
}

const BURSTS_PER_ROUND: usize = 10;
const BURST: usize = 10;

/// This test runs twice at once: as the parent, and as a child process of the same test
/// binary (recognised by `SESSION_FS_SHARED_DIR`), both hammering one directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_a_directory() {
    if let Ok(dir) = std::env::var("SESSION_FS_SHARED_DIR") {
        hammer(PathBuf::from(dir), "child").await;
        return;
    }
    let dir = scratch_dir("files");
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "two_processes_share_a_directory", "--nocapture"])
        .env("SESSION_FS_SHARED_DIR", &dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mine = hammer(dir.clone(), "parent").await;
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {stdout}");
    let theirs: Vec<usize> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WON "))
        .expect("child reported its wins")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    // Every key was created exactly once, by one process or the other.
    let mut all: Vec<usize> = mine.iter().chain(&theirs).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..SHARED_KEYS).collect::<Vec<_>>());
    assert!(stray_temp_files(&dir).is_empty());
    assert_eq!(session_files(&dir).len(), SHARED_KEYS + 1);
    // Every conditional increment of either process counted: none wrote over a revision
    // it had not loaded.
    let store = FileStore::open(&dir).unwrap();
    let count = store.load(&counter_key()).await.unwrap().unwrap();
    assert_eq!(
        count.value(),
        (2 * 5 * BURSTS_PER_ROUND * BURST).to_string().as_bytes(),
        "{stdout}"
    );
}
