//! Users' indexes on disk: what they hold (no session id), how they behave under
//! concurrent logins, logouts and listings, how the cleanup prunes them, and counting and
//! scanning sessions whose file names are shortened or that share the directory with
//! foreign entries.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager};
use session_core::store::{ScanCursor, Store, StoreKey, UserKey};
use session_core::{Config, IdLength, Keyring, SessionId};
use session_fs::{FileStore, FileStoreError, IoThread};

use common::{hour, key, scratch_dir};

fn manager(store: &FileStore, prefix: &str) -> SessionManager {
    let keyring = Keyring::new([[42u8; 32]]).unwrap();
    let config = Config::builder(keyring).key_prefix(prefix).build().unwrap();
    SessionManager::new(store.clone(), config)
}

/// Saves a new session, logged in as `user` if given, and returns its id, read from the
/// cookie a browser would send next.
async fn new_session(sessions: &SessionManager, user: Option<&str>) -> SessionId {
    let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
    state.insert("seen", true).unwrap();
    if let Some(user) = user {
        state.log_in(user, None);
    }
    let CookieUpdate::Set(header) = sessions.save(state).await.unwrap() else {
        panic!("no cookie for a new session");
    };
    let pair = header.split(';').next().unwrap().to_owned();
    match sessions.verify([pair.as_str()]) {
        RequestCookie::Valid(verified) => verified.into_id(),
        _ => panic!("the store's own cookie does not verify"),
    }
}

/// Every file and directory under `dir`, at any depth (links are not followed).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The directory of `user`'s index, for a user key that needs no escaping.
fn index_dir(dir: &Path, user: &UserKey) -> PathBuf {
    dir.join(".users").join(user.as_str())
}

fn entries(path: &Path) -> usize {
    fs::read_dir(path).map_or(0, |entries| entries.count())
}

async fn bound_keys(store: &FileStore, user: &UserKey) -> BTreeSet<StoreKey> {
    let listed = store.list_bound(user).await.unwrap();
    let keys: BTreeSet<StoreKey> = listed.iter().map(|l| l.key().clone()).collect();
    assert_eq!(keys.len(), listed.len(), "a session listed twice");
    keys
}

/// Every key a scan of `prefix` lists, page by page.
async fn scanned(store: &FileStore, prefix: &str, limit: usize) -> BTreeSet<StoreKey> {
    let mut seen = BTreeSet::new();
    let mut after: Option<ScanCursor> = None;
    for page in 0.. {
        assert!(page < 1_000, "the scan does not end");
        let scan = store.scan(prefix, after.as_ref(), limit).await.unwrap();
        assert!(scan.records.len() <= limit);
        for listed in scan.records {
            assert!(seen.insert(listed.key().clone()), "a session scanned twice");
        }
        match scan.next {
            Some(next) => after = Some(next),
            None => return seen,
        }
    }
    unreachable!()
}

/// No name and no byte of any file the store wrote, indexes and kept keys included,
/// holds the id of a live session: with the default prefix, and with one so long that
/// the file names are shortened and the keys kept in `.keys`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_file_name_or_content_holds_a_live_id() {
    let long_prefix = "/".repeat(Config::MAX_KEY_PREFIX_LEN);
    for prefix in ["session:", long_prefix.as_str()] {
        let dir = scratch_dir("users");
        let store = FileStore::open(&dir).unwrap();
        let sessions = manager(&store, prefix);
        let user = "alice@example.com";
        let ids = [
            new_session(&sessions, None).await,
            new_session(&sessions, Some(user)).await,
            new_session(&sessions, Some(user)).await,
        ];
        assert_eq!(sessions.sessions_of(user, None).await.unwrap().len(), 2);
        let files = walk(&dir);
        let under = |sub: &str| {
            files
                .iter()
                .filter(|path| path.starts_with(dir.join(sub)) && path.is_file())
                .count()
        };
        assert_eq!(under(".users"), 2, "{prefix}: one entry per login");
        let kept = if prefix == "session:" { 0 } else { 3 };
        assert_eq!(under(".keys"), kept, "{prefix}: keys kept aside");
        for path in &files {
            let name = path.file_name().unwrap().to_str().unwrap();
            let meta = fs::symlink_metadata(path).unwrap();
            let content = if meta.is_file() {
                fs::read(path).unwrap()
            } else {
                Vec::new()
            };
            for id in &ids {
                assert!(!name.contains(id.as_str()), "{prefix}: a name holds an id");
                assert!(
                    !contains(&content, id.as_str()),
                    "{prefix}: a file holds an id"
                );
            }
        }
    }
}

