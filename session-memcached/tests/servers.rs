//! Spreading keys, long lifetimes, size limits and outages, on private memcached servers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::{Duration, Instant, SystemTime};

use session_core::store::{Store, StoreError, StoreKey};
use session_core::{IdLength, SessionId};
use session_memcached::MemcachedStore;
use session_testkit::MemcachedServer;

fn key() -> StoreKey {
    StoreKey::new(
        "session:",
        &SessionId::generate(IdLength::default()).unwrap(),
    )
}

fn hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

#[tokio::test]
async fn keys_land_on_both_servers() {
    let (a, b) = (
        MemcachedServer::start().unwrap(),
        MemcachedServer::start().unwrap(),
    );
    let store = MemcachedStore::connect(&format!("memcache://{},{}", a.address(), b.address()))
        .await
        .unwrap();
    let keys: Vec<_> = (0..200).map(|_| key()).collect();
    for key in &keys {
        store.create(key, b"{}", hour()).await.unwrap();
    }
    let (on_a, on_b) = (a.items().unwrap(), b.items().unwrap());
    assert_eq!(on_a + on_b, 200);
    assert!(on_a > 40 && on_b > 40, "uneven spread: {on_a} and {on_b}");
    for key in &keys {
        assert!(store.load(key).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn a_lifetime_over_30_days_round_trips_with_the_right_expiry() {
    let server = MemcachedServer::start().unwrap();
    let store = MemcachedStore::connect(&format!("memcache://{}", server.address()))
        .await
        .unwrap();
    let key = key();
    let expires = SystemTime::now() + Duration::from_secs(45 * 24 * 3600);
    store.create(&key, b"long", expires).await.unwrap();
    assert_eq!(store.load(&key).await.unwrap().unwrap().value(), b"long");
    // Sent as a relative 45 days, memcached would read it as a date in 1970 and drop the
    // item at once. Its remaining TTL, as memcached reports it, must be about 45 days.
    let ttl = remaining_ttl(&server.address(), key.as_str());
    let expected = 45 * 24 * 3600;
    assert!((expected - 5..=expected + 1).contains(&ttl), "ttl {ttl}");
    store
        .touch(&key, expires + Duration::from_secs(24 * 3600))
        .await
        .unwrap();
    let ttl = remaining_ttl(&server.address(), key.as_str());
    assert!(
        (expected + 24 * 3600 - 5..=expected + 24 * 3600 + 1).contains(&ttl),
        "ttl {ttl}"
    );
}

#[tokio::test]
async fn a_lifetime_past_2038_is_kept_until_memcached_can_count() {
    let server = MemcachedServer::start().unwrap();
    let store = MemcachedStore::connect(&format!("memcache://{}", server.address()))
        .await
        .unwrap();
    let key = key();
    // The longest lifetime a configuration accepts reaches past what memcached's signed
    // 32-bit expiry times can say.
    let expires = SystemTime::now() + session_core::Config::MAX_DURATION;
    store.create(&key, b"long", expires).await.unwrap();
    assert_eq!(store.load(&key).await.unwrap().unwrap().value(), b"long");
    store.touch(&key, expires).await.unwrap();
    let revision = store.load(&key).await.unwrap().unwrap().revision();
    store
        .update(&key, b"longer", expires, revision)
        .await
        .unwrap();
    assert_eq!(store.load(&key).await.unwrap().unwrap().value(), b"longer");
    assert!(remaining_ttl(&server.address(), key.as_str()) > 24 * 3600);
}

/// `mg <key> t`: the remaining TTL in seconds.
fn remaining_ttl(address: &str, key: &str) -> i64 {
    use std::io::{BufRead as _, BufReader, Write as _};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .write_all(format!("mg {key} t\r\n").as_bytes())
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line.split_whitespace()
        .find_map(|flag| flag.strip_prefix('t'))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no ttl in {line:?}"))
}

#[tokio::test]
async fn a_session_over_the_item_limit_is_a_typed_error_and_nothing_is_stored() {
    let server = MemcachedServer::start().unwrap();
    let url = format!("memcache://{}", server.address());
    // The client knows the limit: refused before sending.
    let store = MemcachedStore::builder(&url)
        .max_item_size(1024 * 1024)
        .connect()
        .await
        .unwrap();
    let key = key();
    let big = vec![b'x'; 1024 * 1024];
    let error = store.create(&key, &big, hour()).await.unwrap_err();
    assert!(matches!(error, StoreError::TooLarge { .. }), "{error:?}");
    // The client was told a larger limit than the server's 2 MiB: the server refuses.
    let optimistic = MemcachedStore::builder(&url)
        .max_item_size(8 << 20)
        .connect()
        .await
        .unwrap();
    let error = optimistic
        .create(&key, &vec![b'x'; 3 << 20], hour())
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::TooLarge { .. }), "{error:?}");
    assert!(store.load(&key).await.unwrap().is_none());
}

#[tokio::test]
async fn a_server_that_is_down_fails_fast_and_is_used_again_when_back() {
    let mut server = MemcachedServer::start().unwrap();
    let timeout = Duration::from_millis(500);
    let store = MemcachedStore::builder(format!("memcache://{}", server.address()))
        .timeout(timeout)
        .connect()
        .await
        .unwrap();
    let key = key();
    store.create(&key, b"x", hour()).await.unwrap();
    server.stop().unwrap();
    let started = Instant::now();
    let error = store.load(&key).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    assert!(
        started.elapsed() < timeout * 3,
        "took {:?}",
        started.elapsed()
    );
    server.restart().unwrap();
    store.create(&key, b"again", hour()).await.unwrap();
    assert_eq!(store.load(&key).await.unwrap().unwrap().value(), b"again");
}

#[tokio::test]
async fn a_wrong_address_fails_at_connect() {
    let error = MemcachedStore::connect("memcache://127.0.0.1:1")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    assert!(MemcachedStore::connect("redis://127.0.0.1:6379")
        .await
        .is_err());
}

#[tokio::test]
async fn errors_never_show_the_key() {
    let mut server = MemcachedServer::start().unwrap();
    let store = MemcachedStore::builder(format!("memcache://{}", server.address()))
        .timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let key = key();
    let revision = store.create(&key, b"x", hour()).await.unwrap();
    server.stop().unwrap();
    let error = store
        .update(&key, b"y", hour(), revision)
        .await
        .unwrap_err();
    let mut text = format!("{error} {error:?}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(&format!(" {cause} {cause:?}"));
        source = cause.source();
    }
    let id = key.as_str().trim_start_matches("session:");
    assert!(!text.contains(id), "{text}");
    let bytes = format!("{:?}", id.as_bytes());
    assert!(!text.contains(&bytes[1..20]), "{text}");
}

/// Calls in flight together, as one busy actix worker has them, reuse the pool's
/// connections: none is closed after its call only to be opened again for the next.
#[tokio::test]
async fn concurrent_calls_reuse_their_connections() {
    const IN_FLIGHT: usize = 32;
    let server = MemcachedServer::start().unwrap();
    let url = format!("memcache://{}", server.address());
    let store = MemcachedStore::connect(&url).await.unwrap();
    let key = key();
    store.create(&key, b"v", hour()).await.unwrap();
    let burst = || {
        let loads = (0..IN_FLIGHT).map(|_| store.load(&key));
        futures_util::future::join_all(loads)
    };
    for loaded in burst().await {
        assert!(loaded.unwrap().is_some());
    }
    // `stats` itself opens one connection per reading.
    let opened = || session_testkit::memcached::stat(&server.address(), "total_connections");
    let before = opened().unwrap();
    for _ in 0..10 {
        for loaded in burst().await {
            assert!(loaded.unwrap().is_some());
        }
    }
    let new = opened().unwrap() - before - 1;
    assert_eq!(
        new,
        0,
        "{new} connections opened for {} calls",
        10 * IN_FLIGHT
    );
}
