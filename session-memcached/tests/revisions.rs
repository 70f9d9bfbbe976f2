//! Revisions are memcached's CAS: what touches, writes conditional on revision 0 and a
//! server without CAS make of them, on private memcached servers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use session_core::store::{Revision, Store, StoreError, StoreKey};
use session_core::{IdLength, SessionId};
use session_memcached::MemcachedStore;
use session_testkit::MemcachedServer;

fn key() -> StoreKey {
    StoreKey::new(
        "session:",
        &SessionId::generate(IdLength::default()).unwrap(),
    )
}

fn hours(n: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(n * 3600)
}

async fn store_on(server: &MemcachedServer) -> MemcachedStore {
    MemcachedStore::connect(&format!("memcache://{}", server.address()))
        .await
        .unwrap()
}

/// Sends `command` on a connection of its own and returns the first line of the answer.
fn raw(address: &str, command: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(command).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

/// The value of flag `flag` in the answer to `mg <key> c t`: the item's CAS or its TTL.
fn item_flag(address: &str, key: &StoreKey, flag: char) -> i64 {
    let line = raw(address, format!("mg {} c t\r\n", key.as_str()).as_bytes());
    line.split_whitespace()
        .skip(1)
        .find_map(|token| token.strip_prefix(flag))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {flag} in {line:?}"))
}

fn cas(address: &str, key: &StoreKey) -> u64 {
    u64::try_from(item_flag(address, key, 'c')).unwrap()
}

#[tokio::test]
async fn the_revision_is_the_items_cas_and_touches_keep_it() {
    let server = MemcachedServer::start().unwrap();
    let (store, address) = (store_on(&server).await, server.address());
    let key = key();
    let created = store.create(&key, b"v1", hours(1)).await.unwrap();
    assert_eq!(created, Revision::new(cas(&address, &key)));

    // `mg key T<ttl>` moves the TTL and leaves the CAS as it is, with and without the value.
    store.touch(&key, hours(2)).await.unwrap();
    assert!(
        item_flag(&address, &key, 't') > 3600,
        "touch did not move the TTL"
    );
    assert_eq!(cas(&address, &key), created.get(), "touch changed the CAS");
    let loaded = store.load_and_touch(&key, hours(3)).await.unwrap().unwrap();
    assert!(
        item_flag(&address, &key, 't') > 2 * 3600,
        "no touch on read"
    );
    assert_eq!(loaded.revision(), created);
    assert_eq!(
        cas(&address, &key),
        created.get(),
        "touch on read changed the CAS"
    );

    let updated = store.update(&key, b"v2", hours(1), created).await.unwrap();
    assert_ne!(updated, created);
    assert_eq!(updated, Revision::new(cas(&address, &key)));
    assert_eq!(store.load(&key).await.unwrap().unwrap().revision(), updated);
}

#[tokio::test]
async fn a_write_conditional_on_revision_zero_writes_nothing() {
    let server = MemcachedServer::start().unwrap();
    let store = store_on(&server).await;
    let key = key();
    let revision = store.create(&key, b"live", hours(1)).await.unwrap();

    // Every memcached item has a CAS other than 0, so a live record is never at revision 0.
    let answer = store
        .update(&key, b"blind", hours(1), Revision::new(0))
        .await;
    match answer {
        Err(StoreError::Conflict {
            current: Some(current),
        }) => assert_eq!(
            (current.value(), current.revision()),
            (&b"live"[..], revision)
        ),
        other => panic!("expected a conflict with the current record, got {other:?}"),
    }
    let answer = store.delete_if_unchanged(&key, Revision::new(0)).await;
    assert!(
        matches!(answer, Err(StoreError::Conflict { current: Some(_) })),
        "{answer:?}"
    );
    let loaded = store.load(&key).await.unwrap().unwrap();
    assert_eq!(
        (loaded.value(), loaded.revision()),
        (&b"live"[..], revision)
    );

    let absent = self::key();
    let answer = store
        .update(&absent, b"blind", hours(1), Revision::new(0))
        .await;
    assert!(matches!(answer, Err(StoreError::UnknownId)), "{answer:?}");
    let answer = store.delete_if_unchanged(&absent, Revision::new(0)).await;
    assert!(matches!(answer, Err(StoreError::UnknownId)), "{answer:?}");
    assert!(store.load(&absent).await.unwrap().is_none());
}

/// An item written by another client (a plain `set`, or `ms` without a revision) is a
/// record like any other: it loads at its CAS, a write at revision 0 does not overwrite it,
/// and a write at the loaded revision does.
#[tokio::test]
async fn an_item_written_by_another_client_loads_at_its_cas() {
    let server = MemcachedServer::start().unwrap();
    let (store, address) = (store_on(&server).await, server.address());
    for command in [
        "ms {key} 3 ME T3600\r\nold\r\n",
        "set {key} 0 3600 3\r\nold\r\n",
    ] {
        let key = key();
        let answer = raw(&address, command.replace("{key}", key.as_str()).as_bytes());
        assert!(answer == "HD" || answer == "STORED", "{answer}");
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.value(), b"old");
        assert_ne!(loaded.revision(), Revision::new(0));
        assert_eq!(loaded.revision().get(), cas(&address, &key));
        let answer = store
            .update(&key, b"blind", hours(1), Revision::new(0))
            .await;
        assert!(
            matches!(answer, Err(StoreError::Conflict { .. })),
            "{answer:?}"
        );
        let updated = store
            .update(&key, b"new", hours(1), loaded.revision())
            .await
            .unwrap();
        let reloaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(
            (reloaded.value(), reloaded.revision()),
            (&b"new"[..], updated)
        );
    }
}

/// `memcached -C` gives every item CAS 0: revisions would all be 0 and nothing could be
/// compared, so the store says so instead of reporting one.
#[tokio::test]
async fn a_server_without_cas_is_a_backend_error() {
    let server = MemcachedServer::start_without_cas().unwrap();
    let (store, address) = (store_on(&server).await, server.address());
    let key = key();
    let error = store.create(&key, b"v", hours(1)).await.unwrap_err();
    assert!(matches!(error, StoreError::Backend { .. }), "{error:?}");
    let cause = std::error::Error::source(&error).unwrap().to_string();
    assert!(cause.contains("-C"), "{cause}");
    let other = self::key();
    raw(
        &address,
        format!("set {} 0 3600 1\r\nv\r\n", other.as_str()).as_bytes(),
    );
    for answer in [
        store.load(&other).await,
        store.load_and_touch(&other, hours(1)).await,
    ] {
        assert!(
            matches!(answer, Err(StoreError::Backend { .. })),
            "{answer:?}"
        );
    }
}