async fn concurrent_logins_are_all_listed(io: IoThread) {
    let dir = scratch_dir("users");
    let store = FileStore::builder(&dir).io_thread(io).open().unwrap();
    let user = UserKey::new("session:", "bob");
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            let user = user.clone();
            tokio::spawn(async move {
                let key = key();
                let value = format!("session {i}").into_bytes();
                store
                    .create_bound(&key, &value, hour(), &user)
                    .await
                    .unwrap();
                key
            })
        })
        .collect();
    let mut created = BTreeSet::new();
    for task in tasks {
        created.insert(task.await.unwrap());
    }
    assert_eq!(created.len(), 32);
    let listed = store.list_bound(&user).await.unwrap();
    assert_eq!(listed.len(), 32, "{io:?}");
    for listed in &listed {
        let loaded = store.load(listed.key()).await.unwrap().unwrap();
        assert_eq!(listed.value(), loaded.value(), "listed as loaded");
        assert_eq!(Some(listed.expires_at()), loaded.expires_at());
    }
    assert_eq!(bound_keys(&store, &user).await, created);
    // Another store on the directory (another process) sees the same index.
    let other = FileStore::open(&dir).unwrap();
    assert_eq!(bound_keys(&other, &user).await, created);

    // Concurrent logouts empty the index, and its directory goes with the last entry.
    let tasks: Vec<_> = created
        .iter()
        .map(|key| {
            let (store, user, key) = (store.clone(), user.clone(), key.clone());
            tokio::spawn(async move { store.unbind(&user, &key).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(store.list_bound(&user).await.unwrap().is_empty());
    assert!(!index_dir(&dir, &user).exists(), "an empty index was left");
    for key in &created {
        assert!(store.load(key).await.unwrap().is_some(), "unbind deleted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn thirty_two_concurrent_logins_of_one_user_are_all_listed() {
    concurrent_logins_are_all_listed(IoThread::Caller).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn thirty_two_concurrent_logins_are_all_listed_with_the_blocking_pool() {
    concurrent_logins_are_all_listed(IoThread::BlockingPool).await;
}

/// A logout that empties a user's index removes its directory; a login at that moment
/// must neither fail nor lose its entry to that removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn logins_racing_logouts_that_empty_the_index_keep_their_entries() {
    let dir = scratch_dir("users");
    let store = FileStore::open(&dir).unwrap();
    let user = UserKey::new("session:", "carol");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, user) = (store.clone(), user.clone());
            tokio::spawn(async move {
                for _ in 0..200 {
                    let key = key();
                    store
                        .create_bound(&key, b"brief", hour(), &user)
                        .await
                        .unwrap();
                    assert!(
                        bound_keys(&store, &user).await.contains(&key),
                        "a login lost its entry"
                    );
                    store.unbind(&user, &key).await.unwrap();
                }
                let kept = key();
                store
                    .create_bound(&kept, b"kept", hour(), &user)
                    .await
                    .unwrap();
                kept
            })
        })
        .collect();
    let mut kept = BTreeSet::new();
    for task in tasks {
        kept.insert(task.await.unwrap());
    }
    assert_eq!(bound_keys(&store, &user).await, kept);
}

/// Listings that run while the user logs in prune nothing that is being created: every
/// login is listed afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn listings_during_logins_prune_none_of_them() {
    let dir = scratch_dir("users");
    let store = FileStore::open(&dir).unwrap();
    let user = UserKey::new("session:", "dave");
    let done = Arc::new(AtomicBool::new(false));
    let listers: Vec<_> = (0..4)
        .map(|_| {
            let (store, user, done) = (store.clone(), user.clone(), Arc::clone(&done));
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    store.list_bound(&user).await.unwrap();
                }
            })
        })
        .collect();
    let logins: Vec<_> = (0..8)
        .map(|_| {
            let (store, user) = (store.clone(), user.clone());
            tokio::spawn(async move {
                let mut created = Vec::new();
                for _ in 0..100 {
                    let key = key();
                    store
                        .create_bound(&key, b"login", hour(), &user)
                        .await
                        .unwrap();
                    created.push(key);
                }
                created
            })
        })
        .collect();
    let mut created = BTreeSet::new();
    for login in logins {
        created.extend(login.await.unwrap());
    }
    done.store(true, Ordering::Relaxed);
    for lister in listers {
        lister.await.unwrap();
    }
    let listed = bound_keys(&store, &user).await;
    assert_eq!(
        created.difference(&listed).count(),
        0,
        "logins pruned while they were created"
    );
    assert_eq!(listed, created);
}

/// The cleanup prunes the index entries of expired sessions (and of deleted ones), and
/// removes an index left empty; entries of live sessions stay.
#[tokio::test]
async fn the_cleanup_prunes_the_indexes() {
    let dir = scratch_dir("users");
    let store = FileStore::open(&dir).unwrap();
    let user = UserKey::new("session:", "erin");
    let soon = SystemTime::now() + Duration::from_millis(50);
    for _ in 0..3 {
        store
            .create_bound(&key(), b"short", soon, &user)
            .await
            .unwrap();
    }
    let (live, deleted) = (key(), key());
    store
        .create_bound(&live, b"live", hour(), &user)
        .await
        .unwrap();
    store
        .create_bound(&deleted, b"deleted", hour(), &user)
        .await
        .unwrap();
    store.delete(&deleted).await.unwrap();
    assert_eq!(entries(&index_dir(&dir, &user)), 5);
    tokio::time::sleep(Duration::from_millis(100)).await;

    assert_eq!(store.delete_expired().await.unwrap(), 3);
    assert_eq!(entries(&index_dir(&dir, &user)), 1, "dead entries stayed");
    assert_eq!(
        bound_keys(&store, &user).await,
        BTreeSet::from([live.clone()])
    );
    store.delete(&live).await.unwrap();
    assert_eq!(store.delete_expired().await.unwrap(), 0);
    assert!(!index_dir(&dir, &user).exists(), "an empty index was left");
}

/// Sessions whose file names are shortened are listed, counted and scanned under their
/// full keys, kept in `.keys` until the session is removed.
#[tokio::test]
async fn sessions_with_shortened_names_are_listed_counted_and_scanned() {
    let dir = scratch_dir("users");
    let store = FileStore::open(&dir).unwrap();
    let prefix = "/".repeat(Config::MAX_KEY_PREFIX_LEN);
    let user = UserKey::new(&prefix, "frank");
    let new_key = || StoreKey::new(&prefix, &SessionId::generate(IdLength::default()).unwrap());
    let (mut bound, mut all) = (BTreeSet::new(), BTreeSet::new());
    for i in 0..10 {
        let key = new_key();
        if i % 2 == 0 {
            store
                .create_bound(&key, b"bound", hour(), &user)
                .await
                .unwrap();
            bound.insert(key.clone());
        } else {
            store.create(&key, b"loose", hour()).await.unwrap();
        }
        all.insert(key);
    }
    // Another prefix's sessions, and a session that is gone, are not under this one.
    store.create(&key(), b"other", hour()).await.unwrap();
    let gone = new_key();
    store.create(&gone, b"gone", hour()).await.unwrap();
    assert_eq!(entries(&dir.join(".keys")), 11);
    store.delete(&gone).await.unwrap();
    assert_eq!(
        entries(&dir.join(".keys")),
        10,
        "a deleted session's key stayed"
    );

    assert_eq!(bound_keys(&store, &user).await, bound);
    assert_eq!(store.count(&prefix).await.unwrap(), 10);
    assert_eq!(scanned(&store, &prefix, 3).await, all);
    assert_eq!(store.count("session:").await.unwrap(), 1);
}

/// Entries that are not sessions (another program's file, a session-named file without a
/// header, a directory, the store's own `.users` and `.keys`) are neither counted nor
/// scanned, and survive both; the user indexes are not sessions either.
#[tokio::test]
async fn count_and_scan_see_only_live_sessions() {
    let dir = scratch_dir("users");
    let store = FileStore::open(&dir).unwrap();
    fs::write(dir.join("notes.txt"), b"not yours").unwrap();
    let headerless = dir.join(key().as_str());
    fs::write(&headerless, b"not yours").unwrap();
    let directory = dir.join(key().as_str());
    fs::create_dir(&directory).unwrap();
    let user = UserKey::new("session:", "grace");
    let mut live = BTreeSet::new();
    for i in 0..9 {
        let key = key();
        if i % 3 == 0 {
            store
                .create_bound(&key, b"bound", hour(), &user)
                .await
                .unwrap();
        } else {
            store.create(&key, b"loose", hour()).await.unwrap();
        }
        live.insert(key);
    }
    let short = key();
    store
        .create(
            &short,
            b"short",
            SystemTime::now() + Duration::from_millis(20),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    assert_eq!(store.count("session:").await.unwrap(), 9);
    for limit in [1, 4, 9, 100] {
        assert_eq!(
            scanned(&store, "session:", limit).await,
            live,
            "limit {limit}"
        );
    }
    // A page asked for with a limit of 0 still moves on.
    let page = store.scan("session:", None, 0).await.unwrap();
    assert_eq!(page.records.len(), 1);
    assert!(page.next.is_some());
    assert_eq!(store.count("other:").await.unwrap(), 0);
    assert_eq!(fs::read(dir.join("notes.txt")).unwrap(), b"not yours");
    assert_eq!(fs::read(&headerless).unwrap(), b"not yours");
    assert!(directory.is_dir());
}

/// A link where the store keeps its indexes is refused, not followed.
#[test]
fn a_link_at_the_index_directory_is_refused() {
    for sub in [".users", ".keys"] {
        let dir = scratch_dir("users");
        let elsewhere = scratch_dir("users");
        std::os::unix::fs::symlink(&elsewhere, dir.join(sub)).unwrap();
        match FileStore::open(&dir) {
            Err(FileStoreError::UnsafeIndexPath { path }) => assert_eq!(path, dir.join(sub)),
            other => panic!("a link at {sub}: expected a refusal, got {other:?}"),
        }
        assert_eq!(entries(&elsewhere), 0, "written through the link");
    }
}
